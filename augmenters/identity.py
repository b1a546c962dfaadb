"""The identity augmenter: the ERM baseline that every comparison needs."""

from __future__ import annotations

import torch

from dgbench.augmenters._contract import AUGMENTERS, Augmenter


@AUGMENTERS.register("none")
class Identity(Augmenter):
    """No feature augmentation (the ERM baseline)."""

    paper = "ERM baseline (no feature augmentation)"
    cost = "none"

    def __init__(self) -> None:  # no hyperparameters
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
