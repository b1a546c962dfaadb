"""A run's record (``record.json``): its schema, and reading a results folder's runs.

A record is self-describing plain JSON: the full resolved config, the split with domain names,
sizes, the per-epoch history, the final model's results, timings, device, versions and the
deviations from the reference code that apply. Reading records needs no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from dgbench.core.errors import DataError
from dgbench.core.files import read_json
from dgbench.store.layout import CONFIG, ERROR, RECORD, is_done

#: 2 added ``task``, 3 ``searched``; older records are read as they are (the task is
#: inferred, the searched hyperparameters read from the installed augmenter)
SCHEMA = 3
SCHEMAS = (1, 2, 3)


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


@dataclass
class Folder:
    """What a results folder holds: finished records, the configs of started runs, the
    failed runs' ``error.json``, and the files that could not be read (path: why)."""

    records: list[dict[str, Any]]
    unfinished: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    skipped: list[str]


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
            record, why = read_json(run_dir / RECORD)
            if why is None and not _is_record(record):
                why = "not a dgbench run record (another schema or program)"
            if why is None:
                out.records.append(record)
            else:
                out.skipped.append(f"{run_dir / RECORD}: {why}")
            continue
        error, _ = read_json(run_dir / ERROR)
        config, why = read_json(cfg_path)
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
