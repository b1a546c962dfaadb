"""Run a plan: skip finished runs, train the rest, write each record atomically."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

from dgbench import config as C
from dgbench.plan import Plan
from dgbench.records import CONFIG, DONE, RECORD, atomic_write_json, is_done, state


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
    """One line per run: its id, label and state (done / unfinished / to run)."""
    exp_dir = Path(out) / plan.experiment
    return [f"  {run.run_id}  {run.label():<40} {state(exp_dir / run.run_id)}"
            for run in plan.runs]


def outcome(plan: Plan, record: dict[str, Any]) -> str:
    """One line: what a finished run scored, and how fast it trained."""
    timing = record["timing"]
    speed = timing.get("images_per_s")
    rate = f", {speed:.0f} img/s" if speed else ""
    return f"{plan.task.outcome(record)}  ({timing['wall_s']:.0f} s{rate})"


def execute(
    plan: Plan,
    out: str | Path,
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Train every run of ``plan`` that is not finished yet; return all the plan's records."""
    from dgbench.train import train_run

    exp_dir = Path(out) / plan.experiment
    total = len(plan.runs)
    records = []
    for i, run in enumerate(plan.runs, 1):
        run_dir = exp_dir / run.run_id
        head = f"[{i}/{total}] {run.label()}"
        if is_done(run_dir) and not force:
            log(f"{head}: finished before, skipped ({run_dir}; --force redoes it)")
            records.append(json.loads((run_dir / RECORD).read_text()))
            continue
        if run_dir.exists():  # unfinished, or forced: start from a clean folder
            shutil.rmtree(run_dir)
        atomic_write_json(
            run_dir / CONFIG,
            {"run_id": run.run_id, "label": run.label(), "config": C.to_dict(run.config)},
        )
        record = train_run(run, plan.dataset, progress=progress, target=plan.target,
                           run_dir=run_dir)
        atomic_write_json(run_dir / RECORD, record)
        (run_dir / DONE).touch()  # last: only now is the run finished
        log(f"{head}: {outcome(plan, record)}")
        records.append(record)
    return records
