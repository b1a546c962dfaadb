"""``torch.sort`` along the last dimension, faster on the CPU and with the same result.

torch's CPU sort compares floats with a NaN-aware comparator; sorting integers that order as
the floats do is about a quarter faster (2-core AMD EPYC, torch 2.14.1, one thread: 285 ms
against 380 ms for 32 x 64 rows of 3,136 ReLU features). The keys (:func:`order_keys`) are the
floats' bit patterns with negative numbers' magnitude bits flipped, so that integer order is
float order, and with -0.0 on +0.0's key, so that equal floats are equal keys; where no value
has its sign bit set (ReLU features: EFDMix's usual input) the bit patterns are the keys as
they stand, at no cost. Then every
comparison the sort makes has the same outcome as on the floats:

- a stable sort gives the same indices by definition (its order is fixed by the comparisons);
- torch's unstable sort runs the same code for both dtypes, so it gives the same indices
  too, ties included; :func:`_unstable_matches` checks that once per process on tie-heavy rows
  and falls back to the float sort if another torch build behaves otherwise.

NaN (the float sort puts every NaN last, all equal) has no faithful key: a tensor whose sorted
keys show one is sorted again as floats. The values are read back with one ``gather``, so they
are the input's bits (-0.0 stays -0.0). CUDA and other devices use ``torch.sort`` directly.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import torch

_INT = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16,
        torch.float64: torch.int64}
_checked: dict[torch.dtype, bool] = {}
_scratch = threading.local()


def order_keys(x: torch.Tensor) -> torch.Tensor:
    """Integers in ``x``'s order: equal where the floats are equal (-0.0 and 0.0 alike) and
    ordered as they are; NaN keys fall outside the keys of -inf and +inf."""
    itype = _INT[x.dtype]
    bits = x.view(itype)
    width = torch.iinfo(itype).bits
    sign = bits >> (width - 1)  # 0, or -1 for a set sign bit
    keys = sign & torch.iinfo(itype).max  # the magnitude bits to flip, where negative
    return keys.bitwise_xor_(bits).sub_(sign)  # negatives: flipped, and 1 up: -0.0 -> 0


@lru_cache(maxsize=None)
def _bounds(dtype: torch.dtype) -> tuple[int, int]:
    inf = torch.tensor([-float("inf"), float("inf")], dtype=dtype)
    lo, hi = order_keys(inf).tolist()
    return lo, hi


def _unstable_matches(dtype: torch.dtype) -> bool:
    """Whether torch's unstable sort orders integer keys as it orders ``dtype`` floats, ties
    included, on rows full of ties, zeros of both signs and infinities."""
    if dtype not in _checked:
        g = torch.Generator().manual_seed(0)
        x = (torch.randn(4, 8, 700, generator=g) * 3).round().to(dtype)
        x[..., ::7] = 0.0
        x[..., 1::9] = -0.0
        x[..., 2::31] = float("inf")
        rows = [torch.randn(4, 8, n, generator=g).relu().to(dtype)  # feature-map sizes
                for n in (2, 16, 49, 64, 196, 256, 784, 3136)]
        _checked[dtype] = all(
            torch.equal(torch.sort(t, dim=-1)[1], torch.sort(order_keys(t), dim=-1)[1])
            for t in (x, *rows))
    return _checked[dtype]


def scratch(role: str, like: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A CPU buffer shaped as ``like``, kept for the next call with the same role, shape and
    dtype (per thread); elsewhere a new tensor. For temporaries that are dead when the call
    that filled them returns: torch's CPU allocator hands every large tensor fresh pages from
    the kernel, and on this project's VM first-touching them costs as much as the work itself
    (a 51 MB gather: 63 ms into a new tensor, 31 ms into a kept one)."""
    dtype = dtype or like.dtype
    if like.device.type != "cpu":
        return torch.empty(like.shape, dtype=dtype, device=like.device)
    kept = getattr(_scratch, "buffers", None)
    if kept is None:
        kept = _scratch.buffers = {}
    key = (role, tuple(like.shape), dtype)
    if key not in kept:
        kept[key] = torch.empty(like.shape, dtype=dtype)
    return kept[key]


def release_scratch() -> None:
    """Free this thread's scratch buffers (the end of a run: the next may use other shapes)."""
    _scratch.buffers = {}


def sort_rows(x: torch.Tensor, stable: bool = False,
              values_out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.sort(x, dim=-1, stable=stable)``: the same values and indices. ``values_out``:
    a buffer the CPU path may write the values into (use the returned tensor)."""
    if x.device.type == "cpu" and x.dtype in _INT and x.dim() >= 1 and x.numel() > 0 and \
            x.shape[-1] >= 2 and (stable or _unstable_matches(x.dtype)):
        bits = x.view(_INT[x.dtype])
        # no sign bit set anywhere (ReLU features, the usual input): the bits are the keys
        keys = bits if int(bits.min()) >= 0 else order_keys(x)
        sorted_keys, order = scratch("sorted keys", keys), torch.empty(x.shape, dtype=torch.long)
        torch.sort(keys, dim=-1, stable=stable, out=(sorted_keys, order))
        lo, hi = _bounds(x.dtype)
        if not (bool((sorted_keys[..., 0] < lo).any()) or bool((sorted_keys[..., -1] > hi).any())):
            if values_out is None:  # differentiable: gather's gradient is sort's
                return x.gather(-1, order), order
            return torch.gather(x, -1, order, out=values_out), order
        # a NaN (no faithful key): sorted as floats below
    return torch.sort(x, dim=-1, stable=stable)
