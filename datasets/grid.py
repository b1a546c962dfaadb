"""``grid``: the QMUL underGround Re-IDentification dataset (Loy, Xiang, Gong, "Multi-camera
activity correlation analysis", CVPR 2009), with its 10 splits, read with torchreid's rules
(see the README's re-identification section).

Accepted roots (``--data-root``, ``$DGBENCH_DATA``): the folder holding ``probe/``,
``gallery/`` and ``features_and_partitions.mat``, or its parents ``underground_reid/``,
``grid/underground_reid/`` (torchreid's layout).

Split k of ``trainIdxAll`` (the third field of its k-th struct, as torchreid reads it) lists
125 identities: training = all their probe and gallery images, relabelled in the listed
order; query = the probe images of the other identities; gallery = their gallery images plus
every distractor (identity 0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dgbench.core.errors import DataError
from dgbench.data.base import DATASETS, list_files
from dgbench.data.reid import Item, ReIDDataset, ReIDSplit, locate

MAT = "features_and_partitions.mat"
PUBLISHED = {"probe": 250, "gallery": 1025}
WHERE_TO_GET = (
    "Get GRID (underground_reid.zip) from the authors' page, then put underground_reid/ "
    "(probe/, gallery/, features_and_partitions.mat) under --data-root DIR or DGBENCH_DATA. "
    "For a generated stand-in: dgbench synth-reid DIR."
)


def find_root(root: str | None) -> Path:
    folder = locate(root, "grid", "GRID", ("", "underground_reid", "grid/underground_reid", "grid"),
                    ("probe", "gallery"), WHERE_TO_GET)
    if not (folder / MAT).is_file():
        raise DataError(f"{folder} has probe/ and gallery/ but no {MAT}: the 10 splits are read "
                        "from it")
    return folder


def parse_folder(folder: Path) -> list[Item]:
    """``IIII_C_...jpeg``: identity (0 = distractor) and camera 1..8 (-> 0..7), sorted; hidden
    files (macOS's ``._`` companions) are skipped, as torchreid's glob skips them."""
    items = []
    for f in list_files(folder, "*.jpeg"):
        fields = f.name.split("_")
        try:
            pid, cam = int(fields[0]), int(fields[1])
        except (ValueError, IndexError):
            raise DataError(f"{f}: cannot read the identity and camera from the name (expected "
                            "e.g. 0001_1_25004_107_32_130.jpeg)") from None
        if not 1 <= cam <= 8:
            raise DataError(f"{f}: camera {cam} is outside GRID's 1..8")
        items.append((f"{folder.name}/{f.name}", pid, cam - 1))
    if not items:
        raise DataError(f"{folder} has no .jpeg images")
    return items


def read_train_ids(path: Path) -> list[list[int]]:
    """The training identities of every split, from ``trainIdxAll`` in the .mat file."""
    from scipy.io import loadmat  # lazy: SciPy's io costs a second, only GRID's .mat needs it

    try:
        mat = loadmat(str(path))
    except Exception as exc:  # scipy raises several types for a damaged file
        raise DataError(f"{path} is not a readable MATLAB file ({exc})") from None
    if "trainIdxAll" not in mat:
        keys = ", ".join(k for k in mat if not k.startswith("__"))
        raise DataError(f"{path} has no 'trainIdxAll' (it holds: {keys or 'nothing'}); it should "
                        "be GRID's features_and_partitions.mat")
    try:
        cells = mat["trainIdxAll"][0]
        splits = [np.asarray(cell[0][0][2][0]).astype(int).tolist() for cell in cells]
    except (IndexError, TypeError, ValueError):
        raise DataError(f"{path}: trainIdxAll is not laid out as in GRID's release (a 1 x 10 "
                        "cell array of structs whose third field lists the training ids)") from None
    for k, ids in enumerate(splits):
        if len(set(ids)) != len(ids) or not ids:
            raise DataError(f"{path}: split {k} lists no or repeated training identities")
    return splits


@DATASETS.register("grid")
class GRID(ReIDDataset):
    """GRID (Loy et al., CVPR 2009): 8 cameras, 250 paired identities + 775 distractors, 10 splits."""

    def __init__(self, root: str | None, image_size: int) -> None:
        super().__init__(root, image_size)
        self.folder = find_root(root)
        probe, gallery = parse_folder(self.folder / "probe"), parse_folder(self.folder / "gallery")
        self.counts = {"probe": len(probe), "gallery": len(gallery)}
        for part, n in PUBLISHED.items():
            if self.counts[part] != n:
                self.problems.append(f"{part}/ has {self.counts[part]} images; GRID has {n}")
        known = {pid for _, pid, _ in probe + gallery}
        for k, ids in enumerate(read_train_ids(self.folder / MAT)):
            missing = sorted(set(ids) - known)
            if missing:
                raise DataError(f"{self.folder / MAT}: split {k} lists identities with no "
                                f"image, e.g. {missing[0]}")
            label = {pid: i for i, pid in enumerate(ids)}  # the order given in the file
            train = [(r, label[p], c) for r, p, c in probe + gallery if p in label]
            query = [it for it in probe if it[1] not in label]
            rest = [it for it in gallery if it[1] not in label]  # test ids + distractors
            self.splits.append(ReIDSplit(train, query, rest))

    def describe(self) -> dict[str, Any]:
        return {
            "version": 1, "root": str(self.folder), "layout": "underground_reid",
            "notes": {
                "images": f"probe {self.counts['probe']}, gallery {self.counts['gallery']}",
                "splits": f"{len(self.splits)} from {MAT}",
            },
        }
