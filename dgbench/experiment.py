"""Run a plan: skip finished runs, train the rest, write each record atomically.

A run that fails on something the user can fix (a diverged loss, an unreadable image) leaves
an ``error.json`` in its folder, so that tables list it as failed, never as a number; with
``--force`` a finished run keeps its record until the new one is complete.
"""

from __future__ import annotations

import json
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable

from dgbench import config as C
from dgbench.checkpoint import CHECKPOINT
from dgbench.errors import DataError
from dgbench.plan import Plan
from dgbench.records import (CONFIG, DONE, ERROR, HISTORY, RECORD, atomic_write_json, is_done,
                             state)


def summary(plan: Plan) -> str:
    augs = list(dict.fromkeys(r.aug for r in plan.runs))
    splits = list(dict.fromkeys(r.split.name for r in plan.runs))
    seeds = list(dict.fromkeys(r.seed for r in plan.runs))
    return (
        f"experiment {plan.experiment}: {len(plan.runs)} runs = {len(augs)} augmenter(s) "
        f"[{', '.join(augs)}] x {len(splits)} split(s) [{', '.join(splits)}] x {len(seeds)} "
        f"seed(s) [{', '.join(map(str, seeds))}] | {plan.config.data.name}, "
        f"{plan.protocol.__class__.__name__}, {plan.runs[0].config.model.backbone}, "
        f"{plan.runs[0].config.device}"
    )


def dry_run(plan: Plan, out: str | Path) -> list[str]:
    """One line per run: its id, label and state (done / failed / unfinished / to run)."""
    exp_dir = Path(out) / plan.experiment
    return [f"  {run.run_id}  {run.label():<40} {state(exp_dir / run.run_id)}"
            for run in plan.runs]


def outcome(plan: Plan, record: dict[str, Any]) -> str:
    """One line: what a finished run scored, and how fast it trained."""
    timing = record["timing"]
    speed = timing.get("images_per_s")
    rate = f", {speed:.0f} img/s" if speed else ""
    return f"{plan.task.outcome(record)}  ({timing['wall_s']:.0f} s{rate})"


def check_results_folder(folder: Path) -> None:
    """Say why ``folder`` cannot hold results, if it cannot (without creating anything): a
    file in its place or above it, or a first existing folder that cannot be written to."""
    for parent in [folder, *folder.parents]:
        if parent.exists() and not parent.is_dir():
            where = "is a file" if parent == folder else f"lies under {parent}, which is a file"
            raise DataError(f"results folder {folder} {where}; pick another --out")
        if parent.exists():
            try:
                with tempfile.TemporaryFile(dir=parent):
                    return
            except OSError as exc:
                raise DataError(f"results folder {folder} cannot be written to ({parent}: "
                                f"{exc.strerror}); pick another --out or fix its permissions") from None


def prepare_images(plan: Plan, progress: bool = True) -> Any:
    """Before any run folder is written: the decoded-image cache the plan's runs read (built
    or checked once; unreadable files found there), or None where it is not used. Without a
    cache every image file's header is read (empty and non-image files are found now; a
    truncated one when first decoded), or with ``data.bad_images=skip`` every file is decoded
    once, and the unreadable ones are left out."""
    data = plan.config.data
    if data.cache and plan.dataset.supports_cache:
        from dgbench import imagecache

        return imagecache.open_for(plan.dataset, data.name, data.image_size, progress,
                                   bad_images=data.bad_images)
    from dgbench.data import scan_images

    for dataset in filter(None, (plan.dataset, plan.target)):
        files = dataset.image_files()
        bad = scan_images(*files, progress=progress, decode=data.bad_images == "skip") \
            if files else {}
        if bad:
            dataset.leave_out(bad, data.bad_images)
    return None


def execute(
    plan: Plan,
    out: str | Path,
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Train every run of ``plan`` that is not finished yet; return all the plan's records."""
    exp_dir = Path(out) / plan.experiment
    check_results_folder(exp_dir)
    cache = prepare_images(plan, progress)  # before any run folder is written
    total = len(plan.runs)
    records = []
    for i, run in enumerate(plan.runs, 1):
        run_dir = exp_dir / run.run_id
        head = f"[{i}/{total}] {run.label()}"
        if is_done(run_dir) and not force:
            log(f"{head}: finished before, skipped ({run_dir}; --force redoes it)")
            records.append(json.loads((run_dir / RECORD).read_text()))
            continue
        record = _train(plan, run, run_dir, cache, progress)
        log(f"{head}: {outcome(plan, record)}")
        records.append(record)
    return records


def _train(plan: Plan, run: Any, run_dir: Path, cache: Any, progress: bool,
           keep_checkpoint: bool = False) -> dict[str, Any]:
    """One run into ``run_dir``, resumed from its checkpoint when it has one. A finished run
    being redone (``--force``) starts afresh but keeps its record and history until the new
    ones are complete."""
    from dgbench.train import train_run

    redo = is_done(run_dir)
    for stale in [run_dir / CHECKPOINT] * redo + list(run_dir.glob(f".{CHECKPOINT}.*.tmp")):
        stale.unlink(missing_ok=True)  # a forced rerun's old checkpoint; a killed write's part
    atomic_write_json(run_dir / CONFIG, {"run_id": run.run_id, "label": run.label(),
                                         "role": run.split.role,
                                         "config": C.to_dict(run.config)})
    (run_dir / ERROR).unlink(missing_ok=True)
    history = HISTORY + ".new" if redo else HISTORY
    try:
        record = train_run(run, plan.dataset, progress=progress, target=plan.target,
                           run_dir=run_dir, image_cache=cache, history_name=history)
    except Exception as exc:  # failed, and marked so: tables count it as failed
        atomic_write_json(run_dir / ERROR, {"run_id": run.run_id, "label": run.label(),
                                            "error": str(exc), "type": type(exc).__name__,
                                            "traceback": traceback.format_exc()})
        raise
    atomic_write_json(run_dir / RECORD, record)
    if redo:
        (run_dir / history).replace(run_dir / HISTORY)
    (run_dir / DONE).touch()  # last: only now is the run finished
    if not keep_checkpoint:
        (run_dir / CHECKPOINT).unlink(missing_ok=True)
    return record
