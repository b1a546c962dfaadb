"""One training run, as one flat loop that reads top to bottom (after nanoGPT's train.py).

Extend it through augmenters, datasets, tasks and config, not by subclassing: the task
(:mod:`dgbench.tasks`) hands the loop its data and model and evaluates; the loop trains.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from dgbench import config as C
from dgbench.augmenters import AUGMENTERS
from dgbench.augmenters._sorting import release_scratch
from dgbench.core.device import Env
from dgbench.core.errors import RunInterrupted, TrainingError
from dgbench.core.files import atomic_write
from dgbench.data import imagecache
from dgbench.data.base import DomainDataset
from dgbench.data.loaders import (ReadyBatches, eval_loader, loader_options, step_loader,
                                  train_loader)
from dgbench.data.samplers import evaluation_steps
from dgbench.models.backbones import add_dropout, set_train_mode
from dgbench.models.insertion import insert_augmenters
from dgbench.plan.domainbed import get_recipe
from dgbench.plan.runs import Run
from dgbench.run.checkpoint import Checkpoint
from dgbench.run.history import HistoryLog
from dgbench.run.record import build_record
from dgbench.store.layout import WEIGHTS
from dgbench.store.records import Record
from dgbench.tasks._base import RunData, get_task


@dataclass
class Setup:
    """What a run trains with, built in a fixed order from its seed (:func:`prepare`)."""

    env: Env
    data: RunData
    loader: Any  # the training DataLoader (its sampler is checkpointed)
    batches: ReadyBatches
    augment: Any  # the image cache's batch augmentation, or None
    cache: Any
    model: torch.nn.Module
    placed: Any
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler


def prepare(run: Run, dataset: DomainDataset, target: DomainDataset | None = None,
            image_cache: Any = None, progress: bool = True) -> Setup:
    """Seed everything, then the data (the task's parts, the loader handing over ready
    tensors) and the model (the task's network, the augmenter at the named points) with its
    optimizer: the training loop's and the benchmarks' one way to build a run."""
    cfg, seed, task = run.config, run.train_seed, get_task(dataset.task)
    seed_everything(seed)
    env = Env.from_config(cfg)
    if env.cuda:
        torch.backends.cudnn.benchmark = False  # the reference harness forces it on
    cache = augment = None
    if cfg.data.cache and dataset.supports_cache:  # decoded once, augmented per batch
        cache = image_cache or imagecache.open_for(dataset, cfg.data.name, cfg.data.image_size,
                                                   progress, bad_images=cfg.data.bad_images)
        augment = imagecache.BatchAugment(env.device, seed, dataset.mean, dataset.std)
    options, bs = loader_options(cfg.data.num_workers, env.cuda), cfg.data.batch_size
    data = task.data(cfg, run.split, dataset, target, cache,
                     lambda ds: eval_loader(ds, 2 * bs, **options))
    if cfg.train.steps:  # DomainBed's: a batch of each source per step, rounds between evaluations
        loader = step_loader(data.train, bs, seed, evaluation_at(cfg), **options)
    else:
        loader = train_loader(data.train, bs, cfg.train.sampler == "domain", seed,
                              cfg.train.domain_epoch, **options)
    batches = ReadyBatches(loader, env.images, env.device, augment)

    model = task.build_model(cfg, data.num_outputs)
    add_dropout(model, cfg.model.dropout)
    aug_cls = AUGMENTERS.get(run.aug)
    placed = insert_augmenters(model, cfg.aug.insert, lambda: aug_cls(**cfg.aug.args), run.aug,
                               shared=cfg.aug.shared)
    model.to(env.device)
    if env.channels_last:
        model.to(memory_format=torch.channels_last)
    t = cfg.train
    groups = parameter_groups(model, t.backbone_lr_mult)
    if t.optimizer == "adam":  # torch's defaults otherwise, as DomainBed's ERM
        optimizer: torch.optim.Optimizer = torch.optim.Adam(groups, lr=t.lr,
                                                            weight_decay=t.weight_decay)
    else:
        optimizer = torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum,
                                    weight_decay=t.weight_decay, nesterov=t.nesterov)
    scaler = torch.amp.GradScaler(env.device.type, enabled=env.amp_dtype == torch.float16)
    return Setup(env, data, loader, batches, augment, cache, model, placed, optimizer, scaler)


def evaluation_at(cfg: C.Config) -> list[int]:
    """Step-based training: the steps after which the run is evaluated (DomainBed's)."""
    last = get_recipe(cfg.protocol.recipe).evaluate_last_step
    return evaluation_steps(cfg.train.steps, cfg.train.checkpoint_freq or cfg.train.steps, last)


def train_run(run: Run, dataset: DomainDataset, progress: bool = True,
              target: DomainDataset | None = None, run_dir: Path | None = None,
              image_cache: Any = None, history: HistoryLog | None = None,
              say: Callable[[str], None] | None = None, save_weights: bool = False) -> Record:
    """Train and evaluate one run; return its record (not yet written). ``target``: the
    dataset tested on, for cross-dataset protocols; ``run_dir``: where the checkpoint of
    every epoch is kept (a run with a checkpoint there resumes from it, and says so through
    ``say``); ``image_cache``: the decoded-image cache, if the caller opened it; ``history``:
    where each epoch's row is written as it is measured; ``save_weights``: keep the trained
    network's weights in ``run_dir`` (:data:`~dgbench.store.layout.WEIGHTS`). Interrupted (Ctrl-C), it raises
    :class:`RunInterrupted` saying what its checkpoint holds."""
    cfg, task = run.config, get_task(dataset.task)
    started, t_start = datetime.now(timezone.utc), time.perf_counter()
    s = prepare(run, dataset, target, image_cache, progress)
    model, optimizer, scaler, batches, env, data = (s.model, s.optimizer, s.scaler, s.batches,
                                                    s.env, s.data)
    t = cfg.train
    forward = torch.compile(model) if t.compile else model  # train.compile: the training pass

    # ---- the loop: from the last checkpoint, if the run was interrupted --------------------
    checkpoint = Checkpoint(run_dir, model, optimizer, scaler, s.loader, s.augment and s.augment.gen)
    done = checkpoint.restore() or {"epoch": 0, "history": [], "counters": [0, 0.0]}
    log = history or HistoryLog()
    log.start(done["history"])
    (train_images, train_seconds), start = done["counters"], done["epoch"]
    at = evaluation_at(cfg) if t.steps else None  # step-based: one round per evaluation
    rounds = len(at) if at else t.epochs
    if start and say is not None:
        say(f"resuming from its checkpoint after {_progress(at, start, rounds)} "
            f"({checkpoint.path})")
    total, initial = ((at[-1] + 1, at[start - 1] + 1 if start else 0) if at
                      else (t.epochs * len(batches), start * len(batches)))
    bar = tqdm(total=total, initial=initial, desc=run.label(),
               unit="step", leave=False, disable=None if progress else True,
               dynamic_ncols=True)  # disable None: on a terminal only
    with _interruptible(checkpoint, at, rounds, bar):
        for epoch in range(start, rounds):
            lr = set_lr(optimizer, t, epoch)
            t_epoch = time.perf_counter()
            if at:
                s.loader.batch_sampler.set_round(epoch)
            loss, train_acc, seen, steps, bad_step = train_epoch(
                forward, batches, optimizer, scaler, env, t.label_smoothing, bar,
                cfg.model.freeze_bn)
            if bad_step >= 0:
                bar.close()
                raise diverged(run, epoch, bad_step, lr)
            train_seconds += time.perf_counter() - t_epoch
            train_images += seen
            row = {"epoch": epoch + 1, **({"step": at[epoch]} if at else {}), "lr": lr,
                   "loss": loss, "train_acc": train_acc, "batches": steps,
                   **task.evaluate_epoch(model, data, env)}  # (reid: nothing)
            row["seconds"] = time.perf_counter() - t_epoch
            log.append(row)
            checkpoint.save(epoch + 1, log.rows, [train_images, train_seconds])
            bar.set_postfix_str(f"{_progress(at, epoch + 1, rounds)} loss {loss:.3f}" + (
                f" val {100 * row['val_acc']:.1f}" if "val_acc" in row else ""))
    bar.close()
    release_scratch()  # the augmenters' kept buffers: the next run may use other shapes
    final = task.final(model, data, env)  # the last-epoch model: the published rule
    timing = {"wall_s": time.perf_counter() - t_start, "train_s": train_seconds,
              "images_per_s": train_images / train_seconds if train_seconds else None,
              "started": started.isoformat(timespec="seconds"),
              "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "resumed_after_epoch": start or None}
    record = build_record(run, task, dataset, data.sizes, model, s.placed, log.rows, final,
                          timing, env.describe(), s.cache, used=env.effective(cfg))
    if run_dir is not None and save_weights:  # the trained network, on the CPU
        weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        atomic_write(run_dir / WEIGHTS, lambda f: torch.save(weights, f))
        record["model"]["final_weights"] = WEIGHTS
    return record


@contextlib.contextmanager
def _interruptible(checkpoint: Checkpoint, at: list[int] | None, rounds: int,
                   bar: Any) -> Iterator[None]:
    """Ctrl-C in the loop becomes :class:`RunInterrupted`, saying what the checkpoint keeps."""
    try:
        yield
    except KeyboardInterrupt:
        bar.close()
        if checkpoint.path is None:
            raise
        if checkpoint.epoch:
            kept = (f"its checkpoint after {_progress(at, checkpoint.epoch, rounds)} is kept in "
                    f"{checkpoint.path}; rerun the same command to resume from it")
        else:
            kept = (f"in its first {'evaluation interval' if at else 'epoch'}, before any "
                    "checkpoint; a rerun starts it afresh")
        raise RunInterrupted(kept) from None


def _progress(at: list[int] | None, done: int, rounds: int) -> str:
    """Where a run stands after ``done`` epochs (or, step-based, evaluations)."""
    if at:
        return f"step {at[done - 1] + 1} of {at[-1] + 1}"
    return f"epoch {done} of {rounds}"


def train_epoch(model: torch.nn.Module, batches: ReadyBatches, optimizer: torch.optim.Optimizer,
                scaler: torch.amp.GradScaler, env: Env, label_smoothing: float,
                bar: Any, freeze_bn: bool = False) -> tuple[float, float, int, int, int]:
    """One pass over ``batches``: (mean loss, training accuracy, images seen, steps, the
    first step whose loss was not finite or -1). Nothing here waits for the device.
    ``freeze_bn``: BatchNorm layers in eval mode (DomainBed 2020)."""
    set_train_mode(model, freeze_bn)
    loss_sum = torch.zeros((), device=env.device)
    correct = torch.zeros((), dtype=torch.long, device=env.device)
    first_bad = torch.full((), -1, dtype=torch.long, device=env.device)
    seen = steps = 0
    for images, labels in batches:
        with env.autocast():
            logits = model(images)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        loss_sum += loss.detach() * labels.numel()  # stays on the device: no sync per step
        correct += (logits.detach().argmax(1) == labels).sum()
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss.detach()), steps, first_bad)
        seen += labels.numel()
        steps += 1
        bar.update(1)
    return (float(loss_sum) / max(seen, 1), int(correct) / max(seen, 1), seen, steps,
            int(first_bad))


def diverged(run: Run, epoch: int, step: int, lr: float) -> TrainingError:
    """The error for a non-finite training loss, with what usually causes one."""
    args = ", ".join(f"{k}={v}" for k, v in run.config.aug.args.items()) or "none"
    return TrainingError(
        f"{run.label()}: the training loss was not finite first at step {step + 1} of epoch "
        f"{epoch + 1} (lr {lr:g}); the run is marked failed. Likely causes: a learning rate "
        f"too high for this model and batch (train.lr={run.config.train.lr:g}), an augmenter "
        f"setting that breaks the features ({run.aug}: {args}), or input data with non-finite "
        "values; try a lower train.lr first")


def seed_everything(seed: int) -> None:
    """Seed every random source the run uses: Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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


def set_lr(optimizer: torch.optim.Optimizer, t: C.TrainConfig, epoch: int) -> float:
    """Set every parameter group's rate for ``epoch`` (times its ``lr_mult``); the base rate."""
    lr = epoch_lr(t, epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_mult"]
    return lr


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
