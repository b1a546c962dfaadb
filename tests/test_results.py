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
