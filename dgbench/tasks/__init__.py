"""Tasks (what a run trains and evaluates), one per file; the interface is ``_base``.

Importing this package registers the built-ins; ``tests/test_house.py`` fails when a task file
is left out of the import below.
"""

from dgbench.tasks import classification, reid

__all__ = ["classification", "reid"]
