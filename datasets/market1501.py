"""``market1501``: Market-1501 (Zheng et al., "Scalable Person Re-identification: A Benchmark",
ICCV 2015), read with torchreid's rules (see the README's re-identification section).

Accepted roots (``--data-root``, ``$DGBENCH_DATA``): the folder holding
``bounding_box_train/``, ``query/`` and ``bounding_box_test/``, or any of its parents
``Market-1501-v15.09.15/``, ``market1501/`` and ``market1501/Market-1501-v15.09.15/``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dgbench.core.errors import DataError
from dgbench.data.base import DATASETS, list_files
from dgbench.data.reid import Item, ReIDDataset, ReIDSplit, locate

FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
PATTERN = re.compile(r"([-\d]+)_c(\d)")
PUBLISHED = {"train": (751, 12936), "query": (750, 3368), "gallery": (752, 15913)}  # ids, images
WHERE_TO_GET = (
    "Market-1501 is not downloadable by dgbench (its terms ask for a request to the authors); "
    "put Market-1501-v15.09.15/ (bounding_box_train/, query/, bounding_box_test/) under "
    "--data-root DIR or DGBENCH_DATA. For a generated stand-in: dgbench synth-reid DIR."
)


def find_root(root: str | None) -> Path:
    return locate(root, "market1501", "Market-1501",
                  ("", "Market-1501-v15.09.15", "market1501", "market1501/Market-1501-v15.09.15"),
                  tuple(FOLDERS.values()), WHERE_TO_GET)


def parse_folder(folder: Path, relabel: bool) -> tuple[list[Item], int]:
    """Items of one folder in sorted file order, and how many junk (pid -1) files were dropped
    (hidden files, e.g. macOS's ``._`` companions, are not images: torchreid's glob skips them)."""
    items, junk = [], 0
    for f in list_files(folder, "*.jpg"):
        m = PATTERN.search(f.name)
        if m is None:
            raise DataError(f"{f}: cannot read the identity and camera from the name (expected "
                            "e.g. 0002_c1s1_000451_03.jpg)")
        pid, cam = int(m.group(1)), int(m.group(2))
        if pid == -1:
            junk += 1
            continue
        if not (0 <= pid <= 1501 and 1 <= cam <= 6):
            raise DataError(f"{f}: identity {pid} or camera {cam} is outside Market-1501's "
                            "0..1501 / 1..6")
        items.append((f"{folder.name}/{f.name}", pid, cam - 1))
    if relabel:
        label = {pid: i for i, pid in enumerate(sorted({p for _, p, _ in items}))}
        items = [(rel, label[pid], cam) for rel, pid, cam in items]
    return items, junk


@DATASETS.register("market1501")
class Market1501(ReIDDataset):
    """Market-1501 (Zheng et al., ICCV 2015): 6 cameras, 751 training / 750 test identities."""

    def __init__(self, root: str | None, image_size: int) -> None:
        super().__init__(root, image_size)
        self.folder = find_root(root)
        parts, self.junk = {}, {}
        for part, name in FOLDERS.items():
            parts[part], self.junk[part] = parse_folder(self.folder / name, relabel=part == "train")
            if not parts[part]:
                raise DataError(f"{self.folder / name} has no usable .jpg images")
        self.splits = [ReIDSplit(parts["train"], parts["query"], parts["gallery"])]
        for part, (ids, n) in PUBLISHED.items():
            got = len(getattr(self.splits[0], part))
            if got != n:
                self.problems.append(f"{part} has {got} images; the published Market-1501 has {n}")

    def describe(self) -> dict[str, Any]:
        gallery = self.splits[0].gallery
        return {
            "version": 1, "root": str(self.folder), "layout": "Market-1501-v15.09.15",
            "notes": {
                "junk (pid -1) dropped": ", ".join(f"{k} {v}" for k, v in self.junk.items()),
                "distractors (pid 0) kept in the gallery": sum(p == 0 for _, p, _ in gallery),
            },
        }
