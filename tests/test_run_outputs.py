"""What a run leaves and says: its trained weights, per-class accuracy and confusion matrices,
what an interrupt keeps and that a rerun resumed, the departures that apply to it, weights
checked before the image cache, and a subsampled run's cache holding only what it reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dgbench import config as C
from dgbench.cli import main
from dgbench.run import deviations

TOY = ["run", "--dataset", "toy", "--targets", "red", "--aug", "efdmix", "--no-progress",
       "--threads", "1"]


def _record(out: Path) -> dict:
    (path,) = list(out.rglob("record.json"))
    return json.loads(path.read_text())


def test_the_trained_weights_are_kept_unless_dropped(tmp_path):
    assert main([*TOY, "--out", str(tmp_path / "a")]) == 0
    record = _record(tmp_path / "a")
    (weights,) = list((tmp_path / "a").rglob("model.pt"))
    assert record["model"]["final_weights"] == "model.pt"
    state = torch.load(weights, weights_only=True)
    assert sum(v.numel() for k, v in state.items() if "running" not in k
               and "num_batches" not in k) == record["model"]["parameters"]
    assert not list((tmp_path / "a").rglob("checkpoint.pt"))  # the checkpoint still goes
    assert main([*TOY, "--drop-weights", "--out", str(tmp_path / "b")]) == 0
    assert not list((tmp_path / "b").rglob("model.pt"))
    assert "final_weights" not in _record(tmp_path / "b")["model"]


def test_each_test_domain_has_per_class_accuracy_and_a_confusion_matrix(tmp_path):
    assert main([*TOY, "--out", str(tmp_path)]) == 0
    record = _record(tmp_path)
    test = record["final"]["test"]["red"]
    classes = record["dataset"]["classes"]
    matrix = test["confusion"]
    assert len(matrix) == len(classes) and all(len(row) == len(classes) for row in matrix)
    assert sum(map(sum, matrix)) == test["n"]
    assert sum(matrix[c][c] for c in range(len(classes))) == test["correct"]
    for c, acc in enumerate(test["class_acc"]):
        row = matrix[c]
        assert acc == (row[c] / sum(row) if sum(row) else None)


def test_an_interrupt_says_what_the_checkpoint_keeps_and_the_rerun_says_it_resumed(
        tmp_path, monkeypatch, capsys):
    from dgbench.run import loop

    real, calls = loop.train_epoch, []

    def stopped_in_epoch_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    args = [*TOY, "--epochs", "2", "--out", str(tmp_path)]
    monkeypatch.setattr(loop, "train_epoch", stopped_in_epoch_two)
    assert main(args) == 130
    out = capsys.readouterr()
    (checkpoint,) = list(tmp_path.rglob("checkpoint.pt"))
    said = f"its checkpoint after epoch 1 of 2 is kept in {checkpoint}"
    assert said in out.out and said in out.err and "rerun the same command" in out.err
    monkeypatch.setattr(loop, "train_epoch", real)
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "resuming from its checkpoint after epoch 1 of 2" in text
    assert "resumed after epoch 1" in text
    assert _record(tmp_path)["timing"]["resumed_after_epoch"] == 1


def test_an_interrupt_in_the_first_epoch_says_there_is_no_checkpoint(tmp_path, monkeypatch,
                                                                      capsys):
    from dgbench.run import loop

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "train_epoch", stop)
    assert main([*TOY, "--out", str(tmp_path)]) == 130
    assert "before any checkpoint; a rerun starts it afresh" in capsys.readouterr().err


@pytest.mark.parametrize("settings, applies", [
    ({"train.sampler": "random"}, False),
    ({"train.sampler": "domain"}, False),  # fixed epochs: Dassl would step where we do
    ({"train.sampler": "domain", "train.domain_epoch": "dassl"}, True),
    ({"train.sampler": "domain", "train.domain_epoch": "dassl", "train.schedule": "constant"},
     False),
])
def test_the_lr_schedule_departure_is_recorded_only_where_it_applies(settings, applies):
    from dgbench.augmenters import AUGMENTERS
    from dgbench.tasks._base import get_task

    cfg = C.build(settings)
    said = deviations.for_run(cfg, get_task("classification"), AUGMENTERS.get("efdmix"), False)
    assert (deviations.LR_SCHEDULE in said) is applies


def test_missing_pretrained_weights_fail_before_the_image_cache_is_built(tmp_path, monkeypatch,
                                                                          capsys):
    from test_imagecache import textured_pacs

    from dgbench.core import download
    from dgbench.run import execute

    def offline(url, target, progress=True):
        raise download.DataError(f"could not download {url}: no network")

    def no_cache(*args, **kwargs):
        raise AssertionError("the image cache was built before the weights were checked")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(download, "fetch", offline)
    monkeypatch.setattr(execute, "prepare_images", no_cache)
    root = textured_pacs(tmp_path / "data")
    code = main(["run", "--dataset", "pacs", "--data-root", str(root), "--targets", "photo",
                 "--epochs", "1", "--batch-size", "4", "--no-progress", "data.image_size=32",
                 "model.pretrained=true", "--out", str(tmp_path / "res")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "could not download" in err
    assert not (tmp_path / "res").exists() or not list((tmp_path / "res").rglob("*.json"))


def test_a_subsampled_run_caches_only_the_images_it_reads(tmp_path, monkeypatch):
    from test_imagecache import textured_pacs

    monkeypatch.setenv("DGBENCH_CACHE", str(tmp_path / "cache"))
    root = textured_pacs(tmp_path / "data")
    args = ["run", "--dataset", "pacs", "--data-root", str(root), "--targets", "photo",
            "--epochs", "1", "--batch-size", "4", "--no-progress", "--threads", "1",
            "data.image_size=32", "model.width=8", "model.stem=small", "model.pretrained=false"]
    assert main([*args, "data.subsample=3", "--out", str(tmp_path / "a")]) == 0
    record = _record(tmp_path / "a")
    cached = Path(record["data_cache"])
    assert cached.name.startswith("pacs-subset-")
    files = json.loads((cached / "manifest.json").read_text())["files"]
    from dgbench.datasets.pacs import PACS

    every = PACS(str(root), 32).image_files()[1]
    assert 0 < len(files) < len(every)
    # with the whole dataset's cache built, a subsampled run reads that one
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    full = Path(_record(tmp_path / "b")["data_cache"])
    assert not full.name.startswith("pacs-subset-")
    assert main([*args, "data.subsample=3", "--out", str(tmp_path / "c")]) == 0
    again = _record(tmp_path / "c")
    assert Path(again["data_cache"]) == full
    assert again["final"] == record["final"]  # the same pixels either way


def test_targets_help_says_what_it_names_under_each_protocol(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "single the source domain" in text
