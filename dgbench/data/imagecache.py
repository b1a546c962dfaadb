"""A decoded-image cache and batched training augmentation, for file-based datasets (PACS).

Decoding a JPEG every time an image is used dominates a small-model epoch. The cache decodes
each source file once per (dataset, resolution) into uint8 arrays, memory-mapped:

- ``small``: the image resized to (s, s), the published recipe's "no translation" branch,
  and the test view (Resize(s) + CenterCrop(s)) for square images;
- ``big``: the small view resized to (1.125 s, 1.125 s), from which the "translation" branch
  crops s x s at an offset ``round(uniform(0, 1.125 s - s))`` per axis (Dassl's recipe);
- ``test``: only when some image is not square, Resize(s) + CenterCrop(s) for every image.

They are made by the same PIL calls as the per-image path, so a cached image is bit-identical
to the PIL path's; the random crop / flip / choice of branch are then drawn per batch from a
torch generator and applied to the whole batch as tensor indexing on the training device
(:func:`augment`). Same pixels for the same draws: only the random stream differs from
``--no-cache`` (``data.cache=false``), which keeps the per-image PIL transforms.

A cache lives in ``<cache dir>/images/<name>-<s>px-<fingerprint>/``. The fingerprint hashes
every source file's path, size and modification time (and the cache format), so a changed
file gives a new cache; ``manifest.json`` also stores each file's sha256. Builders take a file
lock, write into a temporary folder and rename it into place, so two runs starting at once
build it once and never see half a cache; a rebuild removes the older cache of the same
source folder and resolution.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import tempfile
import warnings
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from PIL import Image
from torchvision import transforms as T
from tqdm.auto import tqdm

from dgbench.core.errors import DataError
from dgbench.core.files import shareable
from dgbench.data.base import UNREADABLE, cache_dir

FORMAT = 3  # 2: the big view made from the small one (Dassl's); 3: checksums, unreadable files
VIEWS = ("small", "big", "test")



def big_size(size: int) -> int:
    return round(size * 1.125)  # 224 -> 252, the published translation recipe


def fingerprint(folder: Path, files: Sequence[str], size: int) -> str:
    h = hashlib.sha256(f"format {FORMAT} size {size}\n".encode())
    for rel in files:
        st = (folder / rel).stat()
        h.update(f"{rel} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _decode(data: bytes, size: int) -> dict[str, np.ndarray]:
    with Image.open(io.BytesIO(data)) as im:
        rgb = im.convert("RGB")
    small = T.Resize((size, size))(rgb)
    views = {
        "small": small,
        "big": small.resize((big_size(size), big_size(size)), Image.BILINEAR),
        "test": T.CenterCrop(size)(T.Resize(size)(rgb)),
    }
    return {k: np.asarray(v, dtype=np.uint8).transpose(2, 0, 1) for k, v in views.items()}


class ImageCache:
    """The memory-mapped views of one (dataset, resolution); ``rows[rel]`` finds an image,
    ``unreadable`` lists the source files that could not be decoded (stored as zeros)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.manifest = json.loads((path / "manifest.json").read_text())
        self.size = self.manifest["size"]
        self.rows = {rel: i for i, rel in enumerate(self.manifest["files"])}
        self.unreadable: dict[str, str] = self.manifest["unreadable"]
        n = len(self.rows)
        self.views = {
            v: np.memmap(path / f"{v}.u8", dtype=np.uint8, mode="r", shape=(n, 3, *shape))
            for v, shape in self.manifest["shapes"].items()
        }
        if "test" not in self.views:  # every image square: the test view is the small one
            self.views["test"] = self.views["small"]

    @classmethod
    def open_or_build(cls, name: str, folder: Path, files: Sequence[str], size: int,
                      progress: bool = True) -> "ImageCache":
        """The cache of ``files`` under ``folder`` at ``size``: checked (manifest, sizes and
        checksums of its views) and used, or (re)built. Damage is said in one line and
        rebuilt, never read; a killed build's leftovers are removed at the next start."""
        files = sorted(set(files))
        root = cache_dir() / "images"
        target = root / f"{name}-{size}px-{fingerprint(folder, files, size)}"
        if target.exists() and check(target, files) is None:
            return cls(target)
        try:
            root.mkdir(parents=True, exist_ok=True)
            lock = open(root / f".{target.name}.lock", "w")
        except OSError as exc:
            raise DataError(f"the image cache folder {root} cannot be written ({exc.strerror}): "
                            "set DGBENCH_CACHE to a writable folder, or use --no-cache") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # a second builder waits, then finds it built
            for leftover in root.glob(f".{target.name}-*"):  # no builder of ours is running
                shutil.rmtree(leftover, ignore_errors=True)
            problem = check(target, files) if target.exists() else "missing"
            if problem is not None:
                if target.exists():
                    warnings.warn(f"image cache {target} is damaged ({problem}); rebuilding it")
                    shutil.rmtree(target)
                _build(target, folder, files, size, progress)
                _remove_stale(target, folder)
        return cls(target)


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            crc = zlib.crc32(block, crc)
    return crc


def check(path: Path, files: Sequence[str] | None = None) -> str | None:
    """What is wrong with the cache at ``path`` (None: nothing): its manifest, the files it
    covers, the size and the checksum of every view."""
    if not (path / "manifest.json").is_file():
        return "its manifest.json is missing"
    try:
        manifest = json.loads((path / "manifest.json").read_text())
        if manifest.get("format") != FORMAT:
            return f"format {manifest.get('format')}, not {FORMAT}"
        n = len(manifest["files"])
        if files is not None and manifest["files"] != list(files):
            return "it covers other files"
        for view, shape in manifest["shapes"].items():
            f = path / f"{view}.u8"
            want = n * 3 * shape[0] * shape[1]
            if not f.is_file() or f.stat().st_size != want:
                return f"{f.name} is missing or has {f.stat().st_size if f.is_file() else 0} " \
                       f"bytes, not {want}"
            if _crc32(f) != manifest["crc32"][view]:
                return f"{f.name} does not match its checksum"
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        return f"its manifest cannot be read: {type(exc).__name__}"
    return None


def verify(cache: ImageCache, folder: Path) -> list[str]:
    """Everything :func:`check` checks, and every source file against the sha256 it was
    built from and its decoded pixels against the cache's: the problems found."""
    problems = [p for p in [check(cache.path)] if p]
    size = cache.size
    for i, (rel, digest) in enumerate(zip(cache.manifest["files"], cache.manifest["sha256"])):
        try:
            data = (folder / rel).read_bytes()
        except OSError as exc:
            problems.append(f"{folder / rel}: {exc.strerror}")
            continue
        if hashlib.sha256(data).hexdigest() != digest:
            problems.append(f"{folder / rel} changed since the cache was built")
        elif rel not in cache.unreadable:
            views = _decode(data, size)
            if any(not np.array_equal(views[v], cache.views[v][i]) for v in cache.manifest["shapes"]):
                problems.append(f"{rel}: the cached pixels differ from a fresh decode")
    return problems


def _remove_stale(current: Path, folder: Path) -> None:
    """Delete older caches of the same source folder and resolution (its files changed)."""
    prefix = current.name.rsplit("-", 1)[0] + "-"
    for other in current.parent.glob(prefix + "*"):
        if other == current or not (other / "manifest.json").is_file():
            continue
        try:
            if json.loads((other / "manifest.json").read_text())["folder"] == str(folder):
                shutil.rmtree(other, ignore_errors=True)
        except (OSError, ValueError, KeyError):
            continue


def _build(target: Path, folder: Path, files: list[str], size: int, progress: bool) -> None:
    """Decode every file into a temporary folder beside ``target``, then rename it into place
    (readers see all of it or nothing). Unreadable files are stored as zeros and listed."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        shapes = {"small": (size, size), "big": (big_size(size), big_size(size)),
                  "test": (size, size)}
        maps = {v: np.memmap(tmp / f"{v}.u8", mode="w+", dtype=np.uint8,
                             shape=(len(files), 3, *shapes[v])) for v in VIEWS}
        sums, square, unreadable = [], True, {}
        for i, rel in enumerate(tqdm(files, desc=f"caching {target.name}", unit="img",
                                     disable=None if progress else True, leave=False)):
            data = (folder / rel).read_bytes()
            sums.append(hashlib.sha256(data).hexdigest())
            try:
                views = _decode(data, size)
            except UNREADABLE as exc:
                unreadable[rel] = f"{type(exc).__name__}: {exc}"
                continue
            for v in VIEWS:
                maps[v][i] = views[v]
            square = square and np.array_equal(views["test"], views["small"])
        keep = ["small", "big"] + ([] if square else ["test"])
        for v in VIEWS:
            maps[v].flush()
            del maps[v]
            if v not in keep:
                (tmp / f"{v}.u8").unlink()
        manifest = {"format": FORMAT, "size": size, "folder": str(folder), "files": files,
                    "sha256": sums, "shapes": {v: list(shapes[v]) for v in keep},
                    "crc32": {v: _crc32(tmp / f"{v}.u8") for v in keep},
                    "unreadable": unreadable}
        (tmp / "manifest.json").write_text(json.dumps(manifest))
        shareable(tmp)  # mkdtemp made it private
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class CachedDomainSet(Dataset):
    """One domain's items from the cache: ``((small, big), label, domain)`` uint8 for training
    (augmented per batch by :func:`augment`), ``(test view, label, domain)`` normalised float
    for evaluation."""

    def __init__(self, cache: ImageCache, items: list[tuple[str, int]], domain_index: int,
                 train: bool, mean: Sequence[float], std: Sequence[float]) -> None:
        self.cache, self.train, self.domain_index = cache, train, domain_index
        # evaluation items are returned normalised: (x / 255 - mean) / std
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)
        # -1: not cached (a subsampled run's cache holds only the items it reads)
        self.rows = [cache.rows.get(rel, -1) for rel, _ in items]
        self.labels = [label for _, label in items]
        self.items = items

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[Any, int, int]:
        row = self.rows[i]
        if row < 0:
            raise KeyError(f"{self.items[i][0]} is not in the image cache {self.cache.path}")
        if self.train:
            views = (torch.from_numpy(np.array(self.cache.views["small"][row])),
                     torch.from_numpy(np.array(self.cache.views["big"][row])))
        else:
            test = torch.from_numpy(np.array(self.cache.views["test"][row]))
            views = normalise(test[None], self.mean, self.std)[0]
        return views, self.labels[i], self.domain_index


def normalise(u8: torch.Tensor, mean: Any, std: Any) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float, as ToTensor + Normalize: x / 255, then (x - mean) / std
    (``mean``, ``std``: 3 numbers, or tensors already shaped (1, 3, 1, 1))."""
    m = torch.as_tensor(mean, device=u8.device).view(1, 3, 1, 1)
    s = torch.as_tensor(std, device=u8.device).view(1, 3, 1, 1)
    return (u8.float().div_(255) - m) / s


def apply(small: torch.Tensor, big: torch.Tensor, translate: torch.Tensor, top: torch.Tensor,
          left: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """The published training transform on a batch, with its random choices given:
    ``translate`` (B,) bool picks the crop of ``big`` at (``top``, ``left``) over ``small``;
    ``flip`` (B,) bool mirrors. uint8 in, uint8 out, (B, 3, s, s)."""
    b, _, s, _ = small.shape
    dev = small.device
    rows = (top.view(b, 1) + torch.arange(s, device=dev)).view(b, 1, s, 1)
    cols = (left.view(b, 1) + torch.arange(s, device=dev)).view(b, 1, 1, s)
    crop = big[torch.arange(b, device=dev).view(b, 1, 1, 1), torch.arange(3, device=dev).view(1, 3, 1, 1), rows, cols]
    out = torch.where(translate.view(b, 1, 1, 1), crop, small)
    return torch.where(flip.view(b, 1, 1, 1), out.flip(-1), out)


def target_path(dataset: Any, name: str, size: int) -> tuple[Path, Path, list[str]]:
    """Where the cache of ``dataset`` at ``size`` lives (built or not), its source folder
    and files."""
    folder, files = dataset.image_files()
    files = sorted(set(files))
    return cache_dir() / "images" / f"{name}-{size}px-{fingerprint(folder, files, size)}", folder, files


def verify_dataset(dataset: Any, name: str, size: int) -> str:
    """``dgbench data verify``: the cache checked in full (its manifest, sizes and checksums,
    each source file against the sha256 it was built from, each image decoded again against
    its cached pixels). A line saying so, or a DataError naming the first problem."""
    path, folder, files = target_path(dataset, name, size)
    if not path.exists():
        return f"no image cache for {name} at {size} px yet: the first run builds it ({path})"
    problem = check(path, files)
    problems = [problem] if problem else verify(ImageCache(path), folder)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DataError(f"image cache {path} is damaged: {problems[0]}{more}; the next run "
                        "rebuilds it (or delete the folder)")
    return f"image cache {path}: {len(files)} images, manifest, checksums and pixels verified"


def open_for(dataset: Any, name: str, size: int, progress: bool = True,
             bad_images: str = "error", only: Sequence[str] | None = None) -> ImageCache:
    """The cache of ``dataset`` (registered as ``name``) at ``size``, built if needed. Source
    files that cannot be decoded stop here, before training (``bad_images="error"``), or are
    left out of every split of ``dataset`` and listed in its records (``"skip"``). ``only``:
    the files the runs read (``data.subsample``): the whole dataset's cache when it is built
    already, else a cache of these files alone (``<name>-subset``, one kept at a time)."""
    if dataset.image_files() is None:
        raise DataError(f"{name} reads no image files: it has no image cache")
    folder, files = dataset.image_files()
    if only is not None and not target_path(dataset, name, size)[0].exists():
        name, files = f"{name}-subset", list(only)
    cache = ImageCache.open_or_build(name, folder, files, size, progress)
    if cache.unreadable:
        dataset.leave_out(cache.unreadable, bad_images)
    return cache


class BatchAugment:
    """The training transform of cached items for a whole batch: the (small, big) uint8 views
    are moved to ``device``, augmented with draws from a generator seeded by ``seed`` (on the
    device) and normalised with ``mean`` / ``std``."""

    def __init__(self, device: torch.device, seed: int, mean: Sequence[float],
                 std: Sequence[float]) -> None:
        self.device, self.mean, self.std = device, mean, std
        self.gen = torch.Generator(device=device).manual_seed(seed)

    def __call__(self, views: Sequence[torch.Tensor]) -> torch.Tensor:
        small, big = (t.to(self.device, non_blocking=True) for t in views)
        return normalise(augment(small, big, self.gen), self.mean, self.std)


def augment(small: torch.Tensor, big: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Draw the batch's random choices from ``gen`` (on the tensors' device) and apply them:
    translation with p=0.5 at an offset ``round(uniform(0, n - s))`` per axis (Dassl's, the
    ends half as likely as each inner offset), horizontal flip with p=0.5."""
    b, s, n = small.shape[0], small.shape[-1], big.shape[-1]
    dev = small.device
    translate = torch.rand(b, device=dev, generator=gen) < 0.5
    top = torch.round(torch.rand(b, device=dev, generator=gen) * (n - s)).long()
    left = torch.round(torch.rand(b, device=dev, generator=gen) * (n - s)).long()
    flip = torch.rand(b, device=dev, generator=gen) < 0.5
    return apply(small, big, translate, top, left, flip)
