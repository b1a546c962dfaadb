"""Where dgbench knowingly departs from the reference code, as written into every run record
it affects (``record["deviations"]``). The README's "Where dgbench departs" section says the
same in prose; ``docs/fidelity.md`` lists every item checked against the official code."""

from __future__ import annotations

import inspect
from typing import Any

LR_SCHEDULE = (
    "LR schedule: the learning rate of every epoch is computed from training progress "
    "(epoch / epochs), so no epoch can skip its step (Dassl steps only when the batch index "
    "reaches a length measured once, and with the domain sampler's varying epochs many "
    "epochs skip it).")
GATE = (
    "Augmenter gate: drawn from torch's CPU generator (lambda and pairing on the feature's "
    "device), seeded by the run's seed; the official code uses Python's random module.")
FIXED_EPOCH = (
    "Domain sampler (train.domain_epoch=fixed): a fixed number of batches per epoch, "
    "len(train) // batch, the domain pairs drawn in shuffled rounds so that every source "
    "domain appears every ceil(domains / 2) batches; Dassl's RandomDomainSampler ends the "
    "epoch when a drawn domain runs short (fewer, varying batches: train.domain_epoch=dassl).")
DASSL_EPOCH = (
    "Domain sampler (train.domain_epoch=dassl): Dassl's epoch, its draws (domains, images) "
    "from the run's seeded torch generator instead of Python's random module.")
ODD_CROSSDOMAIN = (
    "Crossdomain pairing with an odd batch: A (the larger half) and B each take partners from "
    "the other half only, one B sample serving twice; the official MixStyle/EFDMix code "
    "(Dassl's current version) pairs through a permutation in which the middle sample can "
    "pair with itself and with A samples, and the ReID copies fail on odd batches.")
CACHE = (
    "Image cache: the training transform's random choices (translation, crop offset, flip) are "
    "drawn per batch from a torch generator seeded by the run's seed and applied as tensor "
    "operations; for given choices the pixels equal the per-image transforms'.")


def for_run(cfg: Any, task: Any, aug_cls: type, cache: bool) -> list[str]:
    """The departures that apply to one run: its config, task, augmenter and data path."""
    # Dassl's skipped LR steps need epochs of varying length (its domain sampler's) and a
    # schedule that moves; a fixed epoch steps where ours does
    out = [LR_SCHEDULE] if (cfg.train.sampler == "domain" and cfg.train.domain_epoch == "dassl"
                            and cfg.train.schedule != "constant") else []
    if "p" in inspect.signature(aug_cls).parameters:
        out.append(GATE)
    if cfg.train.sampler == "domain":
        out.append(DASSL_EPOCH if cfg.train.domain_epoch == "dassl" else FIXED_EPOCH)
    if cfg.aug.args.get("mix") == "crossdomain" and cfg.data.batch_size % 2:
        out.append(ODD_CROSSDOMAIN)
    out += list(task.deviations) + list(getattr(aug_cls, "deviations", ()))
    if cache:
        out.append(CACHE)
    return out
