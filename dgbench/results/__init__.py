"""Reading results: run records as one DataFrame, tables, paired comparisons, published
numbers. Nothing in this package imports torch.

``from dgbench.results import load`` is the entry point for your own analysis
(:func:`dgbench.results.frame.load`).
"""

from dgbench.results.frame import frame, load

__all__ = ["frame", "load"]
