"""Claims: which process is training a run, so that many processes (local workers, Ray tasks,
SLURM jobs) can share one results folder and train every run exactly once.

A run is claimed by creating ``claim.json`` in its folder with ``O_CREAT | O_EXCL`` (atomic on
a local or NFS-v3+ file system): host, pid, start time, and a heartbeat that a background
thread renews. Another process finds the claim and skips the run, unless the claim is stale:
its process is gone (same host) or its heartbeat is older than the timeout. A stale claim is
taken over by renaming it away (only one process can), and the run resumes from its checkpoint.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLAIM = "claim.json"
HEARTBEAT_S = 20.0  # how often a running process renews its claim
TIMEOUT_S = 600.0  # a claim whose heartbeat is older than this is stale (another host's)


def _now() -> float:
    return time.time()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's process
        return True
    return True


def read(run_dir: Path) -> dict[str, Any] | None:
    """The claim of ``run_dir`` (None: unclaimed, or being written or taken over)."""
    try:
        return json.loads((run_dir / CLAIM).read_text())
    except (OSError, ValueError):
        return None


def stale(info: dict[str, Any], timeout_s: float = TIMEOUT_S, now: float | None = None) -> bool:
    """Whether a claim's process is gone: the same host without its pid, or no heartbeat
    for ``timeout_s`` seconds."""
    now = _now() if now is None else now
    if info.get("host") == socket.gethostname() and not _alive(int(info.get("pid", -1))):
        return True
    return now - float(info.get("heartbeat", 0)) > timeout_s


@dataclass
class Claim:
    """A run this process holds; ``beat`` renews it (with progress), ``release`` ends it."""

    run_dir: Path
    info: dict[str, Any]
    _thread: threading.Thread | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def beat(self, **progress: Any) -> None:
        self.info.update(progress, heartbeat=_now())
        tmp = self.run_dir / f".{CLAIM}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(self.info))
        os.replace(tmp, self.run_dir / CLAIM)

    def start_heartbeat(self, every_s: float = HEARTBEAT_S) -> None:
        def renew() -> None:
            while not self._stop.wait(every_s):
                try:
                    self.beat()
                except OSError:
                    pass  # the next beat may succeed; a stale claim is taken over at worst

        self._thread = threading.Thread(target=renew, daemon=True, name="dgbench-heartbeat")
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if (read(self.run_dir) or {}).get("token") == self.info["token"]:
            (self.run_dir / CLAIM).unlink(missing_ok=True)


def acquire(run_dir: Path, timeout_s: float = TIMEOUT_S) -> Claim | None:
    """Claim ``run_dir`` for this process, taking over a stale claim; None when another
    live process holds it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CLAIM
    for _ in range(10):
        info = {"host": socket.gethostname(), "pid": os.getpid(), "started": _now(),
                "heartbeat": _now(), "token": f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"}
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            held = read(run_dir)
            if held is None:  # being written right now, or just taken over: look again
                time.sleep(0.05)
                held = read(run_dir)
                if held is None and path.exists() and _now() - path.stat().st_mtime < timeout_s:
                    return None
            if held is not None and not stale(held, timeout_s):
                return None
            try:  # take the stale claim over: only one process's rename succeeds
                os.rename(path, run_dir / f".{CLAIM}.stale.{os.getpid()}")
                (run_dir / f".{CLAIM}.stale.{os.getpid()}").unlink(missing_ok=True)
            except FileNotFoundError:
                pass  # another process took it first; try to create ours again
            continue
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(info))
        return Claim(run_dir, info)
    return None
