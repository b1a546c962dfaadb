"""The person re-identification network: a ResNet trunk with last stride 1, MixStyle's
512-d fc + BN + ReLU neck (Zhou et al., ICLR 2021) and an identity classifier."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dgbench.core.errors import ConfigError
from dgbench.models.backbones import build_backbone


def linear_init(layer: nn.Linear) -> None:
    """torchreid's (and EFDM's) start for every new linear layer: normal(0, 0.01), bias 0."""
    nn.init.normal_(layer.weight, 0, 0.01)
    nn.init.zeros_(layer.bias)


class Neck(nn.Module):
    """fc + BatchNorm1d + ReLU: the retrieval embedding (not a stage augmenters attach to)."""

    def __init__(self, channels: int, dim: int) -> None:
        super().__init__()
        self.fc, self.bn, self.relu = nn.Linear(channels, dim), nn.BatchNorm1d(dim), nn.ReLU(inplace=True)
        linear_init(self.fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.fc(x)))


class ReIDNet(nn.Module):
    """A torchvision-style ResNet trunk with MixStyle's ReID head (Zhou et al., ICLR 2021).

    The trunk's modules keep torchvision's names (``conv1`` ... ``layer4``), so its
    state_dict keys equal torchvision's ResNet (minus ``fc``) and pretrained weights load as
    they are; augmenters are inserted into the stages as for classification. ``neck`` is the
    512-d fc + BN + ReLU embedding (the feature used for retrieval); ``classifier`` the
    identity layer used only for the training loss.
    """

    new_modules = ("neck", "classifier")  # trained from scratch: the higher learning rate

    def __init__(self, trunk: nn.Module, num_ids: int, feature_dim: int = 512) -> None:
        super().__init__()
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(trunk, name))
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        channels = trunk.fc.in_features
        self.neck = Neck(channels, feature_dim)
        self.classifier = nn.Linear(feature_dim, num_ids)
        linear_init(self.classifier)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, C, H/16, W/16)
        return self.neck(self.global_pool(x).flatten(1))  # (B, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_reid_model(cfg: Any, num_ids: int, pretrained: bool | None = None) -> nn.Module:
    """``cfg.model``'s backbone as a ReID network (``pretrained`` None: as configured): a
    ResNet trunk in a :class:`ReIDNet`, or a backbone that is a ReID network already (one
    with ``features``, e.g. OSNet)."""
    trunk = build_backbone(
        cfg.model.backbone, num_ids, cfg.model.stem, cfg.model.width,
        cfg.model.pretrained if pretrained is None else pretrained, cfg.model.weights,
    )
    if hasattr(trunk, "features"):  # its own embedding and classifier
        if trunk.classifier.in_features != cfg.model.feature_dim:
            raise ConfigError(f"{cfg.model.backbone}'s embedding is {trunk.classifier.in_features}-d"
                              f" (its ImageNet fc); set model.feature_dim="
                              f"{trunk.classifier.in_features}")
        return trunk
    if not all(hasattr(trunk, n) for n in ("layer4", "fc", "conv1", "maxpool")):
        raise ConfigError(f"{cfg.model.backbone} is not a ResNet with conv1 ... layer4 and fc: "
                          "the ReID network needs one")
    if not hasattr(trunk, "relu"):  # timm names its stem activation act1
        trunk.relu = trunk.act1
    if cfg.model.last_stride == 1:
        last_stride_one(trunk)
    net = ReIDNet(trunk, num_ids, cfg.model.feature_dim)
    net.weights_source = getattr(trunk, "weights_source", None)
    return net


def last_stride_one(trunk: nn.Module) -> None:
    """Make ``layer4`` keep the resolution (stride 1 in its first block and its shortcut)."""
    block = trunk.layer4[0]
    conv = block.conv2 if hasattr(block, "conv3") else block.conv1  # Bottleneck strides conv2
    conv.stride = (1, 1)
    if block.downsample is not None:
        block.downsample[0].stride = (1, 1)
