"""Built-in feature-level augmenters, one per file; importing this package registers them.

Every module here must be imported below: ``tests/test_registry.py`` fails when one is left out.
"""

from dgbench.augmenters import dsu, efdmix, hm, identity, mixstyle, padain

__all__ = ["dsu", "efdmix", "hm", "identity", "mixstyle", "padain"]
