"""Person re-identification data: the base class of ReID datasets and their splits.

A ReID dataset (Market-1501, GRID) is a list of *splits*; each split has training images with
identity labels relabelled 0..N-1, and query / gallery images with their raw identities. The
camera of every image is kept (0-based): it is the "domain" for ``mix=crossdomain`` and the
same-camera rule of the metric. Conventions follow torchreid (Zhou et al.; see the README's
re-identification section).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from tabulate import tabulate
from torch.utils.data import Dataset
from torchvision import transforms as T

from dgbench.core.errors import DataError
from dgbench.data.base import IMAGENET_MEAN, IMAGENET_STD, DomainDataset, ImageList

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
        "train.schedule": "step", "train.step_epochs": [20, 40], "train.label_smoothing": 0.1,
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

    def image_files(self) -> tuple[Path, list[str]]:
        files = {rel for s in self.splits for part in (s.train, s.query, s.gallery)
                 for rel, _, _ in part}
        return self.folder, sorted(files)

    def drop_files(self, files: set[str]) -> None:
        for s in self.splits:
            for part in ("train", "query", "gallery"):
                setattr(s, part, [it for it in getattr(s, part) if it[0] not in files])

    def images(self, items: list[Item], train: bool) -> ImageList:
        return ImageList(self.folder, items, reid_transforms(*self.size, train))

    def train_parts(self, index: int, by_camera: bool) -> list[ImageList]:
        """The training images of split ``index``: one part, or one part per camera (the
        domains of ``mix=crossdomain``, for the [camera A | camera B] sampler)."""
        items = self.split(index).train
        if not by_camera:
            return [self.images(items, train=True)]
        cams = sorted({c for _, _, c in items})
        return [self.images([it for it in items if it[2] == c], train=True) for c in cams]

    def subset(self, domain: str, split: str, train: bool) -> Dataset:
        raise DataError(f"{type(self).__name__} is a re-identification dataset: use "
                        "--protocol reid (it has no domain/class splits)")

    def report(self) -> list[str]:
        """Lines for ``dgbench data``: root, layout, ids / images / cameras per split."""
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
