"""Pinned results of real runs: moving code must not move a number.

Every run here goes through ``dgbench run --threads 1`` and is compared with numbers
pinned from main before the task/loop reshaping (commit ce9e7ce; the ReID and PACS ones
re-pinned where the fidelity fixes of issue 12 changed them on purpose: the ReID neck's
initialisation, and the PACS training transform): per run, the correct
count of every test set, the source-validation accuracy, the mean mAP / Rank-1 of ReID runs,
and the loss of every epoch, all exactly. They were produced on this project's machine (2-core
AMD EPYC, torch's AVX2 CPU kernels, torch 2.14.1); another CPU kernel set or torch version
computes in another order, so there the comparison is skipped with the reason shown.

The fast slices run by default; the README main job itself and the whole ``reid-synth-cpu``
preset (minutes) are marked ``slow``: ``pytest -m slow tests/test_regression.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from dgbench.cli import main

PACS = Path(__file__).resolve().parents[2] / "shared" / "data" / "PACS"
PINNED_ON = ("2.14.1", "AVX2")


def _environment_matches() -> tuple[bool, str]:
    here = (torch.__version__.split("+")[0], torch.backends.cpu.get_cpu_capability())
    return here == PINNED_ON, f"numbers pinned with torch {PINNED_ON[0]} on {PINNED_ON[1]} " \
        f"kernels; this is torch {here[0]} on {here[1]}"


_ok, _why = _environment_matches()
pytestmark = pytest.mark.skipif(not _ok, reason=_why)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def summarise(out: Path) -> dict[str, Any]:
    """What is pinned of every record under ``out``, keyed "aug split"."""
    got = {}
    for path in sorted(out.rglob("record.json")):
        r = json.loads(path.read_text())
        final = r["final"]
        row: dict[str, Any] = {"loss": [h["loss"] for h in r["history"]]}
        if "mean" in final:  # reid
            row.update(mAP=final["mean"]["mAP"], rank1=final["mean"]["rank1"])
        else:
            row.update(test={k: [v["correct"], v["n"]] for k, v in final["test"].items()},
                       val_acc=final["val_acc"])
        got[f"{r['aug']} {r['split']['name']}"] = row
    return got


def run(out: Path, *args: str) -> dict[str, Any]:
    # --threads 1: dgbench sets torch's threads itself (default: the cores / --jobs)
    assert main(["run", *args, "--threads", "1", "--no-progress", "--out", str(out)]) == 0
    return summarise(out)


# -- default suite: slices of the three jobs --------------------------------------------------
DIGITS_SLICE = {
    "efdmix color": {"loss": [2.3674901326497397, 2.3270050684611],
                     "test": {"color": [9, 64]}, "val_acc": 0.11458333333333333},
    "efdmix inverted": {"loss": [2.3504886627197266, 2.3512425422668457],
                        "test": {"inverted": [4, 64]}, "val_acc": 0.125},
    "efdmix photo": {"loss": [2.3971532185872397, 2.344783624013265],
                     "test": {"photo": [10, 64]}, "val_acc": 0.09895833333333333},
    "efdmix plain": {"loss": [2.3683621088663735, 2.334169069925944],
                     "test": {"plain": [5, 64]}, "val_acc": 0.078125},
    "mixstyle photo": {"loss": [2.377800941467285, 2.3182172775268555],
                       "test": {"photo": [11, 64]}, "val_acc": 0.109375},
}


def test_digits_main_job_slice(tmp_path):
    """The README main job (efdmix, LODO on digits) on 64 images per part for 2 epochs."""
    got = run(tmp_path / "a", "--aug", "efdmix", "--protocol", "lodo",
              "data.subsample=64", "train.epochs=2")
    got.update(run(tmp_path / "b", "--aug", "mixstyle", "--targets", "photo",
                   "data.subsample=64", "train.epochs=2"))
    assert got == DIGITS_SLICE


REID_SLICE = {  # re-pinned with issue 12: the neck starts at normal(0, 0.01) as torchreid's
    "efdmix market1501->grid": {
        "loss": [3.7136622837611606, 3.7027484348842075, 3.580835614885603, 3.577256883893694],
        "mAP": 0.19213931070347073, "rank1": 0.11200000000000002},
    "none market1501->grid": {
        "loss": [3.6975293840680803, 3.5785920279366628, 3.3647986820765903, 3.271747589111328],
        "mAP": 0.19479197431839257, "rank1": 0.128},
}


def test_reid_synth_slice(tmp_path):
    """reid-synth-cpu (Market -> all 10 GRID splits) for 4 epochs with a step at epoch 2."""
    from dgbench.data.synthreid import generate

    generate(tmp_path / "data")
    got = run(tmp_path / "out", "--preset", "reid-synth-cpu", "--data-root", str(tmp_path / "data"),
              "--aug", "none,efdmix", "train.epochs=4", "train.step_epochs=2")
    assert got == REID_SLICE


# re-pinned with issue 12: Dassl's translation (the resized image resized again, rounded
# offsets) on both paths; near chance after 2 epochs on 48 images: the losses carry the check
PACS_SLICE = {
    "efdmix photo": {"loss": [1.9956785440444946, 1.959712028503418],
                     "test": {"photo": [6, 48]}, "val_acc": 0.1875},
    "efdmix sketch": {"loss": [1.9567911624908447, 1.9785833358764648],
                      "test": {"sketch": [10, 48]}, "val_acc": 0.16666666666666666},
    "none photo": {"loss": [1.991844654083252, 1.9502003192901611],
                   "test": {"photo": [7, 48]}, "val_acc": 0.1875},
    "none sketch": {"loss": [1.9863860607147217, 1.9116427898406982],
                    "test": {"sketch": [10, 48]}, "val_acc": 0.16666666666666666},
}
PACS_SLICE_PIL = {
    "efdmix photo": {"loss": [1.985975742340088, 1.975620985031128],
                     "test": {"photo": [5, 48]}, "val_acc": 0.18055555555555555},
    "none photo": {"loss": [1.9800848960876465, 1.9319825172424316],
                   "test": {"photo": [6, 48]}, "val_acc": 0.1875},
}


@pytest.mark.skipif(not PACS.is_dir(), reason="real PACS not in ../shared/data/PACS")
def test_pacs_lodo_cpu_slice(tmp_path, monkeypatch):
    """pacs-lodo-cpu on 48 images per part for 2 epochs: the image cache and the PIL path."""
    monkeypatch.setenv("DGBENCH_CACHE", str(tmp_path / "cache"))
    args = ["--preset", "pacs-lodo-cpu", "--data-root", str(PACS), "--aug", "none,efdmix",
            "--targets", "photo,sketch", "data.subsample=48", "train.epochs=2"]
    assert run(tmp_path / "a", *args) == PACS_SLICE
    assert run(tmp_path / "b", *args, "--targets", "photo", "--no-cache") == PACS_SLICE_PIL


# -- slow: the README main job and the whole ReID preset ---------------------------------------
MAIN_JOB = {  # dgbench run --aug efdmix --protocol lodo (test accuracies 52.4 55.0 37.8 53.9 %)
    "efdmix plain": ([238, 454], 0.6296296296296297, 1.330911231763435),
    "efdmix photo": ([248, 451], 0.9444444444444444, 0.2381486314715761),
    "efdmix color": ([169, 447], 0.8518518518518519, 0.3954287731286251),
    "efdmix inverted": ([240, 445], 0.6555555555555556, 1.0787029844341856),
}


@pytest.mark.slow
def test_readme_main_job(tmp_path):
    got = run(tmp_path, "--aug", "efdmix", "--protocol", "lodo")
    assert {k: (next(iter(v["test"].values())), v["val_acc"], v["loss"][-1])
            for k, v in got.items()} == MAIN_JOB


REID_PRESET = {  # dgbench run --preset reid-synth-cpu on dgbench synth-reid (seed 0); re-pinned
    # with issue 12 (the neck's normal(0, 0.01) start)
    "none market1501->grid": (0.35793469330844657, 0.21600000000000003, 0.7681350708007812),
    "mixstyle market1501->grid": (0.3980824905276012, 0.248, 0.9578683035714286),
    "efdmix market1501->grid": (0.4715327632897558, 0.33999999999999997, 0.8277128764561245),
}


@pytest.mark.slow
def test_reid_synth_preset(tmp_path):
    from dgbench.data.synthreid import generate

    generate(tmp_path / "data")
    got = run(tmp_path / "out", "--preset", "reid-synth-cpu", "--data-root", str(tmp_path / "data"))
    assert {k: (v["mAP"], v["rank1"], v["loss"][-1]) for k, v in got.items()} == REID_PRESET
