"""``dgbench report RESULTS -o report.html``: one self-contained HTML page per results folder.

For each experiment under the folder: the comparison table (bold best, daggers where the paired
difference from the baseline is significant), the paired comparison with the baseline, the
plots (per-target bars, training curves, and a sensitivity plot over a swept key when asked),
and what differs between the compared configs. Then, for the whole folder: the environment
the runs were made in, the deviations from the reference code they record, and the runs that
are missing, unfinished or failed. No network: CSS is inline and every image is a data URI, so
the file can be mailed or attached to a review as it is.
"""

from __future__ import annotations

import html
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from dgbench import __version__
from dgbench import config as C
from dgbench.core.errors import ConfigError, DataError
from dgbench.core.files import atomic_write_text
from dgbench.core.keys import flatten
from dgbench.report import compare, plots
from dgbench.report.text import MARK, caption, cell_text, notes
from dgbench.results import stats
from dgbench.results.frame import of_folder
from dgbench.results.labels import text as label_text
from dgbench.results.stats import Comparison
from dgbench.results.tables import Cell, Table, build_table, grid
from dgbench.store.records import scan_folder

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1f24;
       max-width: 1100px; margin: 2em auto; padding: 0 1.5em; background: #fff; }
h1 { font-size: 1.7em; margin-bottom: .2em; } h2 { margin-top: 2em; border-bottom: 2px solid #d0d7de; }
h3 { margin-top: 1.6em; } .meta, .caption, .note { color: #57606a; font-size: .9em; }
table { border-collapse: collapse; margin: .6em 0 1em; font-variant-numeric: tabular-nums; }
th, td { padding: .3em .7em; border-bottom: 1px solid #d0d7de; text-align: right; }
th:first-child, td:first-child { text-align: left; } th { background: #f6f8fa; }
td.sig { background: #e6f4ea; } img { width: 100%; border: 1px solid #eaeef2; margin: .4em 0; }
ul.runs { font-size: .9em; } code { background: #f6f8fa; padding: 0 .25em; }
"""


def _cell(body: str, tag: str = "td", cls: str = "") -> str:
    """One cell whose ``body`` is HTML already."""
    return f"<{tag}{f' class={cls!r}' if cls else ''}>{body}</{tag}>"


def _table_html(headers: list[str], rows: list[list[str]],
                classes: list[list[str]] | None = None) -> str:
    """An HTML table of text cells (escaped); ``classes``: a CSS class per cell."""
    def row(cells: list[str], cls: list[str]) -> str:
        return "<tr>" + "".join(_cell(html.escape(str(c)), "td", k) for c, k in zip(cells, cls)) \
            + "</tr>"

    return _wrap(headers, [row(r, classes[i] if classes else [""] * len(r))
                           for i, r in enumerate(rows)])


def _wrap(headers: list[str], rows: list[str]) -> str:
    head = "".join(_cell(html.escape(h), "th") for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _p(text: str, cls: str = "") -> str:
    return f"<p{f' class={cls!r}' if cls else ''}>{html.escape(text)}</p>"


def _list(items: list[str]) -> str:
    return "<ul class='runs'>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


def _value_html(c: Cell) -> str:
    """A table cell (:class:`dgbench.results.tables.Cell`): its value in bold when best, the
    dagger where significant, the (n=k) footnote."""
    if c.value is None:
        return "X"
    text = html.escape(cell_text(Cell(c.value, c.error, c.n), "markdown"))
    text = f"<strong>{text}</strong>" if c.bold else text
    return text + (MARK if c.mark else "") + (f" ({html.escape(c.footnote)})" if c.footnote else "")


def table_html(table: Table) -> str:
    """The table's cells as HTML, significant cells shaded."""
    rows = ["<tr>" + _cell(html.escape(row)) + "".join(
        _cell(_value_html(c), "td", "sig" if c.mark else "") for c in cells) + "</tr>"
        for row, cells in grid(table)]
    return _wrap(table.headers, rows)


def table_section(table: Table, baseline: str, test: str,
                  alpha: float) -> tuple[str, Comparison | None]:
    """The comparison table as HTML, with the significance marks when there is a baseline
    and something to compare it with; and the paired comparison (or None)."""
    found, note = None, ""
    try:
        found = stats.compare_table(table, baseline)
        stats.mark_significant(table, baseline, test, alpha)
    except DataError as exc:  # no baseline, or only the baseline: a table without marks
        note = f"No paired comparison: {exc}"
    parts = [_p(caption(table) + " Bold: the best mean of its column.", "caption"),
             table_html(table)]
    parts += [_p(n, "note") for n in notes(table)]  # missing, unfinished, failed, empty columns
    if note:
        parts.append(_p(note, "note"))
    return "\n".join(parts), found


#: the columns of :data:`dgbench.report.compare.HEADERS` that hold p-values, and which
P_COLUMNS = {compare.HEADERS.index("Wilcoxon p"): "wilcoxon", compare.HEADERS.index("sign p"): "sign"}


def comparison_section(found: Comparison, alpha: float = 0.05) -> str:
    """The paired comparison, its p-values below ``alpha`` shaded."""
    rows = [compare.row(r) for r in found.results]
    shade = [["sig" if i in P_COLUMNS and getattr(r, P_COLUMNS[i]) < alpha else ""
              for i in range(len(compare.HEADERS))] for r in found.results]  # NaN: not shaded
    parts = [_p(compare.caption(found) + f" Shaded: p < {alpha:g}.", "caption"),
             _table_html(compare.HEADERS, rows, shade)]
    if found.unmatched:
        parts += [_p(f"Unmatched runs ({len(found.unmatched)}), not compared:"),
                  _list(found.unmatched)]
    return "\n".join(parts)


def plots_section(frame: pd.DataFrame, select: str, error: str, by: str | None) -> str:
    """Bars, curves (per-epoch runs) and a sweep plot over ``by``, inlined as PNG data URIs;
    a note instead where matplotlib is missing or a plot does not apply."""
    made = []
    kinds = [("bars", lambda: plots.bars_figure(frame, select, error)),
             ("curves", lambda: plots.curves_figure(frame, error))]
    if by:
        kinds.append(("sweep", lambda: plots.sweep_figure(frame, by, select, error)))
    for kind, make in kinds:
        try:
            fig = make()
        except ConfigError as exc:  # matplotlib is not installed: say so once
            return _p(f"No plots: {exc}", "note")
        except DataError as exc:
            made.append(_p(f"No {kind} plot: {exc}", "note"))
            continue
        made.append(f"<img alt='{kind} plot' src='{plots.to_data_uri(fig)}'>")
    return "\n".join(made)


def differences(table: Table) -> tuple[list[str], list[list[str]]]:
    """The config keys whose values differ between the table's rows: a header and a row per
    key (the runs' own per-run keys, seeds and splits, left out)."""
    ignored = set(C.PER_RUN) | set(C.NOT_IDENTITY)
    flat = {r: {k: v for k, v in flatten(cfg).items() if k not in ignored}
            for r, cfg in table.row_configs.items()}
    keys = sorted({k for f in flat.values() for k in f})
    rows = [[k] + [label_text(flat[r].get(k, "-")) for r in table.rows] for k in keys
            if len({repr(flat[r].get(k)) for r in table.rows}) > 1]
    return ["config key"] + table.rows, rows


def environment_section(records: list[dict[str, Any]]) -> str:
    """What the runs were made with: each environment and device field with the number of
    runs of each value (one value is what a reader hopes for)."""
    counts: dict[str, Counter] = {}
    for r in records:
        for block in ("environment", "device"):
            for key, value in (r.get(block) or {}).items():
                text = label_text(value) if not isinstance(value, dict) else ", ".join(
                    f"{k} {v}" for k, v in value.items())
                counts.setdefault(f"{block}.{key}", Counter())[text] += 1
    rows = [[k, "; ".join(f"{v} ({n} runs)" if len(c) > 1 else v for v, n in c.most_common())]
            for k, c in sorted(counts.items())]
    return _table_html(["field", "value"], rows) if rows else _p("No environment recorded.")


def deviations_section(records: list[dict[str, Any]]) -> str:
    found = Counter(d for r in records for d in r.get("deviations") or [])
    if not found:
        return _p("The runs record no deviation from the reference code.")
    return _table_html(["deviation (as recorded in the runs)", "runs"],
                       [[d, str(n)] for d, n in found.most_common()])


def experiment_section(frame: pd.DataFrame, name: str, options: dict[str, Any]) -> str:
    """Table, paired comparison, plots and config differences of one experiment."""
    table = build_table(frame, options["select"], options["error"])
    text, found = table_section(table, options["baseline"], options["test"], options["alpha"])
    parts = [f"<h2 id='{html.escape(name)}'>{html.escape(name)}</h2>", "<h3>Table</h3>", text]
    if found is not None:
        parts += ["<h3>Paired comparison with the baseline</h3>",
                  comparison_section(found, options["alpha"])]
    parts += ["<h3>Plots</h3>", plots_section(frame, options["select"], options["error"],
                                              options["by"])]
    headers, rows = differences(table)
    parts.append("<h3>What differs between the compared configs</h3>")
    parts.append(_table_html(headers, rows) if rows else _p(
        "Nothing but the augmenter itself: every other setting is the same."))
    return "\n".join(parts)


def _experiment_frame(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """The rows of one experiment, with the unfinished and failed runs that belong to it."""
    sub = frame[frame["experiment"] == name].copy()

    def mine(entry: dict[str, Any]) -> bool:
        cfg = entry.get("config") or {}
        return cfg.get("experiment", name) == name
    sub.attrs = {k: [e for e in v if mine(e)] if k in ("unfinished", "failed") else v
                 for k, v in frame.attrs.items()}
    return sub


def build_report(folder: str | Path, baseline: str = "none", select: str = "last",
                 error: str = "std", by: str | None = None, test: str = "wilcoxon",
                 alpha: float = 0.05) -> str:
    """The report of every finished run under ``folder``, as one HTML page (a string)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder} is not a results folder (no such directory)")
    found = scan_folder(folder)  # read once: the frame and the page's record lists
    with warnings.catch_warnings(record=True) as caught:  # damaged files: listed in the page
        warnings.simplefilter("always")
        frame = of_folder(found, folder)
    if frame.empty:
        raise DataError(f"no finished runs under {folder}; run an experiment first "
                        "(dgbench run ... --out DIR), then point the report at DIR")
    records = found.records
    options = dict(baseline=baseline, select=select, error=error, by=by, test=test, alpha=alpha)
    names = list(dict.fromkeys(frame["experiment"]))
    body = [f"<h1>dgbench report: {html.escape(str(folder))}</h1>",
            _p(f"{len(records)} finished runs in {len(names)} experiment(s): "
               f"{', '.join(names)}. Made by dgbench {__version__} on "
               f"{pd.Timestamp.now(tz='UTC'):%Y-%m-%d %H:%M} UTC.", "meta")]
    body += [experiment_section(_experiment_frame(frame, n), n, options) for n in names]
    body += ["<h2>Environment</h2>", environment_section(records),
             "<h2>Deviations from the reference code</h2>", deviations_section(records),
             "<h2>Runs missing, unfinished or failed</h2>", _runs_section(frame, caught)]
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>dgbench report: {html.escape(folder.name)}</title><style>{CSS}</style>"
            "</head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _runs_section(frame: pd.DataFrame, caught: list[Any]) -> str:
    failed = [f"{f.get('label', f.get('run_id', '?'))}: {f.get('error', '').splitlines()[0] if f.get('error') else ''}"
              for f in frame.attrs.get("failed", [])]
    unfinished = [u.get("label", u.get("run_id", "?")) for u in frame.attrs.get("unfinished", [])]
    skipped = [str(w.message) for w in caught]
    parts = []
    for title, items in (("Failed", failed), ("Unfinished", unfinished),
                         ("Files not read as results", skipped)):
        if items:
            parts += [_p(f"{title} ({len(items)}):"), _list(items)]
    parts.append(_p("Runs missing from a table are listed under that table."))
    return "\n".join(parts if len(parts) > 1 else [_p("None failed or unfinished; no file "
                                                       "was skipped.")] + parts)


def write_report(folder: str | Path, out: str | Path, **options: Any) -> Path:
    """Write :func:`build_report` of ``folder`` to ``out`` (atomically)."""
    text = build_report(folder, **options)
    atomic_write_text(Path(out), text)
    return Path(out)
