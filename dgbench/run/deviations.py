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

DOMAINBED_BATCHES = (
    "DomainBed batches: each source domain's images drawn uniformly with replacement, as "
    "DomainBed's InfiniteDataLoader over RandomSampler(replacement=True) draws them, but from "
    "the run's own seeded torch generator: the same distribution, not DomainBed's stream of "
    "indices (nor its eight loader workers' augmentation draws).")
DOMAINBED_ALGORITHM = (
    "DomainBed training seed: every augmenter's run is seeded as DomainBed seeds ERM "
    "(seed_hash(dataset, 'ERM', test_envs, hparams_seed, trial_seed)), so the runs of one "
    "(trial, draw, test domains) start from the same initialisation and batches; augmenter "
    "arguments outside hparams_seed 0 are drawn from their own generators, leaving ERM's "
    "draws DomainBed's.")
DOMAINBED_2020_TAIL = (
    "domainbed-2020: it evaluates only where step % checkpoint_freq == 0 (the last at step "
    "4800 of 5001 on PACS); dgbench stops at that last evaluation instead of training the "
    "steps after it (200 on PACS), which change no number DomainBed 2020 records, only its "
    "saved model.pkl.")
DOMAINBED_VAL = (
    "DomainBed validation: every domain's 'in' and 'out' accuracies are recorded per "
    "evaluation (history 'parts'; a training domain's through its training augmentation, as "
    "DomainBed); dgbench's own val_acc (the sources' 'out' parts pooled, test transform) is "
    "recorded beside them.")


def domainbed(cfg: Any) -> list[str]:
    """The departures of a run under DomainBed's protocol."""
    out = [DOMAINBED_BATCHES, DOMAINBED_ALGORITHM, DOMAINBED_VAL]
    every = cfg.train.checkpoint_freq or cfg.train.steps
    if cfg.protocol.recipe == "domainbed-2020" and (cfg.train.steps - 1) % every:
        out.append(DOMAINBED_2020_TAIL)
    return out


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
    if cfg.train.steps:
        out += domainbed(cfg)
    return out
