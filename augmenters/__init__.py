"""Feature-level augmenters: the contract in the underscored modules, one augmenter per file.

- ``_contract``: :data:`AUGMENTERS` and the :class:`Augmenter` base class (the rules every
  augmenter keeps, checked over the whole registry);
- ``_pairing``: the gate, the mixing weights and the pairing that mixing augmenters share;
- ``_sorting``: the sort kernel of the sorting augmenters (EFDMix, histogram matching).

The names below are the public API a new augmenter (here or in a plugin) imports. Importing
this package registers every built-in; ``tests/test_registry.py`` fails when a file of this
folder is left out of the import below.
"""

from dgbench.augmenters._contract import AUGMENTERS, Augmenter
from dgbench.augmenters._pairing import (beta_weights, check_mix, check_p, check_p_alpha, gate,
                                         partner_indices)
from dgbench.augmenters import dsu, efdmix, hm, identity, mixstyle, padain

__all__ = ["AUGMENTERS", "Augmenter", "beta_weights", "check_mix", "check_p", "check_p_alpha",
           "dsu", "efdmix", "gate", "hm", "identity", "mixstyle", "padain", "partner_indices"]
