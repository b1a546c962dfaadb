"""Eight processes started at once on one results folder, with overlapping runs: every run is
trained exactly once, no record is lost, duplicated or damaged, and the folder can be read
while it is written. Claims whose process died are taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from dgbench.cli import main
from dgbench.store.records import scan_folder

TOY = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import conftest\n"
CHILD = TOY + "from dgbench.cli import main; sys.exit(main(sys.argv[1:]))"
SEEDS = ["1,2,3", "2,3,4", "3,4,5", "4,5,1", "5,1,2", "1,3,5", "2,4", "1,2,3,4,5"]


def test_eight_processes_train_every_run_exactly_once(tmp_path, capsys):
    out = tmp_path / "res"
    procs = [subprocess.Popen(
        [sys.executable, "-c", CHILD, "run", "--dataset", "toy", "--aug", "none,efdmix",
         "--targets", "red,green", "--seeds", seeds, "--out", str(out), "--no-progress",
         "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seeds in SEEDS]
    reads = 0
    while any(p.poll() is None for p in procs):  # tables read the folder as it is written
        if (out / "toy-lodo").is_dir() and main(["table", str(out / "toy-lodo")]) == 0:
            reads += 1
        capsys.readouterr()
        time.sleep(0.2)
    logs = [p.communicate() for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in logs]
    trained = [line.split(": ", 1)[0].split("] ", 1)[1] for out_, _ in logs
               for line in out_.splitlines() if ": source-val" in line]
    assert len(trained) == len(set(trained)) == 2 * 2 * 5  # augs x targets x seeds: once each
    found = scan_folder(out / "toy-lodo")
    assert len(found.records) == 20 and not found.skipped and not found.unfinished
    assert len({r["run_id"] for r in found.records}) == 20
    assert not list(out.rglob("claim.json")) and not list(out.rglob("checkpoint.pt"))
    assert reads > 0


def test_claims_of_dead_or_silent_processes_are_taken_over(tmp_path):
    from dgbench.store import claims

    run_dir = tmp_path / "run"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs

    def held(host: str, pid: int, heartbeat: float) -> None:
        run_dir.mkdir(exist_ok=True)
        (run_dir / claims.CLAIM).write_text(json.dumps(
            {"host": host, "pid": pid, "started": 0, "heartbeat": heartbeat, "token": "x"}))

    held(socket.gethostname(), dead.pid, time.time())
    mine = claims.acquire(run_dir)  # its process is gone: taken over
    assert mine is not None and claims.read(run_dir)["pid"] == os.getpid()
    assert claims.acquire(run_dir) is None  # now held, by a live process
    mine.release()
    assert claims.read(run_dir) is None
    held("elsewhere", os.getpid(), time.time())
    assert claims.acquire(run_dir) is None  # another host, fresh heartbeat: not ours
    held("elsewhere", os.getpid(), time.time() - 2 * claims.TIMEOUT_S)
    assert claims.acquire(run_dir) is not None  # silent for too long: taken over
