"""Histogram matching, the approximate relative of exact feature distribution matching that the
EFDM paper compares against, and its lambda-mixed form.

Cf. Risser, Wilmot, Barnes. "Stable and Controllable Neural Texture Synthesis and Style
Transfer Using Histogram Losses." arXiv 2017; Zhang et al., CVPR 2022 (EFDM), whose code
(``MixHistogram``) matches with scikit-image's ``match_histograms`` and mixes the result in as
``x + (HM(x) - x).detach() * (1 - lambda)``: the gradient is the identity to the content and
nothing reaches the partner or the matching.
"""

from __future__ import annotations

import torch

from dgbench.augmenters.efdmix import EFDM
from dgbench.augmenters._pairing import beta_weights, check_p_alpha
from dgbench.augmenters._contract import AUGMENTERS


def _interpolate(table: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
    """``table`` (..., K) read at fractional positions ``at`` (N,), linear in between."""
    lo = at.floor().long().clamp(max=table.size(-1) - 2)
    frac = (at - lo).to(table.dtype)
    return torch.lerp(table[..., lo], table[..., lo + 1], frac)


def cdf_match(values: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
    """scikit-image's cumulative-distribution matching (``match_histograms``), per row of
    sorted ``values`` (..., N) against the sorted ``partner``: each value goes to the
    partner's quantile function at its own eCDF level, the upper one of its ties (so tied
    values, e.g. ReLU zeros, all take one value), linear between the partner's levels."""
    n = values.size(-1)
    values, partner = values.contiguous(), partner.contiguous()  # searchsorted wants rows
    level = torch.searchsorted(values, values, right=True).to(values.dtype) / n  # (..., N)
    p_level = torch.searchsorted(partner, partner, right=True).to(values.dtype) / n
    j = torch.searchsorted(p_level, level).clamp(max=n - 1)  # first partner level >= ours
    hi_q, hi_v = p_level.gather(-1, j), partner.gather(-1, j)
    j0 = (j - 1).clamp(min=0)
    lo_q, lo_v = p_level.gather(-1, j0), partner.gather(-1, j0)
    step = torch.where(hi_q > lo_q, (level - lo_q) / (hi_q - lo_q).clamp_min(1e-12),
                       torch.ones_like(level))
    return torch.where(j > 0, torch.lerp(lo_v, hi_v, step.clamp(0, 1)), hi_v)


@AUGMENTERS.register("hm")
class HistogramMatching(EFDM):
    """Histogram matching: the partner's quantile function, binned (``bins`` + 1 levels) or exact."""

    paper = "Risser et al., Stable and Controllable Neural Texture Synthesis, 2017 (as compared in EFDM, CVPR 2022)"
    detached = ("the whole match, as EFDM's code: identity gradient to the content, none to the "
                "partner (partner_grad=true passes 1 to the partner's values)")
    placement = "as EFDMix (dgbench's default blocks)"
    cost = "one sort over H x W + quantile interpolation"
    search = {"p": ["uniform", 0.1, 1.0], "bins": ["choice", [0, 8, 16, 64, 256]]}

    def __init__(self, p: float = 0.5, bins: int = 64, mix: str = "random", stable: bool = False,
                 partner_grad: bool = False) -> None:
        super().__init__(p=p, mix=mix, stable=stable)
        if bins < 0:
            raise ValueError(f"bins must be >= 0 (0: exact, as scikit-image); got {bins}")
        self.bins, self.partner_grad = bins, partner_grad

    def match(self, values: torch.Tensor, order: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
        """Map each value through its own eCDF (its rank) into the partner's quantile
        function: with ``bins`` > 0 known only at ``bins`` + 1 evenly spaced levels and linear
        in between (``bins`` >= N - 1 gives EFDM's exact matching); with ``bins=0``
        scikit-image's matching (:func:`cdf_match`), as EFDM's ``MixHistogram`` code."""
        n = values.size(-1)
        partner = values[perm]  # (B, C, N), sorted
        if n == 1:
            mapped = partner.clone()
        elif self.bins == 0:
            mapped = cdf_match(values, partner)
        else:
            levels = torch.linspace(0, n - 1, self.bins + 1, device=values.device)
            quantiles = _interpolate(partner, levels)  # (B, C, bins + 1)
            mapped = _interpolate(quantiles, torch.arange(n, device=values.device) * (self.bins / (n - 1)))
        matched = torch.empty_like(values).scatter_(-1, order, mapped)
        return matched if self.partner_grad else matched.detach()


@AUGMENTERS.register("mixhm")
class MixHistogram(HistogramMatching):
    """Mixed histogram matching (EFDM, CVPR 2022): lambda x + (1 - lambda) HM(x), lambda ~ Beta."""

    paper = "Zhang et al., EFDM, CVPR 2022 (its MixHistogram: the HM baseline of the DG comparison)"
    placement = "as EFDMix (after layer1-3 / layer1-2, one shared instance)"
    search = {"alpha": ["log_uniform", 0.01, 1.0], "p": ["uniform", 0.1, 1.0],
              "bins": ["choice", [0, 8, 16, 64, 256]]}

    def __init__(self, p: float = 0.5, alpha: float = 0.1, bins: int = 0, mix: str = "random",
                 stable: bool = False, partner_grad: bool = False) -> None:
        # bins=0: scikit-image's exact matching, as the official MixHistogram
        super().__init__(p=p, bins=bins, mix=mix, stable=stable, partner_grad=partner_grad)
        check_p_alpha(p, alpha)
        self.alpha = alpha

    def weights(self, batch: int, x: torch.Tensor) -> torch.Tensor:
        """lambda per sample, (B, 1, 1, 1): the content's share of the mix."""
        return beta_weights(batch, self.alpha, x)
