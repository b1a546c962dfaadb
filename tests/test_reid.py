"""Re-identification: Market-1501 / GRID parsing on fixture trees, the ReID network, the
reid protocol end to end on the generated stand-in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dgbench.cli import main
from dgbench.datasets.grid import GRID
from dgbench.datasets.market1501 import Market1501
from dgbench.core.errors import DataError

MARKET_FILES = {
    "bounding_box_train": ["0007_c2s1_000101_01.jpg", "0002_c1s1_000451_03.jpg",
                           "0002_c3s1_000551_01.jpg", "-1_c1s1_000001_00.jpg",
                           "0007_c6s2_000301_02.jpg"],
    "query": ["0003_c1s1_000701_00.jpg", "0005_c4s1_000801_00.jpg"],
    "bounding_box_test": ["0003_c2s1_000901_01.jpg", "0000_c1s1_000001_05.jpg",
                          "-1_c5s1_000002_00.jpg", "0005_c4s1_000802_01.jpg",
                          "0000_c6s1_000003_01.jpg", "0003_c1s1_000902_02.jpg"],
}


def make_market(root: Path, files: dict[str, list[str]] = MARKET_FILES) -> Path:
    for folder, names in files.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            Image.new("RGB", (8, 16), (10, 20, 30)).save(root / folder / name)
    return root


@pytest.mark.parametrize("sub", ["Market-1501-v15.09.15", "market1501", ""])
def test_market_layouts_and_torchreid_rules(tmp_path, sub):
    make_market(tmp_path / sub if sub else tmp_path)
    ds = Market1501(str(tmp_path), 64)
    s = ds.split(0)
    # junk dropped; train relabelled in sorted pid order (2 -> 0, 7 -> 1); sorted file order
    assert s.train == [("bounding_box_train/0002_c1s1_000451_03.jpg", 0, 0),
                       ("bounding_box_train/0002_c3s1_000551_01.jpg", 0, 2),
                       ("bounding_box_train/0007_c2s1_000101_01.jpg", 1, 1),
                       ("bounding_box_train/0007_c6s2_000301_02.jpg", 1, 5)]
    assert s.query == [("query/0003_c1s1_000701_00.jpg", 3, 0), ("query/0005_c4s1_000801_00.jpg", 5, 3)]
    gallery_pids = [p for _, p, _ in s.gallery]
    assert sorted(gallery_pids) == [0, 0, 3, 3, 5]  # distractors kept, junk dropped, raw pids
    assert ds.junk == {"train": 1, "query": 0, "gallery": 1}
    assert ds.size == (64, 32) and s.num_ids == 2
    assert any("published" in p for p in ds.problems)  # a fixture is not the real size


def test_market_errors(tmp_path):
    with pytest.raises(DataError, match="Market-1501 not found"):
        Market1501(str(tmp_path), 64)
    files = {k: list(v) for k, v in MARKET_FILES.items()}
    files["query"].append("someone.jpg")
    make_market(tmp_path, files)
    with pytest.raises(DataError, match="someone.jpg: cannot read"):
        Market1501(str(tmp_path), 64)


def test_grid_splits_from_a_generated_mat(tmp_path):
    from dgbench.data.synthreid import write_grid

    base = write_grid(tmp_path / "grid", np.random.default_rng(0), pairs=12, distractors=5, splits=10)
    ds = GRID(str(tmp_path), 64)  # grid/underground_reid is found from the parent
    from scipy.io import loadmat

    mat = loadmat(str(base / "features_and_partitions.mat"))
    assert len(ds.splits) == 10
    for k, s in enumerate(ds.splits):
        ids = mat["trainIdxAll"][0][k][0][0][2][0].astype(int).tolist()
        assert len(ids) == 6
        # every image of a training id, relabelled in the file's order
        assert sorted((p, lab) for r, lab, _ in s.train for p in [int(Path(r).name[:4])]) == \
            sorted((pid, ids.index(pid)) for pid in ids for _ in range(2))
        assert {p for _, p, _ in s.query} == set(range(1, 13)) - set(ids)
        assert all(r.startswith("probe/") for r, _, _ in s.query)
        assert len(s.gallery) == 6 + 5 and sum(p == 0 for _, p, _ in s.gallery) == 5
        assert all(0 <= c <= 7 for _, _, c in s.query + s.gallery)
    assert any("GRID has" in p for p in ds.problems)


def test_grid_errors(tmp_path):
    from scipy.io import savemat

    from dgbench.data.synthreid import write_grid

    base = write_grid(tmp_path, np.random.default_rng(0), pairs=4, distractors=1, splits=2)
    mat = base / "features_and_partitions.mat"
    savemat(str(mat), {"somethingElse": np.zeros(3)})
    with pytest.raises(DataError, match="no 'trainIdxAll'.*somethingElse"):
        GRID(str(tmp_path), 64)
    mat.unlink()
    with pytest.raises(DataError, match="no features_and_partitions.mat"):
        GRID(str(tmp_path), 64)
    with pytest.raises(DataError, match="GRID not found"):
        GRID(str(tmp_path / "elsewhere"), 64)


def test_reid_net_shapes_and_torchvision_state_dict():
    import torchvision

    from dgbench.config import Config
    from dgbench.models.reidnet import build_reid_model
    from dgbench.run.loop import parameter_groups

    cfg = Config()
    cfg.model.backbone = "resnet50"
    model = build_reid_model(cfg, num_ids=9, pretrained=False)
    reference = torchvision.models.resnet50().state_dict()
    own = model.state_dict()
    trunk = {k for k in own if not k.startswith(("neck.", "classifier."))}
    assert trunk == {k for k in reference if not k.startswith("fc.")}
    missing, unexpected = model.load_state_dict(reference, strict=False)
    assert unexpected == ["fc.weight", "fc.bias"]
    assert all(k.startswith(("neck.", "classifier.")) for k in missing)
    model.eval()
    x = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        stem = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        fmap = model.layer4(model.layer3(model.layer2(model.layer1(stem))))
        assert fmap.shape == (2, 2048, 16, 8)  # last stride 1
        assert model.features(x).shape == (2, 512) and model(x).shape == (2, 9)
    groups = parameter_groups(model, 0.2)
    assert [g["lr_mult"] for g in groups] == [1.0, 0.2]
    assert sum(p.numel() for p in groups[0]["params"]) == sum(
        p.numel() for m in (model.neck, model.classifier) for p in m.parameters())


def test_step_schedule():
    from dgbench.config import TrainConfig
    from dgbench.run.loop import epoch_lr

    t = TrainConfig(epochs=60, lr=0.05, schedule="step", step_epochs=[20, 40], step_gamma=0.1)
    assert [epoch_lr(t, e) for e in (0, 19, 20, 39, 40, 59)] == pytest.approx(
        [0.05, 0.05, 0.005, 0.005, 0.0005, 0.0005])


@pytest.mark.parametrize("preset", ["efdm-reid-market2grid", "efdm-reid-grid2market", None])
def test_reid_recipes_decay_as_torchreids_steplr(preset):
    """The official configs' `single_step, stepsize: [20]` is torchreid's StepLR(step_size=20):
    x0.1 at epoch 20 and again at 40; the presets and the ReID defaults give every epoch the
    rate StepLR itself gives it."""
    from dgbench import config as C
    from dgbench.plan.planner import resolve
    from dgbench.run.loop import epoch_lr

    user = C.read_preset(preset) if preset else {"data.name": "market1501"}
    t = resolve(user).train
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=t.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.1)
    official = []
    for _ in range(t.epochs):
        official.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert t.epochs == 60 and [epoch_lr(t, e) for e in range(60)] == pytest.approx(official)


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    from dgbench.data.synthreid import generate

    root = tmp_path_factory.mktemp("synth-reid")
    generate(root, seed=0)
    return root


def _small(root: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--preset", "reid-synth-cpu", "--data-root", str(root), "--out", str(out),
            "--no-progress", *extra]


def test_reid_planning_errors(synth, tmp_path, capsys):
    assert main(_small(synth, tmp_path, "protocol.target=null")) == 2
    assert "needs protocol.target" in capsys.readouterr().err
    assert main(_small(synth, tmp_path, "--target", "market1501")) == 2
    assert "must differ" in capsys.readouterr().err
    assert main(["run", "--dataset", "grid", "--protocol", "lodo", "--data-root", str(synth),
                 "--out", str(tmp_path)]) == 2
    assert "--protocol reid" in capsys.readouterr().err
    assert main(_small(synth, tmp_path, "--splits", "3,12")) == 2
    assert "not in 0..9" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written


def test_grid_to_market_is_one_run_per_grid_split(synth, tmp_path, capsys):
    assert main(_small(synth, tmp_path, "--source", "grid", "--target", "market1501",
                       "--splits", "0,4", "--aug", "efdmix", "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "grid->market1501#0" in out and "grid->market1501#4" in out and "1 runs" not in out


def test_data_command_for_reid_datasets(synth, capsys):
    assert main(["data", "market1501", "--data-root", str(synth)]) == 0
    out = capsys.readouterr().out
    assert "Market-1501-v15.09.15" in out and "distractors (pid 0) kept in the gallery: 20" in out
    assert main(["data", "grid", "--data-root", str(synth)]) == 0
    assert "splits: 10 from features_and_partitions.mat" in capsys.readouterr().out


def test_reid_run_end_to_end_and_table(synth, tmp_path, capsys):
    import json

    args = _small(synth, tmp_path, "--aug", "efdmix", "--aug-args", "mix=crossdomain",
                  "--epochs", "2", "--splits", "0,1,2")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "market1501->grid split 0 mAP" in out and "Avg" not in out
    (record_file,) = list((tmp_path / "reid-synth-cpu").glob("*/record.json"))
    rec = json.loads(record_file.read_text())
    assert list(rec["final"]["test"]) == ["grid#0", "grid#1", "grid#2"]
    for metrics in rec["final"]["test"].values():
        assert 0 <= metrics["mAP"] <= 1 and metrics["num_valid"] == 25 and metrics["gallery"] == 100
    assert rec["config"]["train"]["sampler"] == "domain"  # cameras as domains
    assert rec["model"]["augmenter_modules"] == ["layer1.efdmix", "layer2.efdmix"]
    assert main(["table", str(tmp_path / "reid-synth-cpu"), "--select", "val"]) == 2


def test_training_clearly_beats_an_untrained_model(synth, tmp_path):
    """On the generated data a short training run must rank far better than the same network
    untrained (same seed, same initial weights)."""
    import json

    from dgbench import config as C
    from dgbench.data.loaders import eval_loader
    from dgbench.tasks.evaluate import evaluate_reid
    from dgbench.models.reidnet import build_reid_model
    from dgbench.plan.planner import make_plan, resolve
    from dgbench.run.loop import seed_everything

    assert main(_small(synth, tmp_path, "--aug", "none", "--epochs", "12", "--splits", "0,1,2,3,4")) == 0
    (record_file,) = list((tmp_path / "reid-synth-cpu").glob("*/record.json"))
    trained = json.loads(record_file.read_text())["final"]["mean"]["mAP"]

    user = C.read_preset("reid-synth-cpu")
    user.update({"data.root": str(synth), "aug.names": ["none"], "protocol.splits": [0, 1, 2, 3, 4]})
    plan = make_plan(resolve(user))
    run = plan.runs[0]
    seed_everything(run.seed)
    model = build_reid_model(run.config, plan.dataset.split(0).num_ids)
    tests = {f"grid#{k}": k for k in range(5)}
    results = evaluate_reid(model, plan.target, tests, lambda ds: eval_loader(ds, 64))
    untrained = float(np.mean([r["mAP"] for r in results.values()]))
    assert trained > untrained + 0.10, (trained, untrained)


def test_grid_to_market_runs_keep_their_ids_when_splits_change(synth, tmp_path, capsys):
    """The run of GRID split k does not hash the whole --splits list: a finished run is not
    retrained when the list grows, and all its runs stay one table row; a split that is not
    finished leaves its cells marked (n=k) and named as missing."""
    import json

    def run(splits: str) -> str:
        assert main(_small(synth, tmp_path, "--source", "grid", "--target", "market1501",
                           "--splits", splits, "--aug", "none", "--epochs", "1",
                           "data.subsample=40")) == 0
        return capsys.readouterr().out

    run("0")
    out = run("0,1")
    assert "[1/2] none seed=1 grid->market1501#0: finished before, skipped" in out
    exp = tmp_path / "reid-synth-cpu"  # the preset names the experiment
    records = [json.loads(p.read_text()) for p in exp.glob("*/record.json")]
    assert len(records) == 2 and all(r["config"]["protocol"]["splits"] is None for r in records)
    assert main(["table", str(exp)]) == 0
    table = capsys.readouterr().out
    assert table.count("| none") == 1 and "(n=1)" not in table and "missing runs" not in table

    second = next(d for d in exp.iterdir() if "#1" in json.loads((d / "config.json").read_text())["label"])
    (second / "done").unlink()  # one of the two GRID splits is unfinished
    assert main(["table", str(exp)]) == 0
    table = capsys.readouterr().out
    assert "(n=1)" in table
    assert "missing runs (1): none, seed 1, grid->market1501#1" in table
    assert "unfinished runs (1): none seed=1 grid->market1501#1" in table


def test_inspect_on_a_reid_dataset_asks_for_images(synth, capsys):
    assert main(["inspect", "--dataset", "market1501", "--data-root", str(synth)]) == 2
    err = capsys.readouterr().err
    assert "pass --content and --style" in err and "--protocol" not in err
    image = next((synth / "Market-1501-v15.09.15" / "query").glob("*.jpg"))
    assert main(["inspect", "--dataset", "market1501", "--data-root", str(synth), "--aug", "adain",
                 "--content", str(image), "--style", str(image), "--image-size", "32"]) == 0
    assert "adain" in capsys.readouterr().out


def test_new_linear_layers_start_as_torchreids():
    from dgbench.config import Config
    from dgbench.models.reidnet import build_reid_model

    cfg = Config()
    cfg.model.backbone, cfg.model.width = "resnet18", 16
    torch.manual_seed(0)
    net = build_reid_model(cfg, num_ids=50)
    for layer in (net.neck.fc, net.classifier):
        assert layer.weight.std().item() == pytest.approx(0.01, rel=0.1)
        assert layer.weight.mean().abs().item() < 0.002 and torch.all(layer.bias == 0)
    assert torch.all(net.neck.bn.weight == 1) and torch.all(net.neck.bn.bias == 0)


def test_osnet_x1_0_has_torchreids_layout_and_loads_its_weights(tmp_path, monkeypatch):
    """The module tree of torchreid's osnet_x1_0 (567 state_dict entries, 2,169,508 parameters
    without the classifier), its ImageNet weights loaded through dgbench's download path, and
    the augmenters after conv2 and conv3 by default."""
    from dgbench.config import Config
    from dgbench.models.osnet import OSNet
    from dgbench.models.reidnet import build_reid_model
    from dgbench.models.insertion import default_insert, insert_augmenters
    from dgbench.models import osnet

    net = OSNet(751)
    state = net.state_dict()
    assert len(state) == 567
    assert sum(p.numel() for n, p in net.named_parameters() if not n.startswith("classifier")) == 2169508
    for key, shape in {"conv1.conv.weight": (64, 3, 7, 7), "conv2.0.conv2a.conv2.weight": (64, 1, 3, 3),
                       "conv2.0.gate.fc1.weight": (4, 64, 1, 1), "conv3.0.downsample.conv.weight": (384, 256, 1, 1),
                       "conv2.2.0.conv.weight": (256, 256, 1, 1), "fc.0.weight": (512, 512)}.items():
        assert tuple(state[key].shape) == shape, key
    assert default_insert(net) == ["conv2", "conv3"]

    imagenet = OSNet(1000)  # stands for torchreid's file: same keys, another classifier
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(osnet, "WEIGHTS_URL", (tmp_path / "w.pth").as_uri())
    torch.save(imagenet.state_dict(), tmp_path / "w.pth")
    cfg = Config()
    cfg.model.backbone, cfg.model.pretrained = "osnet_x1_0", True
    model = build_reid_model(cfg, num_ids=125)
    torch.testing.assert_close(model.conv3[1].gate.fc2.weight,
                               imagenet.conv3[1].gate.fc2.weight)
    torch.testing.assert_close(model.fc[0].weight, imagenet.fc[0].weight)  # the embedding too
    assert model.classifier.out_features == 125 and model.weights_source["file"].endswith(osnet.WEIGHTS_FILE)
    insert_augmenters(model, default_insert(model), lambda: torch.nn.Identity(), "efdmix")
    model.eval()
    assert model.features(torch.randn(2, 3, 64, 32)).shape == (2, 512)
    cfg.model.feature_dim = 256
    with pytest.raises(Exception, match="feature_dim=512"):
        build_reid_model(cfg, num_ids=125)


def test_hidden_files_are_not_images(tmp_path):
    """macOS's ``._`` companions (and other dot-files) are skipped, as torchreid's ``*.jpg`` /
    ``*.jpeg`` globs skip them: Market-1501 gives the same items, GRID still loads."""
    make_market(tmp_path / "clean")
    dirty = make_market(tmp_path / "dirty")
    for folder in MARKET_FILES:
        (dirty / folder / "._0001_c1s1_000151_01.jpg").write_bytes(b"\x00\x05\x16\x07 fork")
        (dirty / folder / ".0009_c2s1_000001_01.jpg").write_bytes(b"")
        (dirty / folder / ".DS_Store").write_bytes(b"")
    clean, got = Market1501(str(tmp_path / "clean"), 64), Market1501(str(dirty), 64)
    for part in ("train", "query", "gallery"):
        assert getattr(got.split(0), part) == getattr(clean.split(0), part)
    assert got.junk == clean.junk
    assert all("/." not in rel for rel in got.image_files()[1])

    from dgbench.data.synthreid import write_grid

    base = write_grid(tmp_path / "grid", np.random.default_rng(0), pairs=4, distractors=1, splits=2)
    before = GRID(str(tmp_path / "grid"), 64)
    for folder in ("probe", "gallery"):
        for f in list((base / folder).glob("*.jpeg")):
            (base / folder / f"._{f.name}").write_bytes(b"\x00\x05\x16\x07 fork")
        (base / folder / ".DS_Store").write_bytes(b"")
    after = GRID(str(tmp_path / "grid"), 64)
    assert after.counts == before.counts == {"probe": 4, "gallery": 5}
    assert [vars(s) for s in after.splits] == [vars(s) for s in before.splits]
