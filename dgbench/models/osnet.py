"""OSNet x1.0, the omni-scale network of EFDM's Market-1501 <-> GRID table.

Zhou, Yang, Cavallaro, Xiang, "Omni-Scale Feature Learning for Person Re-Identification",
ICCV 2019. Written from the paper's description: a 7x7 stem and max-pool; three stages of
omni-scale blocks (256, 384, 512 channels), the first two followed by a 1x1 conv and 2x2
average pooling; a 1x1 conv5; global pooling; a 512-d fc + BN + ReLU embedding; a linear
classifier. An omni-scale block reduces to a quarter of its width, runs four streams of 1, 2,
3 and 4 "lite" 3x3 convolutions (1x1 conv, then a depthwise 3x3, BN, ReLU), weighs each by one
shared channel gate (global pooling, 1x1 conv to a sixteenth, ReLU, 1x1 conv, sigmoid), sums
them, expands with a 1x1 conv + BN and adds the (projected) input before a ReLU.

The module names are torchreid's (``conv1.conv``, ``conv2.0.conv2a.conv2``, ``gate.fc1``, ...),
so the published ImageNet weights (torchreid's ``osnet_x1_0_imagenet.pth``) load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from dgbench.core.errors import ConfigError
from dgbench.models.backbones import BACKBONES, load_pretrained

# torchreid's ImageNet-pretrained OSNet x1.0 (its model zoo's Google Drive file), as a direct
# download; no checksum of it is published, so a run records the sha256 of the file it used
WEIGHTS_URL = ("https://drive.usercontent.google.com/download?id=1LaG1EJpHrxdAxKnSCJ_i0u-nbxSAeiFY"
               "&export=download&confirm=t")
WEIGHTS_FILE = "osnet_x1_0_imagenet.pth"
CHANNELS = (64, 256, 384, 512)


class ConvBN(nn.Module):
    """conv (no bias) -> BN (-> ReLU)."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, padding: int = 0,
                 groups: int = 1, relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding, bias=False, groups=groups)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True) if relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.relu(x) if self.relu is not None else x


class LiteConv(nn.Module):
    """1x1 conv, depthwise 3x3 conv, BN, ReLU: a cheap 3x3 receptive-field step."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False, groups=cout)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv2(self.conv1(x))))


class ChannelGate(nn.Module):
    """Per-channel weights in (0, 1) from the globally pooled input (reduction 16)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)
        self.gate_activation = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.gate_activation(self.fc2(self.relu(self.fc1(self.global_avgpool(x)))))
        return x * w  # (B, C, H, W) * (B, C, 1, 1)


class OSBlock(nn.Module):
    """The omni-scale residual block: four streams of growing receptive field, one gate."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = cout // 4
        self.conv1 = ConvBN(cin, mid)
        self.conv2a = LiteConv(mid, mid)
        self.conv2b = nn.Sequential(*(LiteConv(mid, mid) for _ in range(2)))
        self.conv2c = nn.Sequential(*(LiteConv(mid, mid) for _ in range(3)))
        self.conv2d = nn.Sequential(*(LiteConv(mid, mid) for _ in range(4)))
        self.gate = ChannelGate(mid)
        self.conv3 = ConvBN(mid, cout, relu=False)
        self.downsample = ConvBN(cin, cout, relu=False) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        y = (self.gate(self.conv2a(y)) + self.gate(self.conv2b(y)) + self.gate(self.conv2c(y))
             + self.gate(self.conv2d(y)))  # one gate weighs every stream
        identity = self.downsample(x) if self.downsample is not None else x
        return torch.relu(self.conv3(y) + identity)


def _stage(cin: int, cout: int, transition: bool) -> nn.Sequential:
    layers: list[nn.Module] = [OSBlock(cin, cout), OSBlock(cout, cout)]
    if transition:  # halve the resolution between stages
        layers.append(nn.Sequential(ConvBN(cout, cout), nn.AvgPool2d(2, stride=2)))
    return nn.Sequential(*layers)


class OSNet(nn.Module):
    """OSNet x1.0: ``features`` is the 512-d fc + BN + ReLU embedding (the retrieval feature),
    ``forward`` the classifier's logits."""

    head_name = "classifier"  # what a checkpoint's loading leaves out
    new_modules = ("classifier",)  # trained from scratch: the full learning rate (EFDM's config)
    default_points = ("conv2", "conv3")  # where EFDM and MixStyle insert their augmenters

    def __init__(self, num_classes: int, feature_dim: int = 512) -> None:
        super().__init__()
        c = CHANNELS
        self.conv1 = ConvBN(3, c[0], 7, stride=2, padding=3)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = _stage(c[0], c[1], transition=True)
        self.conv3 = _stage(c[1], c[2], transition=True)
        self.conv4 = _stage(c[2], c[3], transition=False)
        self.conv5 = ConvBN(c[3], c[3])
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(c[3], feature_dim), nn.BatchNorm1d(feature_dim),
                                nn.ReLU(inplace=True))
        self.classifier = nn.Linear(feature_dim, num_classes)
        self._init()

    def _init(self) -> None:
        """As torchreid starts every OSNet: Kaiming (fan out) convs, unit BN, normal(0, 0.01)
        linear layers, zero biases."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))  # (B, 64, H/4, W/4)
        x = self.conv5(self.conv4(self.conv3(self.conv2(x))))  # (B, 512, H/16, W/16)
        return self.fc(self.global_avgpool(x).flatten(1))  # (B, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def osnet_x1_0(num_classes: int, width: int = 64, pretrained: bool = False) -> OSNet:
    """OSNet x1.0 (Zhou et al., ICCV 2019): omni-scale blocks; torchreid's ImageNet weights"""
    if width != 64:
        raise ConfigError("osnet_x1_0 has its own channel widths: set model.width=64")
    model = OSNet(num_classes)
    if pretrained:
        load_pretrained(model, WEIGHTS_URL, name=WEIGHTS_FILE)
    return model


BACKBONES.add("osnet_x1_0", osnet_x1_0)
