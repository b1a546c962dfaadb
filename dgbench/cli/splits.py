"""``dgbench data NAME --list-splits``: DomainBed's split of a dataset, one CSV line per image,
so that anyone can audit it against DomainBed's own."""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any

from dgbench.core.errors import DGBenchError


def holdout_args(ns: argparse.Namespace) -> tuple[int, float]:
    from dgbench.data.domainbed import check_fraction, check_trial_seed  # lazy: numpy

    if ns.words[0] == "verify":
        raise DGBenchError("--list-splits goes with dgbench data NAME, not data verify")
    try:
        fraction = float(ns.holdout_fraction)
    except ValueError:
        raise DGBenchError(f"--holdout-fraction takes a number, got {ns.holdout_fraction!r}") from None
    check_fraction(fraction, "--holdout-fraction")
    return check_trial_seed(ns.trial_seed), fraction


def list_splits(dataset: Any, name: str, trial_seed: int, fraction: float) -> int:
    """DomainBed's split of every domain, one CSV line per image."""
    if dataset.image_files() is None:
        raise DGBenchError(f"{name} has no image files to list (it is built in memory); "
                           "--list-splits is for datasets read from folders, e.g. pacs")
    dataset.use_holdout(trial_seed, fraction)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["domain", "split", "path"])
    for domain in dataset.domains:
        for split in ("out", "in"):
            writer.writerows([domain, split, rel] for rel in dataset.part_files(domain, split))
    return 0
