"""Histogram matching through a fixed number of quantiles: the binned, approximate variant of
exact feature distribution matching that the EFDM paper compares against.

Cf. Risser, Wilmot, Barnes. "Stable and Controllable Neural Texture Synthesis and Style
Transfer Using Histogram Losses." arXiv 2017; Zhang et al., CVPR 2022 (EFDM).
"""

from __future__ import annotations

import torch

from dgbench.augmenters.efdmix import EFDM
from dgbench.registry import AUGMENTERS


@AUGMENTERS.register("hm")
class HistogramMatching(EFDM):
    """Histogram matching (binned): the partner's quantile function at ``bins`` + 1 points."""

    paper = "Risser et al., Stable and Controllable Neural Texture Synthesis, 2017 (as compared in EFDM, CVPR 2022)"
    detached = "nothing: straight-through content gradient, as EFDM; the partner's quantiles get 1"
    placement = "as EFDMix (dgbench's default blocks)"
    cost = "one sort over H x W + quantile interpolation"

    def __init__(self, p: float = 0.5, bins: int = 64, mix: str = "random", stable: bool = False) -> None:
        super().__init__(p=p, mix=mix, stable=stable)
        if bins < 1:
            raise ValueError(f"bins must be >= 1; got {bins}")
        self.bins = bins


    def match(self, values: torch.Tensor, order: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
        """Map each value through its own eCDF (its rank) into the partner's quantile
        function, known only at ``bins`` + 1 evenly spaced levels and linear in between.

        With ``bins`` >= N - 1 the levels fall on the partner's sorted values and the result
        is EFDM's exact matching.
        """
        n = values.size(-1)
        partner = values[perm]  # (B, C, N), sorted
        if n == 1:
            return partner.clone()

        def interpolate(table: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
            lo = at.floor().long().clamp(max=table.size(-1) - 2)
            frac = (at - lo).to(table.dtype)
            return torch.lerp(table[..., lo], table[..., lo + 1], frac)

        levels = torch.linspace(0, n - 1, self.bins + 1, device=values.device)
        quantiles = interpolate(partner, levels)  # (B, C, bins + 1)
        ranks = torch.arange(n, device=values.device) * (self.bins / (n - 1))
        mapped = interpolate(quantiles, ranks)  # the k-th smallest value's new value
        return torch.empty_like(values).scatter_(-1, order, mapped)
