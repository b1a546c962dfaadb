"""``dgbench report RESULTS -o report.html``: one self-contained HTML page per results folder.

For each experiment under the folder: the comparison table (bold best; green and an up arrow
where the paired difference from the baseline is significantly better, red and a down arrow
where it is significantly worse), the paired comparison with the baseline, the plots
(per-target bars, training curves, and a sensitivity plot over a swept key when asked), and
what differs between the compared configs. Each experiment's rows are labelled within it: by
what tells its own runs apart. Then, for the whole folder: the environment the runs were made
in, the deviations from the reference code they record, and the runs that are missing,
unfinished or failed. No network: CSS is inline and every image is a data URI, so the file can
be mailed or attached to a review as it is. Tables wider than the page scroll sideways; plots
show at the size they were drawn, or narrower to fit.
"""

from __future__ import annotations

import html
import json
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from dgbench import __version__
from dgbench import config as C
from dgbench.core import keys as dotted
from dgbench.core.errors import ConfigError, DataError, did_you_mean
from dgbench.core.files import atomic_write_text
from dgbench.core.keys import flatten
from dgbench.report import compare, figures, plots
from dgbench.report.text import MARKS, caption, cell_text, notes
from dgbench.results import stats
from dgbench.results.frame import frame as to_frame
from dgbench.results.frame import of_folder
from dgbench.results.labels import count, distinct_texts
from dgbench.results.labels import text as label_text
from dgbench.results.stats import Comparison
from dgbench.results.tables import Cell, Table, build_table, grid
from dgbench.store.layout import experiment_folders
from dgbench.store.records import Folder, scan_folder
from dgbench.store.states import failure_line

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1f24;
       max-width: 1100px; margin: 2em auto; padding: 0 1.5em; background: #fff; }
h1 { font-size: 1.7em; margin-bottom: .2em; } h2 { margin-top: 2em; border-bottom: 2px solid #d0d7de; }
h3 { margin-top: 1.6em; } .meta, .caption, .note { color: #57606a; font-size: .9em; }
div.wide { overflow-x: auto; max-width: 100%; margin: .6em 0 1em; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: .3em .7em; border-bottom: 1px solid #d0d7de; text-align: right;
         vertical-align: top; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; } thead th { background: #f6f8fa; }
th[scope=row] { font-weight: normal; white-space: normal; min-width: 8em; max-width: 30em; }
td.better { background: #dff3e4; } td.worse { background: #fbe0e0; }
img { display: block; max-width: 100%; height: auto; border: 1px solid #eaeef2; margin: .4em 0; }
ul.runs { font-size: .9em; } code { background: #f6f8fa; padding: 0 .25em; }
"""
#: what the shading of a significant cell says, for the captions
SHADES = (f"Shaded green ({MARKS['better']}): significantly better than the baseline; red "
          f"({MARKS['worse']}): significantly worse.")


def _cell(body: str, tag: str = "td", cls: str = "") -> str:
    """One cell whose ``body`` is HTML already."""
    return f"<{tag}{f' class={cls!r}' if cls else ''}>{body}</{tag}>"


def _row_head(body: str) -> str:
    """A row's first cell, its label, as the row's header (HTML already)."""
    return f"<th scope='row'>{body}</th>"


def _table_html(headers: list[str], rows: list[list[str]],
                classes: list[list[str]] | None = None) -> str:
    """An HTML table of text cells (escaped), the first of each row its header; ``classes``:
    a CSS class per cell."""
    def row(cells: list[str], cls: list[str]) -> str:
        head, *rest = [html.escape(str(c)) for c in cells]
        return "<tr>" + _row_head(head) + "".join(
            _cell(c, "td", k) for c, k in zip(rest, cls[1:])) + "</tr>"

    return _wrap(headers, [row(r, classes[i] if classes else [""] * len(r))
                           for i, r in enumerate(rows)])


def _wrap(headers: list[str], rows: list[str]) -> str:
    """A table in a box that scrolls sideways when the table is wider than the page."""
    head = "".join(f"<th scope='col'>{html.escape(h)}</th>" for h in headers)
    return (f"<div class='wide'><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _p(text: str, cls: str = "") -> str:
    return f"<p{f' class={cls!r}' if cls else ''}>{html.escape(text)}</p>"


def _list(items: list[str]) -> str:
    return "<ul class='runs'>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


def _value_html(c: Cell) -> str:
    """A table cell (:class:`dgbench.results.tables.Cell`): its value in bold when best, an
    arrow where significantly better or worse, the (n=k) footnote."""
    if c.value is None:
        return "X"
    text = html.escape(cell_text(Cell(c.value, c.error, c.n), "markdown"))
    text = f"<strong>{text}</strong>" if c.bold else text
    return text + MARKS.get(c.mark, "") + (f" ({html.escape(c.footnote)})" if c.footnote else "")


def table_html(table: Table) -> str:
    """The table's cells as HTML, significantly better cells shaded green, worse red."""
    rows = ["<tr>" + _row_head(html.escape(row)) + "".join(
        _cell(_value_html(c), "td", c.mark) for c in cells) + "</tr>"
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
    marked = any(c.mark for _, cells in grid(table) for c in cells)
    parts = [_p(caption(table) + " Bold: the best mean of its column."
                + (f" {SHADES}" if marked else ""), "caption")]
    parts += [table_html(table)] if table.rows else []
    parts += [_p(n, "note") for n in notes(table)]  # missing, unfinished, failed, empty columns
    if note:
        parts.append(_p(note, "note"))
    return "\n".join(parts), found


#: the columns of :data:`dgbench.report.compare.HEADERS` that hold p-values, and which
P_COLUMNS = {compare.HEADERS.index("Wilcoxon p"): "wilcoxon", compare.HEADERS.index("sign p"): "sign"}


def comparison_section(found: Comparison, alpha: float = 0.05) -> str:
    """The paired comparison, its p-values below ``alpha`` shaded: green where the variant
    is better than the baseline (a positive mean difference), red where it is worse."""
    rows = [compare.row(r) for r in found.results]
    shade = [[("better" if r.mean > 0 else "worse")
              if i in P_COLUMNS and getattr(r, P_COLUMNS[i]) < alpha else ""
              for i in range(len(compare.HEADERS))] for r in found.results]  # NaN: not shaded
    parts = [_p(compare.caption(found) + f" Shaded: p < {alpha:g}, green where the variant "
                "is better than the baseline, red where it is worse.", "caption"),
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
        made.append(_image(kind, figures.figure_png_bytes(fig)))
    return "\n".join(made)


def _image(kind: str, png: bytes) -> str:
    """An inline PNG at the size it was drawn (CSS pixels: 96 per inch), never stretched;
    the style sheet narrows a wider one to the page."""
    width, height = (px * 96 // figures.DPI for px in figures.png_size(png))
    return (f"<img alt='{kind} plot' width='{width}' height='{height}' "
            f"src='{figures.png_data_uri(png)}'>")


def differences(table: Table) -> tuple[list[str], list[list[str]]]:
    """The config keys whose values differ between the table's rows: a header and a row per
    key (the runs' own per-run keys, seeds and splits, left out)."""
    ignored = set(C.PER_RUN) | set(C.NOT_IDENTITY)
    flat = {r: {k: v for k, v in flatten(cfg).items() if k not in ignored}
            for r, cfg in table.row_configs.items()}
    keys = sorted({k for f in flat.values() for k in f})
    rows = []
    for k in keys:
        if len({repr(flat[r].get(k)) for r in table.rows}) < 2:
            continue
        shown = distinct_texts([flat[r][k] for r in table.rows if k in flat[r]])
        rows.append([k] + [shown[json.dumps(flat[r][k], sort_keys=True, default=str)]
                           if k in flat[r] else "-" for r in table.rows])
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
    rows = [[k, "; ".join(f"{v} ({count(n, 'run')})" if len(c) > 1 else v
                          for v, n in c.most_common())]
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


def _experiment_frame(found: Folder, root: Path, name: Any, names: list[Any]) -> pd.DataFrame:
    """The frame of one experiment's records, with the unfinished and failed runs that belong
    to it: built from its own records, so that its rows are labelled by what differs between
    its runs, not by what differs anywhere under ``root``."""
    sub = to_frame([r for r in found.records if r.get("experiment") == name])
    sub.attrs.update(unfinished=[u for u in found.unfinished if name in _owners(u, root, names)],
                     failed=[f for f in found.failed if name in _owners(f, root, names)],
                     skipped=list(found.skipped))
    return sub


def _owners(entry: dict[str, Any], root: Path, names: list[Any]) -> set[Any]:
    """The experiments an unfinished run (its config.json) or a failed one (its error.json,
    which names no experiment: the folder it lies in, ``root/<experiment>/<run id>``, does)
    belongs to; every one where that cannot be told."""
    cfg = entry.get("config") or {}
    if "experiment" in cfg:
        return {cfg["experiment"]}
    run_id = str(entry.get("run_id", ""))
    found = {n for n in names if run_id and (root / str(n or "") / run_id).is_dir()}
    return found or set(names)


def build_report(folder: str | Path, baseline: str = "none", select: str = "last",
                 error: str = "std", by: str | None = None, test: str = "wilcoxon",
                 alpha: float = 0.05) -> str:
    """The report of every finished run under ``folder``, as one HTML page (a string)."""
    folder = Path(folder)
    experiment_folders(folder)  # a results root or one experiment's folder, as every command
    found = scan_folder(folder)  # read once: the frame and the page's record lists
    with warnings.catch_warnings(record=True) as caught:  # damaged files: listed in the page
        warnings.simplefilter("always")
        frame = of_folder(found, folder)
    if frame.empty:
        raise DataError(f"no finished runs under {folder}; run an experiment first "
                        "(dgbench run ... --out DIR), then point the report at DIR")
    _refuse_unknown(frame, baseline, by)
    records = found.records
    options = dict(baseline=baseline, select=select, error=error, by=by, test=test, alpha=alpha)
    names = list(dict.fromkeys(frame["experiment"]))
    body = [f"<h1>dgbench report: {html.escape(str(folder))}</h1>",
            _p(f"{count(len(records), 'finished run')} in {count(len(names), 'experiment')}: "
               f"{', '.join(map(str, names))}. Made by dgbench {__version__} on "
               f"{pd.Timestamp.now(tz='UTC'):%Y-%m-%d %H:%M} UTC.", "meta")]
    body += [experiment_section(_experiment_frame(found, folder, n, names), str(n), options)
             for n in names]
    body += ["<h2>Environment</h2>", environment_section(records),
             "<h2>Deviations from the reference code</h2>", deviations_section(records),
             "<h2>Runs missing, unfinished or failed</h2>", _runs_section(frame, caught)]
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>dgbench report: {html.escape(folder.name)}</title><style>{CSS}</style>"
            "</head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _refuse_unknown(frame: pd.DataFrame, baseline: str, by: str | None) -> None:
    """A ``--baseline`` or ``--by`` that names nothing in any run is a typo, refused as
    ``dgbench table`` and ``dgbench plot`` refuse it; one missing from some experiments only
    (or the default baseline, none, missing) is a note in the page."""
    variants = sorted({*map(str, frame["variant"]), *map(str, frame["aug"])})
    if baseline != "none" and baseline not in variants:
        raise DataError(f"no variant {baseline!r} in these results to compare with; the "
                        f"variants are: {'; '.join(variants)}.{did_you_mean(baseline, variants)}"
                        .rstrip("."))
    if by and by not in frame.columns and all(
            dotted.get(cfg, by, dotted.MISSING) is dotted.MISSING for cfg in frame["config"]):
        raise DataError(f"--by {by} is neither a results column nor a config key of these runs")


def _runs_section(frame: pd.DataFrame, caught: list[Any]) -> str:
    failed = [failure_line(f) for f in frame.attrs.get("failed", [])]
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
