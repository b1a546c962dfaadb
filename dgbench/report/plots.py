"""Plots of a results DataFrame (:mod:`dgbench.results.frame`): bars, training curves, sweeps.

``plot(frame, kind, out)`` writes one figure (``.png``, ``.pdf`` or ``.svg``, from the
suffix); ``bars_figure``, ``curves_figure`` and ``sweep_figure`` return the matplotlib
``Figure`` itself, and ``to_data_uri`` (:mod:`dgbench.report.figures`) turns one into a PNG
data URI a report can inline.

- **bars**: the comparison table (:func:`dgbench.results.tables.build_table`) as grouped bars, one
  group per column (target), one bar per variant, the table's mean and spread as height and
  error bar; Avg (the mean of the column means, no spread) where the task averages.
- **curves**: loss, source-validation accuracy and test accuracy (the mean over a run's test
  sets) per epoch, one line per variant: each seed's value is the mean over the variant's
  splits, the line the mean over seeds and the band its spread. Per-epoch runs only.
- **sweep**: the score of the selected epoch (mean over splits per seed, then mean and spread
  over seeds) against a swept key, one line per augmenter; an augmenter whose runs lack the
  key (``none`` in an ``aug.alpha`` sweep) is a dashed reference line. The axis is logarithmic
  where the values call for it (:func:`log_axis`).

Each figure is sized to what it holds: its columns or subplots, and a legend beside it whose
long labels are wrapped, so that the axes keep their room.

Spreads over seeds are those of the tables (:func:`dgbench.results.estimators.spread`: std, se ...).
matplotlib is an optional extra (``pip install 'dgbench[plot]'``), imported when drawing.
"""

from __future__ import annotations

import json
import numbers
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from dgbench import config as C
from dgbench.core.errors import DataError
from dgbench.core import keys as dotted
from dgbench.core.keys import flatten
from dgbench.report.figures import DPI, legend, legend_size, new_figure
from dgbench.report.figures import to_data_uri  # noqa: F401  (plots.to_data_uri, as before)
from dgbench.results import estimators, selection
from dgbench.results.estimators import ESTIMATORS, spread
from dgbench.results.labels import count, distinct_texts, seeds_text
from dgbench.results.selection import select_epochs
from dgbench.results.tables import build_table
from dgbench.results.views._base import view

SUFFIXES = (".png", ".pdf", ".svg")
#: per-epoch quantities of the curves: column -> (subplot title, scale to percent)
CURVES = {"loss": ("training loss", False), "val_acc": ("source-validation accuracy (%)", True),
          "acc": ("test accuracy (%), mean over test sets", True)}
#: frame columns that name a run's place in a comparison, never a swept setting
_NOT_SWEPT = {"run_id", "seed", "split", "split_index", "split_title", "variant", "aug_args",
              "experiment", "role", "of"}
_SWEEP_COLUMNS = ("insert", "backbone", "dataset", "target_dataset", "epochs")


def plot(frame: pd.DataFrame, kind: str, out: str | Path, by: str | None = None,
         select: str = "last", error: str = "std") -> Path:
    """Draw the ``kind`` plot (bars, curves or sweep) of ``frame`` into ``out``; its suffix
    picks the format. ``by`` is the swept key of a sweep; ``select`` the epoch rule of bars
    and sweeps (:func:`dgbench.results.selection.select_epochs`); ``error`` the spread over seeds, as
    in the tables (:data:`dgbench.results.estimators.ESTIMATORS`). Returns ``out``."""
    if kind not in KINDS:
        raise DataError(f"plot kind must be one of {', '.join(KINDS)}; got {kind!r}")
    out = Path(out)
    if out.suffix.lower() not in SUFFIXES:
        raise DataError(f"plot file {out} must end in {', '.join(SUFFIXES)} (the format)")
    if by is not None and kind != "sweep":
        raise DataError(f"--by names the swept key of a sweep plot, not of {kind}")
    fig = KINDS[kind].figure(frame, by, select, error)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI, bbox_inches="tight")
    return out


def _check(frame: pd.DataFrame, error: str, select: str = "last") -> pd.DataFrame:
    """The frame's test rows; no runs, runs of several protocols, an unknown error
    estimator or selection rule are errors."""
    estimators.check(error)
    selection.check(select)
    if frame.empty:
        unfinished = len(frame.attrs.get("unfinished", []))
        raise DataError("no finished runs to plot" + (f" ({unfinished} unfinished)" if unfinished
                                                      else "; is it the right results folder?"))
    protocols = sorted(set(frame["protocol"]))
    if len(protocols) > 1:
        raise DataError(f"the runs mix protocols ({', '.join(protocols)}); one plot per "
                        "protocol: point it at one experiment folder")
    tests = frame[frame["role"] == "test"]
    if tests.empty:
        raise DataError("no test runs to plot (only leave-one-domain-out validation runs)")
    selection.check_task_rule(view(tests["task"].iloc[0]), select)
    return tests


def _order(variants: Any) -> list[str]:
    """Variants as the table orders its rows: the baseline (``none``) first."""
    return sorted(set(variants), key=lambda v: (not str(v).startswith("none"), str(v)))


def _over_seeds(per_seed: pd.DataFrame, keys: list[str], value: str, error: str) -> pd.DataFrame:
    """Mean, spread and count of ``value`` over the seeds of each ``keys`` group."""
    grouped = per_seed.dropna(subset=[value]).groupby(keys, sort=False)[value]
    return pd.DataFrame({"mean": grouped.mean(),
                         "spread": grouped.agg(lambda v: spread(list(v), error)),
                         "n": grouped.count()}).reset_index()


def _title(runs: pd.DataFrame, what: str, error: str, how: str = "mean") -> str:
    """Two lines: dataset, protocol and what is shown; how it aggregates the seeds."""
    first = runs.iloc[0]
    seeds = seeds_text(sorted({int(s) for s in runs["seed"]}))
    return (f"{first['dataset']} {first['protocol']}: {what}\n"
            f"{how} ± {ESTIMATORS[error].description} over {seeds}")


# -- bars ---------------------------------------------------------------------------------------
def bars_figure(frame: pd.DataFrame, select: str = "last", error: str = "std") -> Any:
    """Grouped bars of the comparison table: the same means and spreads as
    ``build_table(frame, select, error)``, one group per column (plus Avg), one bar per row;
    a missing cell (X in the table) draws no bar."""
    _check(frame, error, select)
    table = build_table(frame, select, error)
    columns = table.columns + (["Avg"] if table.view.averages else [])
    rows, width = table.rows, 0.8 / max(len(table.rows), 1)
    room, tall = legend_size(rows, "variant")
    fig = new_figure(max(4.5, 0.45 * len(columns) * len(rows) + 1.5) + room, max(4.6, tall))
    ax = fig.add_subplot()
    drawn = []
    for i, row in enumerate(rows):
        cells = [(j, col, (table.average(row), np.nan, 0) if col == "Avg"
                  else table.stats(row, col)) for j, col in enumerate(columns)]
        cells = [(j - 0.4 + width * (i + 0.5), s[0], s[1],
                  f" (n={s[2]})" if s[2] and s[2] < table.expected[col] else "")
                 for j, col, s in cells if s is not None and s[0] is not None]
        xs, heights, errs, _ = zip(*cells) if cells else ((), (), (), ())
        ax.bar(xs, heights, width, yerr=errs, capsize=3, label=row, color=f"C{i % 10}",
               error_kw={"elinewidth": 1})
        drawn += cells
    top = max([h + (0 if np.isnan(e) else e) for _, h, e, _ in drawn] + [1.0])
    ax.set_ylim(0, top * 1.1 + 4)
    if len(drawn) <= 40:  # the numbers fit: beside the error bar in a bar's foot, or above
        for x, h, e, n in drawn:  # n: the table's (n=k) mark of a cell with fewer runs
            inside = h > (0.3 if n else 0.15) * top
            y = 1.0 if inside else h + (0 if np.isnan(e) else e) + 1.0
            ax.text(x - width / 4 if inside else x, y, f"{h:.1f}{n}", rotation=90,
                    ha="center", va="bottom", fontsize=7, color="white" if inside else "black")
    slant = len(columns) > 6 or max(map(len, columns), default=0) > 12  # else they overlap
    ax.set_xticks(range(len(columns)), columns, rotation=25 if slant else 0,
                  ha="right" if slant else "center")
    ax.set_xlabel(table.view.column_axis(table.protocol))
    ax.set_ylabel(f"{table.view.metric} (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    legend(ax, *ax.get_legend_handles_labels(), "variant")
    ax.set_title(_title(frame[frame["role"] == "test"], f"comparison, epoch selection "
                        f"'{select}'", error), fontsize=10)
    return fig


# -- curves -------------------------------------------------------------------------------------
def curve_data(frame: pd.DataFrame, error: str = "std") -> pd.DataFrame:
    """Per variant, metric and epoch: ``mean``, ``spread`` and ``n`` over seeds of loss,
    val_acc and acc (the mean over a run's test sets); a seed's value is the mean over the
    variant's splits. Only runs evaluated every epoch (``per_epoch``)."""
    tests = _check(frame, error)
    per_epoch = tests["per_epoch"].astype(bool)
    if not per_epoch.any():
        raise DataError("curves need per-epoch runs (evaluated after every epoch); these runs "
                        "were evaluated once, at their end (re-identification runs always are)")
    if not per_epoch.all():
        left_out = tests.loc[~per_epoch, "run_id"].nunique()
        warnings.warn(f"curves leave out {count(left_out, 'run')} evaluated only at their end")
    tests = tests[per_epoch]
    splits = tests.groupby("variant")["split"].unique().map(frozenset)
    if splits.nunique() > 1:  # a variant's mean would then cover other targets than another's
        counts = ", ".join(f"{v} {len(s)}" for v, s in splits.items())
        warnings.warn(f"curves average over different splits per variant ({counts})")
    per_run = tests.groupby(["variant", "seed", "run_id", "epoch"], sort=False).agg(
        loss=("loss", "first"), val_acc=("val_acc", "first"), acc=("acc", "mean"))
    per_seed = per_run.astype(float).groupby(["variant", "seed", "epoch"]).mean().reset_index()
    parts = []
    for metric, (_, percent) in CURVES.items():
        stats = _over_seeds(per_seed, ["variant", "epoch"], metric, error)
        if percent:
            stats[["mean", "spread"]] *= 100.0
        parts.append(stats.assign(metric=metric))
    return pd.concat(parts, ignore_index=True).sort_values(["metric", "variant", "epoch"])


def curves_figure(frame: pd.DataFrame, error: str = "std") -> Any:
    """Training curves per epoch: one subplot per metric (loss, source-validation and test
    accuracy), one line per variant with a band of the spread over seeds."""
    data = curve_data(frame, error)
    metrics = [m for m in CURVES if (data["metric"] == m).any()]
    variants = _order(data["variant"])
    room, tall = legend_size(variants, "variant")
    fig = new_figure(4.2 * len(metrics) + room, max(3.8, tall))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        for i, variant in enumerate(variants):
            d = data[(data["metric"] == metric) & (data["variant"] == variant)]
            if d.empty:
                continue
            x, mean, spread = (d[c].to_numpy(dtype=float) for c in ("epoch", "mean", "spread"))
            ax.plot(x, mean, marker="o", markersize=3, color=f"C{i % 10}", label=variant)
            ax.fill_between(x, mean - spread, mean + spread, color=f"C{i % 10}", alpha=0.2,
                            linewidth=0)
        ax.set_title(CURVES[metric][0], fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    legend(axes[-1], *axes[0].get_legend_handles_labels(), "variant")  # beside the plots
    tests = frame[(frame["role"] == "test") & frame["per_epoch"].astype(bool)]
    fig.suptitle(_title(tests, "training curves (a seed's value: the mean over its splits)",
                        error, how="line: mean, band:"), fontsize=10)
    return fig


# -- sweep --------------------------------------------------------------------------------------
def _config_value(cfg: Any, key: str) -> Any:
    """The dotted ``key`` of a run's config dict (lists as comma-joined text); None where the
    run has no such key."""
    value = dotted.get(cfg, key)
    return ",".join(map(str, value)) if isinstance(value, list) else value


def _flat(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys of ``cfg``, lists as comma-joined text."""
    return {k: ",".join(map(str, v)) if isinstance(v, list) else v
            for k, v in flatten(cfg, prefix).items()}


def varying_keys(frame: pd.DataFrame) -> list[str]:
    """The keys a sweep can use: frame columns (``aug.<argument>``, ``insert`` ...) and dotted
    config keys with two values or more among the test runs that have them."""
    runs = frame[frame["role"] == "test"].drop_duplicates("run_id")
    cols = [c for c in runs.columns if (c.startswith("aug.") or c in _SWEEP_COLUMNS)
            and c not in _NOT_SWEPT and runs[c].dropna().astype(str).nunique() > 1]
    skip = set(C.PER_RUN) | set(C.NOT_IDENTITY) | {"aug.insert", "aug.names"}
    flat = pd.DataFrame([_flat(c) for c in runs["config"]]) if len(runs) else pd.DataFrame()
    keys = [k for k in flat.columns if k not in skip and not k.startswith("aug.args.")
            and flat[k].dropna().astype(str).nunique() > 1]
    return cols + sorted(keys)


def _swept(runs: pd.DataFrame, by: str | None, available: list[str]) -> pd.Series:
    """Each run's value of ``by``: a frame column, else a dotted key of its config."""
    names = ", ".join(available) or "none (no setting but the augmenter differs)"
    if by is None:
        raise DataError(f"a sweep plot needs --by KEY, the swept key; keys that vary: {names}")
    if by in runs.columns and by not in _NOT_SWEPT and by != "config":
        values = runs[by].astype(object)
    else:
        values = pd.Series([_config_value(c, by) for c in runs["config"]], index=runs.index,
                           dtype=object)
    values = values.where(values.notna(), None)
    if values.map(str)[values.notna()].nunique() < 2:
        what = "does not vary between the runs" if values.notna().any() else \
            "is neither a results column nor a config key of these runs"
        raise DataError(f"--by {by} {what}; keys that vary: {names}")
    return values


def sweep_data(frame: pd.DataFrame, by: str | None, select: str = "last",
               error: str = "std") -> pd.DataFrame:
    """Per augmenter and value ``x`` of ``by``: ``mean``, ``spread`` and ``n`` over seeds of
    the selected epoch's score (%; a seed's value is the mean over its splits). Runs without
    the key (``x`` None) give one row per augmenter: the reference line."""
    _check(frame, error, select)
    if select == "oracle":
        raise DataError("--select oracle keeps one hyperparameter setting per seed and split, "
                        "so a sweep plot would hide the others; plot the sweep with --select "
                        "last (or val, loo)")
    available = varying_keys(frame)
    runs = select_epochs(frame, select).drop_duplicates("run_id")
    runs = runs.assign(x=_swept(runs, by, available).to_numpy(), pct=100.0 * runs["score"])
    runs["xkey"] = runs["x"].map(repr)  # None and the values alike, as group keys
    mixed = runs.groupby(["aug", "xkey"])["variant"].unique()
    for (aug, _), variants in mixed.items():
        if len(variants) > 1:
            raise DataError(f"{aug} runs at one {by} value differ in more settings "
                            f"({'; '.join(variants)}): plot one swept key at a time")
    per_seed = runs.groupby(["aug", "xkey", "seed"], sort=False).agg(
        x=("x", "first"), pct=("pct", "mean")).reset_index()
    stats = _over_seeds(per_seed, ["aug", "xkey"], "pct", error)
    stats["x"] = stats["xkey"].map(dict(zip(per_seed["xkey"], per_seed["x"])))
    present = stats["x"].dropna()
    numeric = all(isinstance(v, numbers.Number) and not isinstance(v, bool) for v in present)
    stats["x"] = [None if pd.isna(v) else (float(v) if numeric else str(v)) for v in stats["x"]]
    # runs of one family (the label without the searched hyperparameters) that differ in x:
    # x is a hyperparameter the augmenter declares for a search
    swept = runs[runs["x"].notna()]
    searched = bool(len(swept)) and bool(
        (swept.groupby("family")["xkey"].nunique() > 1).any())
    stats = stats.drop(columns="xkey").assign(numeric=numeric, searched=searched)
    order = {a: i for i, a in enumerate(_order(stats["aug"]))}
    stats = stats.assign(rank=stats["aug"].map(order))
    return stats.sort_values(["rank", "x"], na_position="last").drop(columns="rank")


def log_axis(values: list[float], searched: bool) -> bool:
    """Whether a numeric swept key is drawn on a log axis: its values are positive and span
    two decades or more, or it is a hyperparameter the augmenter searches and they span more
    than one. Records name the searched hyperparameters but not their distributions, so the
    spread of the values tells: a log-uniform search (EFDMix's and MixStyle's alpha over
    [0.01, 1]) spreads its samples over decades, while a uniform one over [0.1, 1] (their p)
    spans a decade at most."""
    if not values or min(values) <= 0:
        return False
    span = max(values) / min(values)
    return span >= 100 or (searched and span > 10)


def sweep_figure(frame: pd.DataFrame, by: str | None, select: str = "last",
                 error: str = "std") -> Any:
    """The selected epoch's score against the swept key ``by``, one line per augmenter with
    error bars (the spread over seeds); a numeric key on a numeric axis (log where
    :func:`log_axis` says), any other in sorted order."""
    data = sweep_data(frame, by, select, error)
    swept = data[data["x"].notna()]
    numeric = bool(data["numeric"].iloc[0])
    ticks = sorted(set(swept["x"]))
    where = (lambda v: v) if numeric else {v: i for i, v in enumerate(ticks)}.__getitem__
    lines = list(dict.fromkeys(data["aug"]))
    room, tall = legend_size(lines + [f"{a} (no {by})" for a in lines], "augmenter")
    fig = new_figure(max(4.5, 0.7 * len(ticks) + 2.0) + room, max(4.4, tall))
    ax = fig.add_subplot()
    for i, aug in enumerate(dict.fromkeys(data["aug"])):
        color = f"C{i % 10}"
        d = swept[swept["aug"] == aug]
        if len(d):
            ax.errorbar([where(v) for v in d["x"]], d["mean"], yerr=d["spread"], marker="o",
                        capsize=3, color=color, label=aug)
        for _, ref in data[(data["aug"] == aug) & data["x"].isna()].iterrows():
            ax.axhline(ref["mean"], color=color, linestyle="--", label=f"{aug} (no {by})")
            ax.axhspan(ref["mean"] - ref["spread"], ref["mean"] + ref["spread"], color=color,
                       alpha=0.12, linewidth=0)
    if numeric and log_axis(ticks, bool(data["searched"].iloc[0])):
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(range(len(ticks)), ticks, rotation=30 if len(ticks) > 5 else 0)
    elif len(ticks) <= 10:  # a tick at each swept value, as short as keeps them apart
        shown = distinct_texts(ticks, digits=3)
        ax.set_xticks(ticks, [shown[json.dumps(v)] for v in ticks],
                      rotation=30 if len(ticks) > 5 else 0)
        ax.minorticks_off()
    ax.set_xlabel(by)
    ax.set_ylabel(f"{view(frame['task'].iloc[0]).score} (%), mean over splits")
    ax.grid(alpha=0.3)
    legend(ax, *ax.get_legend_handles_labels(), "augmenter")
    ax.set_title(_title(frame[frame["role"] == "test"], f"sensitivity to {by}, epoch "
                        f"selection '{select}'", error), fontsize=10)
    return fig


@dataclass(frozen=True)
class Kind:
    """One kind of plot: what it shows (for ``--help``) and its figure of (frame, by, select,
    error)."""

    help: str
    figure: Callable[[pd.DataFrame, str | None, str, str], Any]


KINDS = {
    "bars": Kind("per-target means with error bars",
                 lambda frame, by, select, error: bars_figure(frame, select, error)),
    "curves": Kind("loss, source-val and test accuracy per epoch over seeds",
                   lambda frame, by, select, error: curves_figure(frame, error)),
    "sweep": Kind("the score over --by", sweep_figure),
}
