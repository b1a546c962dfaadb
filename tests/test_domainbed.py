"""DomainBed's protocol, checked against DomainBed's own code: its 80/20 "in" / "out" split of
every domain (ImageFolder order, seeded from (trial seed, environment index)), its ERM
hyperparameter draws for both recipes and its training seeds.

Where the DomainBed mirror is on this machine (``$DGBENCH_DOMAINBED`` or the library's
``/work/.mirror/facebookresearch+DomainBed/repo``, a bare git repository), its files are taken
out at the two commits and imported; the values copied by hand below were printed by that code
(HEAD b93c22a and 7df6f06) and are checked everywhere."""

from __future__ import annotations

import csv
import importlib
import io
import os
import subprocess
import sys
import warnings
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from PIL import Image

from dgbench.cli import main
from dgbench.data import domainbed as D
from dgbench.data.base import DATASETS
from dgbench.plan.domainbed import RECIPES, erm_hparams, training_seed

MIRROR = Path(os.environ.get("DGBENCH_DOMAINBED",
                             "/work/.mirror/facebookresearch+DomainBed/repo"))
PACS_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "PACS"
FILES = ("__init__.py", "lib/misc.py", "hparams_registry.py")
COMMITS = {"domainbed": "b93c22a", "domainbed-2020": "7df6f06"}


def _extract(commit: str, where: Path, names: tuple[str, ...]) -> Path:
    """DomainBed's files ``names`` (under domainbed/) at ``commit``, written below ``where``
    (skips without the mirror); the folder to put on sys.path."""
    if not (MIRROR / "HEAD").is_file():
        pytest.skip(f"no DomainBed mirror at {MIRROR} (set DGBENCH_DOMAINBED)")
    root = where / commit
    for name in names:
        path = root / "domainbed" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(subprocess.run(["git", "--git-dir", str(MIRROR), "show",
                                         f"{commit}:domainbed/{name}"], check=True,
                                        capture_output=True).stdout)
    return root


def _domainbed(commit: str, where: Path):
    """DomainBed's ``lib.misc`` and ``hparams_registry`` at ``commit``, imported from files
    taken out of the mirror (skips without it)."""
    root = _extract(commit, where, FILES)
    for mod in [m for m in sys.modules if m == "domainbed" or m.startswith("domainbed.")]:
        del sys.modules[mod]
    sys.path.insert(0, str(root))
    try:
        with warnings.catch_warnings():  # its escape sequences, its NumPy habits
            warnings.simplefilter("ignore")
            return (importlib.import_module("domainbed.lib.misc"),
                    importlib.import_module("domainbed.hparams_registry"))
    finally:
        sys.path.remove(str(root))
        for mod in [m for m in sys.modules if m == "domainbed" or m.startswith("domainbed.")]:
            del sys.modules[mod]


# -- values printed by DomainBed's code --------------------------------------------------------
def test_seed_hash_and_training_seeds_as_domainbed_prints_them():
    assert D.seed_hash(0, 1) == 1514274641
    assert training_seed("PACS", "ERM", [0], 0, 0) == 94828300
    assert training_seed("PACS", "ERM", [1, 2], 3, 1) == 84358996


@pytest.mark.parametrize("trial,env,out,in_", [
    (0, 0, [2, 9], [0, 3, 11, 5, 10, 4, 1, 8, 6, 7, 12]),
    (0, 3, [8, 11], [2, 6, 7, 12, 10, 0, 5, 9, 3, 1, 4]),
    (1, 0, [12, 8], [9, 7, 3, 10, 5, 0, 4, 2, 6, 11, 1]),
    (2, 3, [6, 5], [11, 3, 8, 0, 12, 2, 10, 9, 4, 7, 1]),
])
def test_the_split_of_13_images_as_domainbed_makes_it(trial, env, out, in_):
    assert D.holdout_keys(13, trial, env) == (out, in_)  # int(13 * 0.2) = 2 held out


@pytest.mark.parametrize("recipe,dataset,hs,trial,expected", [
    ("domainbed", "PACS", 1, 0, {"resnet_dropout": 0.5, "lr": 2.7028930742148706e-05,
                                 "batch_size": 39, "weight_decay": 0.00044832883881609976}),
    ("domainbed", "DomainNet", 7, 2, {"resnet_dropout": 0.1, "lr": 4.451235671690321e-05,
                                      "batch_size": 18, "weight_decay": 7.61339855085641e-06}),
    ("domainbed-2020", "PACS", 1, 0, {"resnet_dropout": 0.1, "lr": 5.0781288859686544e-05,
                                      "batch_size": 44, "weight_decay": 0.00046410133598234803}),
    ("domainbed-2020", "DomainNet", 7, 2, {"resnet_dropout": 0.0, "lr": 0.00023761560100715143,
                                           "batch_size": 17, "weight_decay": 4.1733891298839565e-05}),
    ("domainbed", "PACS", 0, 2, {"resnet_dropout": 0.0, "lr": 5e-05, "batch_size": 32,
                                 "weight_decay": 0.0}),
])
def test_erm_draws_as_domainbed_prints_them(recipe, dataset, hs, trial, expected):
    assert erm_hparams(recipe, dataset, hs, trial) == expected


# -- against DomainBed's code ------------------------------------------------------------------
@pytest.mark.parametrize("recipe", list(COMMITS))
def test_erm_draws_equal_domainbeds_for_every_dataset_seed_and_trial(recipe, tmp_path):
    misc, registry = _domainbed(COMMITS[recipe], tmp_path)
    for dataset in ("PACS", "VLCS", "OfficeHome", "TerraIncognita", "DomainNet"):
        for hs in range(20):
            for trial in range(3):
                theirs = (registry.default_hparams("ERM", dataset) if hs == 0 else
                          registry.random_hparams("ERM", dataset, misc.seed_hash(hs, trial)))
                mine = erm_hparams(recipe, dataset, hs, trial)
                assert mine == {k: theirs[k] for k in mine}, (dataset, hs, trial)
    assert RECIPES[recipe].commit == COMMITS[recipe]


def _image_folder(root: Path) -> Path:
    """A domain folder as ImageFolder reads it: classes out of order on disk, a nested folder,
    upper-case and non-image suffixes, a hidden companion file (ImageFolder lists it)."""
    for cls, names in {"b": ["2.jpg", "10.png", "a.JPEG", "notes.txt"],
                       "a": ["z.png", "sub/y.jpg", "._x.jpg", "x.bmp"],
                       "c": ["only.jpg"]}.items():
        for name in names:
            path = root / cls / name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (4, 4)).save(path, format="PNG") if name.endswith(
                ("jpg", "png", "JPEG", "bmp")) else path.write_text("not an image")
    return root


def test_the_listing_is_imagefolders(tmp_path):
    from torchvision.datasets import ImageFolder

    folder = _image_folder(tmp_path / "dom")
    classes, items = D.image_folder(folder)
    theirs = ImageFolder(str(folder))
    assert classes == theirs.classes == ["a", "b", "c"]
    assert [(str(folder / rel), label) for rel, label in items] == theirs.samples
    assert "a/._x.jpg" in [rel for rel, _ in items]  # indexed, as DomainBed indexes it


def test_splits_of_an_image_folder_equal_domainbeds(tmp_path):
    misc, _ = _domainbed(COMMITS["domainbed"], tmp_path / "ref")
    folder = _image_folder(tmp_path / "dom")
    _, items = D.image_folder(folder)
    for trial in range(4):
        for env in range(4):
            for fraction in (0.2, 0.5):
                out, in_ = misc.split_dataset(items, int(len(items) * fraction),
                                              misc.seed_hash(trial, env))
                mine = D.split_items(items, trial, env, fraction)
                assert mine == {"out": [items[k] for k in out.keys],
                                "in": [items[k] for k in in_.keys]}


def _domainbed_pacs(root: Path) -> Path:
    """A small PACS in DomainBed's layout (<domain>/<class>/<file>), 3 images per class."""
    from dgbench.datasets.pacs import CLASSES, DOMAINS

    for d in DOMAINS:
        for c in CLASSES:
            for k in range(3):
                path = root / "PACS" / d / c / f"{k}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (8, 8), (k * 40, 0, 0)).save(path)
    return root


def _list(args: list[str]) -> list[list[str]]:
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["data", *args, "--list-splits"]) == 0
    return list(csv.reader(io.StringIO(buf.getvalue())))


def test_list_splits_prints_every_image_once_out_first(tmp_path):
    root = _domainbed_pacs(tmp_path)
    rows = _list(["pacs", "--data-root", str(root), "--trial-seed", "1"])
    assert rows[0] == ["domain", "split", "path"]
    body = rows[1:]
    assert len(body) == 4 * 7 * 3 and len({r[2] for r in body}) == len(body)
    ds = DATASETS.get("pacs")(str(root), 32)
    for i, domain in enumerate(ds.domains):
        items = ds.domainbed_items(domain)
        parts = D.split_items(items, 1, i)
        assert [r[1:] for r in body if r[0] == domain] == [
            [s, rel] for s in ("out", "in") for rel, _ in parts[s]]
        assert len(parts["out"]) == int(21 * 0.2) == 4
    assert rows != _list(["pacs", "--data-root", str(root), "--trial-seed", "2"])


@pytest.mark.parametrize("args,message", [
    (["digits"], "no image files to list"),
    (["pacs", "--trial-seed", "one"], "a trial seed is a non-negative integer"),
    (["pacs", "--trial-seed", "-1"], "a trial seed is a non-negative integer"),
    (["pacs", "--holdout-fraction", "1"], "--holdout-fraction must be between 0 and 1"),
    (["pacs", "--holdout-fraction", "x"], "--holdout-fraction takes a number"),
    (["verify", "pacs"], "--list-splits goes with dgbench data NAME"),
])
def test_list_splits_refuses_bad_input_in_one_line(args, message, tmp_path, capsys):
    root = _domainbed_pacs(tmp_path)
    assert main(["data", *args, "--data-root", str(root), "--list-splits"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dgbench: error: ") and message in err[0]


def test_the_digits_split_is_domainbeds_over_its_index_order():
    ds = DATASETS.get("digits")(None, 32)
    ds.use_holdout(0)
    for i, domain in enumerate(ds.domains):
        n = len(ds.subset(domain, "all", train=False))
        out, in_ = (len(ds.subset(domain, s, train=False)) for s in ("out", "in"))
        assert (out, in_) == (int(n * 0.2), n - int(n * 0.2))
    assert ds.describe()["domainbed_holdout"] == {"trial_seed": 0, "fraction": 0.2}


@pytest.mark.skipif(not PACS_ROOT.is_dir(), reason="the shared PACS copy is absent")
def test_the_shared_pacs_splits_as_domainbed_splits_its_images_folder(tmp_path):
    """The real PACS through its images/ folder: DomainBed's ImageFolder over each domain and
    its split_dataset, against ours, for two trial seeds (the broken sketch included)."""
    misc, _ = _domainbed(COMMITS["domainbed"], tmp_path)
    from torchvision.datasets import ImageFolder

    ds = DATASETS.get("pacs")(str(PACS_ROOT), 224)
    assert list(ds.domains) == sorted(ds.domains)  # DomainBed's environment order
    for trial in (0, 2):
        ds.use_holdout(trial)
        for env, domain in enumerate(ds.domains):
            folder = ImageFolder(str(PACS_ROOT / "images" / domain))
            out, in_ = misc.split_dataset(folder, int(len(folder) * 0.2),
                                          misc.seed_hash(trial, env))
            for part, theirs in (("out", out), ("in", in_)):
                paths = [folder.samples[k][0] for k in theirs.keys]
                assert [str(PACS_ROOT / "images" / rel)
                        for rel in ds.part_files(domain, part)] == paths
    assert any("n02103406_4068-1.png" in rel for rel in ds.part_files("sketch", "in")
               + ds.part_files("sketch", "out"))


@pytest.mark.parametrize("recipe", list(COMMITS))
def test_one_erm_step_equals_domainbeds(recipe, tmp_path, monkeypatch):
    """DomainBed's ERM (its algorithms.py and networks.py at the recipe's commit) and
    dgbench's training step, from the same ResNet-18 weights on the same two-domain batch,
    with dropout 0.5 and weight decay: the same loss and the same updated weights."""
    import torch
    import torchvision

    from dgbench.tasks.evaluate import CPU
    from dgbench.models.backbones import add_dropout, build_backbone
    from dgbench.plan.domainbed import RECIPES
    from dgbench.run.loop import parameter_groups, train_epoch

    root = _extract(COMMITS[recipe], tmp_path,
                    (*FILES, "algorithms.py", "networks.py", "lib/wide_resnet.py"))
    real = torchvision.models.resnet18
    monkeypatch.setattr(torchvision.models, "resnet18",  # its pretrained=True, offline
                        lambda *a, **k: (torch.manual_seed(0), real(weights=None))[1])
    sys.path.insert(0, str(root))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            algorithms = importlib.import_module("domainbed.algorithms")
            registry = importlib.import_module("domainbed.hparams_registry")
    finally:
        sys.path.remove(str(root))
    hparams = registry.default_hparams("ERM", "PACS")
    hparams.update(resnet18=True, resnet50_augmix=False, resnet_dropout=0.5, lr=1e-3,
                   weight_decay=1e-3)
    torch.manual_seed(1)
    theirs = algorithms.ERM((3, 224, 224), 7, 3, hparams)
    for mod in [m for m in sys.modules if m == "domainbed" or m.startswith("domainbed.")]:
        del sys.modules[mod]

    ours = build_backbone("resnet18", 7)
    state = {k.removeprefix("0.network."): v for k, v in theirs.network.state_dict().items()
             if k.startswith("0.network.")}
    state.update({"fc.weight": theirs.network[1].weight, "fc.bias": theirs.network[1].bias})
    ours.load_state_dict(state)
    add_dropout(ours, 0.5)
    optimizer = torch.optim.Adam(parameter_groups(ours, 1.0), lr=1e-3, weight_decay=1e-3)

    gen = torch.Generator().manual_seed(2)
    batches = [(torch.randn(4, 3, 32, 32, generator=gen), torch.randint(7, (4,), generator=gen))
               for _ in range(2)]  # one per source domain
    torch.manual_seed(3)
    their_loss = theirs.update(batches)["loss"]
    images, labels = torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])
    torch.manual_seed(3)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    loss, *_ = train_epoch(ours, [(images, labels)], optimizer, scaler, CPU, 0.0,
                           type("Bar", (), {"update": lambda self, n: None})(),
                           RECIPES[recipe].freeze_bn)
    assert loss == pytest.approx(their_loss, rel=1e-6, abs=1e-7)
    after = theirs.network.state_dict()
    for key, value in ours.state_dict().items():
        theirs_key = "1." + key[3:] if key.startswith("fc.") else "0.network." + key
        assert torch.allclose(value.float(), after[theirs_key].float(), rtol=1e-5, atol=1e-6), key
