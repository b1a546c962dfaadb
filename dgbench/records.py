"""Runs, their folders and their self-describing records.

A run lives in ``<out>/<experiment>/<run_id>/``, ``run_id`` being a hash of its canonical
resolved config. ``config.json`` is written when the run starts, ``history.jsonl`` gains a
line at the end of every epoch, ``record.json`` is written when the run ends, and the empty
``done`` marker last: a folder without ``done`` is an unfinished run and is trained again;
one with it is skipped unless forced.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from dgbench import __version__
from dgbench import config as C
from dgbench.errors import DataError

if TYPE_CHECKING:  # reading records needs no torch
    from dgbench.protocols import Split

RECORD = "record.json"
CONFIG = "config.json"
ERROR = "error.json"  # a run that failed on something the user can fix
DONE = "done"
#: 2 added ``task``, 3 ``searched``; older records are read as they are (the task is
#: inferred, the searched hyperparameters read from the installed augmenter)
SCHEMA = 3
SCHEMAS = (1, 2, 3)

@dataclass
class Run:
    """One planned run: a fully resolved single-run config (one augmenter with all its
    arguments, one seed, one split), which the record stores and the run id hashes."""

    config: C.Config
    split: Split
    run_id: str

    @property
    def aug(self) -> str:
        return self.config.aug.names[0]

    @property
    def seed(self) -> int:
        return self.config.seeds[0]

    def label(self) -> str:
        return f"{self.aug} seed={self.seed} {self.split.name}"


class Record(TypedDict):
    """``record.json``, schema 3. Every block is plain JSON."""

    schema: int  # 3 (2: the same without "searched"; 1: also without "task")
    task: str  # the registered task: classification | reid
    run_id: str  # hash of the canonical config (12 hex digits): the run's folder name
    experiment: str
    aug: str
    #: the augmenter's hyperparameters that a sweep's search varies (its ``search``): what
    #: ``--select oracle`` chooses among
    searched: list[str]
    seed: int
    split: dict[str, Any]  # name, index, sources, train / val (domain, split) parts, test,
    # role ("test", or "validation" of the split "of")
    sizes: dict[str, Any]  # images: train, val, test (per test set; reid: query / gallery)
    config: dict[str, Any]  # the resolved single-run config, dgbench.config.to_dict
    dataset: dict[str, Any]  # name, classes, titles, and the dataset's describe() facts
    model: dict[str, Any]  # parameters, augmenter_modules (where), shared_instance, weights
    # (the pretrained or local weights it started from: url, file, sha256; None: from scratch)
    history: list[dict[str, Any]]  # per epoch: epoch, lr, loss, train_acc, the task's, seconds
    final: dict[str, Any]  # the last-epoch model: val_acc, test, score, selection (+ reid)
    timing: dict[str, Any]  # wall_s, train_s, images_per_s, started, finished (UTC)
    data_cache: str | None  # the decoded-image cache folder, when used
    device: dict[str, Any]  # type, name, amp, channels_last, cudnn_benchmark
    environment: dict[str, Any]  # versions, git commit, platform, cpu_threads
    deviations: list[str]  # where this run departs from the reference code


def build_record(run: Run, task: Any, dataset: Any, sizes: dict[str, Any], model: Any,
                 placed: list[str], history: list[dict[str, Any]], final: dict[str, Any],
                 timing: dict[str, Any], device: dict[str, Any], cache: Any) -> Record:
    """The record of a finished run (not yet written): ``task`` the run's task object,
    ``model`` the trained network with augmenters at ``placed``, ``cache`` the decoded-image
    cache it read (or None)."""
    from dgbench.deviations import for_run
    from dgbench.registry import AUGMENTERS

    split, cfg = run.split, run.config
    return Record(
        schema=SCHEMA, task=task.name, run_id=run.run_id, experiment=cfg.experiment or "",
        aug=run.aug, searched=sorted(getattr(AUGMENTERS.get(run.aug), "search", None) or {}),
        seed=run.seed,
        split={"name": split.name, "index": split.index, "sources": list(split.sources),
               "train": [list(p) for p in split.train], "val": [list(p) for p in split.val],
               "test": {k: list(v) for k, v in split.test.items()},
               "role": split.role, "of": split.of},
        sizes=sizes, config=C.to_dict(cfg),
        dataset={"name": cfg.data.name, "classes": list(dataset.classes),
                 "titles": dict(dataset.titles), **dataset.describe()},
        model={"parameters": sum(p.numel() for p in model.parameters()),
               "augmenter_modules": placed, "shared_instance": cfg.aug.shared,
               "weights": getattr(model, "weights_source", None)},
        history=history, final=final, timing=timing,
        data_cache=str(cache.path) if cache is not None else None, device=device,
        environment=environment(),
        deviations=for_run(cfg, task, AUGMENTERS.get(run.aug), cache is not None),
    )


def canonical(cfg: C.Config) -> dict[str, Any]:
    """The config a run's id hashes: without the keys that are not part of its identity, and
    without keys added since the first record schema while they hold their default (so a
    new key leaves the ids of older runs, and of runs that do not use it, unchanged)."""
    tree = C.to_dict(cfg)
    for key, leaf in C.FIELDS.items():
        *parents, name = key.split(".")
        node = tree
        for p in parents:
            node = node[p]
        if key in C.NOT_IDENTITY or (leaf.rules.get("since") and node[name] == leaf.default):
            node.pop(name, None)
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where a folder should be
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(path.parent)) from None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        shareable(Path(tmp))
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, say: name the file that could not be written
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def shareable(path: Path) -> None:
    """The usual permissions (0644 / 0755 under the user's umask), not a temporary file's
    private ones, so that a lab's shared results folder can be read by colleagues."""
    mask = os.umask(0)
    os.umask(mask)
    path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def is_done(run_dir: Path) -> bool:
    return (run_dir / DONE).exists() and (run_dir / RECORD).exists()


def state(run_dir: Path) -> str:
    """``done`` (record and marker written), ``failed`` (``error.json``), ``unfinished``
    (started) or ``to run``."""
    if is_done(run_dir):
        return "done"
    if (run_dir / ERROR).exists():
        return "failed"
    return "unfinished" if run_dir.exists() else "to run"


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


@dataclass
class Folder:
    """What a results folder holds: finished records, the configs of started runs, the
    failed runs' ``error.json``, and the files that could not be read (path: why)."""

    records: list[dict[str, Any]]
    unfinished: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    skipped: list[str]


def _read_json(path: Path) -> tuple[Any, str | None]:
    """(the parsed file, None), or (None, why it cannot be read)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, exc.strerror or type(exc).__name__
    if not data.strip():
        return None, "empty"
    try:
        return json.loads(data.decode("utf-8")), None
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON, truncated? ({exc.msg} at line {exc.lineno})"


def _is_record(obj: Any) -> bool:
    return (isinstance(obj, dict) and obj.get("schema") in SCHEMAS
            and all(k in obj for k in ("run_id", "aug", "seed", "split", "config", "final")))


def scan_folder(folder: str | Path) -> Folder:
    """Every run under ``folder``. Damaged or foreign files are listed in ``skipped``, never
    read as results; raises :class:`DataError` when the folder does not exist or holds no
    run at all."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{folder} is not a folder; pass a results folder such as results/digits-lodo")
    out = Folder([], [], [], [])
    for cfg_path in sorted(root.rglob(CONFIG)):
        run_dir = cfg_path.parent
        if is_done(run_dir):
            record, why = _read_json(run_dir / RECORD)
            if why is None and not _is_record(record):
                why = "not a dgbench run record (another schema or program)"
            if why is None:
                out.records.append(record)
            else:
                out.skipped.append(f"{run_dir / RECORD}: {why}")
            continue
        error, _ = _read_json(run_dir / ERROR)
        config, why = _read_json(cfg_path)
        if isinstance(error, dict):
            out.failed.append(error)
        elif isinstance(config, dict):
            out.unfinished.append(config)
        else:
            out.skipped.append(f"{cfg_path}: {why or 'not a run config'}")
    if not (out.records or out.unfinished or out.failed):
        hint = f" ({len(out.skipped)} unreadable file(s))" if out.skipped else ""
        raise DataError(f"no run records under {folder}{hint}; run an experiment first, e.g. "
                        "'dgbench run --aug efdmix --protocol lodo'")
    return out
