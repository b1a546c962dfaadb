"""DSU: domain shifts with uncertainty, feature statistics resampled from batch-level spread.

Li, Yan, Zhao, Zhang, Duan. "Uncertainty Modeling for Out-of-Distribution Generalization."
ICLR 2022.
"""

from __future__ import annotations

import torch

from dgbench.augmenters._contract import AUGMENTERS, Augmenter
from dgbench.augmenters._pairing import check_p, gate


@AUGMENTERS.register("dsu")
class DSU(Augmenter):
    """DSU (Li et al., ICLR 2022): perturb channel mean/std by their spread over the batch."""

    paper = "Li et al., Uncertainty Modeling for Out-of-Distribution Generalization, ICLR 2022"
    detached = "nothing"
    placement = "after conv1 (before bn1), after maxpool, after layer1-4; one instance each"
    cost = "one mean/var pass + batch variance of the statistics"
    search = {"p": ["uniform", 0.1, 1.0]}
    deviations = ("DSU: a 1x1 feature map or a batch of one sample is returned unchanged; the "
                  "official code returns NaN there (a variance of one value).",)

    def __init__(self, p: float = 0.5, eps: float = 1e-6) -> None:
        super().__init__()
        check_p(p)
        self.p, self.eps = p, eps


    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W)
        if not self.training or not gate(self.p):
            return x
        if x.shape[0] < 2 or x.shape[2] * x.shape[3] == 1:  # no spread to measure (the official
            return x  # code returns NaN for one sample or a 1x1 map)
        var, mu = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=1)
        sig = (var + self.eps).sqrt()  # (B, C, 1, 1), not detached
        # uncertainty of each statistic: its std over the batch (unbiased, + eps)
        mu_spread = (mu.var(dim=0, keepdim=True) + self.eps).sqrt()  # (1, C, 1, 1)
        sig_spread = (sig.var(dim=0, keepdim=True) + self.eps).sqrt()
        beta = mu + torch.randn_like(mu) * mu_spread
        gamma = sig + torch.randn_like(sig) * sig_spread
        return (x - mu) / sig * gamma + beta
