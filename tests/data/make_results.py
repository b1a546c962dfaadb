"""Make the stored results folder of ``tests/test_table_outputs.py`` and its expected outputs.

    python tests/data/make_results.py records   # train the tiny runs into tests/data/results
    python tests/data/make_results.py expected  # write tests/data/table_outputs.json

The records are real dgbench runs, kept small (digits and the generated ReID stand-in, a few
images, one or two epochs, one thread), chosen so that every part of a table shows: per-epoch
histories (val, test-best), leave-one-domain-out validation runs (loo), two settings of a
searched hyperparameter (oracle), single-source runs (--per-target), re-identification in both
directions (a multi-split target, then a multi-split source), a failed run and an unfinished
one. ``expected`` records what ``dgbench table`` and ``dgbench compare`` print for each of
them; it was run once, before the reshaping of issue 21, so that the test holds every later
change to that output. Rerun it only to move the expected output on purpose, and say why.
Rerun for issue 22: a failed run's label said once, the subsample flagged in captions,
LODO's --per-target columns named by their target, the significance legend's arrows (better /
worse) and the CSV's ``direction`` column; no number moved.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
EXPECTED = HERE / "table_outputs.json"
ROOT = "<results>"  # the folder's path in the expected output

FORMATS = ("markdown", "latex", "csv", "domainbed")
ERRORS = ("std", "sd", "se", "ci95")
RULES = ("last", "val", "loo", "oracle", "test-best")
EXPERIMENTS = ("digits-lodo", "digits-single", "market1501-to-grid", "grid-to-market1501")


def commands() -> list[list[str]]:
    """Every command whose output is kept: each table format x estimator x rule of each
    experiment, the table's other options, and the paired comparisons."""
    out = []
    for exp, fmt, err, rule in itertools.product(EXPERIMENTS, FORMATS, ERRORS, RULES):
        out.append(["table", exp, "--format", fmt, "--error", err, "--select", rule])
    for exp in EXPERIMENTS:
        for fmt in ("markdown", "latex"):
            out.append(["table", exp, "--format", fmt, "--compare-paper"])
        for fmt, test in itertools.product(FORMATS, ("wilcoxon", "sign")):
            out.append(["table", exp, "--format", fmt, "--mark-significant", "--test", test])
        out.append(["table", exp, "--mark-significant", "--alpha", "0.5", "--select", "val"])
        out.append(["table", exp, "--no-bold"])
        out.append(["table", exp, "--per-target"])
        out.append(["table", exp, "--per-target", "--format", "csv"])
        for fmt, rule in itertools.product(("markdown", "csv", "latex"), ("last", "oracle")):
            out.append(["compare", exp, "--format", fmt, "--select", rule, "--bootstrap", "200"])
        out.append(["compare", exp, "--pooled-only", "--per-target", "--bootstrap", "100"])
        out.append(["compare", exp, "--baseline", "mixstyle", "--bootstrap", "50"])
    out.append(["table", "."])  # the whole root: each experiment's table under its name
    return out


def run_cli(argv: list[str]) -> dict[str, object]:
    """``dgbench ARGV`` in this process: exit status, standard output and error."""
    from dgbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return {"rc": rc, "out": out.getvalue(), "err": err.getvalue()}


def resolved(argv: list[str], root: Path) -> list[str]:
    """``argv`` with its folder (the word after the command) under ``root``."""
    return [argv[0], str(root / argv[1]), *argv[2:]]


def expected() -> None:
    found = {}
    for argv in commands():
        got = run_cli(resolved(argv, RESULTS))
        found[" ".join(argv)] = {k: v.replace(str(RESULTS), ROOT) if isinstance(v, str) else v
                                 for k, v in got.items()}
    EXPECTED.write_text(json.dumps(found, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(found)} outputs to {EXPECTED}")


def _run(out: Path, *args: str) -> None:
    got = run_cli(["run", *args, "--threads", "1", "--no-progress", "--out", str(out)])
    print(got["err"], end="")
    if got["rc"] != 0:
        raise SystemExit(f"dgbench run {' '.join(args)} failed")


def records() -> None:
    from dgbench.data.synthreid import generate

    work = Path(tempfile.mkdtemp(prefix="dgbench-testdata-"))
    out = work / "results"
    tiny = ["data.subsample=32", "train.epochs=2"]
    _run(out, "--aug", "none,efdmix", "--targets", "plain,photo", "--seeds", "1,2",
         "protocol.loo_validation=true", *tiny)
    _run(out, "--aug", "efdmix", "--aug-args", "alpha=0.3", "--targets", "plain,photo",
         "--seeds", "1,2", "protocol.loo_validation=true", *tiny)
    _run(out, "--aug", "none,mixstyle", "--protocol", "single", "--seeds", "1,2",
         "data.subsample=32", "train.epochs=1")
    # a run that diverges (failed, error.json) and one that was killed (config.json only)
    got = run_cli(["run", "--aug", "mixstyle", "--targets", "plain", "--seeds", "1",
                   "train.lr=1e6", "protocol.loo_validation=true", *tiny, "--threads", "1",
                   "--no-progress", "--out", str(out)])
    assert got["rc"] == 2, got
    _run(out, "--aug", "none", "--targets", "photo", "--seeds", "3", *tiny)
    killed = [p.parent for p in (out / "digits-lodo").glob("*/config.json")
              if json.loads(p.read_text())["config"]["seeds"] == [3]]
    for run_dir in killed:
        for name in ("done", "record.json"):
            (run_dir / name).unlink()
    generate(work / "reid")
    reid = ["--preset", "reid-synth-cpu", "--data-root", str(work / "reid"), "--aug",
            "none,efdmix", "--seeds", "1,2", "train.epochs=1", "--experiment",
            "market1501-to-grid"]
    _run(out, *reid)
    _run(out, *reid[:-1], "grid-to-market1501", "--source", "grid", "--target", "market1501",
         "--splits", "0,1")
    for path in [*out.rglob("checkpoint.pt"), *out.rglob("metrics.csv")]:
        path.unlink()  # what no table reads; the unfinished run keeps its history
    for path in out.rglob("done"):
        (path.parent / "history.jsonl").unlink()
    shutil.rmtree(RESULTS, ignore_errors=True)
    shutil.copytree(out, RESULTS)
    shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {sum(1 for _ in RESULTS.rglob('record.json'))} records under {RESULTS}")


if __name__ == "__main__":
    {"records": records, "expected": expected}[sys.argv[1]]()
