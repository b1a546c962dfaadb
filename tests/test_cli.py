"""End to end through the CLI on the tiny toy dataset; bad input exits 2 and writes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dgbench.cli import main


def toy(results: Path, *extra: str) -> list[str]:
    return ["run", "--dataset", "toy", "--out", str(results), "--no-progress", *extra]


def records_under(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.rglob("record.json"))]


def test_run_writes_records_and_table_then_skips(results, capsys):
    assert main(toy(results, "--aug", "none,efdmix", "--targets", "red,green")) == 0
    out = capsys.readouterr().out
    assert "experiment toy-lodo: 4 runs" in out
    assert "| augmenter" in out and "| none" in out and "| efdmix" in out
    exp = results / "toy-lodo"
    run_dirs = [p for p in exp.iterdir() if p.is_dir()]
    assert len(run_dirs) == 4
    for d in run_dirs:
        assert (d / "done").exists() and (d / "record.json").exists() and (d / "config.json").exists()
    rec = records_under(exp)[0]
    for key in ("run_id", "config", "seed", "history", "final", "timing", "environment", "device",
                "sizes", "split", "deviations"):
        assert key in rec
    assert rec["split"]["sources"] and rec["split"]["name"] not in rec["split"]["sources"]
    assert rec["config"]["aug"]["args"] or rec["aug"] == "none"
    assert rec["timing"]["images_per_s"] > 0 and rec["environment"]["torch"]
    assert rec["sizes"]["train"] == 3 * 18 and rec["sizes"]["val"] == 3 * 6
    assert rec["sizes"]["test"] == {rec["split"]["name"]: 24}  # the whole target domain
    assert len(rec["history"]) == 1 and "val_acc" in rec["history"][0]

    assert main(toy(results, "--aug", "none,efdmix", "--targets", "red,green")) == 0
    out = capsys.readouterr().out
    assert out.count("finished before, skipped") == 4

    assert main(toy(results, "--aug", "none", "--targets", "red", "--force")) == 0
    assert "skipped" not in capsys.readouterr().out


def test_same_command_twice_gives_identical_results(results):
    args = toy(results, "--aug", "mixstyle,efdmix", "--targets", "blue", "train.epochs=2")
    assert main(args) == 0
    first = {r["run_id"]: (r["history"], r["final"]["test"]) for r in records_under(results)}
    assert main(args + ["--force"]) == 0
    second = {r["run_id"]: (r["history"], r["final"]["test"]) for r in records_under(results)}
    strip = lambda d: {k: ([{x: y for x, y in h.items() if x != "seconds"} for h in v[0]], v[1])
                       for k, v in d.items()}
    assert strip(first) == strip(second)


def test_seeds_and_augmenter_arguments(results, capsys):
    assert main(toy(results, "--aug", "efdmix", "--targets", "red", "--seeds", "1,2",
                    "--aug-args", "alpha=0.3,p=1.0")) == 0
    recs = records_under(results)
    assert sorted(r["seed"] for r in recs) == [1, 2]
    assert all(r["config"]["aug"]["args"] == {"p": 1.0, "alpha": 0.3, "mix": "random",
                                              "stable": False} for r in recs)
    assert "efdmix" in capsys.readouterr().out


def test_crossdomain_uses_the_domain_sampler(results):
    assert main(toy(results, "--aug", "efdmix", "--targets", "grey",
                    "--aug-args", "mix=crossdomain")) == 0
    (rec,) = records_under(results)
    assert rec["config"]["train"]["sampler"] == "domain"


def test_insert_and_backbone_flags(results):
    assert main(toy(results, "--aug", "mixstyle", "--targets", "red", "--insert", "layer2,layer4")) == 0
    (rec,) = records_under(results)
    assert rec["config"]["aug"]["insert"] == ["layer2", "layer4"]
    assert rec["model"]["augmenter_modules"] == ["layer2.mixstyle", "layer4.mixstyle"]


def test_points_anywhere_and_a_shared_instance_are_recorded(results):
    assert main(toy(results, "--aug", "dsu", "--targets", "red", "--insert",
                    "before:bn1,after:maxpool,layer1", "aug.shared=true")) == 0
    (rec,) = records_under(results)
    assert rec["model"]["augmenter_modules"] == ["bn1.dsu_before", "maxpool.dsu", "layer1.dsu"]
    assert rec["model"]["shared_instance"] is True and rec["config"]["aug"]["shared"] is True


def test_yaml_config_file(results, tmp_path):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("data:\n  name: toy\naug:\n  names: [none]\nprotocol:\n  targets: [red]\n"
                   "train:\n  epochs: 1\nexperiment: from-yaml\n")
    assert main(["run", "--config", str(cfg), "--out", str(results), "--no-progress"]) == 0
    assert (results / "from-yaml").is_dir()


def test_table_command_formats_and_missing_runs(results, capsys):
    assert main(toy(results, "--aug", "none,efdmix", "--targets", "red,green", "--seeds", "1,2")) == 0
    exp = results / "toy-lodo"
    capsys.readouterr()
    assert main(["table", str(exp)]) == 0
    md = capsys.readouterr().out
    assert "population std (ddof=0)" in md and "| red" in md and "| Avg" in md
    assert "missing runs" not in md

    assert main(["table", str(exp), "--format", "latex"]) == 0
    tex = capsys.readouterr().out
    assert "\\begin{table}" in tex and "$\\pm$" in tex and "\\caption{" in tex
    assert main(["table", str(exp), "--format", "csv"]) == 0
    csv_text = capsys.readouterr().out
    assert csv_text.startswith("row,column,mean,std,n,values") and "efdmix,red," in csv_text

    # unfinish one run: the table must name it and the cell it leaves short
    victim = next(d for d in exp.iterdir() if json.loads((d / "config.json").read_text())["label"]
                  == "efdmix seed=2 green")
    (victim / "done").unlink()
    assert main(["table", str(exp)]) == 0
    md = capsys.readouterr().out
    assert "missing runs (1): efdmix, seed 2, green" in md
    assert "unfinished runs (1): efdmix seed=2 green" in md
    assert "(n=1)" in md
    out_file = results / "t.md"
    assert main(["table", str(exp), "--output", str(out_file)]) == 0
    assert out_file.read_text().startswith("Test accuracy")


def test_rows_show_settings_that_differ(results, capsys):
    assert main(toy(results, "--aug", "efdmix", "--targets", "red")) == 0
    assert main(toy(results, "--aug", "efdmix", "--targets", "red", "--aug-args", "alpha=0.3")) == 0
    capsys.readouterr()
    assert main(["table", str(results / "toy-lodo")]) == 0
    md = capsys.readouterr().out
    assert "efdmix (alpha=0.1)" in md and "efdmix (alpha=0.3)" in md


def test_list_prints_every_registry(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("augmenters:", "efdmix", "mixstyle", "none", "datasets:", "digits",
                 "protocols:", "lodo", "backbones:", "resnet18", "timm:NAME"):
        assert word in out


def test_dry_run_trains_and_writes_nothing(results, capsys):
    assert main(toy(results, "--aug", "none,efdmix", "--dry-run")) == 0
    assert capsys.readouterr().out.count("not started") == 8
    assert not results.exists()


BAD = [
    (["--aug", "efdmx"], "unknown augmenter 'efdmx'. Did you mean 'efdmix'?"),
    (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--protocol", "lodoo"], "unknown protocol 'lodoo'"),
    (["--backbone", "resnet19"], "unknown backbone 'resnet19'"),
    (["--insert", "layer9"], "stages: layer1, layer2, layer3, layer4"),
    (["--insert", "layer1,layer1"], "insertion points repeat"),
    (["--targets", "purple"], "purple not in this protocol's splits"),
    (["--aug", "efdmix", "--aug-args", "alpha=abc"], "aug.args.alpha must be a number"),
    (["--aug", "efdmix", "--aug-args", "beta=1"], "no augmenter in efdmix takes the argument 'beta'"),
    (["--aug", "mixstyle", "--aug-args", "mix=crossdomain", "train.sampler=random"], "train.sampler=domain"),
    (["train.lrr=0.1"], "Did you mean 'train.lr'"),
    (["train.epochs=zero"], "train.epochs must be an integer"),
    (["train.epochs=0"], "train.epochs must be >= 1; got 0"),
    (["--device", "tpu"], "device must be auto, cpu, cuda"),
    (["--weights", "/nonexistent/w.pth"], "not found"),
    (["stray"], "overrides look like train.lr=0.01"),
    (["--pretrained"], "pretrained resnet18 weights exist only for model.width=64 (got 8)"),
]


@pytest.mark.parametrize("extra,message", BAD, ids=[m[:30] for _, m in BAD])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(results, capsys, extra, message):
    assert main(toy(results, *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith("dgbench: error: ") and message in err
    assert err.count("\n") == 1
    assert not results.exists()


def test_crossdomain_with_one_source_domain_is_refused(results, capsys):
    args = ["run", "--dataset", "toy2", "--out", str(results), "--aug", "efdmix",
            "--aug-args", "mix=crossdomain"]
    assert main(args) == 2
    assert "needs at least two source domains" in capsys.readouterr().err
    assert not results.exists()


def test_yaml_string_number_is_refused(results, tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("train:\n  lr: 5e-5\n")
    assert main(["run", "--config", str(cfg), "--out", str(results)]) == 2
    assert "write 5.0e-5" in capsys.readouterr().err
    assert not results.exists()


def test_table_of_a_folder_without_records(tmp_path, capsys):
    assert main(["table", str(tmp_path)]) == 2
    assert "no run records under" in capsys.readouterr().err
    assert main(["table", str(tmp_path / "absent")]) == 2


def test_console_script_exit_status():
    ok = subprocess.run([sys.executable, "-m", "dgbench", "list", "protocols"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "lodo" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "dgbench", "run", "--aug", "nope", "--dry-run"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("dgbench: error: unknown augmenter")


def test_rows_show_insertion_blocks_when_they_differ(results, capsys):
    for insert in ("layer1", "layer1,layer2,layer3"):
        assert main(toy(results, "--aug", "none,mixstyle", "--targets", "red", "--insert", insert)) == 0
    capsys.readouterr()
    assert main(["table", str(results / "toy-lodo")]) == 0
    md = capsys.readouterr().out
    assert "mixstyle (insert=layer1)" in md and "mixstyle (insert=layer1,layer2,layer3)" in md
    rows = [line.split("|")[1].strip() for line in md.splitlines() if line.startswith("| ")]
    assert rows.count("none") == 1  # the identity is the same baseline wherever it sits


def test_presets_are_listed_and_load(capsys):
    from dgbench import config as C
    from dgbench.plan.planner import resolve

    assert main(["list", "presets"]) == 0
    out = capsys.readouterr().out
    names = C.preset_names()
    for name in ("efdm-pacs-lodo-r18", "efdm-pacs-lodo-r50", "efdm-pacs-single-r18",
                 "efdm-pacs-single-r50", "pacs-lodo-cpu", "digits-compare"):
        assert name in names and name in out
    for name in names:
        cfg = resolve(C.read_preset(name))  # every preset is a valid, typed config
        assert cfg.seeds
    r50 = resolve(C.read_preset("efdm-pacs-lodo-r50"))
    assert r50.model.backbone == "resnet50" and r50.aug.insert == ["layer1", "layer2"]
    assert r50.train.epochs == 150 and r50.data.batch_size == 128 and r50.train.sampler == "domain"
    single = resolve(C.read_preset("efdm-pacs-single-r50"))
    assert single.aug.insert == ["layer1", "layer2", "layer3"] and single.protocol.name == "single"
    assert single.train.epochs == 50 and single.aug.args["mix"] == "random"


def test_unknown_preset_and_preset_with_config(results, tmp_path, capsys):
    assert main(["run", "--preset", "efdm-pacs-lodo", "--out", str(results)]) == 2
    assert "Did you mean" in capsys.readouterr().err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("seeds: [1]\n")
    assert main(["run", "--preset", "pacs-lodo-cpu", "--config", str(cfg), "--out", str(results)]) == 2
    assert not results.exists()


def test_dotted_augmenter_argument_override(results):
    assert main(toy(results, "--aug", "efdmix", "--targets", "red", "aug.args.alpha=0.25",
                    "aug.args.efdmix.p=1")) == 0
    (rec,) = records_under(results)
    assert rec["config"]["aug"]["args"]["alpha"] == 0.25 and rec["config"]["aug"]["args"]["p"] == 1.0


def test_weights_flag_end_to_end_with_an_imagenet_stem_checkpoint(results, tmp_path):
    import torch

    from dgbench.models.backbones import build_backbone

    ckpt = tmp_path / "r18w8.pth"
    torch.save(build_backbone("resnet18", 10, stem="imagenet", width=8).state_dict(), ckpt)
    with pytest.warns(UserWarning, match="conv1"):  # toy uses the small stem: conv1 is new
        assert main(toy(results, "--aug", "none", "--targets", "red", "--weights", str(ckpt))) == 0
    (rec,) = records_under(results)
    assert rec["config"]["model"]["weights"] == str(ckpt)


def test_dry_run_state_agrees_with_records(results, capsys):
    assert main(toy(results, "--aug", "none", "--targets", "red")) == 0
    (run_dir,) = [p for p in (results / "toy-lodo").iterdir() if p.is_dir()]
    capsys.readouterr()
    assert main(toy(results, "--aug", "none", "--targets", "red", "--dry-run")) == 0
    assert capsys.readouterr().out.rstrip().endswith("done")
    (run_dir / "record.json").unlink()  # a done marker without its record is not finished
    assert main(toy(results, "--aug", "none", "--targets", "red", "--dry-run")) == 0
    assert capsys.readouterr().out.rstrip().endswith("stale")  # resumed by the next launch


def test_history_grows_epoch_by_epoch_in_the_run_folder(results):
    assert main(toy(results, "--aug", "efdmix", "--targets", "red", "train.epochs=3")) == 0
    (history,) = list(results.rglob("history.jsonl"))
    lines = [json.loads(line) for line in history.read_text().splitlines()]
    (record,) = records_under(results)
    assert lines == record["history"] and [h["epoch"] for h in lines] == [1, 2, 3]
    assert record["schema"] == 3 and record["task"] == "classification"
    assert record["searched"] == ["alpha", "p"]  # what efdmix declares for a search


def test_a_diverging_run_stops_with_its_likely_causes_and_is_marked_failed(results, capsys):
    with pytest.warns(UserWarning, match="train.lr 1e\\+30 is .* usually diverge"):  # said first
        assert main(toy(results, "--aug", "efdmix", "--targets", "red", "train.lr=1e30")) == 2
    err = capsys.readouterr().err
    assert err.startswith("dgbench: error: efdmix seed=1 red: the training loss was not finite")
    assert "of epoch 1" in err and "train.lr=1e+30" in err and "augmenter setting" in err
    assert err.count("\n") == 1
    assert not list(results.rglob("record.json"))
    (failed,) = list(results.rglob("error.json"))
    assert "not finite" in json.loads(failed.read_text())["error"]
    assert main(["table", str(results / "toy-lodo")]) == 0  # counted as failed, not as a number
    out = capsys.readouterr().out
    assert "failed runs (1), not counted: efdmix seed=1 red" in out and "| efdmix" not in out
    with pytest.warns(UserWarning):
        assert main(toy(results, "--aug", "efdmix", "--targets", "red", "train.lr=1e30",
                        "--dry-run")) == 0
    assert capsys.readouterr().out.rstrip().endswith("failed")


def test_outcome_without_a_speed():
    from types import SimpleNamespace

    from dgbench.run.execute import outcome
    from dgbench.tasks._base import get_task

    record = {"final": {"val_acc": 0.5, "test": {"red": {"acc": 0.25}}},
              "timing": {"wall_s": 3.0, "images_per_s": None}}
    line = outcome(SimpleNamespace(task=get_task("classification")), record)
    assert line == "source-val 50.0  test red 25.0  (3 s)"


def test_print_model_shows_augmenter_arguments():
    from dgbench.models.backbones import build_backbone
    from dgbench.models.insertion import insert_augmenters
    from dgbench.augmenters import AUGMENTERS

    model = build_backbone("resnet18", 3, "small", 8)
    insert_augmenters(model, ["layer1"], lambda: AUGMENTERS.get("efdmix")(alpha=0.3), "efdmix")
    assert "(efdmix): EFDMix(p=0.5, alpha=0.3, mix='random', stable=False)" in str(model)


COMMANDS = {"status": [], "table": [], "compare": ["--bootstrap", "50"],
            "report": ["-o", "{tmp}/r.html"], "plot": ["-o", "{tmp}/p.png"]}


def test_results_commands_take_a_root_or_an_experiment_folder_alike(results, tmp_path, capsys):
    """status, table, compare, report and plot read the same folders the same way (one
    helper, dgbench.store.layout.experiment_folders), and refuse the same things alike."""
    assert main(toy(results, "--aug", "none,efdmix", "--targets", "red")) == 0
    assert main(toy(results, "--targets", "green", "--experiment", "other")) == 0  # none only
    capsys.readouterr()
    args = lambda name: [a.format(tmp=tmp_path) for a in COMMANDS[name]]
    exp = results / "toy-lodo"
    for name in ("status", "table", "compare"):
        assert main([name, str(exp), *args(name)]) == 0
        alone = capsys.readouterr().out
        assert main([name, str(results), *args(name)]) == 0
        both = capsys.readouterr().out
        assert "other" not in alone and "other" in both
        if name == "status":
            assert alone == "toy-lodo: 2 done\n" and both == "other: 1 done\n" + alone
        else:  # one experiment: its text alone; several: each under its name (other has
            # only the baseline: its comparison says so in its place)
            assert both.startswith("other:\n\n") and f"toy-lodo:\n\n{alone}" in both
    for folder in (exp, results):
        assert main(["report", str(folder), *args("report")]) == 0
        assert (tmp_path / "r.html").stat().st_size > 0
    assert main(["plot", str(exp), *args("plot")]) == 0
    capsys.readouterr()
    assert main(["plot", str(results), *args("plot")]) == 2  # one plot, two experiments
    assert "holds 2 experiments (other, toy-lodo)" in capsys.readouterr().err
    run_dir = next(p for p in exp.iterdir() if p.is_dir())
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    for path, says in ((tmp_path / "absent", "is not a results folder: it does not exist"),
                       (tmp_path / "file", "is not a results folder: it is a file"),
                       (tmp_path / "empty", "no run records under"),
                       (run_dir, "is one run's folder; pass its experiment's folder")):
        for name in COMMANDS:
            assert main([name, str(path), *args(name)]) == 2, name
            err = capsys.readouterr().err
            assert err.startswith("dgbench: error: ") and says in err and err.count("\n") == 1


def test_duplicates_and_case_slips_on_the_command_line(results, capsys):
    for extra, says in ((["--seeds", "1,1"], "seeds lists 1 twice"),
                        (["--targets", "red,red"], "protocol.targets lists 'red' twice"),
                        (["--aug", "efdmix,efdmix"], "aug.names lists 'efdmix' twice"),
                        (["--aug", "EFDMix"], "Did you mean 'efdmix'? (names are lowercase)"),
                        (["--targets", "Red"], "Did you mean 'red'?"),
                        (["--aug", "efdmix", "--aug-args", "alph=0.3"], "Did you mean 'alpha'?")):
        assert main(toy(results, *extra)) == 2
        err = capsys.readouterr().err
        assert err.startswith("dgbench: error: ") and says in err and err.count("\n") == 1
    assert not results.exists()
