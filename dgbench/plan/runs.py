"""A planned run, and its id: a hash of its canonical resolved config."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dgbench import config as C
from dgbench.core import keys

if TYPE_CHECKING:  # the type only
    from dgbench.data.protocols import Split


@dataclass
class Run:
    """One planned run: a fully resolved single-run config (one augmenter with all its
    arguments, one seed, one split), which the record stores and the run id hashes."""

    config: C.Config
    split: Split
    run_id: str
    #: the seed its training is seeded with, where a protocol derives it from more than the
    #: run's seed (DomainBed's: from the dataset, test domains, hparams seed and trial)
    derived_seed: int | None = None

    @property
    def aug(self) -> str:
        return self.config.aug.names[0]

    @property
    def seed(self) -> int:
        return self.config.seeds[0]

    @property
    def train_seed(self) -> int:
        """What seeds the run's training: its seed, or the protocol's derived one."""
        return self.seed if self.derived_seed is None else self.derived_seed

    def label(self) -> str:
        if self.split.holdout:  # DomainBed's protocol: the seed is its trial
            return (f"{self.aug} trial={self.seed} hparams={self.config.protocol.hparams_seeds[0]}"
                    f" {self.split.name}")
        return f"{self.aug} seed={self.seed} {self.split.name}"


def canonical(cfg: C.Config) -> dict[str, Any]:
    """The config a run's id hashes: what was asked, not where it ran. Without the keys that
    are not part of its identity, and without the keys marked ``id_when_set`` (added after
    runs were first recorded) while they hold their default, so that a new key leaves the ids
    of older runs, and of runs that do not use it, unchanged. The keys marked ``id_as`` (the
    device and CUDA's speed settings, resolved where the run trains) hash a fixed value, the
    one CPU-planned runs always hashed, and what was asked under ``asked`` when it is not
    their default: the device is where, not what, so it never does."""
    tree = C.to_dict(cfg)
    asked: dict[str, Any] = {}
    for key, leaf in C.FIELDS.items():
        if "id_as" in leaf.rules:
            value = keys.get(tree, key)
            keys.assign(tree, key, leaf.rules["id_as"])
            if key not in C.NOT_IDENTITY and value != leaf.default:
                asked[key] = value
        elif key in C.NOT_IDENTITY or (leaf.rules.get("id_when_set")
                                       and keys.get(tree, key) == leaf.default):
            keys.drop(tree, key)
    if asked:
        tree["asked"] = asked
    return tree


def run_id(cfg: C.Config, data_version: Any = None) -> str:
    """Hash of the canonical config (and the dataset's version: a rebuilt dataset reruns)."""
    tree = canonical(cfg)
    if data_version is not None:
        tree["data_version"] = data_version
    blob = json.dumps(tree, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


