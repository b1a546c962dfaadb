"""DomainBed's data protocol: each domain's images in ``ImageFolder`` order, split into "out"
(``holdout_fraction``, 20% by default) and "in" (the rest) by a permutation seeded from
``(trial_seed, env_index)``.

Facts from DomainBed (github.com/facebookresearch/DomainBed, ``scripts/train.py`` and
``lib/misc.py``, the same at commit 7df6f06 and at HEAD): every environment ``env_i`` (the
i-th domain folder in sorted order) is split by ``misc.split_dataset(env, int(len(env) *
holdout_fraction), misc.seed_hash(trial_seed, env_i))``, which shuffles ``range(len(env))``
with ``numpy.random.RandomState(seed)`` and gives the first ``n`` keys to the "out" part and
the rest to "in"; ``seed_hash`` is the MD5 of ``str(args)`` modulo 2**31. The split does not
depend on which domains are tested, on the hyperparameters, or on the training seed: every run
of a trial sees the same parts. The "in" parts of the training domains train; accuracy is
measured on every domain's "in" and "out" parts.

A domain's images are listed as torchvision's ``ImageFolder`` lists them (the class folders in
sorted order, then every file with an image extension, in sorted order, hidden files
included), by torchvision's own functions, so that the indices are DomainBed's. A file that
cannot be read keeps its index: the split is made over the whole list first.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dgbench.core.errors import DataError

#: DomainBed's ``--holdout_fraction`` default
HOLDOUT_FRACTION = 0.2
#: the two parts of every domain, in the order DomainBed's split makes them
PARTS = ("out", "in")


def seed_hash(*args: Any) -> int:
    """DomainBed's ``misc.seed_hash``: an integer in [0, 2**31) from the ``str`` of the
    arguments' tuple (so ``seed_hash(0, 1)`` hashes the text ``"(0, 1)"``)."""
    return int(hashlib.md5(str(args).encode("utf-8")).hexdigest(), 16) % (2**31)


def check_fraction(fraction: float, what: str = "protocol.holdout_fraction") -> None:
    if not 0.0 < fraction < 1.0:
        raise DataError(f"{what} must be between 0 and 1 (exclusive), got "
                        f"{fraction}; DomainBed's is {HOLDOUT_FRACTION}")


def holdout_keys(n: int, trial_seed: int, env_index: int,
                 fraction: float = HOLDOUT_FRACTION) -> tuple[list[int], list[int]]:
    """The indices (into the domain's ``ImageFolder`` list of ``n`` images) of its "out" and
    "in" parts, in the order DomainBed's split holds them."""
    check_fraction(fraction)
    keys = list(range(n))
    np.random.RandomState(seed_hash(trial_seed, env_index)).shuffle(keys)
    held = int(n * fraction)
    return keys[:held], keys[held:]


def image_folder(folder: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """The class names and the ``(path relative to folder, class index)`` items that
    torchvision's ``ImageFolder(folder)`` reads, in its order (its own listing functions)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset  # lazy: torchvision

    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder")
    try:
        classes, to_index = find_classes(str(folder))
        samples = make_dataset(str(folder), to_index, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as exc:  # a class folder without images, or no class folders
        raise DataError(f"{folder}: {exc}") from None
    return classes, [(str(Path(path).relative_to(folder).as_posix()), label)
                     for path, label in samples]


def split_items(items: Sequence[Any], trial_seed: int, env_index: int,
                fraction: float = HOLDOUT_FRACTION) -> dict[str, list[Any]]:
    """``items`` (a domain in ``ImageFolder`` order) as ``{"out": [...], "in": [...]}``."""
    out, in_ = holdout_keys(len(items), trial_seed, env_index, fraction)
    return {"out": [items[k] for k in out], "in": [items[k] for k in in_]}


def check_trial_seed(value: Any) -> int:
    """A trial seed is a non-negative integer (or its digits, from the command line)."""
    if isinstance(value, str) and value.strip().isdecimal() and value.strip().isascii():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DataError(f"a trial seed is a non-negative integer, got {value!r}")
    return value


def image_transforms(size: int, train: bool, mean: Sequence[float], std: Sequence[float]) -> Any:
    """DomainBed's ``MultipleEnvironmentImageFolder`` transforms (the same at 7df6f06 and at
    HEAD; 224 px there): a training domain's images, both its parts, as
    ``RandomResizedCrop(scale=(0.7, 1.0))``, horizontal flip, ``ColorJitter(0.3, 0.3, 0.3,
    0.3)``, ``RandomGrayscale()`` (p 0.1); a test domain's resized to size x size."""
    from torchvision import transforms as T  # lazy: torchvision

    tail = [T.ToTensor(), T.Normalize(list(mean), list(std))]
    if not train:
        return T.Compose([T.Resize((size, size)), *tail])
    return T.Compose([T.RandomResizedCrop(size, scale=(0.7, 1.0)), T.RandomHorizontalFlip(),
                      T.ColorJitter(0.3, 0.3, 0.3, 0.3), T.RandomGrayscale(), *tail])
