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

from dgbench.core.errors import DataError, one_line
from dgbench.store import claims
from dgbench.store.layout import CHECKPOINT, CONFIG, ERROR, HISTORY, is_done

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
            return FAILED, one_line(json.loads((run_dir / ERROR).read_text())["error"])
        except (OSError, ValueError, KeyError):
            return FAILED, f"{ERROR} cannot be read"
    if run_dir.exists():
        where = "from its checkpoint" if (run_dir / CHECKPOINT).exists() else "from the start"
        return STALE, f"no live process holds it; the next launch resumes it {where}"
    return NOT_STARTED, ""


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
    """Lines of the status of every experiment under ``results`` (``planned``: experiment ->
    the run ids a sweep or config plans, so that runs not started yet are counted too)."""
    root = Path(results)
    if not root.is_dir():
        raise DataError(f"{results} is not a folder; pass a results root such as results/")
    experiments = {p.parent.parent.name: p.parent.parent for p in root.glob(f"*/*/{CONFIG}")}
    for name in planned or {}:
        experiments.setdefault(name, root / name)
    if not experiments:
        raise DataError(f"no runs under {results} (and none planned)")
    now, lines = time.time(), []
    for name, folder in sorted(experiments.items()):
        ids = set((planned or {}).get(name, [])) | {p.name for p in folder.glob("*") if (p / CONFIG).exists()}
        states = {run_id: run_state(folder / run_id, now) for run_id in sorted(ids)}
        count = Counter(state for state, _ in states.values())
        lines.append(f"{name}: " + ", ".join(f"{count[s]} {s}" for s in STATES if count[s]))
        for run_id, (state, detail) in states.items():
            if state in (RUNNING, FAILED, STALE):
                label = _label(folder / run_id)
                lines.append(f"  {state:<8} {run_id}  {label}: {detail}")
    return lines


def _label(run_dir: Path) -> str:
    try:
        return json.loads((run_dir / CONFIG).read_text()).get("label", "?")
    except (OSError, ValueError):
        return "?"
