"""Run a plan: skip finished runs, train the rest, write each record atomically.

A run that fails on something the user can fix (a diverged loss, an unreadable image) leaves
an ``error.json`` in its folder, so that tables list it as failed, never as a number; with
``--force`` a finished run keeps its record until the new one is complete.
"""

from __future__ import annotations

import json
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dgbench import config as C
from dgbench.core.device import resolve_device
from dgbench.core.errors import DGBenchError, RunInterrupted, explain_os_error, one_line
from dgbench.core.files import atomic_write_json
from dgbench.data import imagecache
from dgbench.data.base import scan_images, subsample_indices
from dgbench.plan.planner import Plan
from dgbench.run.history import HistoryLog
from dgbench.run.loop import train_run
from dgbench.store import claims
from dgbench.store.layout import (CHECKPOINT, CONFIG, DONE, ERROR, HISTORY, RECORD,
                                  check_results_folder, is_done)
from dgbench.store.states import FAILED, run_state


def summary(plan: Plan) -> str:
    augs = list(dict.fromkeys(r.aug for r in plan.runs))
    splits = list(dict.fromkeys(r.split.name for r in plan.runs))
    seeds = list(dict.fromkeys(r.seed for r in plan.runs))
    holdout = plan.runs[0].split.holdout  # DomainBed's protocol: trials x hparams draws
    draws = list(dict.fromkeys(r.config.protocol.hparams_seeds[0] for r in plan.runs))
    return (
        f"experiment {plan.experiment}: {len(plan.runs)} runs = {len(augs)} augmenter(s) "
        f"[{', '.join(augs)}] x {len(splits)} split(s) [{', '.join(splits)}] x {len(seeds)} "
        f"{'trial' if holdout else 'seed'}(s) [{', '.join(map(str, seeds))}]"
        + (f" x {len(draws)} hparams seed(s) [{_span(draws)}]" if holdout else "")
        + f" | {plan.config.data.name}, "
        f"{plan.protocol.__class__.__name__}, {plan.runs[0].config.model.backbone}, "
        f"{where(plan)}"
    )


def _span(values: list[int]) -> str:
    """0, 1, ..., 19 as ``0-19``; other lists as they are."""
    if len(values) > 3 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return ", ".join(map(str, values))


def where(plan: Plan) -> str:
    """The device the plan's runs train on: resolved here, or where they are sent."""
    asked = plan.runs[0].config.device
    if plan.device is not None:
        return plan.device if asked in ("auto", plan.device) else f"{plan.device} ({asked})"
    return f"device {asked}, resolved where each run trains"


def dry_run(plan: Plan, out: str | Path) -> list[str]:
    """One line per run: its id, label and state (:mod:`dgbench.store.states`)."""
    exp_dir = Path(out) / plan.experiment
    return [f"  {run.run_id}  {run.label():<40} {run_state(exp_dir / run.run_id)[0]}"
            for run in plan.runs]


def outcome(plan: Plan, record: dict[str, Any]) -> str:
    """One line: what a finished run scored, and how fast it trained."""
    timing = record["timing"]
    speed = timing.get("images_per_s")
    rate = f", {speed:.0f} img/s" if speed else ""
    resumed = timing.get("resumed_after_epoch")
    rate += f", resumed after epoch {resumed}" if resumed else ""
    return f"{plan.task.outcome(record)}  ({timing['wall_s']:.0f} s{rate})"


def prepare_images(plan: Plan, progress: bool = True) -> Any:
    """Before any run folder is written: the decoded-image cache the plan's runs read (built
    or checked once; unreadable files found there), or None where it is not used. Without a
    cache every image file's header is read (empty and non-image files are found now; a
    truncated one when first decoded), or with ``data.bad_images=skip`` every file is decoded
    once, and the unreadable ones are left out."""
    data = plan.config.data
    if data.cache and plan.dataset.supports_cache:
        return imagecache.open_for(plan.dataset, data.name, data.image_size, progress,
                                   bad_images=data.bad_images, only=files_read(plan))
    for dataset in filter(None, (plan.dataset, plan.target)):
        files = dataset.image_files()
        bad = scan_images(*files, progress=progress, decode=data.bad_images == "skip") \
            if files else {}
        if bad:
            dataset.leave_out(bad, data.bad_images)
    return None


def files_read(plan: Plan) -> list[str] | None:
    """The image files a subsampled plan's runs read (each part subsampled as the task does);
    None: all of the dataset's (no ``data.subsample``, or a dataset that cannot say)."""
    limit, wanted = plan.config.data.subsample, set()
    if limit is None:
        return None
    for run in plan.runs:
        split = run.split
        for domain, part in (*split.train, *split.val, *split.test.values()):
            files = plan.dataset.part_files(domain, part)
            if files is None:
                return None
            keep = subsample_indices(len(files), limit)
            wanted.update(files if keep is None else (files[i] for i in keep))
    return sorted(wanted)


def fetch_weights(plan: Plan, runs: list[Any]) -> None:
    """The pretrained weights ``runs`` start from, found or downloaded and checked now:
    before the image cache is built, so that a missing file fails in seconds."""
    seen = set()
    for run in runs:
        m = run.config.model
        key = (m.backbone, m.stem, m.width, m.weights)
        if not m.pretrained or key in seen:
            continue
        seen.add(key)
        with warnings.catch_warnings():  # said again when the run builds its network
            warnings.simplefilter("ignore")
            plan.task.build_model(run.config, plan.task.num_outputs(plan.dataset, run.split))


@dataclass
class Executed:
    """What :func:`execute` did: the records of the plan's finished runs (trained now or
    before), the runs that failed (with their error), and those another process holds."""

    records: list[dict[str, Any]] = field(default_factory=list)
    failed: list[tuple[Any, BaseException]] = field(default_factory=list)
    elsewhere: list[Any] = field(default_factory=list)

    def raise_failures(self) -> None:
        """A failed run fails the command, after every other run was given its chance."""
        if not self.failed:
            return
        run, exc = self.failed[0]
        text = explain_os_error(exc) if isinstance(exc, OSError) else str(exc)
        first = text if text.startswith(run.label()) else f"{run.label()}: {text}"
        if not isinstance(exc, (DGBenchError, OSError)):
            first += f" (an internal error: its traceback is in {ERROR})"
        if len(self.failed) == 1:
            raise DGBenchError(first)
        raise DGBenchError(f"{len(self.failed)} runs failed (each folder's {ERROR} says why); "
                           f"the first: {first}")


def execute(plan: Plan, out: str | Path, force: bool = False, progress: bool = True,
            log: Callable[[str], None] = print, keep_checkpoints: bool = False,
            claim_timeout: float = claims.TIMEOUT_S, tensorboard: bool = False,
            keep_weights: bool = True) -> Executed:
    """Train every run of ``plan`` that is neither finished nor held by another process
    (claims); a run that fails is marked so and the others go on. Interrupted (Ctrl-C), the
    run says what its checkpoint keeps, and the interrupt goes on up."""
    exp_dir = Path(out) / plan.experiment
    check_results_folder(exp_dir)
    # the weights, then the images: before any run folder is written
    fetch_weights(plan, [r for r in plan.runs if force or not is_done(exp_dir / r.run_id)])
    cache = prepare_images(plan, progress)
    done = Executed()
    for i, run in enumerate(plan.runs, 1):
        run_dir, head = exp_dir / run.run_id, f"[{i}/{len(plan.runs)}] {run.label()}"
        if is_done(run_dir) and not force:
            log(f"{head}: finished before, skipped ({run_dir}; --force redoes it)")
            done.records.append(json.loads((run_dir / RECORD).read_text()))
            continue
        claim = claims.acquire(run_dir, claim_timeout)
        if claim is None:
            held = claims.read(run_dir) or {}
            log(f"{head}: being trained by {held.get('host', '?')}:{held.get('pid', '?')}, skipped")
            done.elsewhere.append(run)
            continue
        try:
            claim.start_heartbeat()
            record = _train(plan, run, run_dir, cache, progress, keep_checkpoints, redo=force,
                            tensorboard=tensorboard, keep_weights=keep_weights,
                            say=lambda text, head=head: log(f"{head}: {text}"))
            log(f"{head}: {outcome(plan, record)}")
            done.records.append(record)
        except RunInterrupted as exc:
            log(f"{head}: interrupted {exc}")
            raise
        except Exception as exc:  # marked failed in its folder; the other runs go on
            log(f"{head}: {FAILED}: {one_line(explain_os_error(exc) if isinstance(exc, OSError) else str(exc))}")
            done.failed.append((run, exc))
        finally:
            claim.release()
    return done


def _train(plan: Plan, run: Any, run_dir: Path, cache: Any, progress: bool,
           keep_checkpoint: bool = False, redo: bool = False, tensorboard: bool = False,
           keep_weights: bool = True, say: Callable[[str], None] | None = None
           ) -> dict[str, Any]:
    """One run into ``run_dir``, resumed from its checkpoint when it has one. A finished run
    being redone (``--force``) starts afresh but keeps its record and history until the new
    ones are complete."""
    redo = redo and is_done(run_dir)
    for stale in [run_dir / CHECKPOINT] * redo + list(run_dir.glob(f".{CHECKPOINT}.*.tmp")):
        stale.unlink(missing_ok=True)  # a forced rerun's old checkpoint; a killed write's part
    atomic_write_json(run_dir / CONFIG, {"run_id": run.run_id, "label": run.label(),
                                         "role": run.split.role,
                                         "device": resolve_device(run.config.device),
                                         "config": C.to_dict(run.config)})
    (run_dir / ERROR).unlink(missing_ok=True)
    history = HistoryLog(run_dir, HISTORY + ".new" if redo else HISTORY, tensorboard)
    try:
        record = train_run(run, plan.dataset, progress=progress, target=plan.target,
                           run_dir=run_dir, image_cache=cache, history=history, say=say,
                           save_weights=keep_weights)
    except Exception as exc:  # failed, and marked so: tables count it as failed
        atomic_write_json(run_dir / ERROR, {"run_id": run.run_id, "label": run.label(),
                                            "error": str(exc), "type": type(exc).__name__,
                                            "traceback": traceback.format_exc()})
        raise
    finally:
        history.close()
    atomic_write_json(run_dir / RECORD, record)
    if redo:
        (run_dir / history.name).replace(run_dir / HISTORY)
    (run_dir / DONE).touch()  # last: only now is the run finished
    if not keep_checkpoint:
        (run_dir / CHECKPOINT).unlink(missing_ok=True)
    return record
