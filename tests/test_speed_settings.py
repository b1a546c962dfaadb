"""The speed settings a run can ask for: bf16 autocast on the CPU and torch.compile. Both change
the numerics, so both are part of a run's identity and recorded; neither is on by default."""

from __future__ import annotations

import contextlib
import json

import pytest

from dgbench.cli import main

TOY = ["run", "--dataset", "toy", "--targets", "red", "--aug", "efdmix", "--no-progress",
       "--threads", "1"]


def records(folder):
    return [json.loads(p.read_text()) for p in folder.rglob("record.json")]


def test_cpu_amp_trains_in_bfloat16_and_is_another_run(tmp_path):
    assert main([*TOY, "--out", str(tmp_path / "a")]) == 0
    from dgbench.core.device import cpu_has_bf16

    with contextlib.nullcontext() if cpu_has_bf16() else pytest.warns(UserWarning, match="slower"):
        assert main([*TOY, "--out", str(tmp_path / "b"), "train.cpu_amp=true"]) == 0
    (plain,), (amp,) = records(tmp_path / "a"), records(tmp_path / "b")
    assert plain["device"]["amp"] is None and plain["device"]["channels_last"] is False
    assert amp["device"]["amp"] == "bfloat16" and amp["device"]["channels_last"] is True
    assert amp["config"]["train"]["cpu_amp"] is True
    assert amp["run_id"] != plain["run_id"]  # other numerics: another run
    assert amp["final"]["test"]["red"]["n"] == plain["final"]["test"]["red"]["n"]


def test_new_speed_keys_at_their_defaults_keep_old_run_ids():
    """Keys added later (``since``) leave a run's id alone while they hold their default."""
    from dgbench import config as C
    from dgbench.plan.runs import canonical, run_id

    cfg = C.Config()
    train = canonical(cfg)["train"]
    assert "cpu_amp" not in train and "compile" not in train
    cfg.train.cpu_amp = True
    assert canonical(cfg)["train"]["cpu_amp"] is True
    assert run_id(cfg) != run_id(C.Config())


def test_compile_without_a_compiler_is_refused_before_training(tmp_path, monkeypatch, capsys):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main([*TOY, "--out", str(tmp_path), "train.compile=true"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train.compile on the CPU needs a C++ compiler" in err
    assert not list(tmp_path.rglob("*.json"))


@pytest.mark.slow
def test_compiled_training_finishes_and_is_recorded(tmp_path):
    """torch.compile of the training pass (about a minute of compiling on 2 cores)."""
    assert main([*TOY, "--out", str(tmp_path), "train.compile=true"]) == 0
    (record,) = records(tmp_path)
    assert record["config"]["train"]["compile"] is True
    assert 0.0 <= record["final"]["score"] <= 1.0
