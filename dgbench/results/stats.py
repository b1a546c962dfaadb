"""Paired comparisons with a baseline: is a variant better than ``none`` on the same splits
and seeds, and by how much?

The values compared are the table's own cells (:func:`dgbench.results.tables.build_table`: the epoch a
selection rule picks, the task's columns, in %), so a comparison always agrees with the table
it sits beside. A variant's run is paired with the baseline's run of the same split and seed;
for each pairing of a column (and, where the task averages its columns, all columns pooled:
pairs are (split, seed)) it reports the mean difference (variant - baseline, percentage
points), a seeded percentile-bootstrap 95% CI of that mean (pairs resampled with replacement),
the two-sided Wilcoxon signed-rank p-value (``scipy.stats.wilcoxon``), the two-sided sign-test
p-value (``scipy.stats.binomtest`` on wins against losses, ties dropped) and the counts of wins,
losses and ties. Runs without a partner are listed by name, never dropped unsaid.

    >>> from dgbench.results import load
    >>> from dgbench.results.stats import compare
    >>> from dgbench.report.compare import render_comparison
    >>> print(render_comparison(compare(load("results/digits-lodo"), baseline="none")))

Computing only: :mod:`dgbench.report.compare` renders a comparison.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dgbench.core.errors import ConfigError, DataError
from dgbench.results.tables import Significance, Table, build_table

TESTS = {
    "wilcoxon": "two-sided Wilcoxon signed-rank test",
    "sign": "two-sided sign test (binomial on wins against losses, ties dropped)",
}
POOLED = "Avg"  # the column name of the pooled comparison (the table's Avg column)
SMALL = 10  # pairs below which the caption warns that the bootstrap CI runs narrow


@dataclass
class Paired:
    """A variant against the baseline over the matched pairs of one column (or pooled)."""

    variant: str
    column: str
    n: int
    mean: float  # mean difference, variant - baseline (percentage points); NaN without pairs
    ci: tuple[float, float]  # percentile-bootstrap 95% CI of ``mean``; NaN with n < 2
    wilcoxon: float  # p-value; NaN with n < 2
    sign: float  # p-value; NaN with n < 2
    wins: int
    losses: int
    ties: int
    note: str = ""  # why a p-value or the CI is missing or degenerate
    unmatched: list[str] = field(default_factory=list)  # runs of this column without a partner

    def p(self, test: str) -> float:
        """The p-value of ``test`` (``wilcoxon`` or ``sign``)."""
        if test not in TESTS:
            raise ConfigError(f"test must be one of {', '.join(TESTS)}; got {test!r}")
        return float(getattr(self, test))


def bootstrap_ci(diffs: Any, seed: int = 0, n_boot: int = 10000,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap CI of the mean of ``diffs``: ``n_boot`` resamples of the pairs
    with replacement, from ``numpy.random.default_rng(seed)``. NaN with fewer than two pairs
    (a single pair has no spread to resample) or ``n_boot`` 0."""
    d = np.asarray(diffs, dtype=float)
    if len(d) < 2 or n_boot < 1:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    step = max(1, 1_000_000 // len(d))  # resamples per batch: memory stays small
    for start in range(0, n_boot, step):
        k = min(step, n_boot - start)
        means[start:start + k] = d[rng.integers(0, len(d), size=(k, len(d)))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def wilcoxon_p(diffs: Any) -> tuple[float, str]:
    """Two-sided Wilcoxon signed-rank p-value of ``diffs`` (zeros dropped, SciPy's
    default), and why it is NaN (fewer than two pairs) or 1 (every difference zero)."""
    d = np.asarray(diffs, dtype=float)
    if len(d) < 2:
        return float("nan"), "fewer than two pairs: no test"
    if not np.any(d):
        return 1.0, "every difference is zero"
    from scipy import stats  # lazy: scipy.stats, ~0.3 s at start-up

    with warnings.catch_warnings():  # SciPy notes zeros and ties; the p-value stands
        warnings.simplefilter("ignore")
        return float(stats.wilcoxon(d).pvalue), ""


def sign_p(wins: int, losses: int) -> float:
    """Two-sided sign-test p-value: ``wins`` out of ``wins + losses`` against a fair coin
    (ties are dropped before); 1 when every pair ties."""
    if wins + losses == 0:
        return 1.0
    from scipy import stats  # lazy: scipy.stats, ~0.3 s at start-up

    return float(stats.binomtest(wins, wins + losses, 0.5).pvalue)


def paired(diffs: Any, seed: int = 0, n_boot: int = 10000, variant: str = "",
           column: str = "", unmatched: list[str] | None = None) -> Paired:
    """Every statistic of one set of paired differences (variant - baseline)."""
    # rounding makes differences that are equal on paper equal in floating point (ranks, ties)
    d = np.round(np.asarray(diffs, dtype=float), 9)
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    p_wil, note = wilcoxon_p(d)
    p_sign = sign_p(wins, losses) if len(d) >= 2 else float("nan")
    if len(d) == 0:
        note = "no matched pairs"
    return Paired(variant, column, len(d), float(d.mean()) if len(d) else float("nan"),
                  bootstrap_ci(d, seed, n_boot), p_wil, p_sign, wins, losses,
                  len(d) - wins - losses, note, list(unmatched or []))


@dataclass
class Comparison:
    """Every variant of a table against its baseline (:func:`compare`)."""

    baseline: str  # the baseline's row label
    results: list[Paired]
    table: Table  # the table whose cells were compared
    seed: int = 0
    n_boot: int = 10000

    def get(self, variant: str, column: str = POOLED) -> Paired | None:
        """The comparison of ``variant`` in ``column`` (``Avg``: all columns pooled)."""
        return next((r for r in self.results
                     if r.variant == variant and r.column == column), None)

    @property
    def unmatched(self) -> list[str]:
        """Every run without a partner, once."""
        return list(dict.fromkeys(u for r in self.results for u in r.unmatched))

def find_baseline(table: Any, name: str) -> str:
    """The row label ``name`` names: a row label itself, or the augmenter of exactly one row."""
    if not table.rows:
        raise DataError("no finished runs to compare; run an experiment first")
    if name in table.rows:
        return name
    found = [r for r in table.rows
             if (table.row_configs.get(r, {}).get("aug", {}).get("names") or [r])[0] == name]
    if len(found) == 1:
        return found[0]
    if found:
        raise DataError(f"baseline {name!r} names several variants ({'; '.join(found)}); "
                        "pass one of them, quoted, as --baseline")
    raise DataError(f"no variant {name!r} in these results to compare with; the variants "
                    f"are: {'; '.join(table.rows)}")


def _pairs(table: Any, row: str, base: str, col: str) -> tuple[list[float], list[str]]:
    """Differences row - base over the (seed, split) both have in ``col``, and the runs of
    either without a partner."""
    mine = dict(zip(table.members.get((row, col), []), table.cells.get((row, col), [])))
    theirs = dict(zip(table.members.get((base, col), []), table.cells.get((base, col), [])))
    def order(keys: set[tuple[int, str]]) -> list[tuple[int, str]]:
        return sorted(keys, key=lambda k: (k[0], str(k[1])))

    both = order(mine.keys() & theirs.keys())
    lonely = [f"{row}, seed {s}, {sp} (no {base} run to pair with)"
              for s, sp in order(mine.keys() - theirs.keys())]
    lonely += [f"{base}, seed {s}, {sp} (no {row} run to pair with)"
               for s, sp in order(theirs.keys() - mine.keys())]
    return [mine[k] - theirs[k] for k in both], lonely


def compare_table(table: Any, baseline: str = "none", seed: int = 0, n_boot: int = 10000,
                  per_target: bool = True) -> Comparison:
    """Every row of ``table`` (:class:`dgbench.results.tables.Table`) against the ``baseline`` row:
    pooled over the columns where the task averages them (the Avg column), and per column
    when ``per_target`` (always, where the task does not average)."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
        raise ConfigError(f"the number of bootstrap resamples must be an integer >= 0; "
                          f"got {n_boot!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"the bootstrap seed must be an integer >= 0; got {seed!r}")
    base = find_baseline(table, baseline)
    others = [r for r in table.rows if r != base]
    if not others:
        raise DataError(f"these results hold only the baseline {base}; nothing to compare")
    results = []
    for row in others:
        pairs = {col: _pairs(table, row, base, col) for col in table.columns}
        if table.view.averages:
            diffs = [d for found, _ in pairs.values() for d in found]
            lonely = list(dict.fromkeys(u for _, us in pairs.values() for u in us))
            results.append(paired(diffs, seed, n_boot, row, POOLED, lonely))
        if per_target or not table.view.averages:
            results += [paired(d, seed, n_boot, row, col, u) for col, (d, u) in pairs.items()]
    return Comparison(base, results, table, seed, n_boot)


def compare(frame: Any, baseline: str = "none", select: str = "last", seed: int = 0,
            n_boot: int = 10000, per_target: bool = True,
            table_per_target: bool = False) -> Comparison:
    """Every variant of a results DataFrame (:func:`dgbench.results.load`) against
    ``baseline`` (an augmenter name such as ``none``, or a row label), on the epochs
    ``select`` picks. ``per_target`` adds one comparison per column (held-out target) to
    the pooled one; ``table_per_target`` uses the columns of ``dgbench table --per-target``
    (single-source: one per source -> target pair)."""
    table = build_table(frame, select, per_target=table_per_target)
    return compare_table(table, baseline, seed, n_boot, per_target)


def mark_significant(table: Any, baseline: str = "none", test: str = "wilcoxon",
                     alpha: float = 0.05) -> Comparison:
    """Give ``table`` the p-values of every row's cells (and Avg) against ``baseline``
    (``table.significance``), with the mean paired differences: cells with p < ``alpha``
    are marked when rendered, better or worse than the baseline by the sign of the
    difference, and the caption says by which test, at which threshold, over how many
    pairs."""
    if test not in TESTS:
        raise ConfigError(f"test must be one of {', '.join(TESTS)}; got {test!r}")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be between 0 and 1; got {alpha}")
    found = compare_table(table, baseline, n_boot=0, per_target=True)
    table.significance = Significance(
        found.baseline, test, alpha, {(r.variant, r.column): r.p(test) for r in found.results},
        [r.n for r in found.results if r.column != POOLED],
        [r.n for r in found.results if r.column == POOLED],
        {(r.variant, r.column): r.mean for r in found.results})
    return found
