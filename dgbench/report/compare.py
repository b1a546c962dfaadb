"""A paired comparison (:class:`dgbench.results.stats.Comparison`) as text: markdown (a
caption, one row per variant and column, then the runs without a partner), CSV (one line per
comparison, the unmatched runs in a column) or LaTeX (booktabs; the unmatched runs as
comments)."""

from __future__ import annotations

import csv
import io

from tabulate import tabulate

from dgbench.core.errors import ConfigError
from dgbench.report.text import booktabs, latex_table, tex
from dgbench.results.labels import seeds_text
from dgbench.results.stats import POOLED, SMALL, TESTS, Comparison, Paired

FORMATS = ("markdown", "csv", "latex")
HEADERS = ["variant", "column", "pairs", "mean diff", "95% CI", "Wilcoxon p", "sign p",
           "W/L/T", "note"]


def caption(found: Comparison) -> str:
    """What the comparison's numbers are: the baseline, the pairing, the CI, the tests."""
    t = found.table
    boot = (f"a 95% percentile-bootstrap CI ({found.n_boot} resamples of the pairs, "
            f"numpy seed {found.seed})" if found.n_boot else "no bootstrap CI")
    pooled = (f"; '{POOLED}' pools the pairs of every column, pairs (split, seed)"
              if t.view.averages else "")
    few = min((r.n for r in found.results if r.n >= 2), default=SMALL)
    warn = (f" With fewer than {SMALL} pairs (here as few as {few}) a percentile-bootstrap "
            "CI runs too narrow: read it beside the p-values." if found.n_boot and few < SMALL
            else "")
    return (f"Paired comparison with the baseline {found.baseline} ({t.protocol}, "
            f"--select {t.select}, {seeds_text(t.seeds)}): each "
            "variant's table cells (%) minus the baseline's, over runs matched by split "
            f"and seed{pooled}. Mean difference (percentage points) with {boot}; "
            f"p-values of the {TESTS['wilcoxon']} and the {TESTS['sign']}; W/L/T: "
            "pairs the variant wins / loses / ties; not corrected for multiple "
            "comparisons." + warn)


def p_text(p: float) -> str:
    return "-" if p != p else ("<0.0001" if p < 1e-4 else f"{p:.4f}")


def row(r: Paired) -> list[str]:
    """One comparison's cells, as :data:`HEADERS` names them."""
    ci = "-" if r.ci[0] != r.ci[0] else f"[{r.ci[0]:+.2f}, {r.ci[1]:+.2f}]"
    column = "all (pooled)" if r.column == POOLED else r.column
    return [r.variant, column, str(r.n), "-" if r.n == 0 else f"{r.mean:+.2f}", ci,
            p_text(r.wilcoxon), p_text(r.sign), f"{r.wins}/{r.losses}/{r.ties}", r.note]


def notes(found: Comparison) -> list[str]:
    """The lines under a comparison: unmatched, unfinished and failed runs."""
    t, out = found.table, []
    if found.unmatched:
        out.append(f"unmatched runs ({len(found.unmatched)}), not compared: "
                   + "; ".join(found.unmatched))
    if t.unfinished:
        out.append(f"unfinished runs ({len(t.unfinished)}): " + "; ".join(t.unfinished))
    if t.failed:
        out.append(f"failed runs ({len(t.failed)}), not counted: " + "; ".join(t.failed))
    return out


def render_comparison(found: Comparison, fmt: str = "markdown") -> str:
    """The comparison as markdown (default), CSV or LaTeX."""
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if fmt == "csv":
        return _csv(found)
    rows = [row(r) for r in found.results]
    lines = notes(found)
    if fmt == "latex":
        out = latex_table(tex(caption(found)), booktabs([tex(h) for h in HEADERS],
                                                         [[tex(c) for c in r] for r in rows]))
        return "\n".join(out + [f"% {n}" for n in lines]) + "\n"
    parts = [caption(found), "", tabulate(rows, HEADERS, tablefmt="pipe", disable_numparse=True)]
    return "\n".join(parts + ([""] + lines if lines else [])) + "\n"


def _csv(found: Comparison) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["variant", "column", "pairs", "mean_diff", "ci_low", "ci_high", "wilcoxon_p",
                "sign_p", "wins", "losses", "ties", "note", "unmatched"])

    def num(x: float) -> str:
        return "" if x != x else f"{x:.6g}"

    for r in found.results:
        w.writerow([r.variant, r.column, r.n, num(r.mean), num(r.ci[0]), num(r.ci[1]),
                    num(r.wilcoxon), num(r.sign), r.wins, r.losses, r.ties, r.note,
                    "; ".join(r.unmatched)])
    return buf.getvalue()
