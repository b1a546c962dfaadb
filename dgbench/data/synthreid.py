"""A generated person re-identification dataset in the real Market-1501 and GRID layouts.

``dgbench synth-reid DIR`` writes ``DIR/Market-1501-v15.09.15/`` and ``DIR/underground_reid/``
(with ``features_and_partitions.mat`` written by SciPy), named exactly as the real releases,
junk (-1) and distractor (0000) files included, so every loader rule and the whole ``reid``
protocol run on a CPU in minutes. It is a stand-in for tests and smoke runs, not a benchmark.

Each identity is a drawn figure (hair, skin, shirt, trousers, shoes, an optional stripe and
bag) with its own colours; each camera changes the background, the colour balance and the
brightness, and every image jitters the pose and adds noise. The two "datasets" use different
cameras, so Market -> GRID is a real (if easy) domain shift.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from dgbench.core.errors import DataError

HEIGHT, WIDTH = 64, 32


def _identity(rng: np.random.Generator) -> dict[str, np.ndarray | float | bool]:
    skins = np.array([[240, 200, 170], [200, 150, 110], [140, 95, 65], [90, 60, 40]])
    return {
        "hair": rng.integers(0, 120, 3), "skin": skins[rng.integers(0, len(skins))],
        "shirt": rng.integers(0, 256, 3), "trousers": rng.integers(0, 256, 3),
        "shoes": rng.integers(0, 90, 3), "stripe": rng.integers(0, 256, 3),
        "striped": bool(rng.random() < 0.5), "bag": bool(rng.random() < 0.4),
        "bag_colour": rng.integers(0, 256, 3), "height": float(rng.uniform(0.85, 1.0)),
    }


def _camera(rng: np.random.Generator) -> dict[str, np.ndarray | float]:
    return {"background": rng.integers(30, 220, 3), "gain": rng.uniform(0.7, 1.3, 3),
            "offset": float(rng.uniform(-25, 25))}


def render(person: dict, camera: dict, rng: np.random.Generator) -> np.ndarray:
    """One (HEIGHT, WIDTH, 3) uint8 image of ``person`` seen by ``camera``."""
    img = np.empty((HEIGHT, WIDTH, 3), dtype=np.float32)
    shade = np.linspace(0.8, 1.1, HEIGHT, dtype=np.float32)[:, None, None]
    img[:] = camera["background"] * shade
    h = person["height"] * rng.uniform(0.93, 1.0)
    top = int(HEIGHT * (1 - h)) + int(rng.integers(0, 3))
    cx = WIDTH // 2 + int(rng.integers(-3, 4))

    def box(y0: float, y1: float, x0: int, x1: int, colour: np.ndarray) -> None:
        r0, r1 = top + int(y0 * h * HEIGHT), top + int(y1 * h * HEIGHT)
        img[max(r0, 0):min(r1, HEIGHT), max(x0, 0):min(x1, WIDTH)] = colour

    box(0.00, 0.05, cx - 4, cx + 4, person["hair"])
    box(0.05, 0.15, cx - 4, cx + 4, person["skin"])
    box(0.15, 0.52, cx - 8, cx + 8, person["shirt"])
    if person["striped"]:
        box(0.30, 0.36, cx - 8, cx + 8, person["stripe"])
    box(0.52, 0.92, cx - 7, cx - 1, person["trousers"])
    box(0.52, 0.92, cx + 1, cx + 7, person["trousers"])
    box(0.92, 1.00, cx - 8, cx + 8, person["shoes"])
    if person["bag"]:
        side = cx + 8 if rng.random() < 0.5 else cx - 13
        box(0.25, 0.50, side, side + 5, person["bag_colour"])
    img = img * camera["gain"] + camera["offset"] + rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _save(img: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=92)


def write_market(root: Path, rng: np.random.Generator, train_ids: int = 40, test_ids: int = 40,
                 distractors: int = 20, junk: int = 6) -> Path:
    """``root/Market-1501-v15.09.15`` with 6 cameras, junk and distractor files."""
    base = root / "Market-1501-v15.09.15"
    cams = [_camera(rng) for _ in range(6)]
    frame = 0

    def name(pid: int, cam: int) -> str:
        nonlocal frame
        frame += 1
        return f"{pid:04d}_c{cam + 1}s1_{frame:06d}_01.jpg" if pid >= 0 else \
            f"-1_c{cam + 1}s1_{frame:06d}_01.jpg"

    pids = rng.permutation(np.arange(1, 1 + train_ids + test_ids)).tolist()  # ids 1..80 shuffled
    for i, pid in enumerate(pids):
        person = _identity(rng)
        seen = rng.choice(6, size=3, replace=False)  # every identity crosses cameras
        for j, cam in enumerate(seen):
            for _ in range(2):
                img = render(person, cams[cam], rng)
                if i < train_ids:
                    _save(img, base / "bounding_box_train" / name(pid, cam))
                elif j == 0 and _ == 0:
                    _save(img, base / "query" / name(pid, cam))
                else:
                    _save(img, base / "bounding_box_test" / name(pid, cam))
    for _ in range(distractors):
        _save(render(_identity(rng), cams[rng.integers(6)], rng), base / "bounding_box_test" / name(0, int(rng.integers(6))))
    for k in range(junk):
        folder = ("bounding_box_train", "bounding_box_test")[k % 2]
        _save(rng.integers(0, 256, (HEIGHT, WIDTH, 3)).astype(np.uint8), base / folder / name(-1, int(rng.integers(6))))
    return base


def write_grid(root: Path, rng: np.random.Generator, pairs: int = 50, distractors: int = 75,
               splits: int = 10) -> Path:
    """``root/underground_reid`` with 8 cameras, probe/gallery and a 10-split .mat file."""
    from scipy.io import savemat  # lazy: SciPy's io costs a second, only GRID's .mat needs it

    base = root / "underground_reid"
    cams = [_camera(rng) for _ in range(8)]
    frame = 0

    def name(pid: int, cam: int) -> str:
        nonlocal frame
        frame += 1
        return f"{pid:04d}_{cam + 1}_{25000 + frame}_{rng.integers(0, 700)}_{rng.integers(0, 500)}_{rng.integers(40, 140)}.jpeg"

    for pid in range(1, pairs + 1):
        person = _identity(rng)
        a, b = rng.choice(8, size=2, replace=False)  # probe and gallery from different cameras
        _save(render(person, cams[a], rng), base / "probe" / name(pid, a))
        _save(render(person, cams[b], rng), base / "gallery" / name(pid, b))
    for _ in range(distractors):
        cam = int(rng.integers(8))
        _save(render(_identity(rng), cams[cam], rng), base / "gallery" / name(0, cam))
    # trainIdxAll: 1 x splits cell array of 1x1 structs; the third field lists the train ids
    cells = np.empty((1, splits), dtype=object)
    fields = [("testIdx", "O"), ("probeIdx", "O"), ("trainIdx", "O")]
    for k in range(splits):
        order = rng.permutation(np.arange(1, pairs + 1))
        struct = np.empty((1, 1), dtype=fields)
        struct[0, 0]["testIdx"] = np.sort(order[pairs // 2:]).astype(float)[None]
        struct[0, 0]["probeIdx"] = np.arange(1, pairs + 1, dtype=float)[None]
        struct[0, 0]["trainIdx"] = order[:pairs // 2].astype(float)[None]
        cells[0, k] = struct
    savemat(str(base / "features_and_partitions.mat"), {"trainIdxAll": cells})
    return base


def generate(root: str | Path, seed: int = 0, scale: int = 1) -> dict[str, str]:
    """Write both datasets under ``root``; ``scale`` multiplies the number of identities."""
    root = Path(root)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"--seed must be an integer >= 0; got {seed!r}")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise DataError(f"--scale must be an integer >= 1 (it multiplies the identities); "
                        f"got {scale!r}")
    for folder in ("Market-1501-v15.09.15", "underground_reid"):
        if (root / folder).exists():
            raise DataError(f"{root / folder} already exists; choose an empty folder")
    rng = np.random.default_rng(seed)
    made = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".synth-reid-", dir=root))
    try:  # written beside, moved into place when complete
        market = write_market(staging, rng, 40 * scale, 40 * scale, 20 * scale)
        grid = write_grid(staging, rng, 50 * scale, 75 * scale)
        market.replace(root / market.name)
        grid.replace(root / grid.name)
    except BaseException:
        if made:  # a failed run leaves no empty folder behind
            shutil.rmtree(root, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"market1501": str(root / market.name), "grid": str(root / grid.name)}
