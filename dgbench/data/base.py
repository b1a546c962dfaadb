"""Datasets made of domains: the base class of every dataset, reading and checking images.

A registered dataset (:data:`DATASETS`) is a :class:`DomainDataset` subclass. It names its
task (``task``: ``classification`` here, ``reid`` for :class:`dgbench.data.reid.ReIDDataset`), its domains and
classes, builds ``torch.utils.data.Dataset`` objects for ``(domain, split)`` with split one of
``train``, ``val`` (held-out part of the same domain) and ``all`` (the whole domain), and owns
its recommended settings (``defaults``: dotted config keys), which the user's config overrides.
Data knows no model: nothing in dgbench.data imports model code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import torch
from PIL import Image
from tabulate import tabulate
from torch.utils.data import ConcatDataset, Dataset, Subset
from tqdm.auto import tqdm

from dgbench.core.errors import DataError, did_you_mean
from dgbench.core.registry import Registry
from dgbench.data.domainbed import HOLDOUT_FRACTION, split_items

#: every dataset, built-in (the repository's datasets/ folder) or from a plugin (the
#: ``dgbench.datasets`` entry-point group)
DATASETS = Registry("dataset", "dgbench.datasets", builtins="dgbench.datasets")

# torchvision's ImageNet normalisation, used by every dataset fed to ImageNet-style backbones
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def list_files(folder: Path, pattern: str) -> list[Path]:
    """The files under ``folder`` that match the glob ``pattern``, sorted, hidden ones left out.

    A path with any part below ``folder`` starting with '.' is hidden: macOS's ``._name``
    companions, ``.DS_Store``, a ``.thumbnails/`` folder. pathlib's ``*`` matches such names
    (the shell's and ``glob.glob``'s do not: that is how torchreid never sees them).
    """
    return [p for p in sorted(folder.glob(pattern))
            if p.is_file() and not any(part.startswith(".")
                                       for part in p.relative_to(folder).parts)]


def cache_dir() -> Path:
    """Where built datasets are cached: ``$DGBENCH_CACHE`` or the user's cache directory."""
    if os.environ.get("DGBENCH_CACHE"):
        return Path(os.environ["DGBENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dgbench"


class DomainDataset:
    """Base class of registered datasets: a set of named domains sharing one label space."""

    #: the registered task (dgbench.tasks) that trains and evaluates on this dataset
    task: ClassVar[str] = "classification"
    domains: ClassVar[tuple[str, ...]] = ()
    classes: ClassVar[tuple[str, ...]] = ()
    #: short column titles for tables, e.g. {"art_painting": "Art"}; the name otherwise
    titles: ClassVar[dict[str, str]] = {}
    #: recommended settings as dotted config keys, e.g. {"data.image_size": 32}
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, root: str | None, image_size: int) -> None:
        self.root = root
        self.image_size = image_size

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, domain: str, split: str, train: bool) -> Dataset:
        """Items ``(image (3, H, W) float, label int, domain index int)`` of one domain.

        ``train`` selects the training transform (random augmentation) or the test one.
        """
        raise NotImplementedError

    def part(self, domain: str, split: str, train: bool, cache: Any = None) -> Dataset:
        """:meth:`subset`, or :meth:`cached_subset` when a decoded-image cache is given."""
        if cache is not None:
            return self.cached_subset(cache, domain, split, train)
        return self.subset(domain, split, train)

    def describe(self) -> dict[str, Any]:
        """Facts for the run record (version, source, checksum ...)."""
        return {}

    #: whether :meth:`cached_subset` exists (a decoded-image cache, dgbench.data.imagecache)
    supports_cache: ClassVar[bool] = False

    def part_files(self, domain: str, split: str) -> list[str] | None:
        """The image files (relative paths) of one part, in :meth:`subset`'s order, so that
        a subsampled run caches only what it reads; None where the dataset cannot say."""
        return None

    def image_files(self) -> tuple[Path, list[str]] | None:
        """The folder and the image files (relative paths) the dataset reads: what the image
        cache decodes, and what ``data.bad_images=skip`` scans (None: it reads no files)."""
        return None

    def leave_out(self, unreadable: dict[str, str], mode: str) -> None:
        """Image files that cannot be read (path -> reason): an error that names them
        (``mode="error"``), or left out of every split and listed in ``describe()``
        (``"skip"``)."""
        folder = self.image_files()[0]  # type: ignore[index]
        first = next(iter(unreadable))
        if mode == "error":
            raise DataError(f"{len(unreadable)} image file(s) cannot be read, e.g. "
                            f"{folder / first} ({unreadable[first]}); replace or remove them, "
                            "or set data.bad_images=skip to leave them out")
        self.skipped_images = {**getattr(self, "skipped_images", {}), **unreadable}
        self.drop_files(set(unreadable))

    def drop_files(self, files: set[str]) -> None:
        """Remove the items of these files (relative paths) from every split."""
        raise DataError(f"{type(self).__name__} cannot leave files out")

    # -- DomainBed's protocol: every domain split into "in" and "out" ----------------------
    #: the (trial seed, holdout fraction) of the "in" / "out" parts, once :meth:`use_holdout` ran
    holdout: tuple[int, float] | None = None
    #: DomainBed's name of the dataset (its hyperparameter draws depend on it); None: not one
    #: of DomainBed's (drawn as for its image datasets)
    domainbed_name: ClassVar[str | None] = None
    #: DomainBed's ``CHECKPOINT_FREQ``: steps between evaluations (its default, 100)
    domainbed_checkpoint_freq: ClassVar[int] = 100

    def domainbed_items(self, domain: str) -> list[Any]:
        """The domain's items in DomainBed's index order (a file dataset: ``ImageFolder``'s
        over the domain's folder), in the form :meth:`set_parts` takes them."""
        raise DataError(f"{type(self).__name__} cannot be split as DomainBed splits its "
                        "datasets (protocol domainbed)")

    def set_parts(self, domain: str, parts: dict[str, list[Any]]) -> None:
        """Add named parts (lists of :meth:`domainbed_items` items) to a domain's splits."""
        raise DataError(f"{type(self).__name__} cannot add parts")

    def use_holdout(self, trial_seed: int, fraction: float = HOLDOUT_FRACTION) -> None:
        """Give every domain the parts ``in`` and ``out`` of DomainBed's split for
        ``trial_seed`` (the domain's position in :attr:`domains` is its environment index)."""
        if self.holdout == (trial_seed, fraction):
            return  # already split so (a sweep plans many runs of one trial)
        listed = self.__dict__.setdefault("_domainbed_items", {})  # listed once per domain
        for index, domain in enumerate(self.domains):
            if domain not in listed:
                listed[domain] = self.domainbed_items(domain)
            self.set_parts(domain, split_items(listed[domain], trial_seed, index, fraction))
        self.holdout = (trial_seed, fraction)

    def cached_subset(self, cache: Any, domain: str, split: str, train: bool) -> Dataset:
        """Like :meth:`subset`, from the decoded-image cache (training items un-augmented)."""
        raise NotImplementedError

    #: said by ``dgbench download NAME`` for a dataset that has no downloader
    download_note: ClassVar[str] = "it has no downloader; get its files by hand"

    @classmethod
    def download(cls, dest: Path, url: str | None = None, sha256: str | None = None,
                 progress: bool = True) -> dict[str, Any]:
        """Fetch the dataset into ``dest`` and verify it; returns facts to print (``path``...)."""
        raise DataError(f"nothing to download for {cls.__name__}: {cls.download_note}")

    def inventory(self) -> dict[str, Any]:
        """What is on disk, for ``dgbench data``: ``images_on_disk`` per domain, ``problems``."""
        return {}

    def report(self) -> list[str]:
        """Lines for ``dgbench data``: where it is, images per domain and split, problems."""
        facts, inventory = self.describe(), self.inventory()
        lines = [f"  {k}: {facts[k]}" for k in ("root", "layout", "cache", "official_splits",
                                                 "version") if k in facts]
        rows = []
        for domain in self.domains:
            sizes = [len(self.subset(domain, s, train=False)) for s in ("train", "val", "all")]
            rows.append([domain, inventory.get("images_on_disk", {}).get(domain, ""), *sizes])
        lines.append(tabulate(rows, ["domain", "image files", "train", "val",
                                     "test (whole domain)"], tablefmt="simple"))
        excluded, problems = facts.get("excluded", []), inventory.get("problems", [])
        lines.append(f"excluded: {', '.join(excluded) if excluded else 'none'}")
        lines.append(f"problems: {'; '.join(problems) if problems else 'none'}")
        return lines

    def check_domain(self, domain: str) -> None:
        if domain not in self.domains:
            raise DataError(
                f"{type(self).__name__} has no domain {domain!r}; its domains are "
                f"{', '.join(self.domains)}.{did_you_mean(domain, self.domains)}".rstrip(".")
            )


class ImageList(Dataset):
    """Images read from files under ``folder``, converted to RGB and transformed.

    ``items`` are ``(relative path, a, b)``; an item is ``(transform(image), a, b)``: (label,
    domain index) for classification datasets, (pid, camera) for re-identification ones.
    """

    def __init__(self, folder: Path, items: Sequence[tuple[str, int, int]],
                 transform: Callable[[Any], torch.Tensor]) -> None:
        self.folder, self.items, self.transform = folder, items, transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        rel, a, b = self.items[i]
        return self.transform(read_image(self.folder / rel)), a, b


# what PIL raises for a file that is not a readable image (truncated, empty, another format)
UNREADABLE = (OSError, ValueError, SyntaxError, EOFError)


def _rgb(path: Path) -> Any:
    with Image.open(path) as im:
        return im.convert("RGB")


def read_image(path: Path) -> Any:
    """The RGB image at ``path``; a file that is not a readable image is a DataError naming
    it (the first read of a damaged file stops the run, never with a bare traceback)."""
    try:
        return _rgb(path)
    except UNREADABLE as exc:
        raise DataError(f"image {path} cannot be read ({type(exc).__name__}: {exc}); replace "
                        "or remove it, or set data.bad_images=skip to leave such files out "
                        "(checked before training)") from None


def scan_images(folder: Path, files: Sequence[str], progress: bool = True,
                decode: bool = True) -> dict[str, str]:
    """The files that cannot be read, with the reason: every file decoded, or (``decode``
    False, cheap) only its header read, which finds empty, missing and non-image files."""
    bad = {}
    for rel in tqdm(files, desc="checking images", unit="img", leave=False,
                    disable=None if progress else True):
        try:
            if decode:
                _rgb(folder / rel)
            else:
                with Image.open(folder / rel):
                    pass
        except UNREADABLE as exc:
            bad[rel] = f"{type(exc).__name__}: {exc}"
    return bad


class TensorDomainSet(Dataset):
    """In-memory images (N, 3, H, W) uint8 with labels, one domain, and a per-item transform."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        domain_index: int,
        transform: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        self.images, self.labels = images, labels
        self.domain_index, self.transform = domain_index, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        return self.transform(self.images[i]), int(self.labels[i]), self.domain_index


def subsample_indices(n: int, limit: int | None) -> list[int] | None:
    """The items :func:`subsample` keeps of ``n``; None: all of them."""
    if limit is None or limit >= n:
        return None
    return torch.linspace(0, n - 1, limit).round().long().tolist()


def subsample(ds: Dataset, limit: int | None) -> Dataset:
    """At most ``limit`` items, evenly spaced over ``ds`` (deterministic); all when None."""
    keep = subsample_indices(len(ds), limit)
    return ds if keep is None else Subset(ds, keep)


def concat(parts: Sequence[Dataset]) -> ConcatDataset:
    return ConcatDataset(list(parts))
