"""A run's per-epoch history, written as it is measured, so that a crash keeps what was measured
and long runs can be watched: ``history.jsonl`` (what the record holds), ``metrics.csv`` (one
flat row per epoch, for a spreadsheet or ``tail -f``), and TensorBoard event files when asked
(``--log tensorboard``; the optional ``tensorboard`` package)."""

from __future__ import annotations

import csv
import json
import shutil
import importlib.util
from pathlib import Path
from typing import Any

from dgbench.core.errors import ConfigError
from dgbench.core.keys import flatten
from dgbench.store.layout import HISTORY, METRICS, TENSORBOARD



def check_tensorboard() -> None:
    """Refuse ``--log tensorboard`` up front when its package is missing."""
    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("--log tensorboard needs the tensorboard package: "
                          "pip install 'dgbench[tensorboard]'")


class HistoryLog:
    """The rows of one run, appended to its files when a run folder is given."""

    def __init__(self, run_dir: Path | None = None, name: str = HISTORY,
                 tensorboard: bool = False) -> None:
        self.rows: list[dict[str, Any]] = []
        self.run_dir, self.name, self.tensorboard = run_dir, name, tensorboard
        self._writer: Any = None

    def start(self, rows: list[dict[str, Any]]) -> None:
        """Begin (or, for a resumed run, begin again) from ``rows``: the files are rewritten
        with them, so that nothing measured after the checkpoint is left in them."""
        self.rows = list(rows)
        if self.run_dir is None:
            return
        (self.run_dir / self.name).write_text("".join(json.dumps(r) + "\n" for r in self.rows))
        (self.run_dir / METRICS).unlink(missing_ok=True)
        if self.tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # lazy: tensorboard, an optional extra

            shutil.rmtree(self.run_dir / TENSORBOARD, ignore_errors=True)
            self._writer = SummaryWriter(str(self.run_dir / TENSORBOARD))
        for row in self.rows:
            self._side_files(row)

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if self.run_dir is None:
            return
        with open(self.run_dir / self.name, "a") as f:
            f.write(json.dumps(row) + "\n")
        self._side_files(row)

    def _side_files(self, row: dict[str, Any]) -> None:
        values = flatten(row)
        path = self.run_dir / METRICS  # type: ignore[operator]
        new = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(values))
            if new:
                writer.writeheader()
            writer.writerow(values)
        if self._writer is not None:
            for key, value in values.items():
                if key != "epoch" and isinstance(value, (int, float)) and value is not None:
                    self._writer.add_scalar(key, value, row["epoch"])
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
