"""What a results folder holds: ``<out>/<experiment>/<run_id>/`` per run, and in it

- ``config.json``: written when the run starts (its id, label, role and resolved config);
- ``claim.json``: while a process trains it (:mod:`dgbench.store.claims`);
- ``history.jsonl`` and ``metrics.csv``: a line / row at the end of every epoch;
- ``checkpoint.pt``: the state after the last finished epoch (removed when the run is done);
- ``model.pt``: the trained network's weights (a ``state_dict``), written when the run ends;
- ``error.json``: a run that failed on something the user can fix;
- ``record.json``: written when the run ends (:mod:`dgbench.store.records`);
- ``done``: an empty marker, last. A folder without it is an unfinished run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from dgbench.core.errors import DataError

CONFIG = "config.json"
CLAIM = "claim.json"
HISTORY = "history.jsonl"
METRICS = "metrics.csv"
TENSORBOARD = "tensorboard"
CHECKPOINT = "checkpoint.pt"
WEIGHTS = "model.pt"  # the trained network's state_dict (kept unless --drop-weights)
ERROR = "error.json"
RECORD = "record.json"
DONE = "done"


def is_done(run_dir: Path) -> bool:
    return (run_dir / DONE).exists() and (run_dir / RECORD).exists()


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


#: what a results command accepts, said in every message about a folder it cannot use
FOLDERS = ("pass a results root (e.g. results) or one experiment's folder (e.g. "
           "results/digits-lodo)")


def _holds_runs(folder: Path) -> bool:
    """Does ``folder`` hold run folders (``<run_id>/config.json``)?"""
    try:
        return any((p / CONFIG).is_file() for p in folder.iterdir() if p.is_dir())
    except OSError:
        return False


def experiment_folders(path: str | Path, empty_ok: bool = False) -> list[Path]:
    """The experiment folders ``path`` names, for every results command alike: ``[path]``
    when it is an experiment's folder (it holds run folders), else its sub-folders that are,
    sorted (a results root). A missing path, a file, a run's own folder and (unless
    ``empty_ok``) a folder without any run are a :class:`DataError` saying what to pass."""
    root = Path(path)
    if not root.is_dir():
        why = "it is a file" if root.exists() else "it does not exist"
        raise DataError(f"{path} is not a results folder: {why}; {FOLDERS}")
    if (root / CONFIG).is_file():
        raise DataError(f"{path} is one run's folder; pass its experiment's folder "
                        f"{root.parent} (or the results root above it)")
    if _holds_runs(root):
        return [root]
    try:
        found = sorted(p for p in root.iterdir() if p.is_dir() and _holds_runs(p))
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc.strerror}); {FOLDERS}") from None
    if not found and not empty_ok:
        raise DataError(f"no run records under {path}: no experiment folder in it and no run "
                        f"folder; {FOLDERS}, where 'dgbench run ... --out DIR' wrote them")
    return found
