"""From a user's config to a checked list of runs, before anything trains or is written.

Every check that can fail on user input happens here: names, types, augmenter arguments,
insertion blocks, protocol targets, impossible settings. A :class:`Run` holds a fully
resolved single-run :class:`Config` (one augmenter with all its arguments, one seed, one
split), which is what the run record stores and what the run's folder name hashes.
"""

from __future__ import annotations

import copy
import inspect
import re
import typing
from dataclasses import dataclass
from typing import Any

from dgbench import config as C
from dgbench.data import DomainDataset
from dgbench.errors import ConfigError
from dgbench.protocols import Protocol, Split
from dgbench.registry import AUGMENTERS, DATASETS, PROTOCOLS

SCHEDULES = ("cosine", "step", "constant")
SAMPLERS = ("auto", "random", "domain")
AMP_DTYPES = ("bfloat16", "float16")


@dataclass
class Run:
    config: C.Config  # resolved, single augmenter / seed / split
    split: Split
    run_id: str

    @property
    def aug(self) -> str:
        return self.config.aug.names[0]

    @property
    def seed(self) -> int:
        return self.config.seeds[0]

    def label(self) -> str:
        return f"{self.aug} seed={self.seed} {self.split.name}"


@dataclass
class Plan:
    experiment: str
    config: C.Config
    dataset: DomainDataset
    protocol: Protocol
    runs: list[Run]
    target: DomainDataset | None = None  # reid: the dataset tested on


def resolve(user: dict[str, Any]) -> C.Config:
    """Defaults, then the dataset's recommended settings, then the user's checked keys."""
    name = user.get("data.name", C.DataConfig.name)
    flat: dict[str, Any] = {}
    for key, value in DATASETS.get(name).defaults.items():
        C.set_value(flat, key, value, from_text=False)
    flat.update(user)
    return C.build(flat)


def _init_params(cls: type) -> tuple[dict[str, inspect.Parameter], dict[str, Any]]:
    params = {
        n: p
        for n, p in inspect.signature(cls).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable annotations in a plugin: fall back to the defaults
        hints = {}
    return params, hints


def augmenter_kwargs(name: str, args: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """All keyword arguments of augmenter ``name``: its defaults, overridden by ``args``.

    ``args`` holds arguments for every listed augmenter that accepts them (``alpha``), and
    per-augmenter sections (``{"mixstyle": {"alpha": 0.3}}``).
    """
    cls = AUGMENTERS.get(name)
    params, hints = _init_params(cls)
    kwargs = {n: p.default for n, p in params.items() if p.default is not p.empty}
    given = {k: v for k, v in args.items() if not (k in names and isinstance(v, dict))}
    given.update(args.get(name, {}) if isinstance(args.get(name), dict) else {})
    for key, value in given.items():
        if key not in params:
            if key in args.get(name, {}):  # named for this augmenter explicitly
                raise ConfigError(
                    f"augmenter {name} has no argument {key!r}; its arguments: "
                    f"{', '.join(params) or 'none'}"
                )
            continue  # a shared argument that this augmenter does not take
        default = params[key].default
        tp = hints.get(key, type(default) if default not in (None, params[key].empty) else Any)
        kwargs[key] = C.coerce(f"aug.args.{key}", value, tp, isinstance(value, C.CliText))
    missing = [n for n, p in params.items() if n not in kwargs]
    if missing:
        raise ConfigError(f"augmenter {name} needs arguments {', '.join(missing)}")
    try:
        cls(**kwargs)  # the augmenter checks its own values
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"augmenter {name}: {exc}") from None
    return {k: (str(v) if isinstance(v, C.CliText) else v) for k, v in kwargs.items()}


def _check_shared_args(args: dict[str, Any], names: list[str]) -> None:
    for key, value in args.items():
        if key in names and isinstance(value, dict):
            continue
        if isinstance(value, dict) and key in AUGMENTERS:
            raise ConfigError(
                f"aug.args has a section for {key}, which is not among aug.names "
                f"({', '.join(names)})"
            )
        # A shared argument only some registered augmenter takes is fine (a preset's p and
        # alpha with --aug none); one that no augmenter takes at all is a typo.
        takers = [n for n in AUGMENTERS.names() if key in _init_params(AUGMENTERS.get(n))[0]]
        if not takers:
            raise ConfigError(
                f"no augmenter in {', '.join(names)} takes the argument {key!r}; "
                "check the spelling, or see 'dgbench list augmenters'"
            )


def _check_numbers(cfg: C.Config) -> None:
    checks = [
        (cfg.train.epochs >= 1, "train.epochs must be at least 1"),
        (cfg.train.lr > 0, "train.lr must be positive"),
        (0 <= cfg.train.momentum < 1, "train.momentum must be in [0, 1)"),
        (cfg.train.weight_decay >= 0, "train.weight_decay must be >= 0"),
        (cfg.data.batch_size >= 1, "data.batch_size must be at least 1"),
        (cfg.data.image_size >= 8, "data.image_size must be at least 8"),
        (cfg.data.num_workers >= 0, "data.num_workers must be >= 0"),
        (cfg.model.width >= 1, "model.width must be at least 1"),
        (cfg.data.subsample is None or cfg.data.subsample >= 1, "data.subsample must be >= 1"),
        (bool(cfg.seeds), "seeds must list at least one seed"),
        (all(s >= 0 for s in cfg.seeds), "seeds must be >= 0"),
        (bool(cfg.aug.names), "aug.names must list at least one augmenter"),
        (cfg.train.schedule in SCHEDULES, f"train.schedule must be one of {SCHEDULES}"),
        (all(e >= 1 for e in cfg.train.step_epochs), "train.step_epochs must be >= 1"),
        (cfg.train.step_gamma > 0, "train.step_gamma must be positive"),
        (0 <= cfg.train.label_smoothing < 1, "train.label_smoothing must be in [0, 1)"),
        (cfg.train.backbone_lr_mult >= 0, "train.backbone_lr_mult must be >= 0"),
        (cfg.model.feature_dim >= 1, "model.feature_dim must be at least 1"),
        (cfg.model.last_stride in (1, 2), "model.last_stride must be 1 or 2"),
        (cfg.train.sampler in SAMPLERS, f"train.sampler must be one of {SAMPLERS}"),
        (cfg.train.amp_dtype in AMP_DTYPES, f"train.amp_dtype must be one of {AMP_DTYPES}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    if cfg.experiment is not None and not re.fullmatch(r"[A-Za-z0-9_.\-]+", cfg.experiment):
        raise ConfigError("experiment must be a folder name: letters, digits, '.', '_', '-'")


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if re.fullmatch(r"cuda(:\d+)?", device):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} asked for, but CUDA is not available here")
        return device
    raise ConfigError(f"device must be auto, cpu, cuda or cuda:N; got {device!r}")


def make_plan(cfg: C.Config) -> Plan:
    """Check ``cfg`` and expand it into runs; raises :class:`ConfigError`/`DataError`."""
    from dgbench import models
    from dgbench.records import run_id

    _check_numbers(cfg)
    names = list(dict.fromkeys(cfg.aug.names))
    for name in names:
        AUGMENTERS.entry(name)
    _check_shared_args(cfg.aug.args, names)
    kwargs = {n: augmenter_kwargs(n, cfg.aug.args, names) for n in names}
    protocol: Protocol = PROTOCOLS.get(cfg.protocol.name)()
    models.check_backbone(cfg.model.backbone)
    device = resolve_device(cfg.device)
    dataset = DATASETS.get(cfg.data.name)(cfg.data.root, cfg.data.image_size)
    reid = getattr(dataset, "task", None) == "reid"
    target = None
    if protocol.needs_target:
        if not cfg.protocol.target:
            raise ConfigError(f"protocol {cfg.protocol.name} needs protocol.target (--target "
                              "NAME): the dataset to test on")
        if cfg.protocol.target == cfg.data.name:
            raise ConfigError("protocol.target must differ from data.name (cross-dataset)")
        target = DATASETS.get(cfg.protocol.target)(cfg.data.root, cfg.data.image_size)
        splits = protocol.select(dataset, cfg.protocol.targets, target=target,
                                 indices=cfg.protocol.splits, source_name=cfg.data.name,
                                 target_name=cfg.protocol.target)
    else:
        if reid:
            raise ConfigError(f"{cfg.data.name} is a re-identification dataset: use --protocol "
                              "reid --target NAME")
        if cfg.protocol.target or cfg.protocol.splits is not None:
            raise ConfigError(f"protocol.target / protocol.splits are for --protocol reid, not "
                              f"{cfg.protocol.name}")
        splits = protocol.select(dataset, cfg.protocol.targets)

    if reid:
        from dgbench.reid import build_reid_model

        probe = build_reid_model(cfg, num_ids=2, pretrained=False)  # checks weights too
    else:
        probe = models.build_backbone(
            cfg.model.backbone, dataset.num_classes, cfg.model.stem, cfg.model.width
        )
    insert = list(cfg.aug.insert) if cfg.aug.insert is not None else models.default_insert(probe)
    models.check_insert(probe, insert)  # the same check insertion makes, before any run
    if cfg.model.weights and not reid:  # (reid: loaded into the probe's trunk already)
        models.load_local_weights(probe, cfg.model.weights, skip_stem=cfg.model.stem == "small")

    experiment = cfg.experiment or (
        f"{cfg.data.name}-to-{cfg.protocol.target}" if target is not None
        else f"{cfg.data.name}-{cfg.protocol.name}")
    data_version = dataset.describe().get("version")
    runs = []
    for name in names:
        crossdomain = kwargs[name].get("mix") == "crossdomain"
        sampler = cfg.train.sampler
        if sampler == "auto":
            sampler = "domain" if crossdomain else "random"
        if crossdomain and sampler != "domain":
            raise ConfigError(
                f"{name} with mix=crossdomain needs batches laid out [domain A | domain B]: "
                "set train.sampler=domain (or auto)"
            )
        for split in splits:
            if reid and sampler == "domain":  # cameras are the domains
                k = int(split.train[0][1])
                if len({c for _, _, c in dataset.split(k).train}) < 2:
                    raise ConfigError(f"{name} with mix=crossdomain pairs cameras, but split "
                                      f"{split.name} trains on one camera; use mix=random")
            elif sampler == "domain" and len(split.sources) < 2:
                raise ConfigError(
                    f"{name} with mix=crossdomain (or train.sampler=domain) needs at least two "
                    f"source domains, but split {split.name} trains on {', '.join(split.sources)}"
                    "; use mix=random"
                )
            for seed in cfg.seeds:
                run_cfg = copy.deepcopy(cfg)
                run_cfg.experiment = experiment
                run_cfg.seeds = [seed]
                run_cfg.device = device
                run_cfg.aug.names = [name]
                run_cfg.aug.args = dict(kwargs[name])
                run_cfg.aug.insert = insert
                run_cfg.protocol.targets = [split.name]
                run_cfg.train.sampler = sampler
                if not dataset.supports_cache:  # record what really happens
                    run_cfg.data.cache = False
                if not device.startswith("cuda"):
                    run_cfg.train.amp = False
                    run_cfg.train.channels_last = False
                runs.append(Run(run_cfg, split, run_id(run_cfg, data_version)))
    return Plan(experiment, cfg, dataset, protocol, runs, target)
