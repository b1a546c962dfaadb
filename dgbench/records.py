"""Run folders and self-describing run records.

A run lives in ``<out>/<experiment>/<run_id>/``, ``run_id`` being a hash of its canonical
resolved config. ``config.json`` is written when the run starts, ``record.json`` when it
ends, and the empty ``done`` marker last: a folder without ``done`` is an unfinished run and
is trained again; one with it is skipped unless forced.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from dgbench import __version__
from dgbench import config as C
from dgbench.errors import DataError

RECORD = "record.json"
CONFIG = "config.json"
DONE = "done"
SCHEMA = 1

# Keys that say where things are, not what is computed: they do not change a run's identity.
_NOT_HASHED = ("experiment", "data.root")


def canonical(cfg: C.Config) -> dict[str, Any]:
    tree = C.to_dict(cfg)
    for key in _NOT_HASHED:
        *parents, leaf = key.split(".")
        node = tree
        for p in parents:
            node = node[p]
        node.pop(leaf, None)
    return tree


def run_id(cfg: C.Config, data_version: Any = None) -> str:
    """Hash of the canonical config (and the dataset's version: a rebuilt dataset reruns)."""
    tree = canonical(cfg)
    if data_version is not None:
        tree["data_version"] = data_version
    blob = json.dumps(tree, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def is_done(run_dir: Path) -> bool:
    return (run_dir / DONE).exists() and (run_dir / RECORD).exists()


def git_commit() -> str | None:
    """The commit of the dgbench checkout this code runs from (None when not a checkout)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict[str, Any]:
    import torch
    import torchvision

    env = {
        "dgbench": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        env["cuda"] = torch.version.cuda
        env["gpu"] = torch.cuda.get_device_name()
    return env


def load_records(folder: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """All finished records under ``folder``, and the configs of unfinished runs.

    Raises :class:`DataError` when the folder does not exist or holds no run at all.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{folder} is not a folder; pass a results folder such as results/digits-lodo")
    records, unfinished = [], []
    for cfg_path in sorted(root.rglob(CONFIG)):
        run_dir = cfg_path.parent
        if is_done(run_dir):
            try:
                records.append(json.loads((run_dir / RECORD).read_text()))
            except json.JSONDecodeError as exc:
                raise DataError(f"{run_dir / RECORD} is not valid JSON ({exc}); delete that run folder") from None
        else:
            try:
                unfinished.append(json.loads(cfg_path.read_text()))
            except json.JSONDecodeError:
                unfinished.append({"run_id": run_dir.name})
    if not records and not unfinished:
        raise DataError(
            f"no run records under {folder}; run an experiment first, e.g. "
            "'dgbench run --aug efdmix --protocol lodo'"
        )
    return records, unfinished
