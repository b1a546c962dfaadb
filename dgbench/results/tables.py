"""Comparison tables: groupby/aggregate over the results DataFrame (:mod:`dgbench.results.frame`).

Rows are variants (an augmenter, with the settings that tell rows apart), columns are what the
task makes of the protocol's splits (held-out target domains under LODO, the source domain
under single-source, mAP / Rank-k per direction for reid) plus Avg where the task averages; a
cell is the mean over the runs of the epoch a selection rule picks, with an error bar: the
population standard deviation (ddof=0, as EFDM and Dassl report; the default), the sample
standard deviation (ddof=1), DomainBed's standard error, or the t-based 95% CI half-width; a
cell of one run has none (one value has no spread). Missing and unfinished runs are listed by
name, and a cell with fewer runs than its column expects is marked (n=k). :func:`grid` gives
every cell as a :class:`Cell` (value, error, n, bold, mark, footnote): what every format of
:mod:`dgbench.report` renders. Paired tests against a baseline are
:mod:`dgbench.results.stats`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dgbench.core import keys as dotted
from dgbench.core.errors import DataError
from dgbench.results import estimators, selection
from dgbench.results.estimators import spread
from dgbench.results.frame import frame as to_frame
from dgbench.results.labels import count, distinct_texts
from dgbench.results.views._base import TaskView, view
from dgbench.store.states import failure_line


@dataclass
class Significance:
    """Each cell's paired p-value against a baseline (:func:`dgbench.results.stats.mark_significant`):
    the test, the threshold, and how many pairs the columns (and the pooled Avg) had."""

    baseline: str
    test: str
    alpha: float
    pvalues: dict[tuple[str, str], float]  # (row, column or "Avg") -> p
    column_pairs: list[int]  # pairs of each (row, column) comparison
    pooled_pairs: list[int]  # pairs of each row's pooled (Avg) comparison
    #: (row, column or "Avg") -> mean paired difference, row - baseline (percentage points):
    #: its sign says whether a significant cell is better or worse than the baseline
    differences: dict[tuple[str, str], float] = field(default_factory=dict)


@dataclass
class Table:
    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], list[float]]  # (row, column) -> values (%), one per run
    expected: dict[str, int]  # column -> how many runs a full cell has (seeds x splits)
    seeds: list[int]
    protocol: str
    view: TaskView  # the task's results side: its caption, whether rows average
    select: str = "last"
    error: str = "std"
    per_target: bool = False
    missing: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "label: error" of runs that failed
    row_configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # a record's config
    row_splits: dict[str, set[str]] = field(default_factory=dict)  # the splits of a row's runs
    #: (row, column) -> (seed, split title) of each value in ``cells``, in the same order
    members: dict[tuple[str, str], list[tuple[int, str]]] = field(default_factory=dict)
    dataset: str = ""
    significance: Significance | None = None
    notes: list[str] = field(default_factory=list)  # sentences added to the caption

    def stats(self, row: str, col: str) -> tuple[float, float, int] | None:
        """(mean, error bar, runs) of a cell; the error bar is NaN for a cell of one run."""
        values = self.cells.get((row, col))
        if not values:
            return None
        err = spread(values, self.error) if len(values) > 1 else float("nan")
        return float(np.mean(values)), err, len(values)

    def significant(self, row: str, col: str) -> bool:
        """Whether the cell's paired difference from the baseline has p below alpha."""
        sig = self.significance
        if sig is None:
            return False
        return bool(sig.pvalues.get((row, col), float("nan")) < sig.alpha)  # NaN: False

    def direction(self, row: str, col: str) -> str:
        """``better`` or ``worse`` where the cell differs significantly from the baseline
        (by the sign of the mean paired difference: every metric here is higher-better),
        else ``""``."""
        if self.significance is None or not self.significant(row, col):
            return ""
        diff = self.significance.differences.get((row, col), float("nan"))
        return "better" if diff > 0 else "worse" if diff < 0 else ""

    def average(self, row: str) -> float | None:
        if not self.view.averages:  # e.g. mAP and Rank-k do not average into one number
            return None
        means = [self.stats(row, c) for c in self.columns]
        if any(m is None for m in means):
            return None
        return float(np.mean([m[0] for m in means]))  # type: ignore[index]

    @property
    def headers(self) -> list[str]:
        """The column titles: the row label's, the columns', Avg where the task averages."""
        return ["augmenter"] + self.columns + (["Avg"] if self.view.averages else [])

    def caption(self) -> str:
        """What every number is: the task's caption, then the table's own notes (a table
        with no finished run: what there is instead)."""
        return " ".join([self.view.caption(self) if self.rows else nothing_finished(self),
                         *self.notes])


def nothing_finished(table: Table) -> str:
    """The caption of a table without a finished run: unfinished only, failed only, both."""
    started = count(len(table.unfinished), "run")
    failed = count(len(table.failed), "failed run")
    if table.failed and not table.unfinished:
        return f"Nothing finished, only {failed} (listed below, with why): no table yet."
    if table.unfinished and not table.failed:
        return f"Nothing finished yet: {started} started and not finished, no table yet."
    return f"Nothing finished: {started} started and not finished, {failed}; no table yet."


@dataclass(frozen=True)
class Cell:
    """One cell of a table as every format shows it: ``value`` (the mean, %; None: no runs,
    shown X), ``error`` (its spread; None where none is shown, as Avg), ``n`` (its runs),
    ``bold`` (the best of its column), ``mark`` (``better`` or ``worse``: significantly
    different from the baseline, that way; ``""``: not) and ``footnote`` (``n=k`` where the
    cell has fewer runs than its column expects). A cell of one run has no error."""

    value: float | None
    error: float | None = None
    n: int = 0
    bold: bool = False
    mark: str = ""
    footnote: str = ""


def grid(table: Table, bold: bool = True) -> list[tuple[str, list[Cell]]]:
    """Every row of ``table`` with its cells in the order of ``table.headers`` (Avg last);
    ``bold``: the best mean of each column set in bold (:func:`best_cells`)."""
    best = best_cells(table) if bold else set()
    out = []
    for row in table.rows:
        cells = []
        for col in table.columns:
            s = table.stats(row, col)
            if s is None:
                cells.append(Cell(None))
                continue
            mean, err, n = s
            cells.append(Cell(mean, err if n > 1 else None, n, (row, col) in best,
                              table.direction(row, col),
                              f"n={n}" if n < table.expected[col] else ""))
        if table.view.averages:
            avg = table.average(row)
            cells.append(Cell(None) if avg is None else Cell(
                avg, bold=(row, "Avg") in best, mark=table.direction(row, "Avg")))
        out.append((row, cells))
    return out


def best_cells(table: Table) -> set[tuple[str, str]]:
    """(row, column) of the best mean in each column (Avg included), as printed (one
    decimal): ties all count; a column where fewer than two rows have a value, or every row
    ties, has none."""
    means: dict[str, dict[str, float]] = {}
    for col in table.columns:
        found = {r: table.stats(r, col) for r in table.rows}
        means[col] = {r: s[0] for r, s in found.items() if s is not None}
    if table.view.averages:
        avgs = {r: table.average(r) for r in table.rows}
        means["Avg"] = {r: a for r, a in avgs.items() if a is not None}
    out = set()
    for col, by_row in means.items():
        shown = {r: float(f"{m:.1f}") for r, m in by_row.items()}
        top = max(shown.values(), default=None)
        winners = {r for r, m in shown.items() if m == top}
        if len(shown) >= 2 and len(winners) < len(shown):
            out |= {(r, col) for r in winners}
    return out


def build_table(results: pd.DataFrame | list[dict[str, Any]], select: str = "last",
                error: str = "std", per_target: bool = False) -> Table:
    """The table of a results DataFrame (:func:`dgbench.results.load`), or of records."""
    df = to_frame(results) if isinstance(results, list) else results
    estimators.check(error)
    protocols = sorted(set(df["protocol"])) if len(df) else []
    if len(protocols) > 1:
        raise DataError(f"the records mix protocols ({', '.join(protocols)}); one table per "
                        "protocol: point 'dgbench table' at one experiment folder")
    task = view(df["task"].iloc[0] if len(df) else "classification")
    selection.check(select)
    selection.check_task_rule(task, select)
    picked = selection.select_epochs(df, select) if len(df) else df
    chosen = task.cells(picked, per_target) if len(df) else df
    df = df[df["role"] == "test"] if len(df) else df  # validation runs fill no column
    unfinished = df.attrs.get("unfinished", [])
    started = [u["config"] for u in unfinished if "config" in u and u.get("role", "test") == "test"]
    seeds = sorted({int(s) for s in (chosen["seed"] if len(chosen) else [])}
                   | {c["seeds"][0] for c in started})
    titles = dict(zip(df["split"], df["split_title"])) if len(df) else {}
    pending = [titles.get(t, t) for c in started for t in c["protocol"]["targets"] or []]
    if not protocols:  # nothing finished: what the started runs say, if any started
        protocols = sorted({str(c["protocol"]["name"]) for c in started})[:1]
    table = _assemble(chosen, seeds, unfinished, pending, protocols[0] if protocols else "?",
                      task, select, error, per_target)
    table.failed = [failure_line(f) for f in df.attrs.get("failed", [])]
    names = set(df["dataset"]) if len(df) else {c["data"]["name"] for c in started}
    table.dataset = ", ".join(sorted(map(str, names)))
    table.notes += setting_notes(table.row_configs)
    if select == "oracle" and len(picked):
        table.notes.append(oracle_note(picked))
    return table


#: settings that make a run other than the recipe it names, flagged in a table's caption:
#: key -> how the caption says it (``{who}``: the runs; ``{set}``: key=value(s))
FLAGGED = {
    "data.subsample": "{who} trained and tested on a subsample ({set}: at most that many "
                      "images per domain and split), not the whole dataset.",
    "model.weights": "{who} started from local-checkpoint weights ({set}).",
}


def setting_notes(row_configs: dict[str, dict[str, Any]]) -> list[str]:
    """A caption sentence per :data:`FLAGGED` setting that some rows' runs set: which rows
    (every run, or the rows named) and the values."""
    out = []
    for key, sentence in FLAGGED.items():
        found = {row: dotted.get(cfg, key) for row, cfg in row_configs.items()}
        set_in = {row: v for row, v in found.items() if v is not None}
        if not set_in:
            continue
        values = ", ".join(sorted(set(distinct_texts(list(set_in.values())).values())))
        who = "Every run" if len(set_in) == len(found) else (
            "The runs of " + "; ".join(set_in))
        out.append(sentence.format(who=who, set=f"{key}={values}"))
    return out


def oracle_note(picked: pd.DataFrame) -> str:
    """Which argument settings the oracle chose, per row, and among how many runs."""
    runs = picked.drop_duplicates("run_id")
    parts = []
    for family, rows in sorted(runs.groupby("variant"), key=lambda g: (g[0] != "none", g[0])):
        among = "/".join(map(str, sorted(set(rows["candidates"]))))
        chosen = rows["aug_args"].replace("", "no arguments").value_counts()
        picks = ", ".join(f"{args} ({k}x)" for args, k in
                          sorted(chosen.items(), key=lambda c: (-c[1], c[0])))
        parts.append(f"{family}: {picks}, each chosen among {among} run(s)")
    return "Oracle choices per seed and split: " + "; ".join(parts) + "."


def _assemble(cells: pd.DataFrame, seeds: list[int], unfinished: list[dict[str, Any]],
              pending: list[str], protocol: str, task: TaskView, select: str, error: str,
              per_target: bool) -> Table:
    """Aggregate the cells' values per (variant, column); work out what each column expects:
    every seed of every split that feeds it, finished (in ``cells``) or started (``pending``,
    split titles of unfinished runs)."""
    values: dict[tuple[str, str], list[float]] = {}
    keys: dict[tuple[str, str], list[tuple[int, str]]] = {}
    splits: dict[str, list[str]] = {}
    columns, rows, row_configs, row_splits = [], [], {}, {}
    if len(cells):
        cells = cells.assign(pct=100.0 * cells["value"], member=list(zip(cells["seed"],
                                                                         cells["split_title"])))
        grouped = cells.groupby(["variant", "column"], sort=False)
        values = {k: list(v) for k, v in grouped["pct"].agg(list).items()}
        keys = {k: [(int(s), t) for s, t in v] for k, v in grouped["member"].agg(list).items()}
        splits = {}
        for col, titles in cells.groupby("column")["split_title"]:
            groups = {task.column_group(t) for t in titles}
            splits[col] = sorted(set(titles) | {p for p in pending if task.column_group(p) in groups})
        order = cells.groupby("column", sort=False)["order"].first()
        columns = sorted(order.index, key=lambda c: (order[c], c))
        row_configs = cells.groupby("variant", sort=False)["config"].first().to_dict()
        row_splits = {r: set(v) for r, v in cells.groupby("variant")["split_title"]}
        rows = sorted(row_configs, key=lambda r: (not r.startswith("none"), r))
    covered = {task.column_group(t) for titles in splits.values() for t in titles}
    for title in dict.fromkeys(pending):  # held-out splits with no finished run: empty columns
        if task.column_group(title) not in covered:
            for col in task.pending_columns(title, per_target):
                columns += [] if col in splits else [col]
                splits[col] = sorted({*splits.get(col, []), title})
    missing = list(dict.fromkeys(
        f"{row}, seed {s}, {sp}" for row in rows for col in columns for sp in splits[col]
        for s in seeds if (s, sp) not in keys.get((row, col), [])))
    unfinished_names = [
        u.get("label", u.get("run_id", "?")) + (f" ({u['run_id']})" if "run_id" in u else "")
        for u in unfinished]
    expected = {col: len(seeds) * len(splits[col]) for col in columns}
    return Table(rows, columns, values, expected, seeds, protocol, task, select, error,
                 per_target, missing=missing, unfinished=unfinished_names,
                 row_configs=row_configs, row_splits=row_splits, members=keys)
