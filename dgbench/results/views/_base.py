"""A task's records read as results: the rows they add to the results DataFrame, the
cells and caption of its tables, the selection rules they support. The results-side half of a
task (:mod:`dgbench.tasks` is the half that trains), registered under the task's name in
:data:`VIEWS`; nothing here imports torch.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd

from dgbench.core.registry import Registry

#: the view of each task, under the task's registered name
VIEWS = Registry("task view", builtins="dgbench.results.views")


class TaskView:
    """The interface; :mod:`dgbench.results.views.classification` and ``.reid`` implement it."""

    name: ClassVar[str]
    #: the ``--select`` rules its records support (:data:`dgbench.results.selection.RULES`)
    selections: ClassVar[tuple[str, ...]] = ("last",)
    #: whether a table row gets an Avg column (the mean of the column means)
    averages: ClassVar[bool] = False
    #: what a table cell measures, and what a run's pooled score is, for axis labels
    metric: ClassVar[str] = "score"
    score: ClassVar[str] = "score"

    def result_rows(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """A record's rows of the results DataFrame: one per test set and evaluated epoch."""
        raise NotImplementedError

    def cells(self, chosen: pd.DataFrame, per_target: bool) -> pd.DataFrame:
        """Table cells from the rows of each run's selected epoch: one row per (variant,
        column, run) with ``column``, ``order`` (a sortable column position) and ``value``
        (a fraction)."""
        raise NotImplementedError

    def caption(self, table: Any) -> str:
        raise NotImplementedError

    def column_axis(self, protocol: str) -> str:
        """What a table column is under ``protocol``, for a plot's axis."""
        return "table column"

    def pending_columns(self, split_title: str, per_target: bool) -> list[str]:
        """The columns a split with no finished run would fill (shown empty)."""
        return [] if per_target else [split_title]

    def column_group(self, split_title: str) -> str:
        """Which columns a split's runs feed, as a key shared by the splits of one column:
        a split is its own column by default."""
        return split_title


def view(name: str) -> TaskView:
    """The view of the registered task ``name``."""
    return VIEWS.get(name)()


def record_task(record: dict[str, Any]) -> str:
    """The task of a record (schema 1 records do not say: the reid protocol was the only
    re-identification one)."""
    return record.get("task") or ("reid" if record["config"]["protocol"]["name"] == "reid"
                                  else "classification")
