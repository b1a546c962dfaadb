"""Backbones: torchvision ResNets (any base width), timm ResNets by name, the three stems, and
local checkpoints."""

from __future__ import annotations

import re
import typing
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
import torchvision
from torch import nn

from dgbench.config import Stem
from dgbench.core.download import pretrained_file, weights_facts
from dgbench.core.errors import ConfigError, DataError, one_line
from dgbench.core.registry import Registry

#: every backbone by name (a timm ResNet is ``timm:<name>``, not registered)
BACKBONES = Registry("backbone", builtins="dgbench.models")

TIMM_PREFIX = "timm:"


# -- torchvision ResNets ------------------------------------------------------------------
def _torchvision_resnet(depth: int) -> Callable[..., nn.Module]:
    def build(num_classes: int, width: int = 64, pretrained: bool = False) -> nn.Module:
        model = getattr(torchvision.models, f"resnet{depth}")()
        if pretrained:
            if width != 64:
                raise ConfigError(
                    f"pretrained resnet{depth} weights exist only for model.width=64 (got "
                    f"{width}); drop --pretrained or set model.width=64"
                )
            # The V1 weights are the ones EFDM and MixStyle used (torchvision's legacy
            # resnet18-5c106cde / resnet50-19c8e357 files, re-published under these names).
            weights = getattr(torchvision.models, f"ResNet{depth}_Weights").IMAGENET1K_V1
            load_pretrained(model, weights.url)
        elif width != 64:
            _rewiden(model, width)
        model.fc = nn.Linear(model.fc.in_features, num_classes)
        return model

    build.__doc__ = f"torchvision ResNet-{depth} (He et al., CVPR 2016); model.width scales it"
    return build


def _rewiden(model: nn.Module, width: int) -> None:
    """Rebuild a torchvision ResNet's stem and stages with base width ``width`` (64 = standard)."""
    block = type(model.layer1[0])
    depths = [len(getattr(model, f"layer{i}")) for i in range(1, 5)]
    model.inplanes = width
    model.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    model.bn1 = nn.BatchNorm2d(width)
    for i, depth in enumerate(depths):
        stride = 1 if i == 0 else 2
        setattr(model, f"layer{i + 1}", model._make_layer(block, width * 2**i, depth, stride))
    model.fc = nn.Linear(width * 8 * block.expansion, 1)
    for module in model.modules():  # torchvision's own initialisation
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


BACKBONES.add("resnet18", _torchvision_resnet(18))
BACKBONES.add("resnet50", _torchvision_resnet(50))


def _timm_model(name: str, num_classes: int, width: int, pretrained: bool) -> nn.Module:
    import timm  # lazy: timm costs a second at start-up, only its backbones need it

    if not timm.is_model(name):
        close = [m for m in timm.list_models("resnet*") if name.split("_")[0] in m][:8]
        raise ConfigError(
            f"unknown timm model {name!r}; timm ResNets include: {', '.join(close) or 'resnet18'}"
        )
    if width != 64:
        raise ConfigError(
            f"model.width applies only to torchvision backbones; set model.width=64 for "
            f"{TIMM_PREFIX}{name}"
        )
    model = timm.create_model(name, pretrained=pretrained, num_classes=num_classes)
    if not all(isinstance(getattr(model, f"layer{i}", None), nn.Sequential) for i in range(1, 5)):
        raise ConfigError(f"{TIMM_PREFIX}{name} is not a ResNet with stages layer1..layer4")
    if pretrained:  # timm resolves the file itself (Hugging Face hub or a URL): say which
        cfg = getattr(model, "pretrained_cfg", {}) or {}
        model.weights_source = {"url": cfg.get("url") or cfg.get("hf_hub_id"), "file": None,
                                "sha256": None, "timm": cfg.get("tag") or name}
    return model


def check_backbone(name: str, pretrained: bool = False, width: int = 64) -> None:
    """Raise a clear error for an unknown backbone name, or for pretrained weights at a width
    they do not exist for (without building anything or downloading)."""
    if name.startswith(TIMM_PREFIX):
        import timm  # lazy: timm costs a second at start-up, only its backbones need it

        if not timm.is_model(name[len(TIMM_PREFIX):]):
            _timm_model(name[len(TIMM_PREFIX):], 1, 64, False)  # raises with suggestions
    else:
        BACKBONES.entry(name)
    if pretrained and width != 64:
        raise ConfigError(f"pretrained {name} weights exist only for model.width=64 (got {width}); "
                          "set model.pretrained=false or model.width=64")


# -- building -----------------------------------------------------------------------------
def build_backbone(
    name: str,
    num_classes: int,
    stem: str = "imagenet",
    width: int = 64,
    pretrained: bool = False,
    weights: str | None = None,
) -> nn.Module:
    """Build a ResNet classifier for ``num_classes`` classes.

    Stems: ``imagenet`` (7x7 stride-2 conv + max-pool: /4), ``nopool`` (the same conv, no
    max-pool: /2; pretrained weights still fit; 64 px -> layer3 at 8x8) and ``small`` (one 3x3
    stride-1 conv, no max-pool: /1; 32 px -> layer3 at 8x8).
    """
    if stem not in typing.get_args(Stem):
        raise ConfigError(f"model.stem must be one of {', '.join(typing.get_args(Stem))}; "
                          f"got {stem!r}")
    if name.startswith(TIMM_PREFIX):
        model = _timm_model(name[len(TIMM_PREFIX):], num_classes, width, pretrained)
    else:
        model = BACKBONES.get(name)(num_classes=num_classes, width=width, pretrained=pretrained)
    if stem == "small":
        conv = model.conv1
        if not isinstance(conv, nn.Conv2d):
            raise ConfigError(f"{name} has a deep stem; model.stem=small needs a single conv1")
        if pretrained:
            warnings.warn("model.stem=small replaces conv1: its pretrained weights are not used")
        model.conv1 = nn.Conv2d(3, conv.out_channels, 3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        model.maxpool = nn.Identity()
    elif stem == "nopool":
        model.maxpool = nn.Identity()
    if weights:
        load_local_weights(model, weights, skip_stem=stem == "small")
    return model


def _unwrap_state_dict(obj: Any, path: str) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DataError(f"{path} does not hold a state_dict (a dict of tensors)")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_pretrained(model: nn.Module, url: str, name: str | None = None,
                    sha256: str | None = None) -> None:
    """Load published weights into ``model`` (all but its classifier): the file ``name``
    (default: the URL's last part) in torch's checkpoint folder, downloaded when missing and
    checked against ``sha256``, or against the hash prefix in its name (torchvision's
    ``resnet18-f37072fd.pth``). The URL, file and sha256 become ``model.weights_source``."""
    name = name or url.rsplit("/", 1)[1]
    prefix = re.search(r"-([a-f0-9]{6,})\.", name)
    path = pretrained_file(url, name, sha256, prefix.group(1) if prefix else None)
    _load_state(model, _read_checkpoint(path), str(path))
    model.weights_source = weights_facts(url, path)


def load_local_weights(model: nn.Module, path: str, skip_stem: bool = False) -> None:
    """Load a local checkpoint into ``model``; its classifier (``model.head_name``, ``fc`` by
    default) is not loaded. The file and its sha256 become ``model.weights_source``.

    With ``skip_stem``, a ``conv1`` of another shape (an ImageNet-stem checkpoint into a
    small-stem model) is left out with a warning instead of refused.
    """
    if Path(path).is_dir():
        raise DataError(f"--weights {path} is a folder, not a checkpoint file")
    if not Path(path).is_file():
        raise DataError(f"weights file {path} not found; pass an existing checkpoint path")
    _load_state(model, _read_checkpoint(path), path, skip_stem)
    model.weights_source = weights_facts(None, Path(path))


def _read_checkpoint(path: str | Path) -> Any:
    """The tensors saved in ``path`` (tensors and plain containers only: ``weights_only``)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch raise many kinds for a wrong file
        raise DataError(f"{path} is not a PyTorch checkpoint torch can read safely "
                        f"({type(exc).__name__}: {one_line(str(exc))[:200]})") from None


def _load_state(model: nn.Module, obj: Any, path: str, skip_stem: bool = False) -> None:
    """Load a checkpoint's state_dict into ``model`` but its classifier; refuse one of another
    architecture, naming the keys that do not fit."""
    head = getattr(model, "head_name", "fc") + "."
    state = {k: v for k, v in _unwrap_state_dict(obj, path).items() if not k.startswith(head)}
    own = model.state_dict()
    if skip_stem and "conv1.weight" in state and state["conv1.weight"].shape != own["conv1.weight"].shape:
        warnings.warn(f"{path}: conv1 has another shape than the small stem's; not loaded")
        del state["conv1.weight"]
    wrong = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if wrong:
        raise DataError(
            f"{path}: shapes differ from the model for {', '.join(wrong[:5])}: "
            "is it the same architecture and model.width?"
        )
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(head) and not (skip_stem and k == "conv1.weight")]
    if missing or unexpected:
        raise DataError(
            f"{path} does not match the model: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}; is it a checkpoint of the same backbone?"
        )


class DropoutLinear(nn.Linear):
    """A classifier that drops its input features first (DomainBed's ``resnet_dropout``,
    applied to the featurizer's output); its parameters keep a plain Linear's names."""

    def __init__(self, linear: nn.Linear, p: float) -> None:
        super().__init__(linear.in_features, linear.out_features, linear.bias is not None)
        self.load_state_dict(linear.state_dict())
        self.dropout = nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.dropout(x))


def add_dropout(model: nn.Module, p: float) -> None:
    """Dropout ``p`` on the features entering the classifier (``model.head_name``, ``fc`` by
    default); nothing where ``p`` is 0."""
    if not p:
        return
    head = getattr(model, "head_name", "fc")
    linear = getattr(model, head, None)
    if not isinstance(linear, nn.Linear):
        raise ConfigError(f"model.dropout needs a linear classifier ({head}); this network has "
                          f"{type(linear).__name__}")
    setattr(model, head, DropoutLinear(linear, p))


def set_train_mode(model: nn.Module, freeze_bn: bool) -> None:
    """Training mode; with ``freeze_bn`` every BatchNorm layer stays in eval mode (running
    statistics used and not updated; its affine parameters still train), as DomainBed's
    ResNet.train() does."""
    model.train()
    if freeze_bn:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
