"""Person re-identification: the dataset base class, the ReID network and feature evaluation.

A ReID dataset (Market-1501, GRID) is a list of *splits*; each split has training images with
identity labels relabelled 0..N-1, and query / gallery images with their raw identities. The
camera of every image is kept (0-based): it is the "domain" for ``mix=crossdomain`` and the
same-camera rule of the metric. Conventions follow torchreid (Zhou et al.), as described in
``PROTOCOLS.md`` section 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dgbench.data import IMAGENET_MEAN, IMAGENET_STD, DomainDataset, ImageList
from dgbench.errors import ConfigError, DataError

Item = tuple[str, int, int]  # (path relative to the dataset's folder, pid, camera 0-based)


@dataclass
class ReIDSplit:
    """One train / query / gallery partition."""

    train: list[Item]  # pids relabelled 0..num_ids-1
    query: list[Item]  # raw pids
    gallery: list[Item]  # raw pids; distractors keep theirs (0)

    @property
    def num_ids(self) -> int:
        return len({pid for _, pid, _ in self.train})


def summarise(items: list[Item]) -> tuple[int, int, int]:
    """(identities, images, cameras)."""
    return len({p for _, p, _ in items}), len(items), len({c for _, _, c in items})


def locate(root: str | None, name: str, title: str, subfolders: tuple[str, ...],
           has: tuple[str, ...], where: str) -> Path:
    """The first of ``root / sub`` (``root``: the argument or ``$DGBENCH_DATA``) holding all
    the folders in ``has``; a DataError saying where it looked and where to get the data."""
    import os

    base = root or os.environ.get("DGBENCH_DATA")
    if not base:
        raise DataError(f"no data root given for {name}. {where}")
    tried = []
    for sub in subfolders:
        folder = Path(base) / sub
        tried.append(str(folder))
        if all((folder / f).is_dir() for f in has):
            return folder
    raise DataError(f"{title} not found (looked in {', '.join(tried)}). {where}")


def reid_transforms(height: int, width: int, train: bool) -> Any:
    """torchreid's ``random_flip`` + ``color_jitter`` (brightness 0.2, contrast 0.15) recipe."""
    from torchvision import transforms as T

    steps: list[Any] = [T.Resize((height, width))]
    if train:
        steps += [T.RandomHorizontalFlip(), T.ColorJitter(brightness=0.2, contrast=0.15)]
    return T.Compose([*steps, T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class ReIDDataset(DomainDataset):
    """Base class of person re-identification datasets (registered in ``DATASETS``).

    Images are ``image_size`` x ``image_size // 2`` (height x width; 256 -> 256x128).
    Subclasses set ``folder`` (where the image paths are relative to) and ``splits``.
    """

    task: ClassVar[str] = "reid"
    domains: ClassVar[tuple[str, ...]] = ()  # cameras are the domains; per split
    classes: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {
        "data.image_size": 256, "data.batch_size": 32,
        "model.backbone": "resnet50", "model.pretrained": True,
        "train.epochs": 60, "train.lr": 0.05, "train.weight_decay": 1e-5,
        "train.schedule": "step", "train.step_epochs": [20], "train.label_smoothing": 0.1,
        "train.backbone_lr_mult": 0.2,
    }

    def __init__(self, root: str | None, image_size: int) -> None:
        super().__init__(root, image_size)
        self.folder: Path = Path(".")
        self.splits: list[ReIDSplit] = []
        self.problems: list[str] = []

    @property
    def size(self) -> tuple[int, int]:
        return self.image_size, max(1, self.image_size // 2)

    def split(self, index: int) -> ReIDSplit:
        if not 0 <= index < len(self.splits):
            raise DataError(f"{type(self).__name__} has splits 0..{len(self.splits) - 1}, "
                            f"not {index}")
        return self.splits[index]

    def images(self, items: list[Item], train: bool) -> ImageList:
        return ImageList(self.folder, items, reid_transforms(*self.size, train))

    def subset(self, domain: str, split: str, train: bool) -> Dataset:
        raise DataError(f"{type(self).__name__} is a re-identification dataset: use "
                        "--protocol reid (it has no domain/class splits)")

    def report(self) -> list[str]:
        """Lines for ``dgbench data``: root, layout, ids / images / cameras per split."""
        from tabulate import tabulate

        facts = self.describe()
        lines = [f"  {k}: {facts[k]}" for k in ("root", "layout", "version") if k in facts]
        rows = []
        for i, s in enumerate(self.splits):
            for part in ("train", "query", "gallery"):
                rows.append([i if len(self.splits) > 1 else "", part, *summarise(getattr(s, part))])
        lines.append(tabulate(rows, ["split", "part", "ids", "images", "cameras"], tablefmt="simple"))
        lines += [f"{k}: {v}" for k, v in facts.get("notes", {}).items()]
        lines.append(f"problems: {'; '.join(self.problems) if self.problems else 'none'}")
        return lines


# -- the network: ResNet, last stride 1, fc-BN-ReLU neck, identity classifier ---------------
class Neck(nn.Module):
    """fc + BatchNorm1d + ReLU: the retrieval embedding (not a stage augmenters attach to)."""

    def __init__(self, channels: int, dim: int) -> None:
        super().__init__()
        self.fc, self.bn, self.relu = nn.Linear(channels, dim), nn.BatchNorm1d(dim), nn.ReLU(inplace=True)
        nn.init.kaiming_normal_(self.fc.weight, mode="fan_out", nonlinearity="relu")  # torchreid's
        nn.init.zeros_(self.fc.bias)

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
        nn.init.normal_(self.classifier.weight, 0, 0.01)
        nn.init.zeros_(self.classifier.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, C, H/16, W/16)
        return self.neck(self.global_pool(x).flatten(1))  # (B, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_reid_model(cfg: Any, num_ids: int, pretrained: bool | None = None) -> ReIDNet:
    """``cfg.model``'s backbone as a ReID network (``pretrained`` None: as configured)."""
    from dgbench.models import build_backbone

    trunk = build_backbone(
        cfg.model.backbone, 1000, cfg.model.stem, cfg.model.width,
        cfg.model.pretrained if pretrained is None else pretrained, cfg.model.weights,
    )
    if not all(hasattr(trunk, n) for n in ("layer4", "fc", "conv1", "maxpool")):
        raise ConfigError(f"{cfg.model.backbone} is not a ResNet with conv1 ... layer4 and fc: "
                          "the ReID network needs one")
    if not hasattr(trunk, "relu"):  # timm names its stem activation act1
        trunk.relu = trunk.act1
    if cfg.model.last_stride == 1:
        last_stride_one(trunk)
    return ReIDNet(trunk, num_ids, cfg.model.feature_dim)


def last_stride_one(trunk: nn.Module) -> None:
    """Make ``layer4`` keep the resolution (stride 1 in its first block and its shortcut)."""
    block = trunk.layer4[0]
    conv = block.conv2 if hasattr(block, "conv3") else block.conv1  # Bottleneck strides conv2
    conv.stride = (1, 1)
    if block.downsample is not None:
        block.downsample[0].stride = (1, 1)


@torch.no_grad()
def extract(model: ReIDNet, loader: DataLoader, device: torch.device,
            autocast: Any) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Neck features (L2-normalised), pids and cameras of every image, in loader order."""
    model.eval()
    feats, pids, cams = [], [], []
    for images, pid, cam in loader:
        with autocast():
            f = model.features(images.to(device, non_blocking=True))
        feats.append(F.normalize(f.float(), dim=1))
        pids.append(pid.numpy())
        cams.append(cam.numpy())
    return torch.cat(feats), np.concatenate(pids), np.concatenate(cams)


def cosine_distance(qf: torch.Tensor, gf: torch.Tensor) -> np.ndarray:
    """1 - cosine similarity of L2-normalised features: (Q, G)."""
    return (1.0 - qf @ gf.T).cpu().numpy()


def train_parts(dataset: ReIDDataset, index: int, by_camera: bool) -> list[ImageList]:
    """The training images of split ``index``: one part, or one part per camera (the domains
    of ``mix=crossdomain``, for the [camera A | camera B] sampler)."""
    items = dataset.split(index).train
    if not by_camera:
        return [dataset.images(items, train=True)]
    cams = sorted({c for _, _, c in items})
    return [dataset.images([it for it in items if it[2] == c], train=True) for c in cams]


def evaluate_reid(model: ReIDNet, target: ReIDDataset, tests: dict[str, int],
                  make_loader: Any, device: torch.device, autocast: Any) -> dict[str, dict]:
    """mAP and CMC on each named target split (``name -> split index``).

    Each distinct image is embedded once, however many splits share it (GRID's ten splits
    reuse the same 1,275 images).
    """
    from dgbench.evaluate import rank_metrics

    wanted: dict[str, int] = {}
    for k in tests.values():
        s = target.split(k)
        for rel, _, _ in s.query + s.gallery:
            wanted.setdefault(rel, len(wanted))
    paths = list(wanted)
    loader = make_loader(target.images([(rel, 0, 0) for rel in paths], train=False))
    feats, _, _ = extract(model, loader, device, autocast)
    out = {}
    for name, k in tests.items():
        s = target.split(k)
        qi = torch.tensor([wanted[r] for r, _, _ in s.query], device=feats.device)
        gi = torch.tensor([wanted[r] for r, _, _ in s.gallery], device=feats.device)
        dist = cosine_distance(feats[qi], feats[gi])
        out[name] = rank_metrics(dist, [p for _, p, _ in s.query], [p for _, p, _ in s.gallery],
                                 [c for _, _, c in s.query], [c for _, _, c in s.gallery])
        out[name].update(queries=len(s.query), gallery=len(s.gallery))
    return out


def mean_std(results: dict[str, dict]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and population std (ddof=0) of each metric over the target splits."""
    keys = [k for k in next(iter(results.values())) if k == "mAP" or k.startswith("rank")]
    values = {k: np.array([r[k] for r in results.values()], dtype=float) for k in keys}
    return ({k: float(v.mean()) for k, v in values.items()},
            {k: float(v.std()) for k, v in values.items()})
