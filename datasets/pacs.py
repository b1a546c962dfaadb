"""``pacs``: PACS (Li, Yang, Song, Hospedales, "Deeper, Broader and Artier Domain
Generalization", ICCV 2017), four domains of seven classes, with its official kfold splits.

Accepted layouts under the data root (``--data-root``, ``$DGBENCH_DATA``, or a ``PACS`` folder
inside either):

- ``images/<domain>/<class>/<file>`` with ``splits/<domain>_{train,crossval,test}_kfold.txt``
  (Dassl's layout, and the copy in ``../shared/data/PACS``);
- the original release: ``kfold/<domain>/<class>/<file>`` with the split files beside
  ``kfold/`` (or inside it, or in ``splits/``);
- DomainBed's ``<domain>/<class>/<file>`` with no split files: each domain is then split
  90/10 into train/val, stratified by class, with a fixed seed, and a warning says so.

Split files list ``<domain>/<class>/<file> <label>`` with 1-based labels. The broken sample
``sketch/dog/n02103406_4068-1.png`` (a drawing of the word "ERROR") is excluded, as Dassl and
so the EFDM and MixStyle results exclude it; the exclusion is recorded.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T

from dgbench.core.download import extract_zip, fetch, remove, sha256_file, tree_digest
from dgbench.core.errors import DataError
from dgbench.data.base import (DATASETS, IMAGENET_MEAN, IMAGENET_STD, DomainDataset, ImageList,
                               list_files)
from dgbench.data.domainbed import PARTS, image_folder, image_transforms
from dgbench.data.imagecache import CachedDomainSet

DOMAINS = ("art_painting", "cartoon", "photo", "sketch")
CLASSES = ("dog", "elephant", "giraffe", "guitar", "horse", "house", "person")
EXCLUDED = ("sketch/dog/n02103406_4068-1.png",)
SPLIT_FILES = {"train": "train_kfold", "val": "crossval_kfold", "all": "test_kfold"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
FALLBACK_SEED = 0
FALLBACK_VAL = 0.1
WHERE_TO_GET = (
    "Get PACS from the authors' page (https://domaingeneralization.github.io/), then pass "
    "--data-root DIR or set DGBENCH_DATA. Accepted layouts: "
    "images/<domain>/<class>/ + splits/*_kfold.txt; kfold/<domain>/<class>/ with the split "
    "files beside it; or DomainBed's <domain>/<class>/ (no split files). "
    "Or run 'dgbench download pacs --dest DIR'."
)
# The archive Dassl's PACS loader downloads (images/ + splits/ in a top folder 'pacs/').
DOWNLOAD_URL = (
    "https://drive.usercontent.google.com/download"
    "?id=1m4X4fROCCXMO0lRLrr6Zz9Vb3974NWhE&export=download&confirm=t"
)
# No checksum of that archive is published, and a zip's bytes change when it is re-packed, so
# the download is verified by content: the sha256 over every image file (path + sha256 of its
# bytes, sorted; the broken sketch included) and over the 12 split files, as computed from the
# copy in ../shared/data/PACS (9,991 images). See dgbench.core.download.tree_digest.
IMAGES_SHA256 = "c2728f61ff75cfd7438b12e1c334a97dfef6fb1079791f0f3699e271a374c068"
SPLITS_SHA256 = "3806c4061655dec916791500de1e87111c2ed650553609eb67510980a7f156e7"


@dataclass
class Layout:
    """Where PACS was found and how it is organised."""

    root: Path  # the PACS folder
    images: Path  # the folder holding <domain>/<class>/<file>
    splits: Path | None  # folder of *_kfold.txt, None for DomainBed's layout
    name: str  # "images+splits", "kfold", "domainbed"
    problems: list[str] = field(default_factory=list)


def _has_domains(folder: Path) -> bool:
    return all((folder / d).is_dir() for d in DOMAINS)


def _split_dir(*candidates: Path) -> Path | None:
    for c in candidates:
        if c.is_dir() and (c / "art_painting_train_kfold.txt").is_file():
            return c
    return None


def find_layout(root: str | None) -> Layout:
    """Locate PACS under ``root`` (or ``$DGBENCH_DATA``) and detect its layout."""
    base = root or os.environ.get("DGBENCH_DATA")
    if not base:
        raise DataError(f"no data root given for pacs. {WHERE_TO_GET}")
    tried = []
    for folder in (Path(base), Path(base) / "PACS", Path(base) / "pacs"):
        tried.append(str(folder))
        if _has_domains(folder / "images"):
            splits = _split_dir(folder / "splits", folder)
            if splits:
                return Layout(folder, folder / "images", splits, "images+splits")
        if _has_domains(folder / "kfold"):
            splits = _split_dir(folder, folder / "kfold", folder / "splits")
            if splits:
                return Layout(folder, folder / "kfold", splits, "kfold")
        for images in (folder, folder / "images", folder / "kfold"):
            if _has_domains(images):
                return Layout(folder, images, None, "domainbed")
    raise DataError(f"PACS not found (looked in {', '.join(tried)}). {WHERE_TO_GET}")


def image_files(images: Path, domain: str) -> list[Path]:
    """Every image file on disk under ``images/<domain>/<class>/``, sorted (hidden files and
    folders left out)."""
    return [p for p in list_files(images / domain, "*/*") if p.suffix.lower() in IMAGE_SUFFIXES]


def content_digests(layout: Layout) -> dict[str, str | None]:
    """The content digests the download is checked against (``splits`` None without split files)."""
    images = [p for d in DOMAINS for p in image_files(layout.images, d)]
    splits = sorted(layout.splits.glob("*_kfold.txt")) if layout.splits else []
    return {
        "images": tree_digest(layout.images, images),
        "splits": tree_digest(layout.splits, splits) if layout.splits else None,
    }


def download(dest: Path, url: str = DOWNLOAD_URL, sha256: str | None = None,
             progress: bool = True) -> dict[str, Any]:
    """Fetch PACS into ``dest/PACS`` (images/ + splits/), verified, or write nothing there.

    ``sha256``, if given, must equal the archive's; the extracted images and split files must
    always match :data:`IMAGES_SHA256` / :data:`SPLITS_SHA256`.
    """
    final = dest / "PACS"
    if final.exists():
        raise DataError(f"{final} already exists; check it with 'dgbench data pacs --data-root "
                        f"{dest}', or remove it to download again")
    made = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".pacs-download-", dir=dest))
    try:
        archive = fetch(url, staging / "pacs.zip", progress)
        archive_sha = sha256_file(archive)
        if sha256 and archive_sha != sha256.strip().lower():
            raise DataError(f"the archive from {url} has sha256 {archive_sha}, not the expected "
                            f"{sha256}; nothing was installed")
        extract_zip(archive, staging / "extracted")
        archive.unlink()
        try:
            layout = find_layout(str(staging / "extracted"))
        except DataError:
            raise DataError(f"the archive from {url} holds no PACS domains folders; nothing "
                            "was installed") from None
        if layout.splits is None:
            raise DataError(f"the archive from {url} has no official split files "
                            "(*_kfold.txt); nothing was installed")
        digests = content_digests(layout)
        wrong = [f"{k} {digests[k]} (expected {want})"
                 for k, want in (("images", IMAGES_SHA256), ("splits", SPLITS_SHA256))
                 if digests[k] != want]
        if wrong:
            raise DataError(f"the files from {url} differ from the reference PACS: "
                            f"{'; '.join(wrong)}; nothing was installed")
        built = staging / "PACS"
        (built / "splits").mkdir(parents=True)
        for f in layout.splits.glob("*_kfold.txt"):
            f.replace(built / "splits" / f.name)
        layout.images.replace(built / "images")
        built.replace(final)
    finally:
        remove(staging)
        if made and not final.exists():  # a failed download leaves no empty folder behind
            shutil.rmtree(dest, ignore_errors=True)
    return {"path": str(final), "archive_sha256": archive_sha, **digests}


def read_split_file(path: Path, images: Path) -> list[tuple[str, int]]:
    """``(relative path, 0-based label)`` per line; every error names the file and line."""
    if not path.is_file():
        raise DataError(f"split file {path} is missing; PACS needs all 12 *_kfold.txt files")
    items, seen = [], {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        where = f"{path}:{lineno}"
        if len(parts) != 2:
            raise DataError(f"{where}: expected '<domain>/<class>/<file> <label>', got {line!r}")
        rel, label_text = parts
        try:
            label = int(label_text)
        except ValueError:
            raise DataError(f"{where}: label {label_text!r} is not an integer") from None
        if not 1 <= label <= len(CLASSES):
            raise DataError(f"{where}: label {label} is outside 1..{len(CLASSES)} (labels are 1-based)")
        if rel in seen:
            raise DataError(f"{where}: {rel} is listed twice (first on line {seen[rel]})")
        seen[rel] = lineno
        if rel.split("/")[1:2] != [CLASSES[label - 1]]:
            raise DataError(f"{where}: {rel} has label {label} ({CLASSES[label - 1]}), not its folder's class")
        if not (images / rel).is_file():
            raise DataError(f"{where}: {images / rel} does not exist")
        items.append((rel, label - 1))
    return items


def _scan_domain(images: Path, domain: str) -> list[tuple[str, int]]:
    items = []
    for label, cls in enumerate(CLASSES):
        folder = images / domain / cls
        if not folder.is_dir():
            raise DataError(f"{folder} is missing: PACS has the classes {', '.join(CLASSES)}")
        for f in list_files(folder, "*"):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                items.append((f"{domain}/{cls}/{f.name}", label))
    return items


def _fallback_split(items: list[tuple[str, int]]) -> dict[str, list[tuple[str, int]]]:
    """DomainBed layout: a seeded 90/10 train/val split per domain, stratified by class."""
    rng = random.Random(FALLBACK_SEED)
    train, val = [], []
    for label in range(len(CLASSES)):
        group = [it for it in items if it[1] == label]
        rng.shuffle(group)
        n_val = max(1, round(FALLBACK_VAL * len(group))) if len(group) > 1 else 0
        val += group[:n_val]
        train += group[n_val:]
    return {"train": sorted(train), "val": sorted(val), "all": sorted(items)}


class Translate:
    """Dassl's random translation (``Random2DTranslation``), on an image already resized to
    ``size`` x ``size``: with probability ``p`` it is resized to 1.125 x (224 -> 252) and a
    ``size`` crop is taken at an offset ``round(uniform(0, 1.125 size - size))`` per axis
    (Python's ``random``, seeded by the run), else it is left as it is."""

    def __init__(self, size: int, p: float = 0.5) -> None:
        self.size, self.p = size, p

    def __call__(self, image: Any) -> Any:
        if random.uniform(0, 1) > self.p:
            return image
        big = round(self.size * 1.125)
        resized = image.resize((big, big), Image.BILINEAR)
        left = int(round(random.uniform(0, big - self.size)))
        top = int(round(random.uniform(0, big - self.size)))
        return resized.crop((left, top, left + self.size, top + self.size))


def transforms(image_size: int, train: bool):
    """The published recipe (Dassl's): resize to size x size, random translation (p=0.5),
    flip; tests: resize + centre crop."""
    normalise = [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if not train:
        return T.Compose([T.Resize(image_size), T.CenterCrop(image_size), *normalise])
    return T.Compose([T.Resize((image_size, image_size)), Translate(image_size),
                      T.RandomHorizontalFlip(), *normalise])


@DATASETS.register("pacs")
class PACS(DomainDataset):
    """PACS (Li et al., ICCV 2017): art_painting, cartoon, photo, sketch; 7 classes, official splits."""

    domains = DOMAINS
    classes = CLASSES
    titles = {"art_painting": "Art", "cartoon": "Cartoon", "photo": "Photo", "sketch": "Sketch"}
    domainbed_name, domainbed_checkpoint_freq = "PACS", 300  # DomainBed's datasets.PACS
    # the published recipe's settings where dgbench's code defaults are not already them
    # (224 px, batch 64, SGD lr 1e-3, cosine, 50 epochs, ResNet-18 after layer1-3): the
    # ImageNet weights every published PACS result starts from
    defaults = {"data.image_size": 224, "model.pretrained": True}

    def __init__(self, root: str | None, image_size: int) -> None:
        super().__init__(root, image_size)
        self.layout = find_layout(root)
        excluded: set[str] = set()
        self.splits: dict[str, dict[str, list[tuple[str, int]]]] = {}
        for domain in DOMAINS:
            if self.layout.splits is None:
                parts = _fallback_split(_scan_domain(self.layout.images, domain))
            else:
                parts = {
                    split: read_split_file(self.layout.splits / f"{domain}_{suffix}.txt", self.layout.images)
                    for split, suffix in SPLIT_FILES.items()
                }
            for split, items in parts.items():
                excluded.update(rel for rel, _ in items if rel in EXCLUDED)
                parts[split] = [it for it in items if it[0] not in EXCLUDED]
            self.splits[domain] = parts
        self.excluded = sorted(excluded)
        if self.layout.splits is None:
            warnings.warn(
                f"PACS at {self.layout.root} has no official split files (DomainBed layout): "
                f"using a seeded, stratified {1 - FALLBACK_VAL:.0%}/{FALLBACK_VAL:.0%} train/val "
                "split per domain, which differs from the published protocol"
            )
            self.layout.problems.append("official kfold split files not found; fallback split used")

    def subset(self, domain: str, split: str, train: bool) -> Dataset:
        self.check_domain(domain)
        index = self.domains.index(domain)
        items = [(rel, label, index) for rel, label in self.splits[domain][split]]
        if split in PARTS:  # DomainBed's parts: its transforms
            return ImageList(self.layout.images, items,
                             image_transforms(self.image_size, train, self.mean, self.std))
        return ImageList(self.layout.images, items, transforms(self.image_size, train))

    supports_cache = True
    mean, std = IMAGENET_MEAN, IMAGENET_STD

    def image_files(self) -> tuple[Path, list[str]]:
        files = {rel for d in DOMAINS for part in self.splits[d].values() for rel, _ in part}
        return self.layout.images, sorted(files)

    def part_files(self, domain: str, split: str) -> list[str]:
        self.check_domain(domain)
        return [rel for rel, _ in self.splits[domain][split]]

    def drop_files(self, files: set[str]) -> None:
        for parts in self.splits.values():
            for split, items in parts.items():
                parts[split] = [it for it in items if it[0] not in files]

    def domainbed_items(self, domain: str) -> list[tuple[str, int]]:
        """The domain as DomainBed's ``ImageFolder`` reads it: every image file of
        ``<domain>/<class>/`` (the broken sketch and hidden files included: DomainBed indexes
        them, so leaving one out would shift every later index)."""
        self.check_domain(domain)
        classes, items = image_folder(self.layout.images / domain)
        if tuple(classes) != CLASSES:
            raise DataError(f"{self.layout.images / domain} has the class folders "
                            f"{', '.join(classes)}; PACS has {', '.join(CLASSES)}")
        return [(f"{domain}/{rel}", label) for rel, label in items]

    def set_parts(self, domain: str, parts: dict[str, list[tuple[str, int]]]) -> None:
        self.splits[domain].update(parts)

    def cached_subset(self, cache: Any, domain: str, split: str, train: bool) -> Dataset:
        self.check_domain(domain)
        return CachedDomainSet(cache, self.splits[domain][split], self.domains.index(domain),
                               train, self.mean, self.std)

    @classmethod
    def download(cls, dest: Path, url: str | None = None, sha256: str | None = None,
                 progress: bool = True) -> dict[str, Any]:
        return download(dest, url or DOWNLOAD_URL, sha256, progress)

    def inventory(self) -> dict[str, Any]:
        """What is on disk, for ``dgbench data pacs``: image files per domain, unlisted files."""
        on_disk: dict[str, int] = {}
        listed = {rel for d in DOMAINS for rel, _ in self.splits[d]["all"]} | set(self.excluded)
        unlisted = []
        for domain in DOMAINS:
            files = [f"{domain}/{p.parent.name}/{p.name}"
                     for p in image_files(self.layout.images, domain)]
            on_disk[domain] = len(files)
            unlisted += [f for f in files if f not in listed]
        problems = list(self.layout.problems)
        if unlisted:
            problems.append(f"{len(unlisted)} image files are in no split file, e.g. {unlisted[0]}")
        return {"images_on_disk": on_disk, "problems": problems}

    def describe(self) -> dict[str, Any]:
        parts = ("train", "val", "all") + (("out", "in") if self.holdout else ())
        listing = "\n".join(
            f"{d} {s} {rel} {label}" for d in DOMAINS for s in parts
            for rel, label in self.splits[d][s]
        )
        return {
            "version": 2,  # 2: Dassl's translation (of the resized image, rounded offsets)
            "root": str(self.layout.root),
            "layout": self.layout.name,
            "excluded": list(self.excluded),
            "official_splits": self.layout.splits is not None,
            **({"domainbed_holdout": {"trial_seed": self.holdout[0],
                                      "fraction": self.holdout[1]}} if self.holdout else {}),
            **({"skipped_images": dict(self.skipped_images)}
               if getattr(self, "skipped_images", None) else {}),
            "split_sha256_16": hashlib.sha256(listing.encode()).hexdigest()[:16],
        }
