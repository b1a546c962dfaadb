"""Models: backbones (``backbones``: torchvision and timm ResNets; ``osnet``: OSNet x1.0),
augmenter insertion at named points (``insertion``) and the person re-identification network
(``reidnet``). Importing this package registers the built-in backbones."""

from dgbench.models import backbones, osnet

__all__ = ["backbones", "osnet"]
