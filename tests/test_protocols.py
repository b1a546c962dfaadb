"""Single-source scoring, model-selection rules, the LR schedule, and paper comparison."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from dgbench.cli import main
from dgbench.core.errors import DataError
from dgbench.tasks.evaluate import evaluate_tests
from dgbench.data.base import DATASETS
from dgbench.data.protocols import PROTOCOLS
from dgbench.results.frame import frame
from dgbench.results.selection import select_epochs
from dgbench.results.tables import build_table
from dgbench.report.text import render
from dgbench.run.loop import cosine_lr


class ConstantModel(torch.nn.Module):
    """Always predicts class 0: its accuracy on a set is the share of class-0 labels."""

    def forward(self, x):
        return torch.stack([torch.ones(len(x)), torch.zeros(len(x))], dim=1)


def loader(labels):
    n = len(labels)
    return DataLoader(TensorDataset(torch.zeros(n, 1), torch.tensor(labels), torch.zeros(n)), batch_size=3)


def test_pooled_accuracy_is_over_the_union_not_a_mean_of_accuracies():
    test, pooled = evaluate_tests(
        ConstantModel(), {"a": loader([0, 0, 1, 1]), "b": loader([0] * 9 + [1])})
    assert test["a"] == {"acc": 0.5, "correct": 2, "n": 4}
    assert test["b"] == {"acc": 0.9, "correct": 9, "n": 10}
    assert pooled == pytest.approx(11 / 14)  # not (0.5 + 0.9) / 2


def test_single_source_splits():
    toy = DATASETS.get("toy")(None, 16)
    splits = PROTOCOLS.get("single")().select(toy, None)
    assert [s.name for s in splits] == list(toy.domains)
    for s in splits:
        assert s.sources == (s.name,) and s.train == ((s.name, "train"),)
        assert set(s.test) == set(toy.domains) - {s.name}
        assert all(part == (t, "all") for t, part in s.test.items())


def test_single_source_end_to_end_records_pooled_and_per_target(tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["run", "--dataset", "toy", "--protocol", "single", "--targets", "red",
                 "--aug", "none", "--out", str(out), "--no-progress"]) == 0
    (path,) = out.rglob("record.json")
    rec = json.loads(path.read_text())
    test = rec["final"]["test"]
    assert set(test) == {"green", "blue", "grey"}
    pooled = sum(t["correct"] for t in test.values()) / sum(t["n"] for t in test.values())
    assert rec["final"]["score"] == pytest.approx(pooled)
    capsys.readouterr()
    assert main(["table", str(out / "toy-single"), "--per-target"]) == 0
    md = capsys.readouterr().out
    assert "red->green" in md and "red->grey" in md and "source -> target" in md
    assert main(["table", str(out / "toy-single")]) == 0
    assert "pooled over the other domains" in capsys.readouterr().out


def record(seed, history, aug="efdmix", split="photo"):
    return {
        "run_id": f"r{seed}", "aug": aug, "seed": seed,
        "split": {"name": split, "index": 2},
        "config": {"data": {"name": "pacs"}, "protocol": {"name": "lodo"},
                   "model": {"backbone": "resnet18"}, "seeds": [seed],
                   "train": {"epochs": len(history)},
                   "aug": {"names": [aug], "args": {"mix": "crossdomain"}, "insert": ["layer1"]}},
        "dataset": {"titles": {"photo": "Photo"}},
        "history": history,
        "final": {"score": history[-1].get("score", 0.5),
                  "test": {split: {"acc": history[-1].get("score", 0.5)}}},
    }


HISTORY = [
    {"epoch": 1, "val_acc": 0.50, "score": 0.70, "test_acc": {"photo": 0.70}},
    {"epoch": 2, "val_acc": 0.90, "score": 0.60, "test_acc": {"photo": 0.60}},
    {"epoch": 3, "val_acc": 0.90, "score": 0.65, "test_acc": {"photo": 0.65}},
    {"epoch": 4, "val_acc": 0.80, "score": 0.62, "test_acc": {"photo": 0.62}},
]


def chosen(rec, rule):
    (row,) = select_epochs(frame([rec]), rule).to_dict("records")
    return row


def test_selection_rules_on_hand_made_records():
    rec = record(1, HISTORY)
    assert chosen(rec, "last")["score"] == 0.62
    assert chosen(rec, "val")["epoch"] == 3  # best val; the later of a tie
    assert chosen(rec, "test-best")["epoch"] == 1
    table = build_table([rec], select="test-best")
    assert table.stats("efdmix", "Photo")[0] == pytest.approx(70.0)
    assert "TEST-BEST" in table.caption() and "optimistic" in table.caption()
    assert build_table([rec], select="val").stats("efdmix", "Photo")[0] == pytest.approx(65.0)


def test_selection_never_falls_back_silently():
    old = record(1, [{"epoch": 1, "val_acc": 0.5}])  # a record without per-epoch test accuracy
    assert chosen(old, "last")["score"] is not None
    with pytest.raises(DataError, match="no per-epoch test accuracy"):
        chosen(old, "test-best")
    with pytest.raises(DataError, match="no per-epoch test accuracy"):
        build_table([old], select="val")


def test_error_estimators():
    recs = [record(s, [{"epoch": 1, "val_acc": 0.5, "score": v, "test_acc": {"photo": v}}])
            for s, v in ((1, 0.1), (2, 0.2), (3, 0.3))]
    std = build_table(recs).stats("efdmix", "Photo")
    se = build_table(recs, error="se").stats("efdmix", "Photo")
    assert std[0] == pytest.approx(20.0) and std[1] == pytest.approx(8.165, abs=1e-3)
    assert se[1] == pytest.approx(4.714, abs=1e-3)  # DomainBed: [0.1, 0.2, 0.3] -> 20.0 +/- 4.7


def preset_record(preset, seed=1):
    """A record whose config is ``preset``'s, as planned for efdmix on photo."""
    from dgbench import config as C
    from dgbench.plan.planner import resolve

    rec = record(seed, HISTORY)
    cfg = C.to_dict(resolve(C.read_preset(preset)))
    cfg["aug"]["names"], cfg["seeds"] = ["efdmix"], [seed]
    cfg["aug"]["args"] = {"p": 0.5, "alpha": 0.1, "mix": "crossdomain", "stable": False}
    cfg["train"]["epochs"] = len(HISTORY)  # the record's own history
    rec["config"] = cfg
    return rec


def test_compare_paper_only_compares_the_published_recipe():
    matched = preset_record("efdm-pacs-lodo-r18")
    matched["config"]["train"]["epochs"] = 150  # the published length
    text = render(build_table(frame([matched])), compare_paper=True)
    assert "EFDM paper" in text and "96.8 ± 0.4" in text  # ResNet-18 EFDMix LODO, Photo
    assert "difference (ours - paper)" in text and "-34.8" in text  # 62.0 - 96.8
    assert "ReScience" in text and "| 81.3" in text  # the reproduction's Avg, a second row

    text = render(build_table(frame([matched]), select="val"), compare_paper=True)
    assert "difference" not in text and "selection: ours val, published last" in text

    cpu = preset_record("pacs-lodo-cpu")  # 64 px, width 16, from scratch, 12 epochs ...
    text = render(build_table(frame([cpu])), compare_paper=True)
    assert "difference" not in text and "96.8" not in text
    for differs in ("model.pretrained: ours False, published True", "model.width: ours 16",
                    "data.image_size: ours 64", "train.domain_epoch: ours 'fixed'"):
        assert differs in text


def test_mixed_protocols_are_refused():
    a = record(1, HISTORY)
    b = record(2, HISTORY)
    b["config"]["protocol"]["name"] = "single"
    with pytest.raises(DataError, match="mix protocols"):
        build_table([a, b])


def test_schedule_is_set_from_progress_and_reaches_its_end(tmp_path):
    out = tmp_path / "res"
    assert main(["run", "--dataset", "toy", "--targets", "red", "--aug", "efdmix",
                 "--aug-args", "mix=crossdomain", "--out", str(out), "--no-progress",
                 "train.epochs=3", "train.lr=0.1"]) == 0
    (path,) = out.rglob("record.json")
    lrs = [h["lr"] for h in json.loads(path.read_text())["history"]]
    assert lrs == [pytest.approx(cosine_lr(0.1, e, 3)) for e in range(3)]
    assert cosine_lr(0.1, 0, 3) == 0.1 and cosine_lr(0.1, 3, 3) == pytest.approx(0.0)


def test_evaluation_does_not_touch_the_training_rng():
    from dgbench.data.loaders import eval_loader

    ds = TensorDataset(torch.zeros(10, 1), torch.zeros(10, dtype=torch.long), torch.zeros(10))
    torch.manual_seed(0)
    state = torch.random.get_rng_state()
    for _ in range(3):
        for _batch in eval_loader(ds, 4):
            pass
    assert torch.equal(torch.random.get_rng_state(), state)
    for _batch in DataLoader(ds, batch_size=4):  # the pitfall it avoids
        pass
    assert not torch.equal(torch.random.get_rng_state(), state)


def test_leave_one_domain_out_validation(tmp_path, capsys):
    """protocol.loo_validation adds, per target, one run per source trained without it and
    tested on it; --select loo picks each run's epoch by their mean held-out accuracy."""
    out = tmp_path / "res"
    args = ["run", "--dataset", "toy", "--targets", "red", "--aug", "efdmix", "--out", str(out),
            "--no-progress", "train.epochs=3"]
    assert main([*args, "--dry-run", "protocol.loo_validation=true"]) == 0
    listed = capsys.readouterr().out
    assert "4 runs" in listed and "red:val=green" in listed and "red:val=grey" in listed
    assert main(args) == 0  # the plain run first: it keeps its id when validation is added
    assert main(["table", str(out / "toy-lodo"), "--select", "loo"]) == 2
    assert "protocol.loo_validation=true" in capsys.readouterr().err
    assert main([*args, "protocol.loo_validation=true"]) == 0
    assert "[1/4] efdmix seed=1 red: finished before" in capsys.readouterr().out
    records = {r["split"]["name"]: r for r in
               (json.loads(p.read_text()) for p in (out / "toy-lodo").rglob("record.json"))}
    vals = [r for r in records.values() if r["split"]["role"] == "validation"]
    assert len(vals) == 3 and all(r["split"]["of"] == "red" for r in vals)
    assert {tuple(r["split"]["sources"]) for r in vals} == {("blue", "grey"), ("green", "grey"),
                                                            ("green", "blue")}
    mean = [sum(r["history"][e]["score"] for r in vals) / 3 for e in range(3)]
    best = max(range(3), key=lambda e: (mean[e], e))
    table = build_table(frame(list(records.values())), select="loo")
    assert table.columns == ["red"]
    assert table.stats("efdmix", "red")[0] == pytest.approx(100 * records["red"]["history"][best]["score"])
    assert "leave-one-domain-out validation" in table.caption()
    assert main(["run", "--dataset", "toy", "--protocol", "single", "--out", str(out),
                 "protocol.loo_validation=true"]) == 2


def test_compare_paper_for_reid_uses_efdms_osnet_rows():
    from dgbench import config as C
    from dgbench.plan.planner import resolve

    cfg = C.to_dict(resolve(C.read_preset("efdm-reid-market2grid-osnet")))
    cfg["aug"]["names"], cfg["seeds"] = ["efdmix"], [1]
    cfg["aug"]["args"] = {"p": 0.5, "alpha": 0.1, "mix": "random", "stable": False}
    metrics = {"mAP": 0.30, "rank1": 0.20, "rank5": 0.4, "rank10": 0.5, "rank20": 0.6,
               "num_valid": 125, "queries": 125, "gallery": 900}
    rec = {"run_id": "r1", "aug": "efdmix", "seed": 1, "task": "reid", "config": cfg,
           "split": {"name": "market1501->grid", "index": 0}, "dataset": {"titles": {}},
           "history": [{"epoch": 60, "lr": 5e-5, "loss": 1.0}],
           "final": {"test": {f"grid#{k}": dict(metrics) for k in range(10)}, "score": 0.3}}
    text = render(build_table(frame([rec])), compare_paper=True)
    assert "market1501->grid split 0 mAP" in text and "35.5" in text and "26.7" in text
    assert "difference (ours - paper)" in text and "-5.5" in text  # 30.0 - 35.5


# -- DomainBed's test-domain oracle ----------------------------------------------------------
def test_oracle_part_is_a_seeded_fifth_of_each_test_set():
    from dgbench.tasks.evaluate import oracle_part

    a = oracle_part(100, 1, "photo")
    assert a.dtype == torch.bool and int(a.sum()) == 20  # DomainBed: int(0.2 n)
    assert torch.equal(a, oracle_part(100, 1, "photo"))  # the same images for every setting
    assert not torch.equal(a, oracle_part(100, 2, "photo"))  # a seed's own split
    assert not torch.equal(a, oracle_part(100, 1, "sketch"))
    assert int(oracle_part(3, 1, "x").sum()) == 1 and int(oracle_part(9, 1, "x").sum()) == 1
    assert int(oracle_part(1, 1, "x").sum()) == 0


def test_evaluate_tests_splits_each_test_set_into_held_and_rest():
    from dgbench.tasks.evaluate import oracle_part

    labels = [0, 1] * 10 + [0] * 5
    test, _ = evaluate_tests(ConstantModel(), {"a": loader(labels)}, seed=3)
    mask = oracle_part(len(labels), 3, "a")
    right = torch.tensor(labels) == 0
    assert test["a"]["held"] == [int(right[mask].sum()), 5]
    assert test["a"]["rest"] == [int(right[~mask].sum()), 20]
    assert test["a"]["held"][0] + test["a"]["rest"][0] == test["a"]["correct"] == 15


def oracle_record(run_id, seed, alpha, val, rest, aug="efdmix", full=0.5):
    rec = record(seed, [{"epoch": 1, "val_acc": 0.5, "score": 0.9, "test_acc": {"photo": 0.9}},
                        {"epoch": 2, "val_acc": 0.5, "score": full, "test_acc": {"photo": full},
                         "oracle_val": val, "oracle_acc": {"photo": rest}, "oracle_score": rest}],
                 aug=aug)
    rec["run_id"] = run_id
    rec["config"]["aug"]["args"] = {"alpha": alpha} if aug != "none" else {}
    return rec


def test_oracle_chooses_the_setting_by_the_held_out_fifth_and_reports_the_rest():
    recs = [oracle_record("a", 1, 0.1, val=0.60, rest=0.50),
            oracle_record("b", 1, 0.3, val=0.70, rest=0.40),  # best held-out: chosen, reports 40
            oracle_record("c", 2, 0.1, val=0.80, rest=0.55),  # seed 2: alpha 0.1
            oracle_record("d", 2, 0.3, val=0.80, rest=0.90),  # a tie: the earlier run id wins
            oracle_record("n1", 1, None, val=0.2, rest=0.30, aug="none"),
            oracle_record("n2", 2, None, val=0.2, rest=0.20, aug="none")]
    assert build_table(recs).rows == ["none", "efdmix (alpha=0.1)", "efdmix (alpha=0.3)"]
    table = build_table(recs, select="oracle")
    assert table.rows == ["none", "efdmix"]  # the settings collapse into their family
    assert table.cells[("efdmix", "Photo")] == pytest.approx([40.0, 55.0])
    assert table.cells[("none", "Photo")] == pytest.approx([30.0, 20.0])
    caption = table.caption()
    assert "DomainBed's test-domain oracle" in caption and "held-out 20%" in caption
    assert "efdmix: alpha=0.1 (1x), alpha=0.3 (1x), each chosen among 2 run(s)" in caption
    assert "none: no arguments (2x), each chosen among 1 run(s)" in caption
    assert "test-domain validation set (oracle)" in render(table, "domainbed")


def test_oracle_refuses_records_without_a_held_out_part():
    rec = record(1, HISTORY)  # per-epoch test accuracy, but no oracle split
    with pytest.raises(DataError, match="no held-out part of its test domains.*--force"):
        build_table([rec], select="oracle")


def test_oracle_over_a_searched_sweep(tmp_path, capsys):
    """A seeded random search of efdmix's arguments on toy: --select oracle keeps one row per
    family, each cell the held-out-80% accuracy of the run best on the held-out 20%."""
    path = tmp_path / "sweep.yaml"
    path.write_text("base: {data.name: toy, protocol.targets: [red], train.epochs: 1, "
                    "aug.names: [efdmix]}\nsearch: {kind: random, samples: 3, seed: 0}\n")
    out = tmp_path / "res"
    assert main(["sweep", str(path), "--out", str(out), "--threads", "1"]) == 0
    records = [json.loads(p.read_text()) for p in out.rglob("record.json")]
    assert len(records) == 3
    last = [r["history"][-1] for r in records]
    for h, r in zip(last, records):
        (t,) = r["final"]["test"].values()
        assert h["oracle_val"] == t["held"][0] / t["held"][1]
        assert h["oracle_score"] == t["rest"][0] / t["rest"][1] == h["oracle_acc"]["red"]
    best = min(zip(last, records), key=lambda hr: (-hr[0]["oracle_val"], hr[1]["run_id"]))[0]
    capsys.readouterr()
    assert main(["table", str(out / "toy-lodo"), "--select", "oracle", "--format", "csv"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[1].startswith("efdmix,")  # one row: the family
    table = build_table(frame(records), select="oracle")
    assert table.rows == ["efdmix"]
    assert table.cells[("efdmix", "red")] == [pytest.approx(100 * best["oracle_score"])]


def test_oracle_rows_compare_with_the_baseline_by_seed_and_split():
    from dgbench.results.stats import compare

    recs = [oracle_record("a", 1, 0.1, val=0.6, rest=0.5), oracle_record("b", 1, 0.3, val=0.7, rest=0.4),
            oracle_record("c", 2, 0.1, val=0.8, rest=0.55), oracle_record("d", 2, 0.3, val=0.1, rest=0.9),
            oracle_record("n1", 1, None, val=0.2, rest=0.3, aug="none"),
            oracle_record("n2", 2, None, val=0.2, rest=0.2, aug="none")]
    found = compare(frame(recs), select="oracle")
    text = render(build_table(recs, select="oracle"))
    assert "efdmix" in text and "Oracle choices" in text
    pooled = found.get("efdmix")
    assert pooled.n == 2 and pooled.mean == pytest.approx(((40 - 30) + (55 - 20)) / 2)


def test_oracle_collapses_only_the_searched_hyperparameters():
    """efdmix searches alpha and p; ``stable`` is a method setting: its runs stay a row."""
    recs = [oracle_record("a", 1, 0.1, val=0.6, rest=0.5), oracle_record("b", 1, 0.3, val=0.7, rest=0.4),
            oracle_record("c", 1, 0.3, val=0.9, rest=0.8)]
    recs[2]["config"]["aug"]["args"]["stable"] = True
    recs[0]["config"]["aug"]["args"]["stable"] = recs[1]["config"]["aug"]["args"]["stable"] = False
    table = build_table(recs, select="oracle")
    assert table.rows == ["efdmix (stable=False)", "efdmix (stable=True)"]
    assert table.cells[("efdmix (stable=False)", "Photo")] == pytest.approx([40.0])
    assert table.cells[("efdmix (stable=True)", "Photo")] == pytest.approx([80.0])


def test_sweep_plots_refuse_the_oracle():
    from dgbench.report.plots import sweep_data

    recs = [oracle_record("a", 1, 0.1, val=0.6, rest=0.5), oracle_record("b", 1, 0.3, val=0.7, rest=0.4)]
    with pytest.raises(DataError, match="--select oracle keeps one hyperparameter setting"):
        sweep_data(frame(recs), "alpha", select="oracle")
