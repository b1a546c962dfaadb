"""A run that dies at any line resumes from its last checkpoint and finishes with the record
an uninterrupted run writes, in every metric (CPU, one thread)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dgbench.cli import main

ARGS = ["run", "--dataset", "toy", "--targets", "red", "--aug", "efdmix", "--aug-args",
        "mix=crossdomain", "--epochs", "4", "--no-progress", "--threads", "1"]


def metrics(out: Path) -> dict:
    """Everything of the record that is a result (not a timing, nor where it ran)."""
    (path,) = list(out.rglob("record.json"))
    record = json.loads(path.read_text())
    history = [{k: v for k, v in h.items() if k != "seconds"} for h in record["history"]]
    return {"history": history, "final": record["final"], "sizes": record["sizes"],
            "run_id": record["run_id"]}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("reference")
    assert main([*ARGS, "--out", str(out)]) == 0
    return metrics(out)


@pytest.mark.parametrize("stop_after", [1, 3])
def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path, reference, stop_after, monkeypatch):
    import dgbench.run.loop as T

    real, calls = T.train_epoch, []

    def interrupted(*args, **kwargs):
        if len(calls) == stop_after:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(T, "train_epoch", interrupted)
    assert main([*ARGS, "--out", str(tmp_path)]) == 130
    (ckpt,) = list(tmp_path.rglob("checkpoint.pt"))
    assert len((ckpt.parent / "history.jsonl").read_text().splitlines()) == stop_after
    monkeypatch.setattr(T, "train_epoch", real)
    assert main([*ARGS, "--out", str(tmp_path)]) == 0
    assert metrics(tmp_path) == reference
    assert not list(tmp_path.rglob("checkpoint.pt"))  # removed once the run is finished
    (record,) = list(tmp_path.rglob("record.json"))
    assert json.loads(record.read_text())["timing"]["resumed_after_epoch"] == stop_after


TOY = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import conftest\n"
KILL_IN_WRITE = TOY + """
import os, signal
import dgbench.core.files as F  # the one atomic write, checkpoints' too
real, writes = F.os.replace, []
def replace(src, dst):
    writes.append(str(dst).endswith("checkpoint.pt"))
    if sum(writes) == int(sys.argv[1]) and writes[-1]:  # killed with the new checkpoint half in place
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
F.os.replace = replace
from dgbench.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _child(out: Path, script: str | None = None, arg: str = "0") -> subprocess.Popen:
    code = script or TOY + "from dgbench.cli import main; sys.exit(main(sys.argv[2:]))"
    return subprocess.Popen([sys.executable, "-c", code, arg, *ARGS, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.parametrize("point", ["epoch-1", "epoch-3", "checkpoint-write-2", "final"])
def test_sigkill_at_any_point_then_relaunch_gives_the_same_record(tmp_path, reference, point):
    if point.startswith("checkpoint-write"):
        child = _child(tmp_path, KILL_IN_WRITE, point.rsplit("-", 1)[1])
        child.wait(timeout=300)
        assert child.returncode == -signal.SIGKILL
    else:
        child = _child(tmp_path)
        lines = {"epoch-1": 1, "epoch-3": 3, "final": 4}[point]
        deadline = time.time() + 300
        while time.time() < deadline:
            histories = list(tmp_path.rglob("history.jsonl"))
            if histories and len(histories[0].read_text().splitlines()) >= lines:
                break
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL  # it was still running
    assert not list(tmp_path.rglob("record.json")) or point == "final"
    assert main([*ARGS, "--out", str(tmp_path)]) == 0
    assert metrics(tmp_path) == reference
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_checkpoint_keeps_one_way_to_remove_and_a_true_signature():
    """Checkpoint.save takes the counters it is given (a list of floats); the dead
    Checkpoint.remove is gone (a finished run's checkpoint goes with its folder's cleanup)."""
    import typing

    from dgbench.run.checkpoint import Checkpoint

    hints = typing.get_type_hints(Checkpoint.save)
    assert hints["counters"] == list[float] and hints["epoch"] is int
    assert not hasattr(Checkpoint, "remove")
