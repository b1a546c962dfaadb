"""DomainBed's protocol as dgbench plans and trains it: the runs of a sweep (trials x hparams
draws x test domains, pairs for leave-one-domain-out), step-based training with one batch per
source domain, an evaluation of every domain's "in" and "out" parts per interval, resume, and
the bad input it refuses before training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dgbench.cli import main
from dgbench.data.samplers import StepSampler, evaluation_steps
from dgbench.plan.domainbed import erm_hparams, training_seed
from dgbench.plan.planner import make_plan, resolve

SMALL = {"data.name": "digits", "protocol.name": "domainbed", "seeds": [0],
         "protocol.hparams_seeds": [0], "train.steps": 7, "train.checkpoint_freq": 3}
ARGS = ["run", "--protocol", "domainbed", "--targets", "photo", "--aug", "efdmix", "--seeds",
        "0", "protocol.hparams_seeds=0", "train.steps=7", "train.checkpoint_freq=3",
        "--threads", "1", "--no-progress"]


def test_evaluation_steps_as_domainbeds_train_loop():
    # 2020: step % checkpoint_freq == 0 only; HEAD adds the last step
    assert evaluation_steps(5001, 300, last=False) == list(range(0, 4801, 300))
    assert evaluation_steps(5001, 300, last=True) == [*range(0, 4801, 300), 5000]
    assert evaluation_steps(7, 3, last=True) == [0, 3, 6]
    assert evaluation_steps(8, 3, last=True) == [0, 3, 6, 7]


def test_the_step_sampler_draws_a_batch_of_each_domain_per_step():
    gen = torch.Generator().manual_seed(0)
    sampler = StepSampler([5, 3, 9], 4, gen, [0, 3, 6])
    assert sampler.lengths == [1, 3, 3]
    for k in range(3):
        sampler.set_round(k)
        batches = list(sampler)
        assert len(batches) == sampler.lengths[k]
        for batch in batches:
            assert len(batch) == 12
            assert all(0 <= i < 5 for i in batch[:4]) and all(5 <= i < 8 for i in batch[4:8])
            assert all(8 <= i < 17 for i in batch[8:])


def test_the_plan_is_domainbeds_sweep():
    cfg = resolve({"data.name": "digits", "protocol.name": "domainbed"})
    assert cfg.seeds == [0, 1, 2] and cfg.protocol.hparams_seeds == list(range(20))
    plan = make_plan(resolve({**SMALL, "protocol.hparams_seeds": [0, 3],
                              "protocol.loo_validation": True}))
    names = list(dict.fromkeys(r.split.name for r in plan.runs))
    assert names[:4] == ["plain", "photo", "color", "inverted"] and len(names) == 4 + 6
    assert len(plan.runs) == 10 * 2
    run = next(r for r in plan.runs if r.split.name == "photo+color"
               and r.config.protocol.hparams_seeds == [3])
    drawn = erm_hparams("domainbed", "Digits", 3, 0)
    c = run.config
    assert (c.train.lr, c.train.weight_decay, c.data.batch_size, c.model.dropout) == (
        drawn["lr"], drawn["weight_decay"], drawn["batch_size"], drawn["resnet_dropout"])
    assert c.train.optimizer == "adam" and c.train.schedule == "constant"
    assert run.train_seed == training_seed("Digits", "ERM", [1, 2], 3, 0)
    assert run.split.test == {"photo": ("photo", "in"), "color": ("color", "in")}


def test_a_domainbed_run_on_digits(tmp_path):
    assert main([*ARGS, "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.rglob("record.json")
    record = json.loads(path.read_text())
    history = record["history"]
    assert [h["step"] for h in history] == [0, 3, 6]
    assert [h["batches"] for h in history] == [1, 3, 3]
    assert set(history[0]["parts"]) == {f"{d}:{p}" for d in ("plain", "photo", "color",
                                                               "inverted") for p in ("in", "out")}
    assert record["config"]["train"]["optimizer"] == "adam"
    assert record["config"]["protocol"]["hparams_seeds"] == [0]
    assert record["split"]["test_envs"] == [1]  # photo, the second of digits' domains
    assert record["split"]["train_seed"] == training_seed("Digits", "ERM", [1], 0, 0)
    # the test domain's score is its "in" part, measured with the test transform
    final = record["final"]["test"]["photo"]
    assert final["acc"] == pytest.approx(history[-1]["parts"]["photo:in"])


def _metrics(out: Path) -> dict:
    (path,) = list(out.rglob("record.json"))
    record = json.loads(path.read_text())
    return {"history": [{k: v for k, v in h.items() if k != "seconds"}
                        for h in record["history"]], "final": record["final"]}


def test_an_interrupted_step_run_resumes_to_the_same_record(tmp_path, monkeypatch):
    import dgbench.run.loop as T

    assert main([*ARGS, "--out", str(tmp_path / "whole")]) == 0
    real, calls = T.train_epoch, []

    def interrupted(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(T, "train_epoch", interrupted)
    assert main([*ARGS, "--out", str(tmp_path / "cut")]) == 130
    monkeypatch.setattr(T, "train_epoch", real)
    assert main([*ARGS, "--out", str(tmp_path / "cut")]) == 0
    assert _metrics(tmp_path / "cut") == _metrics(tmp_path / "whole")


@pytest.mark.parametrize("extra,message", [
    (["train.steps=2", "train.checkpoint_freq=3"], "smaller than train.checkpoint_freq"),
    (["protocol.holdout_fraction=1.0"], "protocol.holdout_fraction must be < 1.0"),
    (["protocol.holdout_fraction=0"], "protocol.holdout_fraction must be > 0.0"),
    (["--seeds", "x"], "seeds"),
    (["data.subsample=10"], "fewer than a batch"),
    (["--aug-args", "mix=crossdomain"], "use mix=random"),
    (["--protocol", "lodo"], "belong to DomainBed's protocol"),
])
def test_bad_domainbed_settings_are_refused_before_training(extra, message, tmp_path, capsys):
    assert main([*ARGS, *extra, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dgbench: error: ") and message in err[0]
    assert not any(tmp_path.iterdir())


def test_a_sweep_dry_run_prints_each_planned_runs_config_as_json(tmp_path, capsys):
    sweep = tmp_path / "db.yaml"
    sweep.write_text("base:\n  protocol.name: domainbed\n  seeds: [0, 1]\n"
                     "  protocol.hparams_seeds: [0, 4]\n  train.steps: 7\n  train.checkpoint_freq: 3\n"
                     "axes:\n  protocol.recipe: [domainbed-2020, domainbed]\n")
    assert main(["sweep", str(sweep), "--dry-run", "--json", "--out", str(tmp_path)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2 * 4 * 2 * 2  # recipes x test domains x trials x draws
    one = next(x for x in lines if x["config"]["protocol"]["recipe"] == "domainbed-2020"
               and x["config"]["protocol"]["hparams_seeds"] == [4] and x["config"]["seeds"] == [1])
    assert one["state"] == "not started" and one["config"]["train"]["lr"] == erm_hparams(
        "domainbed-2020", "Digits", 4, 1)["lr"]
    assert main(["sweep", str(sweep), "--json", "--out", str(tmp_path)]) == 2
    assert "goes with --dry-run" in capsys.readouterr().err
