"""Shared randomness of the mixing augmenters: the gate, the mixing weights and the pairing.

Every augmenter that mixes a sample with a partner uses these, so that `mix=random` and
`mix=crossdomain` mean the same thing everywhere, as in the official MixStyle and EFDMix
code.
"""

from __future__ import annotations

import torch

MIX_POLICIES = ("random", "crossdomain")


def check_mix(mix: str) -> str:
    if mix not in MIX_POLICIES:
        raise ValueError(f"mix must be one of {', '.join(MIX_POLICIES)}; got {mix!r}")
    return mix


def check_p(p: float) -> None:
    """The gate probability of any augmenter."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1]; got {p}")


def check_p_alpha(p: float, alpha: float) -> None:
    """The gate probability and the Beta concentration of a mixing augmenter."""
    check_p(p)
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0; got {alpha}")


def gate(p: float) -> bool:
    """One draw per forward call: True with probability ``p``.

    Drawn from torch's CPU generator on purpose: it decides a Python branch, and a draw on a
    GPU would need a device-to-host sync on every call. ``p=0`` never fires, ``p=1`` always.
    """
    return bool(torch.rand(()) < p)


def beta_weights(batch: int, alpha: float, like: torch.Tensor) -> torch.Tensor:
    """One ``lambda ~ Beta(alpha, alpha)`` per sample, shape (B, 1, 1, 1), on ``like``'s device.

    Sampled in float32 (Beta sampling in half precision underflows for small alpha).
    """
    conc = torch.full((batch,), float(alpha), device=like.device, dtype=torch.float32)
    lam = torch.distributions.Beta(conc, conc).sample()
    return lam.view(batch, 1, 1, 1)


def partner_indices(batch: int, mix: str, device: torch.device) -> torch.Tensor:
    """Index of each sample's partner, drawn on ``device``.

    ``random``: a permutation of the batch (a sample may pair with itself).
    ``crossdomain``: the batch is [domain A | domain B], A taking the extra sample when the
    batch is odd; every A sample gets a partner from B and every B sample one from A. With
    equal halves each half is a random bijection onto the other, as in the official code;
    with an odd batch one B sample is used twice by A (the official code would instead pair
    the middle sample with itself).
    """
    if mix == "random":
        return torch.randperm(batch, device=device)
    n_a, n_b = (batch + 1) // 2, batch // 2
    if n_b == 0:  # a single sample has no partner in another domain
        return torch.zeros(1, dtype=torch.long, device=device)
    to_b = n_a + torch.randperm(n_b, device=device)
    if n_a > n_b:
        extra = n_a + torch.randint(n_b, (1,), device=device)
        to_b = torch.cat([to_b, extra])
    to_a = torch.randperm(n_a, device=device)[:n_b]
    return torch.cat([to_b, to_a])
