"""The state of a run, in one vocabulary for every command: ``done``, ``running`` (a live
process holds its claim: its progress and an ETA from the heartbeat), ``failed`` (its
``error.json``: the next launch retries it), ``stale`` (started, but no live process holds
it: the next launch resumes it) or ``not started``. ``--dry-run``, ``dgbench sweep``'s counts,
the launchers' statuses and ``dgbench status RESULTS`` all say these words."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from dgbench.core.errors import one_line
from dgbench.store import claims
from dgbench.store.layout import CHECKPOINT, CONFIG, ERROR, HISTORY, experiment_folders, is_done

DONE, RUNNING, FAILED, STALE, NOT_STARTED = STATES = (
    "done", "running", "failed", "stale", "not started")


def run_state(run_dir: Path, now: float | None = None) -> tuple[str, str]:
    """(state, detail) of one run folder."""
    now = time.time() if now is None else now
    if is_done(run_dir):
        return DONE, ""
    held = claims.read(run_dir)
    if held is not None and not claims.stale(held, now=now):
        return RUNNING, _progress(run_dir, held, now)
    if (run_dir / ERROR).exists():
        try:
            error = json.loads((run_dir / ERROR).read_text())
            return FAILED, without_label(one_line(error["error"]), error.get("label"))
        except (OSError, ValueError, KeyError, TypeError):
            return FAILED, f"{ERROR} cannot be read"
    if run_dir.exists():
        where = "from its checkpoint" if (run_dir / CHECKPOINT).exists() else "from the start"
        return STALE, f"no live process holds it; the next launch resumes it {where}"
    return NOT_STARTED, ""


def without_label(error: str, label: str | None) -> str:
    """``error`` without the run's label in front: a run's error message often starts with
    ``"<label>: "``, and every line that shows it names the run already."""
    prefix = f"{label}: " if label else ""
    return error[len(prefix):] if prefix and error.startswith(prefix) else error


def failure_line(error: dict[str, Any]) -> str:
    """``"<label>: <why>"`` of a failed run's ``error.json``, the label said once."""
    label = error.get("label") or error.get("run_id") or "?"
    why = without_label(one_line(str(error.get("error") or "")), label)
    return f"{label}: {why}" if why else f"{label}: no reason recorded"


def _progress(run_dir: Path, held: dict[str, Any], now: float) -> str:
    try:
        epochs = json.loads((run_dir / CONFIG).read_text())["config"]["train"]["epochs"]
        done = len((run_dir / HISTORY).read_text().splitlines())
    except (OSError, ValueError, KeyError):
        return f"on {held.get('host')}:{held.get('pid')}"
    elapsed = now - float(held.get("started", now))
    eta = f", about {_duration(elapsed / done * (epochs - done))} left" if done else ""
    return f"epoch {done}/{epochs} on {held.get('host')}:{held.get('pid')}{eta}"


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def status_lines(results: str | Path, planned: dict[str, list[str]] | None = None) -> list[str]:
    """Lines of the status of every experiment ``results`` names: a results root or one
    experiment's folder (:func:`dgbench.store.layout.experiment_folders`); ``planned``:
    experiment -> the run ids a sweep or config plans, so that runs not started yet are
    counted too (for an experiment's folder, only its own)."""
    root = Path(results)
    folders = experiment_folders(root, empty_ok=bool(planned))
    experiments = {f.name: f for f in folders}
    if folders == [root]:  # one experiment's folder: its own planned runs only
        planned = {k: v for k, v in (planned or {}).items() if k == root.name}
        root = root.parent
    for name in planned or {}:
        experiments.setdefault(name, root / name)
    now, lines = time.time(), []
    for name, folder in sorted(experiments.items()):
        ids = set((planned or {}).get(name, [])) | {p.name for p in folder.glob("*") if (p / CONFIG).exists()}
        states = {run_id: run_state(folder / run_id, now) for run_id in sorted(ids)}
        count = Counter(state for state, _ in states.values())
        lines.append(f"{name}: " + ", ".join(f"{count[s]} {s}" for s in STATES if count[s]))
        for run_id, (state, detail) in states.items():
            if state in (RUNNING, FAILED, STALE):
                label = _label(folder / run_id)
                lines.append(f"  {state:<8} {run_id}  {label}: {without_label(detail, label)}")
    return lines


def _label(run_dir: Path) -> str:
    try:
        return json.loads((run_dir / CONFIG).read_text()).get("label", "?")
    except (OSError, ValueError):
        return "?"
