"""Protocols: which domains train, which validate and which are tested, for each run.

A protocol turns a dataset into named :class:`Split` s; one training run per split (and
seed, and augmenter). The split's name is the column it fills in the results table.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from dgbench.core.errors import ConfigError, did_you_mean
from dgbench.core.registry import Registry
from dgbench.data.base import DomainDataset

#: every protocol
PROTOCOLS = Registry("protocol", builtins="dgbench.data.protocols")


@dataclass(frozen=True)
class Split:
    """Which (domain, split) parts a run trains, validates and tests on.

    The run's score is the accuracy pooled over all its test parts (their union): the target
    domain's accuracy under LODO, the published single-source number under ``single``.
    """

    name: str  # table column: the held-out domain under LODO, the source under single
    sources: tuple[str, ...]  # domains trained on
    train: tuple[tuple[str, str], ...]  # (domain, split) parts
    val: tuple[tuple[str, str], ...]
    test: dict[str, tuple[str, str]] = field(default_factory=dict)  # test name -> part
    index: int = 0  # position among the protocol's splits: the table's column order
    #: config keys this split fixes in its run's config, beyond protocol.targets
    fixes: dict[str, Any] = field(default_factory=dict)
    #: "test": a table column; "validation": a run that validates the split ``of`` (its test
    #: domain is a source of ``of``, held out: leave-one-domain-out validation)
    role: str = "test"
    of: str | None = None
    #: DomainBed's protocol: the parts are each domain's "in" / "out" of the run's trial
    #: (:meth:`DomainDataset.use_holdout`), and ``watch`` lists every part measured at each
    #: evaluation (every domain's "in" and "out"); ``test_envs`` the tested domains' indices
    holdout: bool = False
    watch: tuple[tuple[str, str], ...] = ()
    test_envs: tuple[int, ...] = ()


class Protocol:
    """Base class: ``splits(dataset)`` lists every split the protocol defines."""

    #: the task (dgbench.tasks) of the datasets it splits
    task: str = "classification"
    #: cross-dataset protocols test on another dataset (``protocol.target``)
    needs_target: bool = False

    def splits(self, dataset: DomainDataset, **kwargs: Any) -> list[Split]:
        raise NotImplementedError

    def defaults(self, dataset: type[DomainDataset], user: dict[str, Any]) -> dict[str, Any]:
        """Settings the protocol recommends (dotted keys) for ``dataset``, over the dataset's
        own and under the user's (``user``: what was asked)."""
        return {}

    def select(self, dataset: DomainDataset, names: list[str] | None, **kwargs: Any) -> list[Split]:
        """The splits named in ``protocol.targets`` (all of them when None), in order, each
        with the validation splits that belong to it."""
        splits = [replace(s, index=i) for i, s in enumerate(self.splits(dataset, **kwargs))]
        if names is None:
            return splits
        by_name = {s.name: s for s in splits}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            tests = [s.name for s in splits if s.role == "test"]
            hint = did_you_mean(unknown[0], tests) if len(unknown) == 1 else ""
            raise ConfigError(f"protocol.targets: {', '.join(unknown)} not in this protocol's "
                              f"splits ({', '.join(tests)}).{hint}".rstrip("."))
        out = []  # in the order asked for, each followed by its validation splits
        for name in dict.fromkeys(names):
            out += [by_name[name], *(s for s in splits if s.of == name)]
        return list({s.name: s for s in out}.values())


def _held_out(name: str, sources: tuple[str, ...], test: str, **extra: Any) -> Split:
    """Train on ``sources`` (their val parts validate), test on the whole domain ``test``."""
    return Split(name=name, sources=sources, train=tuple((d, "train") for d in sources),
                 val=tuple((d, "val") for d in sources), test={test: (test, "all")}, **extra)


@PROTOCOLS.register("lodo")
class LeaveOneDomainOut(Protocol):
    """Leave-one-domain-out: train on the other domains, test on the whole held-out domain.

    With ``loo_validation``, each target also gets one validation run per source domain,
    trained without that source (and the target) and tested on it, for DomainBed's
    leave-one-domain-out validation (``dgbench table --select loo``).
    """

    def splits(self, dataset: DomainDataset, loo_validation: bool = False,
               **kwargs: Any) -> list[Split]:
        if len(dataset.domains) < 2:
            raise ConfigError("lodo needs a dataset with at least two domains")
        if loo_validation and len(dataset.domains) < 3:
            raise ConfigError("protocol.loo_validation needs a dataset with at least three "
                              "domains (a target, a held-out source and one to train on)")
        others = {t: tuple(d for d in dataset.domains if d != t) for t in dataset.domains}
        out = [_held_out(t, others[t], t) for t in dataset.domains]
        if loo_validation:
            out += [_held_out(f"{t}:val={v}", tuple(d for d in others[t] if d != v), v,
                              role="validation", of=t)
                    for t in dataset.domains for v in others[t]]
        return out


@PROTOCOLS.register("single")
class SingleSource(Protocol):
    """Single-source: train on one domain, test on each other domain, whole, and on their union."""

    def splits(self, dataset: DomainDataset, loo_validation: bool = False,
               **kwargs: Any) -> list[Split]:
        if len(dataset.domains) < 2:
            raise ConfigError("single needs a dataset with at least two domains")
        if loo_validation:
            raise ConfigError("protocol.loo_validation applies to --protocol lodo only")
        return [
            Split(
                name=source,
                sources=(source,),
                train=((source, "train"),),
                val=((source, "val"),),
                test={t: (t, "all") for t in dataset.domains if t != source},
            )
            for source in dataset.domains
        ]


@PROTOCOLS.register("reid")
class CrossDatasetReID(Protocol):
    """Cross-dataset person re-identification: train on data.name, rank protocol.target.

    A multi-split dataset (GRID) as the target is evaluated on each of its splits
    (``protocol.splits``, default all) by one trained model; as the source, each of its
    splits' training identities trains one run, tested on the whole target.
    """

    task = "reid"
    needs_target = True

    def splits(self, dataset: DomainDataset, target: Any = None,
               indices: list[int] | None = None, loo_validation: bool = False,
               **kwargs: Any) -> list[Split]:
        if loo_validation:
            raise ConfigError("protocol.loo_validation applies to --protocol lodo only")
        if dataset.task != self.task or target.task != self.task:
            raise ConfigError("protocol reid needs re-identification datasets as data.name and "
                              "protocol.target, e.g. --source market1501 --target grid")
        src = kwargs.get("source_name") or type(dataset).__name__.lower()
        tgt = kwargs.get("target_name") or type(target).__name__.lower()
        src_n, tgt_n = len(dataset.splits), len(target.splits)
        if src_n > 1 and tgt_n > 1:
            raise ConfigError("protocol reid: source and target cannot both have several splits")
        multi = src_n if src_n > 1 else tgt_n
        chosen = list(range(multi)) if indices is None else list(dict.fromkeys(indices))
        bad = [i for i in chosen if not 0 <= i < multi]
        if bad:
            raise ConfigError(f"protocol.splits: {bad} not in 0..{multi - 1}")
        direction = f"{src}->{tgt}"
        if src_n > 1:  # one run per source split, each tested on the whole target; the run's
            # split is its name, so the list in protocol.splits is not part of its identity
            return [Split(name=f"{direction}#{k}", sources=(src,), train=((src, str(k)),),
                          val=(), test={tgt: (tgt, "0")}, fixes={"protocol.splits": None})
                    for k in chosen]
        tests = {(f"{tgt}#{k}" if tgt_n > 1 else tgt): (tgt, str(k)) for k in chosen}
        return [Split(name=direction, sources=(src,), train=((src, "0"),), val=(), test=tests)]


@PROTOCOLS.register("domainbed")
class DomainBed(Protocol):
    """DomainBed's protocol (Gulrajani & Lopez-Paz, ICLR 2021): each domain split into "in"
    and "out" (``protocol.holdout_fraction`` held out, by trial); train on the other domains'
    "in" parts for ``train.steps`` steps, one batch per source domain; at each evaluation
    measure every domain's "in" and "out"; the test domain's "in" is its score.

    With ``loo_validation``, one more run per pair of test domains (DomainBed's sweep runs
    every pair), for its leave-one-domain-out selection.
    """

    def defaults(self, dataset: type[DomainDataset], user: dict[str, Any]) -> dict[str, Any]:
        """DomainBed's whole sweep (3 trials x 20 hyperparameter draws), and for its own
        datasets its network: the recipe's ImageNet ResNet-50 at 224 px (``model.backbone
        resnet18`` is honoured, as DomainBed 2020's ``resnet18`` hparam; HEAD loads its
        ResNet-50 even then, see docs/fidelity.md)."""
        out: dict[str, Any] = {"seeds": [0, 1, 2], "protocol.hparams_seeds": list(range(20))}
        if dataset.domainbed_name:
            head = user.get("protocol.recipe", "domainbed") == "domainbed"
            out.update({"data.image_size": 224, "model.pretrained": True,
                        "model.stem": "imagenet",
                        "model.backbone": "timm:resnet50.ram_in1k" if head else "resnet50"})
        return out

    def splits(self, dataset: DomainDataset, loo_validation: bool = False,
               **kwargs: Any) -> list[Split]:
        domains = tuple(dataset.domains)
        if len(domains) < 2 or (loo_validation and len(domains) < 3):
            raise ConfigError(f"protocol domainbed needs a dataset with at least "
                              f"{3 if loo_validation else 2} domains"
                              f"{' for loo_validation' if loo_validation else ''}")
        watch = tuple((d, part) for d in domains for part in ("in", "out"))

        def tested(*envs: int, **extra: Any) -> Split:
            sources = tuple(d for i, d in enumerate(domains) if i not in envs)
            return Split(name="+".join(domains[i] for i in envs), sources=sources,
                         train=tuple((d, "in") for d in sources),
                         val=tuple((d, "out") for d in sources),
                         test={domains[i]: (domains[i], "in") for i in envs},
                         holdout=True, watch=watch, test_envs=envs, **extra)

        out = [tested(i) for i in range(len(domains))]
        if loo_validation:  # DomainBed's all_test_env_combinations: every pair, i < j
            out += [tested(i, j, role="validation")
                    for i in range(len(domains)) for j in range(i + 1, len(domains))]
        return out
