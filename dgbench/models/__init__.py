"""Models: backbones (``backbones``), augmenter insertion at named points (``insertion``) and
the person re-identification network (``reidnet``). Importing this package registers the
built-in backbones."""

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
from dgbench.models.reidnet import ReIDNet, build_reid_model

__all__ = [
    "TIMM_PREFIX", "Point", "ReIDNet", "build_backbone", "build_reid_model", "check_backbone",
    "check_insert", "default_insert", "insert_augmenters", "load_local_weights",
    "resolve_points", "stage_names",
]
