"""Built-in datasets, one per file; importing this package registers them.

Every module here must be imported below: ``tests/test_registry.py`` fails when one is left out.
"""

from dgbench.datasets import digits, grid, market1501, pacs

__all__ = ["digits", "grid", "market1501", "pacs"]
