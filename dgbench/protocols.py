"""Protocols: which domains train, which validate and which are tested, for each run.

A protocol turns a dataset into named :class:`Split` s; one training run per split (and
seed, and augmenter). The split's name is the column it fills in the results table.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from dgbench.data import DomainDataset
from dgbench.errors import ConfigError
from dgbench.registry import PROTOCOLS


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


class Protocol:
    """Base class: ``splits(dataset)`` lists every split the protocol defines."""

    def splits(self, dataset: DomainDataset) -> list[Split]:
        raise NotImplementedError

    def select(self, dataset: DomainDataset, names: list[str] | None) -> list[Split]:
        """The splits named in ``protocol.targets`` (all of them when None), in order."""
        splits = [replace(s, index=i) for i, s in enumerate(self.splits(dataset))]
        if names is None:
            return splits
        by_name = {s.name: s for s in splits}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ConfigError(
                f"protocol.targets: {', '.join(unknown)} not in this protocol's splits "
                f"({', '.join(by_name)})"
            )
        return [by_name[n] for n in dict.fromkeys(names)]


@PROTOCOLS.register("lodo")
class LeaveOneDomainOut(Protocol):
    """Leave-one-domain-out: train on the other domains, test on the whole held-out domain."""

    def splits(self, dataset: DomainDataset) -> list[Split]:
        if len(dataset.domains) < 2:
            raise ConfigError("lodo needs a dataset with at least two domains")
        out = []
        for target in dataset.domains:
            sources = tuple(d for d in dataset.domains if d != target)
            out.append(
                Split(
                    name=target,
                    sources=sources,
                    train=tuple((d, "train") for d in sources),
                    val=tuple((d, "val") for d in sources),
                    test={target: (target, "all")},
                )
            )
        return out


@PROTOCOLS.register("single")
class SingleSource(Protocol):
    """Single-source: train on one domain, test on each other domain, whole, and on their union."""

    def splits(self, dataset: DomainDataset) -> list[Split]:
        if len(dataset.domains) < 2:
            raise ConfigError("single needs a dataset with at least two domains")
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
