"""One training run, as one flat loop that reads top to bottom (after nanoGPT's train.py).

Extend it through augmenters, datasets and config, not by subclassing.
"""

from __future__ import annotations

import math
import random
import time
from datetime import datetime, timezone
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from dgbench import config as C
from dgbench.data import DomainDataset, DomainPairSampler, concat, subsample
from dgbench.errors import DGBenchError
from dgbench.evaluate import autocast, count_correct, evaluate_tests, to_device
from dgbench.models import build_backbone, insert_augmenters
from dgbench.plan import Run
from dgbench.records import SCHEMA, environment
from dgbench.registry import AUGMENTERS

# Where dgbench knowingly departs from the reference harnesses; stored in every record.
DEVIATIONS = [
    "LR schedule: the learning rate of every epoch is computed from training progress "
    "(epoch / epochs), so no epoch can skip its step (Dassl skips steps when the domain "
    "sampler's epoch length varies).",
    "Augmenter gate: drawn from torch's CPU generator (lambda and pairing on the feature's "
    "device), seeded by the run's seed; the official code uses Python's random module.",
    "Domain sampler: a fixed number of batches per epoch, len(train) // batch, with the "
    "domain pairs drawn in shuffled rounds so that every source domain appears every "
    "ceil(domains / 2) batches (Dassl draws each pair independently).",
]


CACHE_DEVIATIONS = [
    "Image cache: the training transform's random choices (translation, crop offset, flip) are "
    "drawn per batch from a torch generator seeded by the run's seed and applied as tensor "
    "operations; for given choices the pixels equal torchvision's per-image transforms.",
]
REID_DEVIATIONS = [
    "ReID ranking: gallery items at exactly equal distance are ordered by gallery index (a "
    "stable sort); torchreid's NumPy quicksort leaves their order unspecified.",
]


class TrainingError(DGBenchError):
    """Training diverged (non-finite loss)."""


def seed_everything(seed: int) -> None:
    """Seed every random source the run uses: Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker with base_seed + worker_id (base_seed drawn from the loader's
    # seeded generator); derive Python's and NumPy's seeds from it.
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def eval_loader(ds: Any, batch_size: int, **kwargs: Any) -> DataLoader:
    """An in-order loader with its own generator: a DataLoader without one draws its worker
    seed from torch's global RNG on every pass, so evaluating (or not) would change the
    training run's random stream."""
    return DataLoader(ds, batch_size=batch_size, shuffle=False,
                      generator=torch.Generator().manual_seed(0), **kwargs)


def cosine_lr(base: float, epoch: int, epochs: int) -> float:
    """torch's CosineAnnealingLR(T_max=epochs, eta_min=0) value at the start of ``epoch``."""
    return base * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


def epoch_lr(t: C.TrainConfig, epoch: int) -> float:
    """The learning rate of (0-based) ``epoch``: cosine, step (MultiStepLR) or constant."""
    if t.schedule == "cosine":
        return cosine_lr(t.lr, epoch, t.epochs)
    if t.schedule == "step":
        return t.lr * t.step_gamma ** sum(epoch >= m for m in t.step_epochs)
    return t.lr


def parameter_groups(model: torch.nn.Module, backbone_mult: float) -> list[dict[str, Any]]:
    """One group, or (with a multiplier other than 1) the new layers (``model.new_modules``,
    else ``fc``) at full rate and the rest (the trunk) at ``lr_mult = backbone_mult``."""
    if backbone_mult == 1.0:
        return [{"params": list(model.parameters()), "lr_mult": 1.0}]
    new_names = tuple(getattr(model, "new_modules", ("fc",)))
    new, old = [], []
    for name, param in model.named_parameters():
        (new if name.split(".")[0] in new_names else old).append(param)
    return [{"params": new, "lr_mult": 1.0}, {"params": old, "lr_mult": backbone_mult}]


def train_run(run: Run, dataset: DomainDataset, progress: bool = True,
              target: DomainDataset | None = None) -> dict[str, Any]:
    """Train and evaluate one run; return its record (not yet written).

    Classification (``lodo``, ``single``) evaluates every epoch; re-identification (``reid``:
    ``dataset`` trains, ``target`` is ranked) evaluates the final model, as published.
    """
    cfg, split, seed = run.config, run.split, run.seed
    started = datetime.now(timezone.utc)
    t_start = time.perf_counter()
    seed_everything(seed)
    device = torch.device(cfg.device)
    cuda = device.type == "cuda"
    amp_dtype = getattr(torch, cfg.train.amp_dtype) if (cuda and cfg.train.amp) else None
    channels_last = cuda and cfg.train.channels_last
    if cuda:
        torch.backends.cudnn.benchmark = False  # the reference harness forces it on

    # ---- data: the protocol's parts, one loader each -----------------------------------
    cache = None
    if cfg.data.cache and dataset.supports_cache:  # decoded once; augmented per batch below
        from dgbench import imagecache

        folder, files = dataset.cache_source()
        cache = imagecache.ImageCache.open_or_build(cfg.data.name, folder, files,
                                                    cfg.data.image_size, progress)
        aug_gen = torch.Generator(device=device).manual_seed(seed)

    def part(domain: str, name: str, train: bool) -> Any:
        if cache is not None:
            return subsample(dataset.cached_subset(cache, domain, name, train), cfg.data.subsample)
        return subsample(dataset.subset(domain, name, train), cfg.data.subsample)

    reid = target is not None
    if reid:  # cameras are the domains of the [A | B] sampler
        from dgbench import reid as R

        k = int(split.train[0][1])
        train_parts = [subsample(p, cfg.data.subsample)
                       for p in R.train_parts(dataset, k, cfg.train.sampler == "domain")]
        num_classes = dataset.split(k).num_ids
        val_set, test_sets = [], {}  # no source validation: the final model is used
    else:
        train_parts = [part(d, s, True) for d, s in split.train]
        val_set = concat([part(d, s, False) for d, s in split.val])
        test_sets = {name: part(d, s, False) for name, (d, s) in split.test.items()}
        num_classes = dataset.num_classes
    train_set = concat(train_parts)
    gen = torch.Generator().manual_seed(seed)
    bs = cfg.data.batch_size
    common = dict(num_workers=cfg.data.num_workers, pin_memory=cuda, worker_init_fn=_seed_worker)
    if cfg.train.sampler == "domain":
        sampler = DomainPairSampler([len(p) for p in train_parts], bs, gen)
        train_loader = DataLoader(train_set, batch_sampler=sampler, generator=gen, **common)
    else:
        train_loader = DataLoader(
            train_set, batch_size=bs, shuffle=True, drop_last=len(train_set) >= bs,
            generator=gen, **common,
        )

    val_loader = eval_loader(val_set, 2 * bs, **common)
    test_loaders = {name: eval_loader(ds, 2 * bs, **common) for name, ds in test_sets.items()}

    # ---- model: backbone + augmenter at the named blocks ---------------------------------
    name = cfg.aug.names[0]
    aug_cls = AUGMENTERS.get(name)
    if reid:
        model = R.build_reid_model(cfg, num_classes)
    else:
        model = build_backbone(
            cfg.model.backbone, num_classes, cfg.model.stem, cfg.model.width,
            cfg.model.pretrained, cfg.model.weights,
        )
    placed = insert_augmenters(model, cfg.aug.insert, lambda: aug_cls(**cfg.aug.args), name,
                               shared=cfg.aug.shared)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        parameter_groups(model, cfg.train.backbone_lr_mult), lr=cfg.train.lr,
        momentum=cfg.train.momentum, weight_decay=cfg.train.weight_decay,
        nesterov=cfg.train.nesterov,
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    # ---- the loop ------------------------------------------------------------------------
    epochs = cfg.train.epochs
    history: list[dict[str, Any]] = []
    train_images, train_seconds = 0, 0.0
    bar = tqdm(
        total=epochs * len(train_loader), desc=run.label(), unit="step",
        disable=None if progress else True,  # None: only on a terminal
        leave=False, dynamic_ncols=True,
    )
    for epoch in range(epochs):
        lr = epoch_lr(cfg.train, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_mult"]
        model.train()
        t_epoch = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = 0
        for images, labels, _domains in train_loader:
            if cache is not None:  # uint8 (small, big) views: the training transform, batched
                small, big = (t.to(device, non_blocking=True) for t in images)
                images = imagecache.normalise(imagecache.augment(small, big, aug_gen),
                                              dataset.mean, dataset.std)
            images, labels = to_device(images, labels, device, channels_last)
            with autocast(device, amp_dtype):
                logits = model(images)
                loss = F.cross_entropy(logits.float(), labels,
                                       label_smoothing=cfg.train.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss.detach() * labels.numel()  # stays on the device: no sync per step
            correct += (logits.detach().argmax(1) == labels).sum()
            seen += labels.numel()
            bar.update(1)
        epoch_loss = float(loss_sum) / max(seen, 1)
        if not math.isfinite(epoch_loss):
            bar.close()
            raise TrainingError(
                f"{run.label()}: the loss became {epoch_loss} in epoch {epoch + 1}; "
                "lower train.lr"
            )
        train_seconds += time.perf_counter() - t_epoch
        train_images += seen
        if reid:
            history.append({"epoch": epoch + 1, "lr": lr, "loss": epoch_loss,
                            "train_acc": int(correct) / max(seen, 1),
                            "seconds": time.perf_counter() - t_epoch})
            bar.set_postfix_str(f"epoch {epoch + 1}/{epochs} loss {epoch_loss:.3f}")
            continue
        # Every epoch: source validation and each test domain, so that any selection rule
        # (last epoch, best source-val, test oracle) can be applied to the record afterwards.
        val_correct, val_total = count_correct(model, val_loader, device, amp_dtype, channels_last)
        val_acc = val_correct / max(val_total, 1)
        test, score = evaluate_tests(model, test_loaders, device, amp_dtype, channels_last)
        history.append({
            "epoch": epoch + 1, "lr": lr, "loss": epoch_loss,
            "train_acc": int(correct) / max(seen, 1), "val_acc": val_acc,
            "test_acc": {k: v["acc"] for k, v in test.items()}, "score": score,
            "seconds": time.perf_counter() - t_epoch,
        })
        bar.set_postfix_str(f"epoch {epoch + 1}/{epochs} loss {epoch_loss:.3f} val {100 * val_acc:.1f}")
    bar.close()
    if reid:  # the final model ranks each target split
        tests = {name: int(k) for name, (_, k) in split.test.items()}
        results = R.evaluate_reid(
            model, target, tests, lambda ds: eval_loader(ds, 2 * bs, **common), device,
            lambda: autocast(device, amp_dtype))
        mean, std = R.mean_std(results)
        test, score, val_acc = results, mean["mAP"], None
        test_sizes = {n: {"query": r["queries"], "gallery": r["gallery"]} for n, r in results.items()}
    else:
        test_sizes = {k: len(v) for k, v in test_sets.items()}

    wall = time.perf_counter() - t_start
    return {
        "schema": SCHEMA,
        "run_id": run.run_id,
        "experiment": cfg.experiment,
        "aug": name,
        "seed": seed,
        "split": {
            "name": split.name, "index": split.index, "sources": list(split.sources),
            "train": [list(p) for p in split.train], "val": [list(p) for p in split.val],
            "test": {k: list(v) for k, v in split.test.items()},
        },
        "sizes": {"train": len(train_set), "val": len(val_set), "test": test_sizes},
        "config": C.to_dict(cfg),
        "dataset": {"name": cfg.data.name, "classes": list(dataset.classes),
                    "titles": dict(dataset.titles), **dataset.describe()},
        "model": {
            "parameters": sum(p.numel() for p in model.parameters()),
            "augmenter_modules": placed,
            "shared_instance": cfg.aug.shared,
        },
        "history": history,
        # the last-epoch model: the published rule; other rules read "history"
        "final": {"val_acc": val_acc, "test": test, "score": score, "selection": "last epoch",
                  **({"mean": mean, "std": std} if reid else {})},
        "timing": {
            "wall_s": wall, "train_s": train_seconds,
            "images_per_s": train_images / train_seconds if train_seconds else None,
            "started": started.isoformat(timespec="seconds"),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
        "data_cache": str(cache.path) if cache is not None else None,
        "device": {"type": device.type,
                   "name": torch.cuda.get_device_name(device) if cuda else "cpu",
                   "amp": str(amp_dtype).removeprefix("torch.") if amp_dtype else None,
                   "channels_last": channels_last,
                   "cudnn_benchmark": False if cuda else None},
        "environment": environment(),
        "deviations": DEVIATIONS + (REID_DEVIATIONS if reid else [])
        + (CACHE_DEVIATIONS if cache is not None else []),
    }
