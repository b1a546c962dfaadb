"""``digits``: a small embedded domain-generalization dataset that needs no download.

Built on first use from scikit-learn's bundled handwritten digits (1,797 8x8 images, UCI
optdigits test set) and its two bundled sample photographs, then cached as one ``.npz`` under
``dgbench.data.base.cache_dir()``. The digits are split, stratified by class, into four disjoint
subsets, one per domain, and each subset is rendered in its own style:

- ``plain``: a light digit on black;
- ``photo``: the digit blended into a patch of a photograph as ``|patch - digit|`` (the recipe
  of MNIST-M, Ganin & Lempitsky, ICML 2015);
- ``color``: a digit of one random colour on a background of another;
- ``inverted``: a dark digit on white with Gaussian noise.

Each digit is drawn at a random scale and position; training adds a random shift of up to
2 px. Every domain keeps a fixed, stratified 20%
as its held-out ``val`` split. The build is deterministic (its own seed, not the run's).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from dgbench.core.errors import DataError
from dgbench.core.files import atomic_write
from dgbench.data.base import DATASETS, DomainDataset, TensorDomainSet, cache_dir

VERSION = 2
BUILD_SEED = 20221  # fixed: the dataset is the same for everyone
VAL_FRACTION = 0.2


def _render(size: int) -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits, load_sample_images  # lazy: scikit-learn, only to build

    digits = load_digits()
    glyphs = torch.from_numpy(digits.images.astype(np.float32) / 16.0)  # (N, 8, 8) in [0, 1]
    labels = digits.target.astype(np.int64)
    gen = torch.Generator().manual_seed(BUILD_SEED)
    rng = np.random.default_rng(BUILD_SEED)

    # Deal each class's samples round-robin to the four domains: disjoint, class-balanced.
    domain = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        domain[idx] = np.arange(len(idx)) % len(Digits.domains)

    # Draw every digit at a random scale and position on a size x size canvas.
    canvas = torch.zeros(len(labels), size, size)
    for i, glyph in enumerate(glyphs):
        side = int(torch.randint(int(size * 0.7), int(size * 0.95) + 1, (1,), generator=gen))
        up = F.interpolate(glyph[None, None], size=(side, side), mode="bilinear")[0, 0]
        top, left = (int(torch.randint(size - side + 1, (1,), generator=gen)) for _ in range(2))
        canvas[i, top : top + side, left : left + side] = up.clamp(0, 1)
    d = canvas[:, None].expand(-1, 3, -1, -1)  # (N, 3, H, W)

    photos = [torch.tensor(p).permute(2, 0, 1).float() / 255 for p in load_sample_images().images]
    photos = [F.interpolate(p[None], scale_factor=0.25, mode="area")[0] for p in photos]
    images = torch.empty(len(labels), 3, size, size)
    for i in range(len(labels)):
        style = Digits.domains[domain[i]]
        if style == "plain":
            images[i] = d[i]
        elif style == "photo":
            photo = photos[int(torch.randint(len(photos), (1,), generator=gen))]
            top = int(torch.randint(photo.shape[1] - size + 1, (1,), generator=gen))
            left = int(torch.randint(photo.shape[2] - size + 1, (1,), generator=gen))
            images[i] = (photo[:, top : top + size, left : left + size] - d[i]).abs()
        elif style == "color":
            while True:  # foreground and background colours of clearly different brightness
                fg, bg = torch.rand(2, 3, generator=gen)
                luma = torch.tensor([0.299, 0.587, 0.114])
                if abs(float((fg - bg) @ luma)) > 0.35:
                    break
            images[i] = d[i] * fg[:, None, None] + (1 - d[i]) * bg[:, None, None]
        else:  # inverted
            noise = 0.2 * torch.randn(1, size, size, generator=gen)
            images[i] = (1 - d[i] + noise).clamp(0, 1)

    split = np.zeros(len(labels), dtype=np.int64)  # 0 = train, 1 = val
    for dom in range(len(Digits.domains)):
        for c in np.unique(labels):
            idx = rng.permutation(np.flatnonzero((domain == dom) & (labels == c)))
            split[idx[: int(round(VAL_FRACTION * len(idx)))]] = 1
    pixels = (images * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    return {"images": pixels, "labels": labels, "domain": domain, "split": split}


def _load_or_build(size: int) -> tuple[dict[str, np.ndarray], Path]:
    path = cache_dir() / f"digits-v{VERSION}-{size}px.npz"
    if path.exists():
        try:
            with np.load(path) as f:
                return {k: f[k] for k in f.files}, path
        except Exception:  # a damaged cache is rebuilt, never trusted
            pass
    arrays = _render(size)
    # atomically: two runs building at once both end with a complete file, and a crash never
    # leaves a half-written cache behind
    atomic_write(path, lambda f: np.savez(f, **arrays))
    return arrays, path


@DATASETS.register("digits")
class Digits(DomainDataset):
    """Embedded 4-domain digits (plain, photo, color, inverted), built from scikit-learn's bundled data."""

    domains = ("plain", "photo", "color", "inverted")
    classes = tuple(str(i) for i in range(10))
    # A ResNet-18 at base width 16 with a 3x3 stride-1 stem: on 32 px inputs layer1..3 are
    # 32x32, 16x16 and 8x8, and the whole LODO job fits a few minutes on two CPU cores.
    download_note = "it is built from scikit-learn's bundled digits on first use, offline"
    defaults = {
        "data.image_size": 32,
        "data.batch_size": 32,
        "model.stem": "small",
        "model.width": 16,
        "train.epochs": 12,
        "train.lr": 0.02,
    }

    def __init__(self, root: str | None, image_size: int) -> None:
        super().__init__(root, image_size)
        if not 16 <= image_size <= 128:
            raise DataError(f"digits renders at 16..128 px; got data.image_size={image_size}")
        arrays, self.cache_path = _load_or_build(image_size)
        self.images = torch.from_numpy(arrays["images"])
        self.labels = torch.from_numpy(arrays["labels"])
        self.domain = torch.from_numpy(arrays["domain"])
        self.split = torch.from_numpy(arrays["split"])
        self.parts: dict[tuple[str, str], torch.Tensor] = {}  # DomainBed's "in" / "out"
        self._checksum = hashlib.sha256(arrays["images"].tobytes()).hexdigest()[:16]

    @staticmethod
    def _normalise(image: torch.Tensor) -> torch.Tensor:  # uint8 (3, H, W) -> float in [-1, 1]
        return image.float().div_(127.5).sub_(1.0)

    @classmethod
    def _train_transform(cls, image: torch.Tensor) -> torch.Tensor:
        """Normalise, then shift by up to 2 px each way (edge pixels repeated)."""
        x = cls._normalise(image)
        padded = F.pad(x[None], (2, 2, 2, 2), mode="replicate")[0]  # (3, H+4, W+4)
        dy, dx = torch.randint(0, 5, (2,)).tolist()
        return padded[:, dy : dy + x.shape[1], dx : dx + x.shape[2]]

    def subset(self, domain: str, split: str, train: bool) -> Dataset:
        self.check_domain(domain)
        d = self.domains.index(domain)
        mask = self.domain == d
        if split == "train":
            mask &= self.split == 0
        elif split == "val":
            mask &= self.split == 1
        idx = self.parts[(domain, split)] if (domain, split) in self.parts \
            else torch.nonzero(mask).flatten()
        transform = self._train_transform if train else self._normalise
        return TensorDomainSet(self.images[idx], self.labels[idx], d, transform)

    def domainbed_items(self, domain: str) -> list[int]:
        """The domain's images in the order of the built arrays (the index order of ``all``)."""
        self.check_domain(domain)
        return torch.nonzero(self.domain == self.domains.index(domain)).flatten().tolist()

    def set_parts(self, domain: str, parts: dict[str, list[int]]) -> None:
        for split, items in parts.items():
            self.parts[(domain, split)] = torch.tensor(items, dtype=torch.long)

    def describe(self) -> dict[str, Any]:
        return {
            **({"domainbed_holdout": {"trial_seed": self.holdout[0],
                                      "fraction": self.holdout[1]}} if self.holdout else {}),
            "version": VERSION,
            "cache": str(self.cache_path),
            "images_sha256_16": self._checksum,
            "source": "sklearn.datasets.load_digits + load_sample_images",
        }
