"""EFDMix: exact feature distribution mixing by sorting.

Zhang, Li, Li, Jia, Zhang. "Exact Feature Distribution Matching for Arbitrary Style Transfer
and Domain Generalization." CVPR 2022.
"""

from __future__ import annotations

import torch

from dgbench.augmenters._contract import AUGMENTERS, Augmenter
from dgbench.augmenters._pairing import beta_weights, check_mix, check_p_alpha, gate, partner_indices
from dgbench.augmenters._sorting import scratch, sort_rows


class _MixSorted(torch.autograd.Function):
    """EFDMix of rows ``flat`` (B, C, N): each position gets ``lam * own value + (1 - lam) *
    the partner's value of the same rank``, with EFDMix's gradients: the identity for the
    content (not ``lam``), ``1 - lam`` for the partner's sorted values.

    The official code sorts, sorts the indices again (their inverse permutation) and gathers;
    here the one sort's indices scatter the mixed sorted values back in place, and the mix is
    done in sorted order, where a position's own value is its sorted value. The forward value
    is one ``lerp``, exact at both ends (lam=0 gives the partner's values bit for bit, lam=1
    the input). The backward is written out (one gather, one scatter) rather than left to
    autograd's chain through sort, indexing and scatter, which zero-fills and accumulates
    full-size buffers twice over.
    """

    @staticmethod
    def forward(ctx, flat: torch.Tensor, lam: torch.Tensor, perm: torch.Tensor,
                stable: bool) -> torch.Tensor:
        values, order = sort_rows(flat, stable, scratch("efdmix a", flat))
        mixed = torch.index_select(values, 0, perm, out=scratch("efdmix b", flat))
        mixed.lerp_(values, lam)  # lam * own + (1 - lam) * partner, by rank
        ctx.save_for_backward(order, lam, perm)
        return torch.empty_like(flat).scatter_(-1, order, mixed)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        order, lam, perm = ctx.saved_tensors
        grad = grad.contiguous()
        # the gradient of each partner's sorted value (scratch buffers: dead on return)
        by_rank = torch.gather(grad, -1, order, out=scratch("efdmix a", grad)).mul_(1 - lam)
        to_partner = scratch("efdmix b", grad)
        # every sample one sample's partner (checked on the CPU only: elsewhere a sync)
        bijective = perm.device.type == "cpu" and bool(
            (torch.bincount(perm, minlength=len(perm)) == 1).all())
        if bijective:
            inverse = torch.empty_like(perm)
            inverse[perm] = torch.arange(len(perm), device=perm.device)
            torch.index_select(by_rank, 0, inverse, out=to_partner)
        else:  # a sample partnered twice (an odd crossdomain batch) sums both; none: zero
            to_partner.zero_().index_add_(0, perm, by_rank)
        out = torch.empty_like(grad).scatter_(-1, order, to_partner)
        return out.add_(grad), None, None, None


@torch.compiler.disable  # eager under torch.compile: scratch buffers, a data-dependent sort path
def _mix_sorted(flat: torch.Tensor, lam: torch.Tensor, perm: torch.Tensor,
                stable: bool) -> torch.Tensor:
    return _MixSorted.apply(flat, lam, perm, stable)


class _MixMatched(torch.autograd.Function):
    """``lam * content + (1 - lam) * matched`` with EFDMix's gradients, for subclasses that
    compute ``matched`` themselves (histogram matching): one ``lerp`` forward; backward the
    identity for the content and ``1 - lam`` for ``matched``."""

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
    cost = "one sort over H x W + one scatter (backward: one gather, one scatter)"
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
        """Each position's partner value of the same rank, (B, C, N): what a subclass
        overrides to match otherwise (histogram matching). EFDMix itself never calls it: its
        forward does the same in one fused op (:class:`_MixSorted`)."""
        return torch.empty_like(values).scatter_(-1, order, values[perm])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W)
        if not self.training or not gate(self.p):
            return x
        batch, channels, height, width = x.shape
        flat = x.reshape(batch, channels, height * width)  # (B, C, N); copies if channels_last
        perm = partner_indices(batch, self.mix, x.device)
        lam = self.weights(batch, x).view(batch, 1, 1).to(x.dtype)
        if type(self).match is EFDMix.match:  # exact matching: the fused op
            out = _mix_sorted(flat, lam, perm, self.stable)
        else:
            values, order = sort_rows(flat, self.stable)
            out = _MixMatched.apply(flat, self.match(values, order, perm), lam)
        out = out.view(batch, channels, height, width)
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
