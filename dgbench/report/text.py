"""A comparison table (:class:`dgbench.results.tables.Table`) as text: markdown, LaTeX
(booktabs), CSV, or a DomainBed-style plain-text table (``collect_results``' layout: an
Algorithm column, one ``mean +/- err`` column per environment and Avg).

Every format shows the same cells (:func:`dgbench.results.tables.grid`): the best mean of each
column in bold (markdown and LaTeX) unless turned off, an up arrow where the paired difference
from a baseline is significantly better and a down arrow where it is significantly worse,
``(n=k)`` where a cell has fewer runs than its column expects, and no error bar on a cell of
one run. Captions say what every number is: protocol, selection rule, estimator, seeds.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Callable

from tabulate import tabulate

from dgbench.core.errors import DataError
from dgbench.results.estimators import ESTIMATORS
from dgbench.results.labels import count, seeds_text
from dgbench.results.published import lookup, recipe_differences
from dgbench.results.selection import RULES
from dgbench.results.stats import TESTS
from dgbench.results.tables import Cell, Significance, Table, grid, nothing_finished

#: the mark of a cell significantly better / worse than the baseline (LaTeX: superscripts)
MARKS = {"better": "↑", "worse": "↓"}
LATEX_MARKS = {"better": "$^\\uparrow$", "worse": "$^\\downarrow$"}
ONE_RUN = "A cell of one run shows its mean alone: one run has no error bar."
PUBLISHED_SOURCES = "EFDM, CVPR 2022; MixStyle, ICLR 2021"


@dataclass(frozen=True)
class Format:
    name: str
    help: str
    paper: bool  # whether --compare-paper can sit beside it


def render(table: Table, fmt: str = "markdown", compare_paper: bool = False,
           bold: bool = True) -> str:
    """The table as markdown (default), LaTeX, CSV or DomainBed-style text, with its caption
    and the runs it misses.

    ``compare_paper`` adds the published numbers (:mod:`dgbench.results.published`) beside
    ours, with the difference, for every row that has them; ``bold`` sets the best mean of
    each column in bold (markdown and LaTeX).
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if compare_paper and not FORMATS[fmt].paper:
        raise DataError(f"--compare-paper renders markdown or latex, not {fmt}")
    return RENDERERS[fmt](table, compare_paper, bold)


def caption(table: Table) -> str:
    """The task's caption (or, with no finished run, what there is instead), the table's
    own notes, and what the arrows mean where cells are marked."""
    head = table.view.caption(table) if table.rows else nothing_finished(table)
    return " ".join([head, *caption_notes(table)])


def caption_notes(table: Table) -> list[str]:
    sig = table.significance
    one_run = any(c.value is not None and c.n == 1 for _, cells in grid(table, False)
                  for c in cells)
    return [*table.notes, *([ONE_RUN] if one_run else []),
            *([significance_note(sig)] if sig is not None else [])]


def significance_note(sig: Significance) -> str:
    """What the arrows mean: the test, the threshold, how many pairs, and when no cell can
    reach the threshold with so few."""
    def span(ns: list[int]) -> str:
        return count(ns[0], "pair") if min(ns) == max(ns) else f"{min(ns)}-{max(ns)} pairs"

    per_col = sig.column_pairs or [0]
    text = (f"{MARKS['better']} marks a cell significantly better than {sig.baseline}, "
            f"{MARKS['worse']} one significantly worse: its paired difference from "
            f"{sig.baseline} has p < {sig.alpha:g} ({TESTS[sig.test]}; runs paired by split "
            f"and seed: {span(per_col)} per column"
            + (f", {span(sig.pooled_pairs)} pooled for Avg" if sig.pooled_pairs else "")
            + "; the sign of the mean difference says which way; not corrected for multiple "
            "comparisons).")
    smallest = min(1.0, 2 * 0.5 ** max(per_col))  # both tests, exact, no ties
    if smallest >= sig.alpha:
        text += (f" With {count(max(per_col), 'pair')} no column can reach p < {sig.alpha:g} "
                 f"(the smallest two-sided p is {smallest:.3g}).")
    return text


def notes(table: Table) -> list[str]:
    """The lines under a table: missing, unfinished and failed runs, empty columns."""
    out = []
    if table.missing:
        out.append(f"missing runs ({len(table.missing)}): " + "; ".join(table.missing))
    if table.unfinished:
        out.append(f"unfinished runs ({len(table.unfinished)}): " + "; ".join(table.unfinished))
    if table.failed:
        out.append(f"failed runs ({len(table.failed)}), not counted: " + "; ".join(table.failed))
    empty = [c for c in table.columns if not any((r, c) in table.cells for r in table.rows)]
    if empty:
        out.append(f"no finished runs yet for {', '.join(empty)}: its column is empty and "
                   "no Avg covers it")
    return out


def cell_text(cell: Cell, fmt: str) -> str:
    """``mean ± err`` (``+/-`` for DomainBed, ``$\\pm$`` in LaTeX; Avg and a cell of one
    run: the mean alone), bold and an arrow where due, then ``(n=k)``; X for a cell without
    runs."""
    if cell.value is None:
        return "X"
    if cell.error is None:
        text = f"{cell.value:.1f}"
    else:
        pm = {"latex": "$\\pm$", "domainbed": "+/-"}.get(fmt, "±")
        text = f"{cell.value:.1f} {pm} {_number(cell.error)}"
    if cell.bold:
        text = f"\\textbf{{{text}}}" if fmt == "latex" else f"**{text}**"
    if cell.mark:
        text += (LATEX_MARKS if fmt == "latex" else MARKS)[cell.mark]
    return text + (f" ({cell.footnote})" if cell.footnote else "")


def _number(value: float) -> str:
    return "-" if value != value else f"{value:.1f}"  # NaN: an estimator that needs n >= 2


def body(rows: list[tuple[str, list[Cell]]], fmt: str) -> list[list[str]]:
    """The texts of :func:`dgbench.results.tables.grid`'s rows, the row label first."""
    return [[tex(row) if fmt == "latex" else row, *(cell_text(c, fmt) for c in cells)]
            for row, cells in rows]


def _text(table: Table, compare_paper: bool, bold: bool, fmt: str) -> str:
    """Markdown or LaTeX: the caption, the table, the published rows, the notes."""
    lines = notes(table)
    compared, uncompared = paper_comparison(table) if compare_paper else ([], [])
    lines += uncompared
    if compare_paper and not compared and not uncompared:
        lines.append("no published numbers for these rows (dgbench knows EFDM's and MixStyle's "
                     "PACS LODO and single-source tables, ResNet-18/50, and their OSNet / "
                     "ResNet-50 re-identification rows; see dgbench/results/published.py)")
    cells = grid(table, bold)
    rows = body(cells, fmt)
    any_bold = any(c.bold for _, row in cells for c in row)
    text = caption(table) + (" Bold: the best mean of its column." if any_bold else "")
    if fmt == "latex":
        return _latex(text, table.headers, rows, compared, lines)
    parts = [text] + (["", tabulate(rows, table.headers, tablefmt="pipe",
                                    disable_numparse=True)] if rows else [])
    if compared:
        parts += ["", f"Ours beside the published numbers ({PUBLISHED_SOURCES}; published "
                  "cells are mean ± population std over 5 seeds):", "",
                  tabulate(compared, table.headers, tablefmt="pipe", disable_numparse=True)]
    return "\n".join(parts + ([""] + lines if lines else [])) + "\n"


def booktabs(headers: list[str], rows: list[list[str]]) -> str:
    """A booktabs ``tabular`` of cells that are LaTeX already (escape text with :func:`tex`)."""
    lines = ["\\begin{tabular}{l" + "r" * (len(headers) - 1) + "}", "\\toprule",
             " & ".join(headers) + " \\\\", "\\midrule"]
    lines += [" & ".join(row) + " \\\\" for row in rows]
    return "\n".join(lines + ["\\bottomrule", "\\end{tabular}"])


def latex_table(caption_text: str, tabular: str) -> list[str]:
    return ["\\begin{table}[t]", "\\centering", f"\\caption{{{caption_text}}}", tabular,
            "\\end{table}"]


def _latex(text: str, headers: list[str], rows: list[list[str]], compared: list[list[str]],
           lines: list[str]) -> str:
    heads = [tex(h) for h in headers]
    out = latex_table(tex(text), booktabs(heads, rows))
    if compared:
        out += latex_table(f"Ours beside the published numbers ({PUBLISHED_SOURCES}).",
                           booktabs(heads, [[tex(c) for c in r] for r in compared]))
    return "\n".join(out + [f"% {n}" for n in lines]) + "\n"


TEX = {"\\": "\\textbackslash{}", "%": "\\%", "&": "\\&", "_": "\\_", "#": "\\#", "$": "\\$",
       "{": "\\{", "}": "\\}", "~": "\\textasciitilde{}", "^": "\\^{}", "±": "$\\pm$",
       "↑": "$\\uparrow$", "↓": "$\\downarrow$", "<": "$<$", ">": "$>$", "−": "-"}


def tex(text: str) -> str:
    """``text`` safe in LaTeX: its special characters escaped, ± as $\\pm$, the arrows as
    math arrows."""
    return "".join(TEX.get(ch, ch) for ch in text)


def _domainbed(table: Table, compare_paper: bool, bold: bool) -> str:
    """DomainBed's ``collect_results`` layout: a header line naming the dataset and the
    selection method, then Algorithm / one column per environment / Avg, left-justified."""
    headers = ["Algorithm", *table.headers[1:]]
    rows = [headers] + body(grid(table, bold=False), "domainbed")
    widths = [max(20, max(len(r[i]) for r in rows) + 2) for i in range(len(headers))]
    text = ["".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    head = (f"-------- Dataset: {table.dataset or '?'} ({table.protocol}), model selection "
            f"method: {RULES[table.select].domainbed}")
    avg = "; Avg: the mean of the columns' means" if table.view.averages else ""
    what = ESTIMATORS[table.error].description
    tail = [f"cells: mean +/- {what} over {seeds_text(table.seeds)}{avg}; X: a missing cell"
            if table.rows else nothing_finished(table), *caption_notes(table)]
    lines = notes(table)
    return "\n".join([head] + text + [""] + tail + ([""] + lines if lines else [])) + "\n"


def _csv(table: Table, compare_paper: bool, bold: bool) -> str:
    """One line per cell: row, column, mean, spread (empty for one run), n and every value;
    with p-values against a baseline (``--mark-significant``), also p, whether it is below
    alpha, and which way (``better`` or ``worse`` than the baseline; empty when not)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    pvalues = table.significance.pvalues if table.significance else {}
    w.writerow(["row", "column", "mean", table.error, "n", "values"]
               + (["p", "significant", "direction"] if pvalues else []))

    def extra(row: str, col: str) -> list[str]:
        if not pvalues:
            return []
        p = pvalues.get((row, col))
        return ["" if p is None or p != p else f"{p:.4g}", str(table.significant(row, col)),
                table.direction(row, col)]

    for row in table.rows:
        for col in table.columns:
            s = table.stats(row, col)
            if s:
                vals = " ".join(f"{v:.2f}" for v in table.cells[(row, col)])
                err = "" if s[1] != s[1] else f"{s[1]:.2f}"
                w.writerow([row, col, f"{s[0]:.2f}", err, s[2], vals] + extra(row, col))
        if table.view.averages:
            avg = table.average(row)
            w.writerow([row, "Avg", "" if avg is None else f"{avg:.2f}", "", "", ""]
                       + extra(row, "Avg"))
    return buf.getvalue()


def paper_comparison(table: Table) -> tuple[list[list[str]], list[str]]:
    """Rows of ours / published / difference for every row whose runs used a published
    row's recipe, and a note for every published row that was not compared (and why)."""
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
            tail = [_avg_text(avg)] if table.view.averages else []
            out.append([f"{row} (ours)"] + [f"{s[0]:.1f}" if s else "X" for s in ours] + tail)
            out.append([pub.source + (f" ({pub.note})" if pub.note else "")] + [
                _published_cell(pub.cells[c]) if c in pub.cells else "-"
                for c in table.columns] + (["-" if pub.avg is None else f"{pub.avg:.1f}"]
                                           if table.view.averages else []))
            diffs = [f"{s[0] - pub.cells[c][0]:+.1f}" if s and c in pub.cells else "-"
                     for s, c in zip(ours, table.columns)]
            out.append(["difference (ours - paper)"] + diffs + (
                [f"{avg - pub.avg:+.1f}" if avg is not None and pub.avg is not None else "-"]
                if table.view.averages else []))
    return out, notes


def _published_cell(cell: tuple[float, float | None]) -> str:
    mean, std = cell
    return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"


def _avg_text(avg: float | None) -> str:
    return "X" if avg is None else f"{avg:.1f}"


FORMATS = {f.name: f for f in (
    Format("markdown", "a caption, a pipe table, the notes", paper=True),
    Format("latex", "a booktabs table with its caption", paper=True),
    Format("csv", "one line per cell, with every value", paper=False),
    Format("domainbed", "DomainBed's collect_results layout (mean +/- SE by default)",
           paper=False),
)}
RENDERERS: dict[str, Callable[[Table, bool, bool], str]] = {
    "markdown": lambda t, paper, bold: _text(t, paper, bold, "markdown"),
    "latex": lambda t, paper, bold: _text(t, paper, bold, "latex"),
    "csv": _csv, "domainbed": _domainbed}
