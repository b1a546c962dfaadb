"""DomainBed's hyperparameters for ERM, drawn as DomainBed draws them, for its two recipes.

Facts from DomainBed (github.com/facebookresearch/DomainBed), ``hparams_registry.py`` and
``scripts/train.py``:

- ``hparams_seed`` 0 gives the defaults; any other draws every hyperparameter at random from a
  seed ``misc.seed_hash(hparams_seed, trial_seed)``.
- ``domainbed-2020`` (commit 7df6f06, the code of the published table): one
  ``numpy.random.RandomState(seed)`` draws, in this order, ``resnet_dropout`` (a choice of 0,
  0.1, 0.5), ``lr`` (10**U(-5, -3.5)), ``batch_size`` (int(2**U(3, 5.5)); DomainNet
  int(2**U(3, 5))) and ``weight_decay`` (10**U(-6, -2)). Defaults: lr 5e-5, batch 32, weight
  decay 0, dropout 0.
- ``domainbed`` (HEAD): each hyperparameter has its own ``RandomState(seed_hash(seed, name))``
  with the same distributions, so adding one leaves the others' values as they were. Its
  other ERM entries are fixed (``resnet50_augmix`` True, ``freeze_bn`` False, ...).

Values are kept as DomainBed computes them (``10 ** x`` in float64, ``int`` of ``2 ** x``);
the dropout, a NumPy float there, is a Python float here with the same value. DomainBed's
``batch_size`` is per training domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dgbench.core.errors import ConfigError
from dgbench.data.domainbed import seed_hash
from dgbench.plan.sweep import Search, search_space, value

DROPOUTS = (0.0, 0.1, 0.5)
DEFAULTS = {"resnet_dropout": 0.0, "lr": 5e-5, "batch_size": 32, "weight_decay": 0.0}


@dataclass(frozen=True)
class Recipe:
    """One of DomainBed's code states: what its table was made with."""

    name: str
    commit: str
    about: str
    #: the hyperparameters drawn, in DomainBed's order for a shared generator (2020)
    per_name_generators: bool
    #: evaluates after the last step too (HEAD's ``step == n_steps - 1``), not only every
    #: ``checkpoint_freq`` steps
    evaluate_last_step: bool
    #: BatchNorm layers kept in eval mode while training (2020: always; HEAD: ``freeze_bn``,
    #: off by default)
    freeze_bn: bool
    #: the ResNet-50 weights ResNet(...) loads: torchvision's ``resnet50(pretrained=True)``
    #: (IMAGENET1K_V1), or (HEAD, ``resnet50_augmix`` True by default) timm's
    #: ``resnet50.ram_in1k``, which HEAD loads even when ``resnet18`` is set
    weights: str


RECIPES = {r.name: r for r in (
    Recipe("domainbed-2020", "7df6f06", "the code behind DomainBed's published table "
           "(2020-10-06 results)", per_name_generators=False, evaluate_last_step=False,
           freeze_bn=True, weights="torchvision resnet50 IMAGENET1K_V1"),
    Recipe("domainbed", "b93c22a", "DomainBed's HEAD defaults", per_name_generators=True,
           evaluate_last_step=True, freeze_bn=False, weights="timm resnet50.ram_in1k"),
)}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ConfigError(f"unknown DomainBed recipe {name!r}; known: {', '.join(RECIPES)}")
    return RECIPES[name]


def _draws(r: np.random.RandomState, name: str, dataset: str) -> Any:
    if name == "resnet_dropout":
        return float(r.choice(list(DROPOUTS)))
    if name == "lr":
        return float(10 ** r.uniform(-5, -3.5))
    if name == "batch_size":
        return int(2 ** r.uniform(3, 5 if dataset == "DomainNet" else 5.5))
    return float(10 ** r.uniform(-6, -2))  # weight_decay


def erm_hparams(recipe: str, dataset: str, hparams_seed: int, trial_seed: int) -> dict[str, Any]:
    """ERM's ``resnet_dropout``, ``lr``, ``batch_size`` (per domain) and ``weight_decay`` for
    DomainBed's ``dataset`` name (``PACS``, ``DomainNet``, ...), as ``recipe``'s code draws them."""
    rec = get_recipe(recipe)
    if hparams_seed == 0:
        return dict(DEFAULTS)
    seed = seed_hash(hparams_seed, trial_seed)
    if rec.per_name_generators:
        return {name: _draws(np.random.RandomState(seed_hash(seed, name)), name, dataset)
                for name in DEFAULTS}
    shared = np.random.RandomState(seed)
    return {name: _draws(shared, name, dataset) for name in DEFAULTS}  # in DomainBed's order


def unit_draw(recipe: str, hparams_seed: int, trial_seed: int, name: str) -> float:
    """A number in [0, 1) for a hyperparameter DomainBed does not have (an augmenter's
    argument ``aug.name``), from its own generator ``RandomState(seed_hash(seed, name))`` as
    HEAD draws each of its own, for both recipes (so ERM's draws stay DomainBed's)."""
    get_recipe(recipe)
    seed = seed_hash(hparams_seed, trial_seed)
    return float(np.random.RandomState(seed_hash(seed, name)).uniform())


def training_seed(dataset: str, algorithm: str, test_envs: list[int], hparams_seed: int,
                  trial_seed: int) -> int:
    """The ``--seed`` DomainBed's ``sweep.py`` gives a run: ``seed_hash(dataset, algorithm,
    test_envs, hparams_seed, trial_seed)`` (``test_envs`` a list, as it passes them)."""
    return seed_hash(dataset, algorithm, list(test_envs), hparams_seed, trial_seed)


#: DomainBed's ``N_STEPS``, the steps of every run unless ``--steps`` says otherwise
STEPS = 5001


def check_steps(steps: int, every: int, last: bool = True) -> None:
    """At least one evaluation after the first step: ``steps`` > ``every`` where only every
    ``every``-th step is evaluated (2020), ``steps`` >= ``every`` where the last one is too."""
    if steps < every or (steps == every and not last):
        raise ConfigError(f"train.steps ({steps}) is smaller than train.checkpoint_freq "
                          f"({every}): the run would be evaluated only after its first step; "
                          "lower train.checkpoint_freq or raise train.steps")


def run_settings(cfg: Any, dataset: Any, split: Any, trial: int, aug: str,
                 kwargs: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any], int]]:
    """The runs of one (augmenter, split, trial) under DomainBed's protocol, one per
    ``protocol.hparams_seeds``: (config keys it fixes, the augmenter's arguments, its
    training seed). The four ERM hyperparameters are DomainBed's draws (``data.batch_size``
    per source domain, as DomainBed's), the augmenter's searched arguments drawn for
    ``hparams_seed`` > 0; Adam at a constant rate; the recipe's BatchNorm handling."""
    recipe = get_recipe(cfg.protocol.recipe)
    if kwargs.get("mix") == "crossdomain":
        raise ConfigError(f"{aug} with mix=crossdomain pairs [domain A | domain B] halves; "
                          "DomainBed's batches hold one block per source domain: use mix=random")
    steps = cfg.train.steps or STEPS
    every = cfg.train.checkpoint_freq or dataset.domainbed_checkpoint_freq
    check_steps(steps, every, recipe.evaluate_last_step)
    name = dataset.domainbed_name or type(dataset).__name__
    out = []
    for hs in cfg.protocol.hparams_seeds:
        h = erm_hparams(recipe.name, name, hs, trial)
        fixes = {"protocol.hparams_seeds": [hs], "train.lr": h["lr"],
                 "train.weight_decay": h["weight_decay"], "data.batch_size": h["batch_size"],
                 "model.dropout": h["resnet_dropout"], "model.freeze_bn": recipe.freeze_bn,
                 "train.optimizer": "adam", "train.schedule": "constant",
                 "train.sampler": "random", "train.steps": steps, "train.checkpoint_freq": every,
                 "data.cache": False,  # its batched augmentation is Dassl's
                 "train.amp": False, "train.channels_last": False}  # float32, as DomainBed
        args = dict(kwargs)
        if hs:
            args.update({arg: value(*dist, unit_draw(recipe.name, hs, trial, f"{aug}.{arg}"))
                         for arg, dist in search_space(aug, Search()).items()})
        out.append((fixes, args, training_seed(name, "ERM", list(split.test_envs), hs, trial)))
    return out
