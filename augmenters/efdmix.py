"""EFDMix: exact feature distribution mixing by sorting.

Zhang, Li, Li, Jia, Zhang. "Exact Feature Distribution Matching for Arbitrary Style Transfer
and Domain Generalization." CVPR 2022.
"""

from __future__ import annotations

import torch

from dgbench.augmenter import Augmenter
from dgbench.pairing import beta_weights, check_mix, check_p_alpha, gate, partner_indices
from dgbench.registry import AUGMENTERS


class _MixSorted(torch.autograd.Function):
    """``lam * content + (1 - lam) * matched`` with EFDMix's gradients.

    The content's gradient is the identity (not ``lam``), the matched values' is ``1 - lam``:
    the same as the official ``x + (1 - lam) * (matched - x.detach())``, but the forward value
    comes from one ``lerp``, exact at both ends (lam=0 gives the partner's values bit for bit,
    lam=1 the input), and the backward costs one multiply.
    """

    @staticmethod
    def forward(ctx, content: torch.Tensor, matched: torch.Tensor, lam: torch.Tensor):
        ctx.save_for_backward(lam)
        return torch.lerp(matched, content, lam)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (lam,) = ctx.saved_tensors
        return grad, grad * (1 - lam), None


@AUGMENTERS.register("efdmix")
class EFDMix(Augmenter):
    """EFDMix (Zhang et al., CVPR 2022): mix each channel's sorted values with a partner's."""

    paper = (
        "Zhang et al., Exact Feature Distribution Matching for Arbitrary Style Transfer "
        "and Domain Generalization, CVPR 2022"
    )
    detached = "nothing: content gets the identity gradient, the partner's sorted values 1 - lambda"
    placement = "after layer1-3 (ResNet-18) / layer1-2 (ResNet-50), one shared instance"
    cost = "one sort over H x W + one scatter"
    search = {"alpha": ["log_uniform", 0.01, 1.0], "p": ["uniform", 0.1, 1.0]}

    def __init__(
        self, p: float = 0.5, alpha: float = 0.1, mix: str = "random", stable: bool = False
    ) -> None:
        super().__init__()
        check_p_alpha(p, alpha)
        self.p, self.alpha, self.mix, self.stable = p, alpha, check_mix(mix), stable


    def weights(self, batch: int, x: torch.Tensor) -> torch.Tensor:
        """lambda per sample, (B, 1, 1, 1): the content's share of the mix."""
        return beta_weights(batch, self.alpha, x)

    def match(self, values: torch.Tensor, order: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
        """Each position's partner value of the same rank: (B, C, N).

        Position order[b, c, k] holds the k-th smallest value of sample b; give it the k-th
        smallest value of the partner. One scatter into the sort indices replaces the
        official second sort (argsort of ``order``) and gather: same values, same gradient.
        """
        return torch.empty_like(values).scatter_(-1, order, values[perm])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W)
        if not self.training or not gate(self.p):
            return x
        batch, channels, height, width = x.shape
        flat = x.reshape(batch, channels, height * width)  # (B, C, N); copies if channels_last
        values, order = torch.sort(flat, dim=-1, stable=self.stable)
        perm = partner_indices(batch, self.mix, x.device)
        matched = self.match(values, order, perm)
        lam = self.weights(batch, x).view(batch, 1, 1).to(x.dtype)
        # lam * x + (1 - lam) * matched; the content path's gradient is the identity, and the
        # partner's sorted values keep theirs (not detached).
        out = _MixSorted.apply(flat, matched, lam).view(batch, channels, height, width)
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            out = out.contiguous(memory_format=torch.channels_last)
        return out


@AUGMENTERS.register("efdm")
class EFDM(EFDMix):
    """EFDM (Zhang et al., CVPR 2022): exact histogram matching, a full style swap (lambda 0)."""

    placement = "as EFDMix (dgbench's default blocks)"
    search = {"p": ["uniform", 0.1, 1.0]}
    detached = "nothing: content gets the identity gradient, the partner's sorted values 1"

    def __init__(self, p: float = 0.5, mix: str = "random", stable: bool = False) -> None:
        super().__init__(p=p, alpha=1.0, mix=mix, stable=stable)


    def weights(self, batch: int, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(batch, 1, 1, 1, device=x.device)
