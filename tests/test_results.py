"""The results DataFrame: one row per run x test set x epoch, the one way records are read;
records of schema 1 (before ``task``) still load and tabulate the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dgbench.cli import main
from dgbench.results.frame import frame, load
from dgbench.results.tables import build_table
from dgbench.report.text import render


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("results")
    assert main(["run", "--dataset", "toy", "--protocol", "single", "--aug", "none,efdmix",
                 "--aug-args", "efdmix.alpha=0.3", "--targets", "red,green", "--seeds", "1,2",
                 "train.epochs=2", "--no-progress", "--out", str(out)]) == 0
    return out / "toy-single"


def test_one_row_per_run_test_set_and_epoch(folder):
    df = load(folder)
    # 2 augmenters x 2 sources x 2 seeds, each tested on 3 other domains, at 2 epochs
    assert len(df) == 8 * 3 * 2
    assert df["run_id"].nunique() == 8 and set(df["epoch"]) == {1, 2}
    assert set(df["aug"]) == {"none", "efdmix"} and set(df["variant"]) == {"none", "efdmix"}
    assert set(df["split"]) == {"red", "green"} and set(df["test"]) == {"red", "green", "blue", "grey"}
    assert df.loc[df["aug"] == "efdmix", "aug.alpha"].eq(0.3).all()
    assert df["acc"].between(0, 1).all() and df["per_epoch"].all()
    last = df[df["last"]]
    assert (last["epoch"] == 2).all()
    one = last[(last["aug"] == "efdmix") & (last["seed"] == 1) & (last["split"] == "red")]
    record = next(json.loads(p.read_text()) for p in folder.glob("*/record.json")
                  if json.loads(p.read_text())["run_id"] == one["run_id"].iloc[0])
    assert dict(zip(one["test"], one["acc"])) == {k: v["acc"] for k, v in record["final"]["test"].items()}
    assert (one["score"] == record["final"]["score"]).all()


def test_table_reads_the_frame(folder):
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*/record.json"))]
    assert render(build_table(load(folder))) == render(build_table(frame(records)))


def test_schema_1_records_still_load_and_tabulate_the_same(folder, tmp_path):
    old = tmp_path / "old"
    for run in folder.iterdir():
        if not run.is_dir():
            continue
        (old / run.name).mkdir(parents=True)
        for f in ("config.json", "done"):
            (old / run.name / f).write_bytes((run / f).read_bytes())
        record = json.loads((run / "record.json").read_text())
        record["schema"] = 1
        del record["task"]  # schema 1 had no "task"
        (old / run.name / "record.json").write_text(json.dumps(record))
    for options in ({}, {"per_target": True}, {"select": "val"}, {"error": "se"}):
        assert render(build_table(load(old), **options)) == render(build_table(load(folder), **options))
    assert main(["table", str(old)]) == 0


def test_unfinished_runs_are_in_the_frames_attrs(folder, tmp_path):
    copy = tmp_path / "copy"
    run = next(p for p in folder.iterdir() if p.is_dir())
    (copy / run.name).mkdir(parents=True)
    (copy / run.name / "config.json").write_bytes((run / "config.json").read_bytes())
    df = load(copy)
    assert df.empty and len(df.attrs["unfinished"]) == 1
    assert "unfinished runs (1)" in render(build_table(df))


def test_a_record_before_schema_3_gets_the_family_its_augmenter_declares():
    """Schema 3 records name the searched hyperparameters; an older record (no ``searched``)
    asks the installed augmenter, and both give the same families."""
    import copy

    from dgbench.store.records import scan_folder

    folder = Path(__file__).parent / "data" / "results" / "digits-lodo"
    new = [r for r in scan_folder(folder).records if r.get("searched")]
    assert new, "the stored results hold searched runs"
    old = copy.deepcopy(new)
    for r in old:
        del r["searched"]
        r["schema"] = 2
    assert list(frame(old)["family"]) == list(frame(new)["family"])
    assert frame(new)["family"].nunique() < frame(new)["variant"].nunique()


STORED = Path(__file__).parent / "data" / "results"
FAILED_RUN, UNFINISHED_RUN = "13304d8e2a0f", "8c266d5f3eda"  # in STORED / "digits-lodo"


def _copy_runs(tmp_path: Path, *run_ids: str) -> Path:
    """An experiment folder holding copies of these runs of the stored digits-lodo."""
    import shutil

    out = tmp_path / "results" / "digits-lodo"
    for run_id in run_ids:
        shutil.copytree(STORED / "digits-lodo" / run_id, out / run_id)
    return out


@pytest.mark.parametrize("runs,says", [
    ((UNFINISHED_RUN,), "Nothing finished yet: 1 run started and not finished, no table yet."),
    ((FAILED_RUN,), "Nothing finished, only 1 failed run (listed below, with why)"),
    ((FAILED_RUN, UNFINISHED_RUN), "Nothing finished: 1 run started and not finished, 1 "
                                   "failed run; no table yet."),
])
@pytest.mark.parametrize("fmt", ["markdown", "latex", "domainbed"])
def test_a_table_with_nothing_finished_says_so(tmp_path, runs, says, fmt):
    text = render(build_table(load(_copy_runs(tmp_path, *runs))), fmt)
    assert says in text
    assert "(?)" not in text.split("\n", 1)[1] and "seeds  of" not in text and "seeds ;" not in text
    assert "per split" not in text and "| augmenter" not in text


def test_a_failed_run_is_named_once(tmp_path, capsys):
    from dgbench.store.states import status_lines

    folder = _copy_runs(tmp_path, FAILED_RUN, "004c03d0d933")
    line = next(n for n in render(build_table(load(folder))).splitlines() if "failed runs" in n)
    assert line.count("mixstyle seed=1 plain") == 1
    assert "mixstyle seed=1 plain: the training loss was not finite" in line
    status = "\n".join(status_lines(folder.parent))
    assert status.count("mixstyle seed=1 plain") == 1 and "1 failed" in status
    assert main(["status", str(folder.parent)]) == 0
    assert capsys.readouterr().out.count("mixstyle seed=1 plain") == 1


def test_lodo_per_target_columns_are_the_target_domains():
    lodo = build_table(load(STORED / "digits-lodo"), per_target=True)
    assert lodo.columns == ["plain", "photo"] and "->" not in render(lodo).split("\n\n")[1]
    assert "per held-out target domain (lodo)" in lodo.caption()
    single = build_table(load(STORED / "digits-single"), per_target=True)
    assert "plain->photo" in single.columns and "per source -> target pair" in single.caption()


def test_subsampled_runs_and_local_weights_are_flagged_in_the_caption():
    records = [r for r in frame_records(STORED / "digits-lodo")]
    text = render(build_table(frame(records)))
    assert "Every run trained and tested on a subsample (data.subsample=32" in text
    assert "local-checkpoint" not in text
    for r in records:
        if r["aug"] == "none":
            r["config"]["model"]["weights"] = "/ckpt/imagenet-r18.pt"
    text = render(build_table(frame(records)), "latex")
    assert ("The runs of none (model.weights=/ckpt/imagenet-r18.pt) started from "
            "local-checkpoint weights (model.weights=/ckpt/imagenet-r18.pt)") in text
    reid = render(build_table(load(STORED / "market1501-to-grid")))
    assert "subsample" not in reid and "local-checkpoint" not in reid


def frame_records(folder: Path) -> list[dict]:
    from dgbench.store.records import scan_folder

    return scan_folder(folder).records


def test_the_recipe_check_counts_subsample_and_weights():
    from dgbench.core import keys
    from dgbench.results.published import PUBLISHED, recipe_differences

    pub = PUBLISHED[("pacs", "lodo", "", "resnet18", "efdmix", "crossdomain")][0]
    config = json.loads(json.dumps(frame_records(STORED / "digits-lodo")[0]["config"]))
    for key, value in pub.recipe.items():
        keys.assign(config, key, value)
    assert recipe_differences(config, pub, "last") == []
    keys.assign(config, "data.subsample", 32)
    keys.assign(config, "model.weights", "/ckpt/r18.pt")
    assert recipe_differences(config, pub, "last") == [
        "data.subsample: ours 32, published unset",
        "model.weights: ours '/ckpt/r18.pt', published unset"]


def test_row_labels_show_swept_floats_short_and_apart():
    from dgbench.results.labels import variant_labels

    def rec(alpha):
        return {"aug": "efdmix", "searched": [], "config": {
            "aug": {"names": ["efdmix"], "args": {"alpha": alpha}, "insert": ["layer1"]}}}

    labels = variant_labels([rec(0.1 + 0.2), rec(0.123456789), rec(0.5)])
    assert labels == ["efdmix (alpha=0.3)", "efdmix (alpha=0.1235)", "efdmix (alpha=0.5)"]
    assert variant_labels([rec(0.12345), rec(0.12346)]) == ["efdmix (alpha=0.12345)",
                                                            "efdmix (alpha=0.12346)"]
