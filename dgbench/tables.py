"""Comparison tables as pure functions of run records.

Rows are augmenters (with the settings that tell rows apart), columns are the protocol's
splits (held-out target domains under LODO) plus Avg; a cell is the mean and population
standard deviation (ddof=0, as EFDM and Dassl report) over seeds of the test accuracy.
Missing and unfinished runs are listed by name, never dropped silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FORMATS = ("markdown", "latex", "csv")
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


@dataclass
class Table:
    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], list[float]]  # (row, column) -> accuracies (%), one per seed
    seeds: list[int]
    protocol: str
    missing: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)

    def stats(self, row: str, col: str) -> tuple[float, float, int] | None:
        values = self.cells.get((row, col))
        if not values:
            return None
        return float(np.mean(values)), float(np.std(values, ddof=0)), len(values)

    def average(self, row: str) -> float | None:
        means = [self.stats(row, c) for c in self.columns]
        if any(m is None for m in means):
            return None
        return float(np.mean([m[0] for m in means]))  # type: ignore[index]

    def caption(self) -> str:
        what = {"lodo": "held-out target domain"}.get(self.protocol, "split")
        return (
            f"Test accuracy (%) per {what} ({self.protocol}); each cell is the mean ± "
            f"population std (ddof=0) over seeds {', '.join(map(str, self.seeds))} of the "
            "last-epoch model; (n=k) marks a cell with fewer seeds; Avg is the mean of the "
            "per-column means; X is a missing cell."
        )


def build_table(records: list[dict[str, Any]], unfinished: list[dict[str, Any]] = ()) -> Table:
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

    col_index: dict[str, int] = {}
    cells: dict[tuple[str, str], list[float]] = {}
    seen: dict[tuple[str, str], set[int]] = {}
    for rec, g in zip(records, group_key):
        col = rec["split"]["name"]
        col_index.setdefault(col, rec["split"].get("index", len(col_index)))
        cells.setdefault((labels[g], col), []).append(100.0 * rec["final"]["score"])
        seen.setdefault((labels[g], col), set()).add(rec["seed"])
    seeds = sorted({r["seed"] for r in records} | {u["config"]["seeds"][0] for u in unfinished if "config" in u})
    columns = sorted(col_index, key=lambda c: (col_index[c], c))
    rows = sorted(dict.fromkeys(labels[g] for g in groups), key=lambda r: (not r.startswith("none"), r))
    protocol = records[0]["config"]["protocol"]["name"] if records else "?"

    missing = [
        f"{row}, seed {s}, {col}"
        for row in rows for col in columns for s in seeds
        if s not in seen.get((row, col), set())
    ]
    unfinished_names = [
        u.get("label", u.get("run_id", "?")) + (f" ({u['run_id']})" if "run_id" in u else "")
        for u in unfinished
    ]
    return Table(rows, columns, cells, seeds, protocol, missing, unfinished_names)


def _cell(table: Table, row: str, col: str, pm: str) -> str:
    s = table.stats(row, col)
    if s is None:
        return "X"
    mean, std, n = s
    tail = f" (n={n})" if n < len(table.seeds) else ""
    return f"{mean:.1f} {pm} {std:.1f}{tail}"


def render(table: Table, fmt: str = "markdown") -> str:
    """The table as markdown (default), LaTeX or CSV, with caption and missing runs."""
    from tabulate import tabulate

    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["row", "column", "mean", "std", "n", "values"])
        for row in table.rows:
            for col in table.columns:
                s = table.stats(row, col)
                if s:
                    vals = " ".join(f"{v:.2f}" for v in table.cells[(row, col)])
                    w.writerow([row, col, f"{s[0]:.2f}", f"{s[1]:.2f}", s[2], vals])
            avg = table.average(row)
            w.writerow([row, "Avg", "" if avg is None else f"{avg:.2f}", "", "", ""])
        return buf.getvalue()

    pm = "$\\pm$" if fmt == "latex" else "±"
    body = []
    for row in table.rows:
        avg = table.average(row)
        body.append([row] + [_cell(table, row, c, pm) for c in table.columns]
                    + ["X" if avg is None else f"{avg:.1f}"])
    headers = ["augmenter"] + table.columns + ["Avg"]
    notes = []
    if table.missing:
        notes.append(f"missing runs ({len(table.missing)}): " + "; ".join(table.missing))
    if table.unfinished:
        notes.append(f"unfinished runs ({len(table.unfinished)}): " + "; ".join(table.unfinished))
    if fmt == "latex":
        tab = tabulate(body, headers, tablefmt="latex_booktabs", disable_numparse=True)
        tab = tab.replace("\\$\\textbackslash{}pm\\$", "$\\pm$")
        lines = ["\\begin{table}[t]", "\\centering", f"\\caption{{{table.caption()}}}", tab,
                 "\\end{table}"] + [f"% {n}" for n in notes]
        return "\n".join(lines) + "\n"
    tab = tabulate(body, headers, tablefmt="pipe", disable_numparse=True)
    return "\n".join([table.caption(), "", tab] + ([""] + notes if notes else [])) + "\n"
