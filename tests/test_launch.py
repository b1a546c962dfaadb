"""Sweeps and launchers: a sweep file's points and seeded search, the local pool, a local Ray
and submitit's local executor all write the same runs once; status; threads; metrics.csv."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dgbench.cli import main
from dgbench.plan.sweep import Search, read_sweep, samples

SWEEP = """
base:
  data.name: toy
  protocol.targets: [red]
  aug.names: [none, efdmix]
axes:
  aug.insert: [[layer1], [layer1, layer2]]
  aug.args.alpha: [0.1, 0.3]
"""


def sweep_file(tmp_path: Path, text: str = SWEEP) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return path


def test_points_are_the_product_of_the_axes(tmp_path):
    points = read_sweep(sweep_file(tmp_path)).points()
    assert len(points) == 4
    assert {(tuple(p["aug.insert"]), p["aug.args"]["alpha"]) for p in points} == {
        (("layer1",), 0.1), (("layer1",), 0.3), (("layer1", "layer2"), 0.1), (("layer1", "layer2"), 0.3)}


def test_the_efdm_table_sweep_puts_the_published_recipes_side_by_side():
    """scripts/sweeps/efdm-pacs-lodo.yaml: a preset axis (R18 after layer1-3, R50 after layer1-2,
    not their product), with command-line keys over both."""
    path = Path(__file__).parent.parent / "scripts" / "sweeps" / "efdm-pacs-lodo.yaml"
    points = read_sweep(path, {"data.root": "/data/PACS", "train.epochs": 2}).points()
    assert [(p["model.backbone"], p["aug.insert"], p["experiment"]) for p in points] == [
        ("resnet18", ["layer1", "layer2", "layer3"], "efdm-pacs-lodo-r18"),
        ("resnet50", ["layer1", "layer2"], "efdm-pacs-lodo-r50")]
    assert all(p["data.root"] == "/data/PACS" and p["train.epochs"] == 2
               and p["seeds"] == [1, 2, 3, 4, 5] and p["aug.names"] == ["none", "mixstyle", "efdmix"]
               for p in points)


def test_random_search_is_seeded_and_adding_a_hyperparameter_moves_no_other():
    one = samples("efdmix", Search(kind="random", samples=5, seed=3, only=["alpha"]))
    two = samples("efdmix", Search(kind="random", samples=5, seed=3))
    assert [s["alpha"] for s in one] == [s["alpha"] for s in two]  # p added: alpha unchanged
    assert all(0.01 <= s["alpha"] <= 1.0 and 0.1 <= s["p"] <= 1.0 for s in two)
    assert samples("efdmix", Search(kind="random", samples=5, seed=4))[0] != two[0]
    grid = samples("efdmix", Search(kind="grid", points=3))
    assert len(grid) == 9 and sorted({g["alpha"] for g in grid}) == pytest.approx([0.01, 0.1, 1.0], rel=1e-6)
    assert samples("none", Search()) == [{}]  # nothing to search: one run as it is


def test_every_declared_search_space_fits_its_augmenter():
    import inspect

    from dgbench.augmenters import AUGMENTERS
    from dgbench.plan.sweep import check_distribution

    for name in AUGMENTERS.names():
        cls = AUGMENTERS.get(name)
        for arg, dist in getattr(cls, "search", {}).items():
            assert arg in inspect.signature(cls).parameters, (name, arg)
            check_distribution(f"{name}.{arg}", dist)


def _records(out: Path) -> dict[str, dict]:
    return {r["run_id"]: r for r in (json.loads(p.read_text()) for p in out.rglob("record.json"))}


DIGITS = """
base:
  data.name: digits
  data.subsample: 24
  train.epochs: 1
  protocol.targets: [photo]
  aug.names: [none, efdmix]
axes:
  aug.insert: [[layer1], [layer1, layer2]]
"""


@pytest.mark.parametrize("launcher", [["--jobs", "2"], ["--launcher", "ray"],
                                      ["--launcher", "slurm", "--slurm-local"]],
                         ids=["local-pool", "ray", "submitit-local"])
def test_launchers_train_the_same_runs_as_serial(tmp_path, launcher, capsys):
    """Worker processes, Ray tasks and submitit jobs import dgbench afresh: the runs use the
    embedded digits dataset (a test-only dataset would not be registered there)."""
    path = sweep_file(tmp_path, DIGITS)
    base = ["sweep", str(path), "--threads", "1"]
    assert main([*base, "--out", str(tmp_path / "serial")]) == 0
    assert main([*base, *launcher, "--out", str(tmp_path / "launched")]) == 0
    serial, launched = _records(tmp_path / "serial"), _records(tmp_path / "launched")
    assert len(serial) == 4 and serial.keys() == launched.keys()
    for run_id, record in serial.items():
        assert launched[run_id]["final"] == record["final"]  # the same numbers, anywhere
        assert launched[run_id]["environment"]["cpu_threads"] == 1
    capsys.readouterr()
    assert main([*base, *launcher, "--out", str(tmp_path / "launched")]) == 0
    assert "4 done / 0 running / 0 to launch" in capsys.readouterr().out


def test_dry_run_and_status_say_what_is_done_running_failed(tmp_path, capsys):
    path = sweep_file(tmp_path)
    out = tmp_path / "res"
    assert main(["sweep", str(path), "--out", str(out), "--dry-run"]) == 0
    # none takes no alpha: its runs do not multiply with that axis
    assert "6 runs in 1 experiment(s): 0 done / 0 running / 6 to launch" in capsys.readouterr().out
    assert main(["run", "--dataset", "toy", "--targets", "red", "--aug", "efdmix", "--insert",
                 "layer1", "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["status", str(out), "--sweep", str(path)]) == 0
    text = capsys.readouterr().out
    assert "toy-lodo: 1 done, 5 not started" in text
    (run_dir,) = [p.parent for p in out.rglob("record.json")]
    (run_dir / "done").unlink()
    (run_dir / "error.json").write_text(json.dumps({"error": "it broke\nbadly"}))
    assert main(["status", str(out)]) == 0
    assert "failed   " in (text := capsys.readouterr().out) and "it broke badly" in text


def test_threads_are_recorded_and_not_part_of_a_runs_identity(tmp_path):
    args = ["run", "--dataset", "toy", "--targets", "red", "--no-progress"]
    assert main([*args, "--threads", "1", "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--threads", "2", "--out", str(tmp_path / "b")]) == 0
    (a,), (b,) = (list(_records(tmp_path / x).values()) for x in "ab")
    assert a["run_id"] == b["run_id"]  # deliberately: results may differ on CPU, ids do not
    assert (a["environment"]["cpu_threads"], b["environment"]["cpu_threads"]) == (1, 2)


def test_metrics_csv_and_tensorboard(tmp_path):
    import csv

    assert main(["run", "--dataset", "toy", "--targets", "red", "--no-progress", "--epochs", "2",
                 "--log", "tensorboard", "--out", str(tmp_path)]) == 0
    (metrics,) = list(tmp_path.rglob("metrics.csv"))
    rows = list(csv.DictReader(metrics.open()))
    assert [r["epoch"] for r in rows] == ["1", "2"] and "test_acc.red" in rows[0]
    assert list((metrics.parent / "tensorboard").glob("events.out.tfevents.*"))


def test_a_failed_run_does_not_stop_the_sweep(tmp_path, capsys):
    """The first point diverges (error.json, no record), the second still trains; the command
    ends with a one-line summary and exit 2; status shows both."""
    path = sweep_file(tmp_path, "base: {data.name: toy, protocol.targets: [red]}\n"
                      "axes: {train.lr: [1.0e+30, 0.01]}\n")
    out = tmp_path / "res"
    with pytest.warns(UserWarning, match="usually diverge"):
        assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the training loss was not finite" in err
    assert len(list(out.rglob("error.json"))) == 1 and len(_records(out)) == 1
    assert main(["status", str(out)]) == 0
    text = capsys.readouterr().out
    assert "1 done" in text and "1 failed" in text and "not finite" in text


def test_run_one_fails_naming_a_run_its_config_does_not_plan(tmp_path):
    """A run id that the re-made plan does not hold is a failure, and nothing is trained."""
    from dgbench import config as C
    from dgbench.plan.planner import make_plan, resolve
    from dgbench.run.launch import Options, run_one

    plan = make_plan(resolve(C.user_settings({}, overrides=["data.name=toy",
                                                            "protocol.targets=red"])))
    tree = C.to_dict(plan.runs[0].config)
    status = run_one(tree, "0123456789ab", str(tmp_path / "out"), Options(threads=1))
    assert status["status"] == "failed"
    assert "0123456789ab" in status["error"] and plan.runs[0].run_id in status["error"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind, params", [("uniform", [0.3, 0.9]), ("log_uniform", [0.01, 0.3]),
                                          ("log_uniform", [0.3, 0.9])])
def test_grid_values_keep_their_ends_exactly(kind, params):
    from dgbench.plan.sweep import grid_values

    values = grid_values(kind, params, 7)
    assert values[0] == params[0] and values[-1] == params[1]
    assert repr(values[-1]) == repr(params[1])  # a label says p=1.0, not p=0.9999999999991
    assert values == sorted(values) and len(values) == 7


def test_sweep_lines_show_the_swept_values_and_the_score(tmp_path, capsys):
    """Dry-run lines and progress lines name each run's swept values (an argument only where
    the run's augmenter takes it, numbers short); a finished run's line has its score."""
    from dgbench.plan.sweep import describe, short

    assert [short(v) for v in (0.1 + 0.2, 1.0, 1e-5, 0.0123456, 3, ["layer1", "layer2"])] == \
        ["0.3", "1.0", "1e-05", "0.0123", "3", "layer1,layer2"]
    assert describe({"aug.args.efdmix.alpha": 0.5, "aug.args.alpha": 0.3, "train.lr": 0.01}) == \
        "aug.args.efdmix.alpha=0.5 aug.args.alpha=0.3 lr=0.01"  # alike tails stay whole
    path = sweep_file(tmp_path)
    out = tmp_path / "res"
    assert main(["sweep", str(path), "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    labels = sorted(" ".join(line.split()[1:-2]) for line in lines)
    assert labels == sorted([
        "none seed=1 red insert=layer1", "none seed=1 red insert=layer1,layer2",
        *(f"efdmix seed=1 red insert={where} alpha={a}"
          for where in ("layer1", "layer1,layer2") for a in ("0.1", "0.3"))])
    assert all(line.endswith("  not started") for line in lines)

    path = sweep_file(tmp_path, "base: {data.name: toy, protocol.targets: [red], "
                      "aug.names: [efdmix]}\naxes: {aug.args.p: [0.25, 1.0]}\n")
    assert main(["sweep", str(path), "--out", str(out), "--threads", "1"]) == 0
    progress = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert len(progress) == 2
    for line, p in zip(progress, ("0.25", "1.0")):
        assert re.match(rf"\[\d/2\] toy-lodo/\w+ efdmix seed=1 red p={p}: done  source-val "
                        r"\d+\.\d  test red \d+\.\d$", line), line
