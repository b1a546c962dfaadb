"""Classification records as results (PACS, digits): one row per test domain and evaluated
epoch; a column per held-out split (its pooled accuracy), or per source -> target pair."""

from __future__ import annotations

from typing import Any

import pandas as pd

from dgbench.results.estimators import ESTIMATORS
from dgbench.results.labels import seeds_text
from dgbench.results.selection import RULES
from dgbench.results.views._base import VIEWS, TaskView

#: what a column is, per protocol
COLUMNS = {"lodo": "held-out target domain",
           "single": "source domain (each column is the accuracy pooled over the other domains, "
           "whole)"}


@VIEWS.register("classification")
class ClassificationView(TaskView):
    """Test accuracy per held-out domain, pooled over several."""

    name = "classification"
    selections = ("last", "val", "loo", "oracle", "test-best")
    averages = True
    metric, score = "test accuracy", "accuracy"

    def result_rows(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """Every epoch when the history holds per-epoch test accuracy (``per_epoch``), else
        the final model only (records written before dgbench evaluated every epoch)."""
        history, final = record.get("history") or [], record["final"]
        titles = record.get("dataset", {}).get("titles", {})
        sizes = record.get("sizes", {}).get("test", {})
        per_epoch = bool(history) and all("test_acc" in h for h in history)
        if per_epoch:
            epochs = [(h, h["test_acc"], h["score"], h["val_acc"]) for h in history]
        else:
            last = history[-1] if history else {}
            epochs = [({**last, "epoch": len(history)},
                       {k: v["acc"] for k, v in final["test"].items()},
                       final["score"], final.get("val_acc"))]
        rows = []
        for h, accs, score, val_acc in epochs:
            for i, (test, acc) in enumerate(accs.items()):
                rows.append({"epoch": h.get("epoch"), "lr": h.get("lr"), "loss": h.get("loss"),
                             "train_acc": h.get("train_acc"), "val_acc": val_acc,
                             "score": score, "test": test, "test_index": i,
                             "test_title": titles.get(test, test), "acc": acc,
                             "n": sizes.get(test), "per_epoch": per_epoch,
                             "oracle_val": h.get("oracle_val"),
                             "oracle_acc": (h.get("oracle_acc") or {}).get(test),
                             "oracle_score": h.get("oracle_score")})
        return rows

    def cells(self, chosen: pd.DataFrame, per_target: bool) -> pd.DataFrame:
        """One column per split (the run's pooled score), or per test set: a source ->
        target pair, or the target alone where the split is named by it (LODO)."""
        if per_target:
            pair = chosen["split_title"] + "->" + chosen["test_title"]
            named = chosen["split_title"] == chosen["test_title"]
            return chosen.assign(column=chosen["test_title"].where(named, pair),
                                 order=list(zip(chosen["split_index"], chosen["test_index"])),
                                 value=chosen["acc"])
        runs = chosen.drop_duplicates("run_id")
        return runs.assign(column=runs["split_title"],
                           order=[(i, 0) for i in runs["split_index"]], value=runs["score"])

    def column_axis(self, protocol: str) -> str:
        return {"lodo": "held-out target domain",
                "single": "source domain (tested on the others)"}.get(protocol, "table column")

    def caption(self, table: Any) -> str:
        what = COLUMNS.get(table.protocol, "split")
        if table.per_target and table.protocol != "lodo":  # LODO: a column is its target
            what = "source -> target pair"
        return (
            f"Test accuracy (%) per {what} ({table.protocol}); each cell is the mean ± "
            f"{ESTIMATORS[table.error].description} over {seeds_text(table.seeds)} of "
            f"{RULES[table.select].description}; (n=k) marks a cell with fewer runs; Avg is the mean "
            "of the per-column means; X is a missing cell."
        )
