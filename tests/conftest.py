"""Shared test fixtures: tiny datasets registered in the real registry, a private cache.

``toy`` (4 domains) and ``toy2`` (2 domains) are learnable in one epoch of a width-8 ResNet-18
at 16 px, so an end-to-end ``dgbench run`` takes seconds on a CPU.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

# Built datasets go to a private cache, never the user's (set before dgbench is imported).
if "DGBENCH_CACHE" not in os.environ:
    _CACHE = tempfile.mkdtemp(prefix="dgbench-test-cache-")
    os.environ["DGBENCH_CACHE"] = _CACHE
    atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)  # leave nothing behind

from dgbench.data.base import DomainDataset, TensorDomainSet  # noqa: E402
from dgbench.data.base import DATASETS  # noqa: E402


class _Toy(DomainDataset):
    """Coloured stripes: the class sets the stripe orientation, the domain the colours."""

    classes = ("horizontal", "vertical", "diagonal")
    defaults = {
        "data.image_size": 16,
        "data.batch_size": 8,
        "model.stem": "small",
        "model.width": 8,
        "train.epochs": 1,
        "train.lr": 0.05,
    }
    per_domain = 24

    def __init__(self, root: str | None, image_size: int) -> None:
        super().__init__(root, image_size)
        gen = torch.Generator().manual_seed(0)
        s = image_size
        yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
        patterns = [(yy // 2) % 2, (xx // 2) % 2, ((xx + yy) // 2) % 2]
        self.data = {}
        for d, _ in enumerate(self.domains):
            fg = torch.rand(3, generator=gen)
            bg = 1 - fg
            labels = torch.arange(self.per_domain) % len(self.classes)
            imgs = torch.stack([
                patterns[int(c)].float() * fg[:, None, None] + (1 - patterns[int(c)].float()) * bg[:, None, None]
                for c in labels
            ])
            imgs = (imgs + 0.1 * torch.rand(imgs.shape, generator=gen)).clamp(0, 1)
            self.data[d] = ((imgs * 255).to(torch.uint8), labels)

    def subset(self, domain: str, split: str, train: bool):
        self.check_domain(domain)
        d = self.domains.index(domain)
        imgs, labels = self.data[d]
        idx = torch.arange(len(labels))
        if split == "train":
            idx = idx[idx % 4 != 0]
        elif split == "val":
            idx = idx[idx % 4 == 0]
        return TensorDomainSet(imgs[idx], labels[idx], d, lambda im: im.float() / 127.5 - 1)


class Toy(_Toy):
    """Tiny 4-domain test dataset (stripes)."""

    domains = ("red", "green", "blue", "grey")


class Toy2(_Toy):
    """Tiny 2-domain test dataset (stripes)."""

    domains = ("left", "right")


for _name, _cls in (("toy", Toy), ("toy2", Toy2)):
    if _name not in DATASETS:
        DATASETS.add(_name, _cls)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A results root that does not exist yet (so tests can check nothing was written)."""
    return tmp_path / "results"

