"""The decoded-image cache: same pixels as the PIL path for the same random choices,
invalidation when a source file changes, one build when two runs race, end to end."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dgbench.data import imagecache
from dgbench.datasets.pacs import PACS

SIZE = 16  # big view: 18


def textured_pacs(root: Path) -> Path:
    """A miniature PACS (images+splits) whose images are noise, one of them not square."""
    from test_pacs import make_tree

    make_tree(root / "PACS", "images+splits")
    rng = np.random.default_rng(0)
    for i, f in enumerate(sorted((root / "PACS" / "images").rglob("*.*"))):
        shape = (26, 20, 3) if i == 5 else (23, 23, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(f)
    return root


@pytest.fixture
def pacs(tmp_path) -> PACS:
    return PACS(str(textured_pacs(tmp_path)), SIZE)


def build(ds: PACS) -> imagecache.ImageCache:
    folder, files = ds.image_files()
    return imagecache.ImageCache.open_or_build("pacs", folder, files, SIZE, progress=False)


def test_cached_batch_equals_the_pil_path_for_the_same_choices(pacs):
    from torchvision import transforms as T
    from torchvision.transforms import functional as TF

    cache = build(pacs)
    part = pacs.cached_subset(cache, "photo", "train", train=True)
    files = pacs.splits["photo"]["train"]
    n = len(part)
    small = torch.stack([part[i][0][0] for i in range(n)])
    big = torch.stack([part[i][0][1] for i in range(n)])
    g = torch.Generator().manual_seed(3)
    translate = torch.rand(n, generator=g) < 0.5
    top, left = torch.randint(0, 3, (n,), generator=g), torch.randint(0, 3, (n,), generator=g)
    flip = torch.rand(n, generator=g) < 0.5
    ours = imagecache.normalise(imagecache.apply(small, big, translate, top, left, flip),
                                pacs.mean, pacs.std)
    finish = T.Compose([T.ToTensor(), T.Normalize(pacs.mean, pacs.std)])
    for i, (rel, _) in enumerate(files):
        with Image.open(pacs.layout.images / rel) as im:
            img = im.convert("RGB")
        if translate[i]:  # Dassl's: the resized image resized again, then cropped
            view = TF.crop(T.Resize((18, 18))(T.Resize((SIZE, SIZE))(img)), int(top[i]),
                           int(left[i]), SIZE, SIZE)
        else:
            view = T.Resize((SIZE, SIZE))(img)
        if flip[i]:
            view = TF.hflip(view)
        assert torch.equal(ours[i], finish(view)), rel
    assert translate.any() and (~translate).any() and flip.any() and (~flip).any()


def test_test_view_equals_the_pil_path_including_a_non_square_image(pacs):
    cache = build(pacs)
    assert "test" in cache.manifest["shapes"]  # one image is not square: stored separately
    for domain in pacs.domains:
        cached = pacs.cached_subset(cache, domain, "all", train=False)
        plain = pacs.subset(domain, "all", train=False)
        for i in range(len(plain)):
            assert torch.equal(cached[i][0], plain[i][0]) and cached[i][1:] == plain[i][1:]


def test_augment_draws_are_valid_and_seeded():
    small = torch.randint(0, 256, (64, 3, SIZE, SIZE), dtype=torch.uint8)
    big = torch.randint(0, 256, (64, 3, 18, 18), dtype=torch.uint8)
    a = imagecache.augment(small, big, torch.Generator().manual_seed(1))
    b = imagecache.augment(small, big, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == small.shape and a.dtype == torch.uint8
    plain = [torch.equal(a[i], small[i]) or torch.equal(a[i], small[i].flip(-1)) for i in range(64)]
    assert 10 < sum(plain) < 54  # about half keep the untranslated view


def test_a_changed_source_file_gives_a_new_cache(pacs):
    first = build(pacs)
    assert build(pacs).path == first.path  # unchanged: reused
    rel = pacs.splits["cartoon"]["all"][0][0]
    path = pacs.layout.images / rel
    Image.new("RGB", (23, 23), (255, 0, 0)).save(path)
    second = build(pacs)
    assert second.path != first.path
    row = second.rows[rel]
    assert (np.asarray(second.views["small"][row])[0] >= 250).all()  # red (JPEG: ~254)
    assert not first.path.exists()  # the stale cache of the same folder is removed
    assert second.manifest["sha256"][row] != first.manifest["sha256"][first.rows[rel]]


def test_two_builders_at_once_build_once(pacs, monkeypatch):
    calls = []
    real = imagecache._build

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(imagecache, "_build", counted)
    results = []
    threads = [threading.Thread(target=lambda: results.append(build(pacs).path)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(results)) == 1
    staging = [p.name for p in results[0].parent.iterdir() if p.name.startswith(".") and p.is_dir()]
    assert staging == []


def test_run_with_and_without_the_cache(tmp_path):
    import json

    from dgbench.cli import main

    root = textured_pacs(tmp_path / "data")
    args = ["run", "--dataset", "pacs", "--data-root", str(root), "--aug", "efdmix",
            "--targets", "photo", "--epochs", "1", "--batch-size", "8", "--no-progress",
            "data.image_size=32", "model.width=8", "model.stem=small", "model.pretrained=false"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--no-cache"]) == 0
    (a,) = [json.loads(p.read_text()) for p in (tmp_path / "a").rglob("record.json")]
    (b,) = [json.loads(p.read_text()) for p in (tmp_path / "b").rglob("record.json")]
    assert a["data_cache"] and a["config"]["data"]["cache"] is True
    assert b["data_cache"] is None and b["config"]["data"]["cache"] is False
    assert a["run_id"] != b["run_id"] and a["sizes"] == b["sizes"]


def test_translation_is_dasslls_on_both_paths(monkeypatch):
    """Dassl's Random2DTranslation: the already resized image is resized to 1.125x and cropped
    at round(uniform(0, range)) per axis (left first); the batched draws follow the same law."""
    from dgbench.datasets import pacs as P

    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    draws = iter([0.3, 0.6, 1.4])  # gate (<= p: translate), left 0.6 -> 1, top 1.4 -> 1
    monkeypatch.setattr(P.random, "uniform", lambda a, b: next(draws))
    out = P.Translate(16)(image)
    expected = image.resize((18, 18), Image.BILINEAR).crop((1, 1, 17, 17))
    assert np.array_equal(np.asarray(out), np.asarray(expected))
    draws = iter([0.7])  # > p: left as it is
    assert P.Translate(16)(image) is image

    small = torch.zeros(20000, 3, 2, 2, dtype=torch.uint8)
    big = torch.arange(6 * 6, dtype=torch.uint8).view(1, 1, 6, 6).expand(20000, 3, 6, 6).contiguous()
    out = imagecache.augment(small, big, torch.Generator().manual_seed(0))
    moved = out[:, 0, 0, 0] != 0  # translated with a nonzero offset (or flipped)
    left = out[:, 0, 0, :].min(dim=1).values % 6  # the crop's left column (flip-proof)
    counts = torch.bincount(left[moved | (left == 0)], minlength=5).float()
    share = counts / counts[1:4].mean()
    assert 0.4 < share[4] < 0.6  # round(uniform(0, 4)): 4 is half as likely as 1, 2 or 3
