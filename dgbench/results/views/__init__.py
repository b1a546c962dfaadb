"""The results-side half of each task, one per file (the interface is ``_base``); importing
this package registers the built-ins."""

from dgbench.results.views import classification, reid

__all__ = ["classification", "reid"]
