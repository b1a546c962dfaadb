"""PACS: every accepted layout on generated fixture trees, split-file errors, the real copy."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from dgbench.datasets.pacs import CLASSES, DOMAINS, EXCLUDED, PACS, find_layout
from dgbench.core.errors import DataError
from dgbench.data.protocols import PROTOCOLS

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "PACS"
PER_CLASS = 4  # images per class and domain in the fixtures


def make_tree(root: Path, layout: str) -> Path:
    """A miniature PACS in ``layout``: 4 domains x 7 classes x PER_CLASS images (+ the broken one)."""
    images = {"images+splits": root / "images", "kfold": root / "kfold", "domainbed": root}[layout]
    lines = {d: [] for d in DOMAINS}
    for d, domain in enumerate(DOMAINS):
        ext = "png" if domain == "sketch" else "jpg"
        for label, cls in enumerate(CLASSES, 1):
            folder = images / domain / cls
            folder.mkdir(parents=True, exist_ok=True)
            names = [f"img_{i}.{ext}" for i in range(PER_CLASS)]
            if domain == "sketch" and cls == "dog":
                names.append(Path(EXCLUDED[0]).name)
            for i, name in enumerate(names):
                mode = "L" if ext == "png" else "RGB"  # sketches are not RGB: loader converts
                Image.new(mode, (12, 12), color=(40 * d + i) % 255 if mode == "L" else (d * 60, label * 30, i * 50)).save(folder / name)
                lines[domain].append((f"{domain}/{cls}/{name}", label))
    if layout != "domainbed":
        split_dir = root / "splits" if layout == "images+splits" else root
        split_dir.mkdir(parents=True, exist_ok=True)
        for domain, items in lines.items():
            val = [it for i, it in enumerate(items) if i % 4 == 0]
            train = [it for i, it in enumerate(items) if i % 4 != 0]
            for name, part in (("train", train), ("crossval", val), ("test", items)):
                (split_dir / f"{domain}_{name}_kfold.txt").write_text(
                    "".join(f"{rel} {label}\n" for rel, label in part))
    return root


@pytest.mark.parametrize("layout", ["images+splits", "kfold", "domainbed"])
def test_every_layout_loads(tmp_path, layout):
    root = make_tree(tmp_path / "PACS", layout)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = PACS(str(tmp_path), 16)  # the parent folder of PACS/ is accepted too
    assert ds.layout.name == layout and ds.layout.root == root
    assert ds.excluded == list(EXCLUDED)
    for domain in DOMAINS:
        n_all = len(ds.splits[domain]["all"])
        assert n_all == 7 * PER_CLASS
        assert len(ds.splits[domain]["train"]) + len(ds.splits[domain]["val"]) == n_all
        assert all(rel not in EXCLUDED for rel, _ in ds.splits[domain]["all"])
    image, label, d = ds.subset("sketch", "val", train=False)[0]
    assert image.shape == (3, 16, 16) and image.dtype == torch.float32 and d == 3
    image, _, _ = ds.subset("art_painting", "train", train=True)[0]
    assert image.shape == (3, 16, 16)
    fallback_warned = any("no official split files" in str(w.message) for w in caught)
    assert fallback_warned == (layout == "domainbed")
    assert ds.describe()["official_splits"] == (layout != "domainbed")


def test_domainbed_fallback_split_is_seeded_and_stratified(tmp_path):
    make_tree(tmp_path / "PACS", "domainbed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = PACS(str(tmp_path / "PACS"), 16), PACS(str(tmp_path / "PACS"), 16)
    assert a.splits == b.splits
    val_labels = [label for _, label in a.splits["photo"]["val"]]
    assert sorted(set(val_labels)) == list(range(7))  # every class held out


def test_data_root_from_environment(tmp_path, monkeypatch):
    make_tree(tmp_path / "PACS", "images+splits")
    monkeypatch.setenv("DGBENCH_DATA", str(tmp_path))
    assert find_layout(None).name == "images+splits"


def test_missing_dataset_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("DGBENCH_DATA", raising=False)
    with pytest.raises(DataError, match="DGBENCH_DATA"):
        PACS(None, 16)
    with pytest.raises(DataError, match="PACS not found"):
        PACS(str(tmp_path), 16)


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace(" 1\n", " 0\n", 1), "outside 1..7"),
    (lambda t: t.replace(" 1\n", " 8\n", 1), "outside 1..7"),
    (lambda t: t.replace(" 1\n", " one\n", 1), "not an integer"),
    (lambda t: t + t.splitlines(keepends=True)[0], "listed twice"),
    (lambda t: t.replace("img_1.jpg", "img_99.jpg", 1), "does not exist"),
    (lambda t: t.replace(" 1\n", " 1 extra\n", 1), "expected '<domain>/<class>/<file> <label>'"),
    (lambda t: t.replace(" 1\n", " 2\n", 1), "not its folder's class"),
])
def test_split_file_errors_name_file_and_line(tmp_path, edit, message):
    make_tree(tmp_path / "PACS", "images+splits")
    path = tmp_path / "PACS" / "splits" / "art_painting_train_kfold.txt"
    path.write_text(edit(path.read_text()))
    with pytest.raises(DataError) as info:
        PACS(str(tmp_path / "PACS"), 16)
    assert message in str(info.value) and "art_painting_train_kfold.txt:" in str(info.value)


def test_missing_split_file(tmp_path):
    make_tree(tmp_path / "PACS", "images+splits")
    (tmp_path / "PACS" / "splits" / "photo_crossval_kfold.txt").unlink()
    with pytest.raises(DataError, match="photo_crossval_kfold.txt is missing"):
        PACS(str(tmp_path / "PACS"), 16)


@pytest.mark.skipif(not REAL.is_dir(), reason="real PACS not in ../shared/data/PACS")
def test_real_pacs_lodo_split_sizes_match_the_protocol():
    ds = PACS(str(REAL), 224)
    assert ds.layout.name == "images+splits" and ds.excluded == list(EXCLUDED)
    expected = {  # docs/protocols.md, PACS: train / val / test per target
        "art_painting": (7136, 806, 2048), "cartoon": (6869, 777, 2344),
        "photo": (7477, 843, 1670), "sketch": (5446, 616, 3928),
    }
    for split in PROTOCOLS.get("lodo")().splits(ds):
        n_train = sum(len(ds.splits[d][s]) for d, s in split.train)
        n_val = sum(len(ds.splits[d][s]) for d, s in split.val)
        n_test = len(ds.splits[split.name]["all"])
        assert (n_train, n_val, n_test) == expected[split.name]
    image, label, _ = ds.subset("sketch", "all", train=False)[0]
    assert image.shape == (3, 224, 224) and 0 <= label < 7


def test_data_command_reports_layout_sizes_and_problems(tmp_path, capsys):
    from dgbench.cli import main

    make_tree(tmp_path / "PACS", "images+splits")
    extra = tmp_path / "PACS" / "images" / "photo" / "dog" / "stray.jpg"
    Image.new("RGB", (12, 12)).save(extra)
    assert main(["data", "pacs", "--data-root", str(tmp_path / "PACS")]) == 0
    out = capsys.readouterr().out
    assert "layout: images+splits" in out and "official_splits: True" in out
    assert "excluded: sketch/dog/n02103406_4068-1.png" in out
    assert "1 image files are in no split file, e.g. photo/dog/stray.jpg" in out
    photo = next(line for line in out.splitlines() if line.startswith("photo"))
    assert photo.split() == ["photo", str(7 * PER_CLASS + 1), "21", "7", str(7 * PER_CLASS)]
    assert main(["data", "pacs", "--data-root", str(tmp_path / "nowhere")]) == 2


@pytest.mark.skipif(not REAL.is_dir(), reason="real PACS not in ../shared/data/PACS")
def test_short_real_run_on_a_slice_of_pacs(tmp_path):
    """The CPU preset's whole pipeline on real images: a few batches of each part."""
    import json

    from dgbench.cli import main

    out = tmp_path / "res"
    assert main(["run", "--preset", "pacs-lodo-cpu", "--data-root", str(REAL), "--targets",
                 "photo", "--aug", "efdmix", "--out", str(out), "--no-progress",
                 "train.epochs=1", "data.subsample=48"]) == 0
    (path,) = out.rglob("record.json")
    rec = json.loads(path.read_text())
    assert rec["sizes"] == {"train": 3 * 48, "val": 3 * 48, "test": {"photo": 48}}
    assert rec["config"]["aug"]["args"]["mix"] == "crossdomain"
    assert rec["config"]["train"]["sampler"] == "domain"
    assert rec["dataset"]["excluded"] == list(EXCLUDED) and rec["dataset"]["titles"]["photo"] == "Photo"
    assert rec["split"]["sources"] == ["art_painting", "cartoon", "sketch"]


# -- dgbench download pacs: against local archives (file:// URLs) ---------------------------
def _zip_tree(tree: Path, archive: Path, top: str, extra: dict[str, bytes] | None = None) -> Path:
    import zipfile

    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(tree.rglob("*")):
            if f.is_file():
                zf.write(f, f"{top}/{f.relative_to(tree).as_posix()}")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return archive


@pytest.fixture
def pinned_fixture(tmp_path, monkeypatch):
    """A fixture PACS tree whose content digests are pinned as the reference ones."""
    from dgbench.datasets import pacs

    tree = make_tree(tmp_path / "src" / "pacs", "images+splits")
    digests = pacs.content_digests(find_layout(str(tree)))
    monkeypatch.setattr(pacs, "IMAGES_SHA256", digests["images"])
    monkeypatch.setattr(pacs, "SPLITS_SHA256", digests["splits"])
    return tree


def _leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


def test_download_installs_a_verified_archive(tmp_path, pinned_fixture, capsys):
    from dgbench.cli import main
    from dgbench.core.download import sha256_file

    archive = _zip_tree(pinned_fixture, tmp_path / "pacs.zip", "pacs",
                        extra={"__MACOSX/pacs/._junk": b"resource fork"})
    dest = tmp_path / "data"
    code = main(["download", "pacs", "--dest", str(dest), "--url", archive.as_uri(),
                 "--sha256", sha256_file(archive).upper(), "--no-progress"])
    assert code == 0
    assert sha256_file(archive) in capsys.readouterr().out
    assert _leftovers(dest) == ["PACS"]  # no staging folder, no __MACOSX
    assert sorted(p.name for p in (dest / "PACS").iterdir()) == ["images", "splits"]
    ds = PACS(str(dest), 16)
    assert ds.layout.name == "images+splits" and len(ds.splits["photo"]["all"]) == 7 * PER_CLASS
    # a second download refuses to overwrite
    assert main(["download", "pacs", "--dest", str(dest), "--url", archive.as_uri()]) == 2


def test_download_normalises_the_original_kfold_layout(tmp_path, pinned_fixture, monkeypatch):
    from dgbench.datasets import pacs

    tree = make_tree(tmp_path / "orig", "kfold")  # kfold/<domain>/... with split files beside
    monkeypatch.setattr(pacs, "IMAGES_SHA256", pacs.content_digests(find_layout(str(tree)))["images"])
    archive = _zip_tree(tree, tmp_path / "orig.zip", "PACS")
    facts = pacs.download(tmp_path / "data", archive.as_uri(), progress=False)
    assert facts["path"] == str(tmp_path / "data" / "PACS")
    assert PACS(str(tmp_path / "data"), 16).layout.name == "images+splits"


@pytest.mark.parametrize("case", ["archive checksum", "changed image", "no split files",
                                  "not a zip", "escaping member", "unreachable"])
def test_download_failures_leave_nothing(tmp_path, pinned_fixture, case):
    from dgbench.datasets import pacs

    tree, sha = pinned_fixture, None
    archive = tmp_path / "pacs.zip"
    if case == "changed image":
        f = tree / "images" / "photo" / "dog" / "img_0.jpg"
        f.write_bytes(f.read_bytes() + b"\0")
    if case == "no split files":
        for f in (tree / "splits").iterdir():
            f.unlink()
    if case == "not a zip":
        archive.write_bytes(b"<html>quota exceeded</html>")
    else:
        _zip_tree(tree, archive, "pacs",
                  extra={"../evil.txt": b"x"} if case == "escaping member" else None)
    if case == "archive checksum":
        sha = "0" * 64
    url = (tmp_path / "missing.zip").as_uri() if case == "unreachable" else archive.as_uri()
    dest = tmp_path / "data"
    with pytest.raises(DataError) as err:
        pacs.download(dest, url, sha, progress=False)
    expected = {"archive checksum": "sha256", "changed image": "differ from the reference",
                "no split files": "no official split files", "not a zip": "not a readable zip",
                "escaping member": "outside the destination", "unreachable": "could not download"}
    assert expected[case] in str(err.value)
    assert _leftovers(dest) == []
    assert not (tmp_path / "evil.txt").exists()


def test_download_of_a_dataset_without_a_downloader(capsys):
    from dgbench.cli import main

    assert main(["download", "digits", "--dest", "unused"]) == 2
    assert "scikit-learn" in capsys.readouterr().err


@pytest.mark.skipif(not REAL.is_dir(), reason="real PACS not present at ../shared/data/PACS")
def test_pinned_digests_match_the_real_copy():
    from dgbench.datasets import pacs

    digests = pacs.content_digests(find_layout(str(REAL)))
    assert digests == {"images": pacs.IMAGES_SHA256, "splits": pacs.SPLITS_SHA256}


def test_pacs_without_a_preset_starts_from_imagenet_weights_as_published():
    from dgbench.plan.planner import resolve

    cfg = resolve({"data.name": "pacs"})
    assert cfg.model.pretrained and cfg.data.image_size == 224 and cfg.model.width == 64
    assert (cfg.train.lr, cfg.train.epochs, cfg.data.batch_size) == (1e-3, 50, 64)
