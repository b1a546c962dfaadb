"""The augmenter contract: the registry, and an optional base class that fills in the
boilerplate.

An augmenter is any ``nn.Module`` registered in :data:`AUGMENTERS`; the tests
check every registered one (``tests/test_augmenters.py``):

- ``forward(x)`` takes a (B, C, H, W) feature map and returns one of the same shape and dtype;
- it is the identity in eval mode (and at ``p=0`` when it has a gate ``p``);
- every hyperparameter is a keyword argument with the paper's default;
- its randomness comes from torch, so one seed controls it.

Two rules the tests also hold it to, easy to miss:

- **Draw random tensors with explicit shapes**, e.g. ``torch.randn(x.shape, device=x.device,
  dtype=x.dtype)`` or ``torch.rand(b, c, 1, 1, device=x.device)``, never
  ``torch.randn_like(x)``: for a channels_last ``x`` (dgbench's CUDA default) a ``*_like``
  tensor takes ``x``'s memory layout, so the same seed would give other values than for a
  contiguous ``x``.
- **A mixing augmenter draws its mixing weights in a method** ``weights(batch, x)`` returning
  (B, 1, 1, 1) lambdas (the share of the content): ``dgbench inspect`` replaces it with zeros
  to see the full style transfer.

Subclassing :class:`Augmenter` is optional; it gives ``print(model)`` the arguments
(``extra_repr`` from the signature) and the ``docs/augmenters.md`` columns defaults.
"""

from __future__ import annotations

import inspect
from typing import ClassVar

from torch import nn

from dgbench.core.registry import Registry

#: every augmenter, built-in (this folder) or from a plugin (the ``dgbench.augmenters``
#: entry-point group)
AUGMENTERS = Registry("augmenter", "dgbench.augmenters", builtins="dgbench.augmenters")

class Augmenter(nn.Module):
    """Base class of feature augmenters: ``extra_repr`` from the ``__init__`` signature (each
    argument kept as an attribute of the same name) and the documentation metadata."""

    #: the paper, as "Authors, Title, Venue Year"
    paper: ClassVar[str] = "-"
    #: what is detached from the graph
    detached: ClassVar[str] = "-"
    #: where the official code inserts it
    placement: ClassVar[str] = "-"
    #: what one forward call costs on a (B, C, H, W) map
    cost: ClassVar[str] = "-"
    #: where it knowingly departs from the official code; recorded in the runs that use it
    deviations: ClassVar[tuple[str, ...]] = ()
    #: its hyperparameter search space, for sweeps: name -> [uniform|log_uniform|int_uniform,
    #: lo, hi] or [choice, [values]] (dgbench.plan.sweep)
    search: ClassVar[dict[str, list]] = {}

    def extra_repr(self) -> str:
        params = inspect.signature(type(self)).parameters.values()
        return ", ".join(f"{p.name}={getattr(self, p.name)!r}" for p in params
                         if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                         and hasattr(self, p.name))
