"""The record of a finished run (:class:`dgbench.store.records.Record`), assembled from what
the loop trained and measured, with the environment it ran in."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

import torch
import torchvision

from dgbench import __version__
from dgbench import config as C
from dgbench.augmenters import AUGMENTERS
from dgbench.plan.runs import Run
from dgbench.run.deviations import for_run
from dgbench.store.records import SCHEMA, Record


def build_record(run: Run, task: Any, dataset: Any, sizes: dict[str, Any], model: Any,
                 placed: list[str], history: list[dict[str, Any]], final: dict[str, Any],
                 timing: dict[str, Any], device: dict[str, Any], cache: Any,
                 used: Any = None) -> Record:
    """The record of a finished run (not yet written): ``task`` the run's task object,
    ``model`` the trained network with augmenters at ``placed``, ``cache`` the decoded-image
    cache it read (or None), ``used`` the run's config as it trained (the device resolved
    on this machine: :meth:`dgbench.core.device.Env.effective`; default: as planned)."""
    split, cfg = run.split, run.config
    return Record(
        schema=SCHEMA, task=task.name, run_id=run.run_id, experiment=cfg.experiment or "",
        aug=run.aug, searched=sorted(getattr(AUGMENTERS.get(run.aug), "search", None) or {}),
        seed=run.seed,
        split={"name": split.name, "index": split.index, "sources": list(split.sources),
               "train": [list(p) for p in split.train], "val": [list(p) for p in split.val],
               "test": {k: list(v) for k, v in split.test.items()},
               "role": split.role, "of": split.of,
               # DomainBed's protocol: its test environments and the seed training used
               **({"test_envs": list(split.test_envs), "train_seed": run.train_seed}
                  if split.holdout else {})},
        sizes=sizes, config=C.to_dict(used if used is not None else cfg),
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


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what the platform says)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def environment() -> dict[str, Any]:
    """Where the run computed. CPU results are bit-identical only on the same SIMD kernels
    (``cpu_capability``: torch's choice among its AVX2 / AVX-512 / ... builds) and the same
    thread count, so both are kept with the CPU's model."""
    env = {
        "dgbench": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        env["cuda"] = torch.version.cuda
        env["gpu"] = torch.cuda.get_device_name()
    return env


