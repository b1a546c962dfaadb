"""Re-identification records as results (Market-1501 <-> GRID): the final model's mAP and
CMC on each target split; columns per direction and metric (the mean over a multi-split
target, then its split 0 alone)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dgbench.core.errors import ConfigError
from dgbench.results.estimators import ESTIMATORS
from dgbench.results.labels import seeds_text
from dgbench.results.views._base import VIEWS, TaskView

#: the metrics of a table, record key -> column suffix
METRICS = {"mAP": "mAP", "rank1": "R1", "rank5": "R5", "rank10": "R10"}


@VIEWS.register("reid")
class ReIDView(TaskView):
    """mAP and CMC of the final model, per direction."""

    name = "reid"
    metric, score = "mAP / Rank-k", "mAP"

    def result_rows(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """The final model's metrics on each target split (ranked once, at the last epoch)."""
        history = record.get("history") or []
        last = history[-1] if history else {}
        rows = []
        for i, (test, metrics) in enumerate(record["final"]["test"].items()):
            rows.append({"epoch": len(history), "lr": last.get("lr"), "loss": last.get("loss"),
                         "train_acc": last.get("train_acc"), "val_acc": None,
                         "score": record["final"]["score"], "test": test, "test_index": i,
                         "test_title": test, "per_epoch": False,
                         "n_query": metrics.get("queries"), "n_gallery": metrics.get("gallery"),
                         **{k: v for k, v in metrics.items() if k == "mAP" or k.startswith("rank")}})
        return rows

    def cells(self, chosen: pd.DataFrame, per_target: bool) -> pd.DataFrame:
        """mAP, R1, R5, R10 of each direction (the mean over the target's splits), then the
        same on split 0 alone when there are several (the split EFDM reported)."""
        if per_target:
            raise ConfigError("--per-target is for classification tables")
        out = []
        for _, rows in chosen.groupby("run_id", sort=False):
            first = rows.iloc[0]
            direction = first["split"].split("#")[0]
            for i, (metric, short) in enumerate(METRICS.items()):  # as final["mean"]
                out.append({**first, "column": f"{direction} {short}", "order": (0, i),
                            "value": float(np.mean(rows[metric].to_numpy(dtype=float)))})
            if len(rows) > 1 and first["test"].endswith("#0"):
                for i, (metric, short) in enumerate(METRICS.items()):
                    out.append({**first, "column": f"{direction} split 0 {short}",
                                "order": (0, 10 + i), "value": float(first[metric])})
        return pd.DataFrame(out)

    def column_axis(self, protocol: str) -> str:
        return "source->target direction and metric"

    def pending_columns(self, split_title: str, per_target: bool) -> list[str]:
        return [f"{self.column_group(split_title)} {short}" for short in METRICS.values()]

    def column_group(self, split_title: str) -> str:
        """The runs of every source split of a direction feed its columns."""
        return split_title.split("#")[0]

    def caption(self, table: Any) -> str:
        return (
            "Person re-identification (%), source->target: mAP and CMC Rank-1/5/10 of the "
            "final model, cosine distance, torchreid's Market-1501 rules; a multi-split "
            "target's columns are the mean over its splits, and 'split 0' is split 0 alone; "
            f"each cell is the mean ± {ESTIMATORS[table.error].description} over "
            f"{seeds_text(table.seeds)} (and over the training splits when the "
            "source has several); (n=k) marks a cell with fewer runs; X is a missing cell."
        )
