"""Models: backbones (``backbones``: torchvision and timm ResNets; ``osnet``: OSNet x1.0),
augmenter insertion at named points (``insertion``) and the person re-identification network
(``reidnet``). Importing this package registers the built-in backbones."""

from dgbench.models.backbones import (
    TIMM_PREFIX,
    build_backbone,
    check_backbone,
    load_local_weights,
)
from dgbench.models.insertion import (
    Point,
    check_insert,
    default_insert,
    insert_augmenters,
    resolve_points,
    stage_names,
)
from dgbench.models.osnet import OSNet
from dgbench.models.reidnet import ReIDNet, build_reid_model

__all__ = [
    "TIMM_PREFIX", "OSNet", "Point", "ReIDNet", "build_backbone", "build_reid_model", "check_backbone",
    "check_insert", "default_insert", "insert_augmenters", "load_local_weights",
    "resolve_points", "stage_names",
]
