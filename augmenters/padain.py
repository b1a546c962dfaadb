"""pAdaIN: permuted AdaIN, a rare full swap of channel statistics within the batch.

Nuriel, Benaim, Wolf. "Permuted AdaIN: Reducing the Bias Towards Global Statistics in Image
Classification." CVPR 2021.
"""

from __future__ import annotations

import torch

from dgbench.augmenters._contract import AUGMENTERS, Augmenter
from dgbench.augmenters._pairing import check_mix, check_p, gate, partner_indices


@AUGMENTERS.register("padain")
class PermutedAdaIN(Augmenter):
    """pAdaIN (Nuriel et al., CVPR 2021): with small probability, AdaIN to a partner's statistics."""

    paper = "Nuriel et al., Permuted AdaIN, CVPR 2021"
    detached = "the partner's (style) mean and std; the content's are not"
    placement = "after the stem conv and every residual conv, before its BN (never the shortcut): 17 points on ResNet-18, 49 on ResNet-50"
    cost = "one mean/var pass over H x W"
    search = {"p": ["log_uniform", 0.001, 0.1]}

    def __init__(self, p: float = 0.01, eps: float = 1e-5, mix: str = "random") -> None:
        super().__init__()
        check_p(p)
        self.p, self.eps, self.mix = p, eps, check_mix(mix)


    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W)
        if not self.training or not gate(self.p):
            return x
        if x.shape[2] * x.shape[3] == 1:  # no spatial statistics: unchanged, as the official
            return x
        var, mu = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=1)
        sig = (var + self.eps).sqrt()  # (B, C, 1, 1): content statistics keep their gradient
        perm = partner_indices(x.size(0), self.mix, x.device)
        style_mu, style_sig = mu[perm].detach(), sig[perm].detach()
        # the official code adds eps once more to the content's std (not to the style's)
        return (x - mu) / (sig + self.eps) * style_sig + style_mu
