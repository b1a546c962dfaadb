"""Built-in datasets, one per file; importing this package registers them.

Every module here must be imported below: ``tests/test_registry.py`` fails when one is left out.
"""

from dgbench.datasets import digits, pacs

__all__ = ["digits", "pacs"]
