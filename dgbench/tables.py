"""Comparison tables as pure functions of run records.

Rows are augmenters (with the settings that tell rows apart), columns are the protocol's
splits (held-out target domains under LODO, the source domain under single-source) plus Avg;
a cell is the mean and population standard deviation (ddof=0, as EFDM and Dassl report) or
standard error over seeds of the test accuracy of the epoch a selection rule picks. Missing
and unfinished runs are listed by name, never dropped silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dgbench.errors import DataError

FORMATS = ("markdown", "latex", "csv")
SELECTIONS = {
    "last": "the last-epoch model (the published rule)",
    "val": "the epoch with the best source-validation accuracy (training-domain validation)",
    "oracle": "TEST-DOMAIN ORACLE: the epoch with the best test accuracy (optimistic; not a "
    "valid domain-generalization result)",
}
ERRORS = {
    "std": "population std (ddof=0)",
    "se": "standard error (population std / sqrt(n), as DomainBed)",
}
# Keys that never separate rows: they are what a row aggregates over, or bookkeeping.
_IGNORED = ("seeds", "protocol.targets", "experiment", "data.root")


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict):  # an empty mapping (no augmenter arguments) adds no key
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _short(key: str) -> str:
    if key.startswith("aug.args."):
        return key[len("aug.args."):]
    return {"aug.insert": "insert"}.get(key, key)


def _fmt(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def selected_epoch(record: dict[str, Any], rule: str) -> dict[str, Any]:
    """The history entry that ``rule`` picks; ``last`` is the final epoch.

    Never falls back to another rule: a record without per-epoch test accuracy cannot be
    judged by ``oracle``, and says so.
    """
    if rule not in SELECTIONS:
        raise DataError(f"selection must be one of {', '.join(SELECTIONS)}; got {rule!r}")
    history = record.get("history") or []
    if rule == "last" or not history:
        if rule != "last":
            raise DataError(f"run {record.get('run_id')} has no per-epoch history for --select {rule}")
        return {"score": record["final"]["score"],
                "test_acc": {k: v["acc"] for k, v in record["final"]["test"].items()},
                "epoch": len(history)}
    if any("score" not in h for h in history):
        raise DataError(
            f"run {record.get('run_id')} ({record.get('aug')} seed {record.get('seed')}) has no "
            f"per-epoch test accuracy, so --select {rule} cannot judge it; rerun it with --force"
        )
    key = "val_acc" if rule == "val" else "score"
    best = max(h[key] for h in history)
    return next(h for h in reversed(history) if h[key] == best)  # the latest of equal epochs


REID_METRICS = {"mAP": "mAP", "rank1": "R1", "rank5": "R5", "rank10": "R10"}


def _reid_values(record: dict[str, Any]) -> dict[str, tuple[int, float]]:
    """Columns of a reid run: mAP, R1, R5, R10 of the direction (the mean over the target's
    splits), then the same on split 0 alone when there are several (what EFDM reported)."""
    final = record["final"]
    direction = record["split"]["name"].split("#")[0]
    out = {f"{direction} {short}": (i, final["mean"][m]) for i, (m, short) in enumerate(REID_METRICS.items())}
    first = next(iter(final["test"]))
    if len(final["test"]) > 1 and first.endswith("#0"):
        out.update({f"{direction} split 0 {short}": (10 + i, final["test"][first][m])
                    for i, (m, short) in enumerate(REID_METRICS.items())})
    return out


def _labels(records: list[dict[str, Any]]) -> list[str]:
    """A row label per record: the augmenter, plus the settings that tell its rows apart."""
    flat_cfgs = [_flatten(r["config"]) for r in records]
    for f in flat_cfgs:
        for key in list(f):
            if key in _IGNORED:
                del f[key]
        if f.get("aug.names") == ["none"]:  # the identity is the same wherever it sits
            f.pop("aug.insert", None)
    # A group is a set of runs whose configs agree on everything but the seed and split.
    group_key = [json.dumps(f, sort_keys=True, default=str) for f in flat_cfgs]
    groups = list(dict.fromkeys(group_key))
    rep = {g: flat_cfgs[group_key.index(g)] for g in groups}
    keys = sorted(set().union(*rep.values())) if rep else []

    def varies(members: list[str], key: str) -> bool:  # among the groups that have the key
        return len({json.dumps(rep[g][key], default=str) for g in members if key in rep[g]}) > 1

    labels = {}
    for g in groups:
        name = rep[g]["aug.names"][0]
        same_aug = [h for h in groups if rep[h]["aug.names"][0] == name]
        extra = []
        for key in keys:
            if key == "aug.names" or key not in rep[g]:
                continue
            scope = same_aug if key.startswith("aug.args.") else groups
            if varies(scope, key):
                extra.append(f"{_short(key)}={_fmt(rep[g].get(key))}")
        labels[g] = f"{name} ({', '.join(extra)})" if extra else name
    return [labels[g] for g in group_key]


@dataclass
class Table:
    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], list[float]]  # (row, column) -> accuracies (%), one per seed
    seeds: list[int]
    protocol: str
    select: str = "last"
    error: str = "std"
    per_target: bool = False
    missing: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    row_configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # a record's config
    reid: bool = False  # ranking metrics: no Avg column, cells over seeds and training splits

    def stats(self, row: str, col: str) -> tuple[float, float, int] | None:
        values = self.cells.get((row, col))
        if not values:
            return None
        spread = float(np.std(values, ddof=0))
        if self.error == "se":
            spread /= np.sqrt(len(values))
        return float(np.mean(values)), spread, len(values)

    def average(self, row: str) -> float | None:
        if self.reid:  # mAP and Rank-k do not average into one number
            return None
        means = [self.stats(row, c) for c in self.columns]
        if any(m is None for m in means):
            return None
        return float(np.mean([m[0] for m in means]))  # type: ignore[index]

    def caption(self) -> str:
        if self.reid:
            return (
                "Person re-identification (%), source->target: mAP and CMC Rank-1/5/10 of the "
                "final model, cosine distance, torchreid's Market-1501 rules; a multi-split "
                "target's columns are the mean over its splits, and 'split 0' is split 0 alone; "
                f"each cell is the mean ± {ERRORS[self.error]} over seeds "
                f"{', '.join(map(str, self.seeds))} (and over the training splits when the "
                "source has several); X is a missing cell."
            )
        what = {
            "lodo": "held-out target domain",
            "single": "source domain (each column is the accuracy pooled over the other "
            "domains, whole)",
        }.get(self.protocol, "split")
        if self.per_target:
            what = "source -> target pair"
        return (
            f"Test accuracy (%) per {what} ({self.protocol}); each cell is the mean ± "
            f"{ERRORS[self.error]} over seeds {', '.join(map(str, self.seeds))} of "
            f"{SELECTIONS[self.select]}; (n=k) marks a cell with fewer seeds; Avg is the mean "
            "of the per-column means; X is a missing cell."
        )


def build_table(
    records: list[dict[str, Any]],
    unfinished: list[dict[str, Any]] = (),
    select: str = "last",
    error: str = "std",
    per_target: bool = False,
) -> Table:
    if error not in ERRORS:
        raise DataError(f"error must be one of {', '.join(ERRORS)}; got {error!r}")
    protocols = {r["config"]["protocol"]["name"] for r in records}
    if len(protocols) > 1:
        raise DataError(
            f"the records mix protocols ({', '.join(sorted(protocols))}); one table per "
            "protocol: point 'dgbench table' at one experiment folder"
        )
    reid = protocols == {"reid"}
    if reid and select != "last":
        raise DataError(f"reid runs are evaluated once, on the final model: --select {select} "
                        "does not apply (use last)")
    labels = _labels(records)
    col_order: dict[str, tuple[int, int]] = {}
    cells: dict[tuple[str, str], list[float]] = {}
    seen: dict[tuple[str, str], set[int]] = {}
    for rec, label in zip(records, labels):
        titles = rec.get("dataset", {}).get("titles", {})
        split, index = rec["split"]["name"], rec["split"].get("index", 0)
        if reid:
            index, values = 0, _reid_values(rec)
        else:
            chosen = selected_epoch(rec, select)
            if per_target:
                values = {
                    f"{titles.get(split, split)}->{titles.get(t, t)}": (i, acc)
                    for i, (t, acc) in enumerate(chosen["test_acc"].items())
                }
            else:
                values = {titles.get(split, split): (0, chosen["score"])}
        for col, (sub, acc) in values.items():
            col_order.setdefault(col, (index, sub))
            cells.setdefault((label, col), []).append(100.0 * acc)
            seen.setdefault((label, col), set()).add(rec["seed"])
    seeds = sorted({r["seed"] for r in records}
                   | {u["config"]["seeds"][0] for u in unfinished if "config" in u})
    columns = sorted(col_order, key=lambda c: (col_order[c], c))
    rows = sorted(dict.fromkeys(labels), key=lambda r: (not r.startswith("none"), r))
    missing = [
        f"{row}, seed {s}, {col}"
        for row in rows for col in columns for s in seeds
        if s not in seen.get((row, col), set())
    ]
    unfinished_names = [
        u.get("label", u.get("run_id", "?")) + (f" ({u['run_id']})" if "run_id" in u else "")
        for u in unfinished
    ]
    protocol = protocols.pop() if protocols else "?"
    row_configs = {label: rec["config"] for rec, label in zip(records, labels)}
    return Table(rows, columns, cells, seeds, protocol, select, error, per_target,
                 missing, unfinished_names, row_configs, reid)


def paper_comparison(table: Table) -> list[list[str]]:
    """Rows of ours / published / difference for every row with a published counterpart."""
    from dgbench.published import lookup

    out = []
    for row in table.rows:
        for pub in lookup(table.row_configs[row]) if not table.per_target else []:
            ours = [table.stats(row, c) for c in table.columns]
            out.append([f"{row} (ours)"] + [f"{s[0]:.1f}" if s else "X" for s in ours]
                       + [_avg_text(table.average(row))])
            out.append([pub.source] + [
                f"{pub.cells[c][0]:.1f} ± {pub.cells[c][1]:.1f}" if c in pub.cells else "-"
                for c in table.columns] + [f"{pub.avg:.1f}"])
            diffs = [f"{s[0] - pub.cells[c][0]:+.1f}" if s and c in pub.cells else "-"
                     for s, c in zip(ours, table.columns)]
            avg = table.average(row)
            out.append(["difference (ours - paper)"] + diffs
                       + [f"{avg - pub.avg:+.1f}" if avg is not None else "-"])
    return out


def _avg_text(avg: float | None) -> str:
    return "X" if avg is None else f"{avg:.1f}"


def _cell(table: Table, row: str, col: str, pm: str) -> str:
    s = table.stats(row, col)
    if s is None:
        return "X"
    mean, std, n = s
    tail = f" (n={n})" if n < len(table.seeds) else ""
    return f"{mean:.1f} {pm} {std:.1f}{tail}"


def render(table: Table, fmt: str = "markdown", compare_paper: bool = False) -> str:
    """The table as markdown (default), LaTeX or CSV, with caption and missing runs.

    ``compare_paper`` adds the published numbers (PROTOCOLS.md) beside ours, with the
    difference, for every row that has them.
    """
    from tabulate import tabulate

    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if compare_paper and fmt == "csv":
        raise DataError("--compare-paper renders markdown or latex, not csv")
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["row", "column", "mean", table.error, "n", "values"])
        for row in table.rows:
            for col in table.columns:
                s = table.stats(row, col)
                if s:
                    vals = " ".join(f"{v:.2f}" for v in table.cells[(row, col)])
                    w.writerow([row, col, f"{s[0]:.2f}", f"{s[1]:.2f}", s[2], vals])
            avg = table.average(row)
            if not table.reid:
                w.writerow([row, "Avg", "" if avg is None else f"{avg:.2f}", "", "", ""])
        return buf.getvalue()

    pm = "$\\pm$" if fmt == "latex" else "±"
    body = []
    for row in table.rows:
        avg = table.average(row)
        body.append([row] + [_cell(table, row, c, pm) for c in table.columns]
                    + ([] if table.reid else [_avg_text(avg)]))
    headers = ["augmenter"] + table.columns + ([] if table.reid else ["Avg"])
    notes = []
    if table.missing:
        notes.append(f"missing runs ({len(table.missing)}): " + "; ".join(table.missing))
    if table.unfinished:
        notes.append(f"unfinished runs ({len(table.unfinished)}): " + "; ".join(table.unfinished))
    compared = paper_comparison(table) if compare_paper else []
    if compare_paper and not compared:
        notes.append("no published numbers for these rows (PROTOCOLS.md lists PACS LODO and "
                     "single-source, ResNet-18/50, MixStyle/EFDMix)")
    if fmt == "latex":
        def latex(rows: list[list[str]]) -> str:
            tab = tabulate(rows, headers, tablefmt="latex_booktabs", disable_numparse=True)
            return tab.replace("\\$\\textbackslash{}pm\\$", "$\\pm$").replace("±", "$\\pm$")

        lines = ["\\begin{table}[t]", "\\centering", f"\\caption{{{table.caption()}}}",
                 latex(body), "\\end{table}"]
        if compared:
            lines += ["\\begin{table}[t]", "\\centering",
                      "\\caption{Ours beside the published numbers (PROTOCOLS.md).}",
                      latex(compared), "\\end{table}"]
        return "\n".join(lines + [f"% {n}" for n in notes]) + "\n"
    parts = [table.caption(), "", tabulate(body, headers, tablefmt="pipe", disable_numparse=True)]
    if compared:
        parts += ["", "Ours beside the published numbers (PROTOCOLS.md; published cells are "
                  "mean ± population std over 5 seeds):", "",
                  tabulate(compared, headers, tablefmt="pipe", disable_numparse=True)]
    return "\n".join(parts + ([""] + notes if notes else [])) + "\n"
