"""A comparison table (:class:`dgbench.tables.Table`) as text: markdown, LaTeX (booktabs), CSV,
or a DomainBed-style plain-text table (``collect_results``' layout: an Algorithm column, one
``mean +/- err`` column per environment and Avg).

The best mean of each column is set in bold (markdown and LaTeX) unless turned off; cells whose
paired difference from a baseline is significant (:func:`dgbench.stats.mark_significant`) carry
a dagger. Captions say what every number is: protocol, selection rule, estimator, seeds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dgbench.errors import DataError

if TYPE_CHECKING:  # tables imports this module; the type is only needed for hints
    from dgbench.tables import Table

FORMATS = ("markdown", "latex", "csv", "domainbed")
MARK = "†"
#: DomainBed's names for the model-selection methods, where ours is one of them
DOMAINBED_SELECTION = {
    "last": "last epoch (no model selection)",
    "val": "training-domain validation set",
    "loo": "leave-one-domain-out cross-validation",
    "oracle": "test-domain validation set (oracle)",
    "test-best": "best test-domain epoch (optimistic)",
}


def render(table: Table, fmt: str = "markdown", compare_paper: bool = False,
           bold: bool = True) -> str:
    """The table as markdown (default), LaTeX, CSV or DomainBed-style text, with its caption
    and the runs it misses.

    ``compare_paper`` adds the published numbers (:mod:`dgbench.published`) beside ours,
    with the difference, for every row that has them; ``bold`` sets the best mean of each
    column in bold (markdown and LaTeX).
    """
    from tabulate import tabulate

    from dgbench.tables import paper_comparison

    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if compare_paper and fmt in ("csv", "domainbed"):
        raise DataError(f"--compare-paper renders markdown or latex, not {fmt}")
    if fmt == "csv":
        return _csv(table)
    notes = _notes(table)
    if fmt == "domainbed":
        return _domainbed(table, notes)
    compared, uncompared = paper_comparison(table) if compare_paper else ([], [])
    notes += uncompared
    if compare_paper and not compared and not uncompared:
        notes.append("no published numbers for these rows (dgbench knows EFDM's and MixStyle's "
                     "PACS LODO and single-source tables, ResNet-18/50, and their OSNet / "
                     "ResNet-50 re-identification rows; see dgbench/published.py)")
    best = best_cells(table) if bold else set()
    caption = table.caption() + (" Bold: the best mean of its column." if best else "")
    body = _body(table, fmt, best)
    headers = ["augmenter"] + table.columns + (["Avg"] if table.task.averages else [])
    if fmt == "latex":
        return _latex(caption, headers, body, compared, notes)
    parts = [caption, "", tabulate(body, headers, tablefmt="pipe", disable_numparse=True)]
    if compared:
        parts += ["", "Ours beside the published numbers (EFDM, CVPR 2022; MixStyle, ICLR "
                  "2021; published cells are mean ± population std over 5 seeds):", "",
                  tabulate(compared, headers, tablefmt="pipe", disable_numparse=True)]
    return "\n".join(parts + ([""] + notes if notes else [])) + "\n"


def _notes(table: Table) -> list[str]:
    notes = []
    if table.missing:
        notes.append(f"missing runs ({len(table.missing)}): " + "; ".join(table.missing))
    if table.unfinished:
        notes.append(f"unfinished runs ({len(table.unfinished)}): " + "; ".join(table.unfinished))
    if table.failed:
        notes.append(f"failed runs ({len(table.failed)}), not counted: " + "; ".join(table.failed))
    empty = [c for c in table.columns if not any((r, c) in table.cells for r in table.rows)]
    if empty:
        notes.append(f"no finished runs yet for {', '.join(empty)}: its column is empty and "
                     "no Avg covers it")
    return notes


def best_cells(table: Table) -> set[tuple[str, str]]:
    """(row, column) of the best mean in each column (Avg included), as printed (one
    decimal): ties all count; a column where fewer than two rows have a value, or every row
    ties, has none."""
    means: dict[str, dict[str, float]] = {}
    for col in table.columns:
        found = {r: table.stats(r, col) for r in table.rows}
        means[col] = {r: s[0] for r, s in found.items() if s is not None}
    if table.task.averages:
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


def _decorate(text: str, bold: bool, marked: bool, fmt: str) -> str:
    if bold:
        text = f"\\textbf{{{text}}}" if fmt == "latex" else f"**{text}**"
    if marked:
        text += "$^\\dagger$" if fmt == "latex" else MARK
    return text


def _number(value: float) -> str:
    return "-" if value != value else f"{value:.1f}"  # NaN: an estimator that needs n >= 2


def _body(table: Table, fmt: str, best: set[tuple[str, str]]) -> list[list[str]]:
    """Rows of cell texts: ``mean ± err`` (``+/-`` for DomainBed), bold and dagger where due,
    (n=k) where a cell has fewer runs than its column expects, X where it has none."""
    pm = {"latex": "$\\pm$", "domainbed": "+/-"}.get(fmt, "±")
    body = []
    for row in table.rows:
        line = [tex(row) if fmt == "latex" else row]
        for col in table.columns:
            s = table.stats(row, col)
            if s is None:
                line.append("X")
                continue
            mean, err, n = s
            tail = f" (n={n})" if n < table.expected[col] else ""
            line.append(_decorate(f"{mean:.1f} {pm} {_number(err)}", (row, col) in best,
                                  table.significant(row, col), fmt) + tail)
        if table.task.averages:
            avg = table.average(row)
            line.append("X" if avg is None else _decorate(
                f"{avg:.1f}", (row, "Avg") in best, table.significant(row, "Avg"), fmt))
        body.append(line)
    return body


def booktabs(headers: list[str], rows: list[list[str]]) -> str:
    """A booktabs ``tabular`` of cells that are LaTeX already (escape text with :func:`tex`)."""
    lines = ["\\begin{tabular}{l" + "r" * (len(headers) - 1) + "}", "\\toprule",
             " & ".join(headers) + " \\\\", "\\midrule"]
    lines += [" & ".join(row) + " \\\\" for row in rows]
    return "\n".join(lines + ["\\bottomrule", "\\end{tabular}"])


def _latex(caption: str, headers: list[str], body: list[list[str]], compared: list[list[str]],
           notes: list[str]) -> str:
    heads = [tex(h) for h in headers]
    lines = ["\\begin{table}[t]", "\\centering", f"\\caption{{{tex(caption)}}}",
             booktabs(heads, body), "\\end{table}"]
    if compared:
        lines += ["\\begin{table}[t]", "\\centering",
                  "\\caption{Ours beside the published numbers (EFDM, CVPR 2022; MixStyle, "
                  "ICLR 2021).}", booktabs(heads, [[tex(c) for c in r] for r in compared]),
                  "\\end{table}"]
    return "\n".join(lines + [f"% {n}" for n in notes]) + "\n"


TEX = {"\\": "\\textbackslash{}", "%": "\\%", "&": "\\&", "_": "\\_", "#": "\\#", "$": "\\$",
       "{": "\\{", "}": "\\}", "~": "\\textasciitilde{}", "^": "\\^{}", "±": "$\\pm$",
       MARK: "$^\\dagger$", "<": "$<$", ">": "$>$", "−": "-"}


def tex(text: str) -> str:
    """``text`` safe in LaTeX: its special characters escaped, ± as $\\pm$, † as a dagger."""
    return "".join(TEX.get(ch, ch) for ch in text)


def _domainbed(table: Table, notes: list[str]) -> str:
    """DomainBed's ``collect_results`` layout: a header line naming the dataset and the
    selection method, then Algorithm / one column per environment / Avg, left-justified."""
    from dgbench.tables import ERRORS

    headers = ["Algorithm"] + table.columns + (["Avg"] if table.task.averages else [])
    rows = [headers] + _body(table, "domainbed", set())
    widths = [max(20, max(len(r[i]) for r in rows) + 2) for i in range(len(headers))]
    text = ["".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    seeds = ", ".join(map(str, table.seeds))
    head = (f"-------- Dataset: {table.dataset or '?'} ({table.protocol}), model selection "
            f"method: {DOMAINBED_SELECTION[table.select]}")
    avg = "; Avg: the mean of the columns' means" if table.task.averages else ""
    tail = [f"cells: mean +/- {ERRORS[table.error]} over seeds {seeds}{avg}; X: a missing cell",
            *table.notes]
    return "\n".join([head] + text + [""] + tail + ([""] + notes if notes else [])) + "\n"


def _csv(table: Table) -> str:
    """One line per cell: row, column, mean, spread, n and every value; with p-values
    against a baseline (``--mark-significant``), also p and whether it is below alpha."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    marked = bool(table.pvalues)
    w.writerow(["row", "column", "mean", table.error, "n", "values"]
               + (["p", "significant"] if marked else []))

    def extra(row: str, col: str) -> list[str]:
        if not marked:
            return []
        p = table.pvalues.get((row, col))
        return ["" if p is None or p != p else f"{p:.4g}", str(table.significant(row, col))]

    for row in table.rows:
        for col in table.columns:
            s = table.stats(row, col)
            if s:
                vals = " ".join(f"{v:.2f}" for v in table.cells[(row, col)])
                err = "" if s[1] != s[1] else f"{s[1]:.2f}"
                w.writerow([row, col, f"{s[0]:.2f}", err, s[2], vals] + extra(row, col))
        if table.task.averages:
            avg = table.average(row)
            w.writerow([row, "Avg", "" if avg is None else f"{avg:.2f}", "", "", ""]
                       + extra(row, "Avg"))
    return buf.getvalue()
