"""Comparison tables: groupby/aggregate over the results DataFrame (:mod:`dgbench.results`).

Rows are variants (an augmenter, with the settings that tell rows apart), columns are what the
task makes of the protocol's splits (held-out target domains under LODO, the source domain
under single-source, mAP / Rank-k per direction for reid) plus Avg where the task averages; a
cell is the mean over the runs of the epoch a selection rule picks, with an error bar: the
population standard deviation (ddof=0, as EFDM and Dassl report; the default), the sample
standard deviation (ddof=1), DomainBed's standard error, or the t-based 95% CI half-width.
Missing and unfinished runs are listed by name, and a cell with fewer runs than its column
expects is marked (n=k). Rendering is :mod:`dgbench.render`; paired tests against a baseline
are :mod:`dgbench.stats`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dgbench.errors import DataError, one_line
from dgbench.render import FORMATS, render, tex

__all__ = ["ERRORS", "FORMATS", "RULES", "Table", "build_table", "paper_comparison", "render",
           "select_epochs", "spread", "tex"]

ERRORS = {
    "std": "population std (ddof=0)",
    "sd": "sample std (ddof=1)",
    "se": "standard error (population std / sqrt(n), as DomainBed)",
    "ci95": "95% confidence-interval half-width of the mean (Student's t, n-1 degrees of "
    "freedom)",
}
RULES = ("last", "val", "loo", "oracle", "test-best")


def spread(values: list[float], error: str = "std") -> float:
    """The error bar of ``values`` as ``error`` names it (see ``ERRORS``); NaN where it needs
    two values and has one (``sd``, ``ci95``)."""
    v = np.asarray(values, dtype=float)
    if error not in ERRORS:
        raise DataError(f"error must be one of {', '.join(ERRORS)}; got {error!r}")
    if error in ("std", "se"):
        std = float(np.std(v, ddof=0))
        return std / float(np.sqrt(len(v))) if error == "se" else std
    if len(v) < 2:
        return float("nan")
    sd = float(np.std(v, ddof=1))
    if error == "sd":
        return sd
    from scipy import stats

    return float(stats.t.ppf(0.975, len(v) - 1)) * sd / float(np.sqrt(len(v)))


def select_epochs(frame: pd.DataFrame, rule: str) -> pd.DataFrame:
    """The test runs' rows at the epoch ``rule`` picks in each run: ``last`` (the final
    model), ``val`` (best source-validation accuracy), ``loo`` (best mean accuracy of the
    run's leave-one-domain-out validation runs on their held-out sources, DomainBed's
    leave-one-domain-out cross-validation), ``oracle`` (DomainBed's test-domain oracle: see
    :func:`oracle_runs`) or ``test-best`` (best test score: optimistic); the latest of equal
    epochs. Never falls back to another rule: a run evaluated only at its end cannot be judged
    per epoch, and says so."""
    if rule not in RULES:
        raise DataError(f"selection must be one of {', '.join(RULES)}; got {rule!r}")
    if frame.empty:
        return frame
    tests = frame[frame["role"] == "test"]
    if rule == "last":
        return tests[tests["last"]]
    if rule == "oracle":
        return oracle_runs(tests)
    judged = frame[~frame["per_epoch"].astype(bool)]
    if len(judged):
        r = judged.iloc[0]
        raise DataError(f"run {r['run_id']} ({r['aug']} seed {r['seed']}) has no per-epoch "
                        f"test accuracy, so --select {rule} cannot judge it; rerun it with --force")
    if rule == "loo":
        picked = _loo_epochs(frame, tests)
    else:
        key = "val_acc" if rule == "val" else "score"
        epochs = tests.drop_duplicates(["run_id", "epoch"])
        best = epochs.sort_values(["run_id", key, "epoch"], ascending=[True, False, False])
        picked = set(best.drop_duplicates("run_id")[["run_id", "epoch"]].itertuples(index=False))
    return tests[[(r, e) in picked for r, e in zip(tests["run_id"], tests["epoch"])]]


def _loo_epochs(frame: pd.DataFrame, tests: pd.DataFrame) -> set[tuple[str, int]]:
    """(run, epoch) of each test run at the epoch where its validation runs (same variant and
    seed, one per held-out source) score best on average."""
    vals = frame[frame["role"] == "validation"].drop_duplicates(["run_id", "epoch"])
    held_out = vals.groupby("of")["split"].nunique().to_dict()  # validation runs per target
    mean = vals.groupby(["variant", "seed", "of", "epoch"])["score"].agg(["mean", "count"])
    picked = set()
    for run in tests.drop_duplicates("run_id").itertuples(index=False):
        key = (run.variant, run.seed, run.split)
        rows = mean.loc[key] if key in mean.index.droplevel("epoch") else None
        if rows is None or (rows["count"] < held_out.get(run.split, 0)).any():
            raise DataError(
                f"--select loo needs the leave-one-domain-out validation runs of {run.variant} "
                f"seed {run.seed} {run.split}, finished: run the same command with "
                "protocol.loo_validation=true")
        picked.add((run.run_id, max(rows.index, key=lambda e: (rows.loc[e, "mean"], e))))
    return picked


def check_task_rule(task: Any, rule: str) -> None:
    """A selection rule the task's records cannot serve (re-identification runs are evaluated
    once, at their end) is an error."""
    if rule not in task.selections:
        raise DataError(f"{task.name} runs are evaluated once, on the final model: --select "
                        f"{rule} does not apply (use last)")


def oracle_runs(tests: pd.DataFrame) -> pd.DataFrame:
    """DomainBed's test-domain oracle: the final model of each run; among the runs of a family
    (variants that differ only in the hyperparameters the augmenter's ``search`` declares,
    what a sweep searches) with the same seed and split, the one with the best accuracy on
    the held-out 20% of its test domains (``oracle_val``; the earliest run id of equal ones),
    reported on the other 80% (``oracle_acc``, ``oracle_score`` replace ``acc`` and
    ``score``). The rows are
    relabelled with their family; ``candidates`` says among how many runs each was chosen."""
    final = tests[tests["last"]]
    if "oracle_val" not in final or final["oracle_val"].isna().any():
        r = final.iloc[0] if "oracle_val" not in final else final[final["oracle_val"].isna()].iloc[0]
        raise DataError(f"run {r['run_id']} ({r['aug']} seed {r['seed']}) has no held-out part of "
                        "its test domains, so --select oracle cannot judge it (recorded before "
                        "dgbench evaluated one, or a test set of one image); rerun it with --force")
    runs = final.drop_duplicates("run_id").sort_values(["run_id"])
    groups = runs.groupby(["family", "seed", "split"], sort=False)
    best = runs.loc[groups["oracle_val"].idxmax()]
    counts = groups["run_id"].transform("count")
    chosen = final[final["run_id"].isin(set(best["run_id"]))]
    return chosen.assign(variant=chosen["family"], acc=chosen["oracle_acc"],
                         score=chosen["oracle_score"],
                         candidates=chosen["run_id"].map(dict(zip(runs["run_id"], counts))))


@dataclass
class Table:
    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], list[float]]  # (row, column) -> values (%), one per run
    expected: dict[str, int]  # column -> how many runs a full cell has (seeds x splits)
    seeds: list[int]
    protocol: str
    task: Any  # dgbench.tasks.Task: the caption, whether rows average
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
    #: (row, column or "Avg") -> p-value against a baseline (:func:`dgbench.stats.mark_significant`)
    pvalues: dict[tuple[str, str], float] = field(default_factory=dict)
    alpha: float | None = None
    notes: list[str] = field(default_factory=list)  # sentences added to the caption

    def stats(self, row: str, col: str) -> tuple[float, float, int] | None:
        values = self.cells.get((row, col))
        if not values:
            return None
        return float(np.mean(values)), spread(values, self.error), len(values)

    def significant(self, row: str, col: str) -> bool:
        """Whether the cell's paired difference from the baseline has p below ``alpha``."""
        p = self.pvalues.get((row, col), float("nan"))
        return self.alpha is not None and bool(p < self.alpha)  # NaN compares False

    def average(self, row: str) -> float | None:
        if not self.task.averages:  # e.g. mAP and Rank-k do not average into one number
            return None
        means = [self.stats(row, c) for c in self.columns]
        if any(m is None for m in means):
            return None
        return float(np.mean([m[0] for m in means]))  # type: ignore[index]

    def caption(self) -> str:
        return " ".join([self.task.caption(self), *self.notes])


def build_table(results: pd.DataFrame | list[dict[str, Any]], select: str = "last",
                error: str = "std", per_target: bool = False) -> Table:
    """The table of a results DataFrame (:func:`dgbench.results.load`), or of records."""
    from dgbench.results import frame as to_frame
    from dgbench.tasks import get_task

    df = to_frame(results) if isinstance(results, list) else results
    if error not in ERRORS:
        raise DataError(f"error must be one of {', '.join(ERRORS)}; got {error!r}")
    protocols = sorted(set(df["protocol"])) if len(df) else []
    if len(protocols) > 1:
        raise DataError(f"the records mix protocols ({', '.join(protocols)}); one table per "
                        "protocol: point 'dgbench table' at one experiment folder")
    task = get_task(df["task"].iloc[0] if len(df) else "classification")
    if select not in RULES:
        raise DataError(f"selection must be one of {', '.join(RULES)}; got {select!r}")
    check_task_rule(task, select)
    picked = select_epochs(df, select) if len(df) else df
    chosen = task.cells(picked, per_target) if len(df) else df
    df = df[df["role"] == "test"] if len(df) else df  # validation runs fill no column
    unfinished = df.attrs.get("unfinished", [])
    started = [u["config"] for u in unfinished if "config" in u and u.get("role", "test") == "test"]
    seeds = sorted({int(s) for s in (chosen["seed"] if len(chosen) else [])}
                   | {c["seeds"][0] for c in started})
    titles = dict(zip(df["split"], df["split_title"])) if len(df) else {}
    pending = [titles.get(t, t) for c in started for t in c["protocol"]["targets"] or []]
    table = _assemble(chosen, seeds, unfinished, pending, protocols[0] if protocols else "?",
                      task, select, error, per_target)
    table.failed = [f"{f.get('label', f.get('run_id', '?'))}: {one_line(f.get('error', ''))}"
                    for f in df.attrs.get("failed", [])]
    table.dataset = ", ".join(sorted({str(d) for d in df["dataset"]})) if len(df) else ""
    if select == "oracle" and len(picked):
        table.notes.append(oracle_note(picked))
    return table


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
              pending: list[str], protocol: str, task: Any, select: str, error: str,
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


def paper_comparison(table: Table) -> tuple[list[list[str]], list[str]]:
    """Rows of ours / published / difference for every row whose runs used a published
    row's recipe, and a note for every published row that was not compared (and why)."""
    from dgbench.published import lookup, recipe_differences

    out, notes = [], []
    for row in table.rows:
        for pub in lookup(table.row_configs[row]) if not table.per_target else []:
            differ = recipe_differences(table.row_configs[row], pub, table.select,
                                        table.row_splits.get(row))
            if differ:
                notes.append(f"{row} not compared with {pub.source}: its recipe differs "
                             f"({'; '.join(differ)})")
                continue
            ours = [table.stats(row, c) for c in table.columns]
            avg = table.average(row)
            tail = [_avg_text(avg)] if table.task.averages else []
            out.append([f"{row} (ours)"] + [f"{s[0]:.1f}" if s else "X" for s in ours] + tail)
            out.append([pub.source + (f" ({pub.note})" if pub.note else "")] + [
                _published_cell(pub.cells[c]) if c in pub.cells else "-"
                for c in table.columns] + (["-" if pub.avg is None else f"{pub.avg:.1f}"]
                                           if table.task.averages else []))
            diffs = [f"{s[0] - pub.cells[c][0]:+.1f}" if s and c in pub.cells else "-"
                     for s, c in zip(ours, table.columns)]
            out.append(["difference (ours - paper)"] + diffs + (
                [f"{avg - pub.avg:+.1f}" if avg is not None and pub.avg is not None else "-"]
                if table.task.averages else []))
    return out, notes


def _published_cell(cell: tuple[float, float | None]) -> str:
    mean, std = cell
    return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"


def _avg_text(avg: float | None) -> str:
    return "X" if avg is None else f"{avg:.1f}"
