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
