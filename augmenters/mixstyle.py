"""MixStyle: mix per-channel feature mean and std between paired samples.

Zhou, Yang, Qiao, Xiang. "Domain Generalization with MixStyle." ICLR 2021.
"""

from __future__ import annotations

import torch

from dgbench.augmenters._contract import AUGMENTERS, Augmenter
from dgbench.augmenters._pairing import beta_weights, check_mix, check_p_alpha, gate, partner_indices


@AUGMENTERS.register("mixstyle")
class MixStyle(Augmenter):
    """MixStyle (Zhou et al., ICLR 2021): mix channel mean/std with a partner sample."""

    paper = "Zhou et al., Domain Generalization with MixStyle, ICLR 2021"
    detached = "mean and std (all statistics)"
    placement = "after layer1-3 (ResNet-18) / layer1-2 (ResNet-50), one shared instance"
    cost = "one mean/var pass over H x W"
    search = {"alpha": ["log_uniform", 0.01, 1.0], "p": ["uniform", 0.1, 1.0]}
    deviations = ("MixStyle/AdaIN: a 1x1 feature map is returned unchanged; the official code "
                  "returns NaN there (the unbiased variance of one value).",)

    def __init__(
        self, p: float = 0.5, alpha: float = 0.1, eps: float = 1e-6, mix: str = "random"
    ) -> None:
        super().__init__()
        check_p_alpha(p, alpha)
        self.p, self.alpha, self.eps, self.mix = p, alpha, eps, check_mix(mix)


    def weights(self, batch: int, x: torch.Tensor) -> torch.Tensor:
        """lambda per sample, (B, 1, 1, 1): the content's share of the mix."""
        return beta_weights(batch, self.alpha, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W)
        if not self.training or not gate(self.p):
            return x
        if x.shape[2] * x.shape[3] == 1:  # one value per channel has no variance (the official
            return x  # code returns NaN here)
        batch = x.size(0)
        with torch.no_grad():  # the statistics are detached, as in the paper's code
            # Statistics in float32 even under autocast: a half-precision variance of a
            # large activation map loses most of its digits.
            stats_in = x if x.dtype in (torch.float32, torch.float64) else x.float()
            var, mu = torch.var_mean(stats_in, dim=(2, 3), keepdim=True, correction=1)
            sig = (var + self.eps).sqrt()  # (B, C, 1, 1)
            lam = self.weights(batch, x).to(mu.dtype)
            perm = partner_indices(batch, self.mix, x.device)
            mu_mix = lam * mu + (1 - lam) * mu[perm]
            sig_mix = lam * sig + (1 - lam) * sig[perm]
            # (x - mu) / sig * sig_mix + mu_mix, folded into one multiply-add over x
            scale = sig_mix / sig
            shift = mu_mix - mu * scale
        return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))


@AUGMENTERS.register("adain")
class AdaIN(MixStyle):
    """AdaIN style swap (Huang & Belongie, ICCV 2017): MixStyle with lambda fixed at 0."""

    paper = "Huang and Belongie, Arbitrary Style Transfer in Real-time with AdaIN, ICCV 2017"
    placement = "as MixStyle (dgbench's default blocks)"
    search = {"p": ["uniform", 0.1, 1.0]}

    def __init__(self, p: float = 0.5, eps: float = 1e-6, mix: str = "random") -> None:
        super().__init__(p=p, alpha=1.0, eps=eps, mix=mix)


    def weights(self, batch: int, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(batch, 1, 1, 1, device=x.device)  # the partner's statistics, whole
