"""Input-pipeline speed on real PACS: dgbench's cached, batched pipeline against a plain
PIL + torchvision DataLoader, and dgbench's training epoch against a bare loop.

    python scripts/bench_data.py [--data-root ../shared/data/PACS] [--size 64] [--workers 0]

(a) One epoch of input (LODO, target photo: the 7,477 training images of art, cartoon and
    sketch), batch 32: dgbench's loader (decoded-image cache, then the published translation /
    flip / normalisation applied per batch) against a DataLoader over the image files with the
    same transforms per image (torchvision) and the same worker count. The cache is built
    first, outside the timing. Target (issue 6): at least 3x.
(b) One training epoch of the pacs-lodo-cpu model (ResNet-18 width 16, no max-pool, efdmix
    after layer1-3) through dgbench's own training loop (its record's training time), against
    a bare loop of the same steps over the same number of batches already in memory.
    Target: at least 0.9x the bare loop's images/s (the pipeline is not the bottleneck).
Both pairs run interleaved, twice each; the medians are compared.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, DataLoader

from dgbench import config as C
from dgbench.data import imagecache
from dgbench.datasets.pacs import PACS
from dgbench.plan.planner import make_plan, resolve
from dgbench.run.loop import train_run

SOURCES = ("art_painting", "cartoon", "sketch")


def epoch_plain(ds: PACS, bs: int, workers: int) -> float:
    """img/s of PIL + torchvision per image, in a DataLoader."""
    sets = ConcatDataset([ds.subset(d, "train", train=True) for d in SOURCES])
    loader = DataLoader(sets, batch_size=bs, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
    t, n = time.perf_counter(), 0
    for images, _, _ in loader:
        n += len(images)
    return n / (time.perf_counter() - t)


def epoch_cached(ds: PACS, cache: imagecache.ImageCache, bs: int, workers: int) -> float:
    """img/s of dgbench's pipeline: cached uint8 views, augmentation per batch."""
    sets = ConcatDataset([ds.cached_subset(cache, d, "train", train=True) for d in SOURCES])
    loader = DataLoader(sets, batch_size=bs, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(0)
    t, n = time.perf_counter(), 0
    for (small, big), _, _ in loader:
        images = imagecache.normalise(imagecache.augment(small, big, gen), ds.mean, ds.std)
        n += len(images)
    return n / (time.perf_counter() - t)


def harness_epoch(root: str, workers: int) -> tuple[float, int, object]:
    """dgbench's training loop for one epoch: (img/s of its training part, batches, run)."""
    user = C.read_preset("pacs-lodo-cpu")
    user.update({"data.root": root, "aug.names": ["efdmix"], "protocol.targets": ["photo"],
                 "train.epochs": 1, "data.num_workers": workers})
    plan = make_plan(resolve(user))
    record = train_run(plan.runs[0], plan.dataset, progress=False)
    batches = record["sizes"]["train"] // plan.runs[0].config.data.batch_size
    return record["timing"]["images_per_s"], batches, plan


def bare_epoch(plan, batches: int) -> float:
    """The same steps over batches already in memory (no loading, no augmentation)."""
    from dgbench.models.backbones import build_backbone
    from dgbench.models.insertion import insert_augmenters
    from dgbench.augmenters import AUGMENTERS

    cfg = plan.runs[0].config
    model = build_backbone("resnet18", 7, cfg.model.stem, cfg.model.width)
    cls = AUGMENTERS.get("efdmix")
    insert_augmenters(model, cfg.aug.insert, lambda: cls(**cfg.aug.args), "efdmix")
    opt = torch.optim.SGD(model.parameters(), lr=cfg.train.lr, momentum=0.9, weight_decay=5e-4)
    bs, s = cfg.data.batch_size, cfg.data.image_size
    data = [(torch.randn(bs, 3, s, s), torch.randint(0, 7, (bs,))) for _ in range(batches)]
    model.train()
    t = time.perf_counter()
    for x, y in data:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return batches * bs / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "PACS"))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--input-only", action="store_true", help="(a) only")
    ns = parser.parse_args()
    ds = PACS(ns.data_root, ns.size)
    folder, files = ds.image_files()
    t = time.perf_counter()
    cache = imagecache.ImageCache.open_or_build("pacs", folder, files, ns.size, progress=False)
    print(f"PACS at {ns.size} px, {ns.workers} loader workers, batch {ns.batch}, "
          f"{torch.get_num_threads()} threads; cache ready in {time.perf_counter() - t:.1f} s "
          f"({cache.path})")
    plain, cached = [], []
    for _ in range(2):
        plain.append(epoch_plain(ds, ns.batch, ns.workers))
        cached.append(epoch_cached(ds, cache, ns.batch, ns.workers))
    p, c = statistics.median(plain), statistics.median(cached)
    print(f"(a) input pipeline, one epoch: PIL + torchvision {p:.0f} img/s, dgbench {c:.0f} img/s: "
          f"{c / p:.1f}x (target >= 3x: {'met' if c / p >= 3 else 'NOT met'})")
    if ns.input_only:
        return
    harness, bare = [], []
    for _ in range(2):
        h, batches, plan = harness_epoch(ns.data_root, ns.workers)
        harness.append(h)
        bare.append(bare_epoch(plan, batches))
    h, b = statistics.median(harness), statistics.median(bare)
    print(f"(b) training epoch (pacs-lodo-cpu model, efdmix): bare loop over in-memory batches "
          f"{b:.0f} img/s, dgbench {h:.0f} img/s: {h / b:.2f}x (target >= 0.9x: "
          f"{'met' if h / b >= 0.9 else 'NOT met'})")


if __name__ == "__main__":
    main()
