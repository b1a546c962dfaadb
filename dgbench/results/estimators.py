"""Error estimators: what the ``±`` of a table cell (and a plot's error bar) is, over the runs
of the cell (seeds, and training splits where a source has several)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from dgbench.core.errors import DataError


@dataclass(frozen=True)
class Estimator:
    """One error estimator: its name (``--error``), the caption's words, and the function."""

    name: str
    description: str  # as a caption says it: "each cell is the mean ± <description>"
    help: str  # for --help
    of: Callable[[np.ndarray], float]


def _population_std(v: np.ndarray) -> float:
    return float(np.std(v, ddof=0))


def _sample_std(v: np.ndarray) -> float:
    return float(np.std(v, ddof=1)) if len(v) >= 2 else float("nan")


def _standard_error(v: np.ndarray) -> float:
    return _population_std(v) / float(np.sqrt(len(v)))


def _ci95(v: np.ndarray) -> float:
    if len(v) < 2:
        return float("nan")
    from scipy import stats  # lazy: scipy.stats costs ~0.3 s at start-up, only ci95 needs it

    return float(stats.t.ppf(0.975, len(v) - 1)) * _sample_std(v) / float(np.sqrt(len(v)))


ESTIMATORS = {e.name: e for e in (
    Estimator("std", "population std (ddof=0)",
              "population std (ddof=0, as the papers; the default)", _population_std),
    Estimator("sd", "sample std (ddof=1)", "sample std (ddof=1)", _sample_std),
    Estimator("se", "standard error (population std / sqrt(n), as DomainBed)",
              "standard error (as DomainBed; the default of --format domainbed)",
              _standard_error),
    Estimator("ci95", "95% confidence-interval half-width of the mean (Student's t, n-1 "
              "degrees of freedom)", "the t-based 95% CI half-width of the mean", _ci95),
)}


def check(error: str) -> Estimator:
    """The estimator named ``error``; an unknown name is a DataError listing the others."""
    if error not in ESTIMATORS:
        raise DataError(f"error must be one of {', '.join(ESTIMATORS)}; got {error!r}")
    return ESTIMATORS[error]


def spread(values: Sequence[float], error: str = "std") -> float:
    """The error bar of ``values`` as ``error`` names it; NaN where it needs two values and
    has one (``sd``, ``ci95``)."""
    return check(error).of(np.asarray(values, dtype=float))
