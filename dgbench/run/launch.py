"""Launchers: run a set of planned runs here, on a pool of local workers, on Ray, or on SLURM.

dgbench grows no scheduler of its own. A run is a picklable call, :func:`run_one` (one
resolved single-run config in, a status out); an engine schedules those calls. Every call
claims its run before training (:mod:`dgbench.store.claims`), so workers, Ray tasks and SLURM jobs
share one results folder safely, and resumes from the run's checkpoint if it was preempted.

- ``local``: in this process, or ``--jobs N`` worker processes, each with the CPU threads of
  its share of the cores and, when there are GPUs, one GPU (``CUDA_VISIBLE_DEVICES``).
- ``ray``: one Ray task per run (``num_cpus`` = its threads, ``num_gpus`` = 1 on GPUs), on the
  cluster at ``--ray-address`` or a local Ray started for the command (``pip install
  'dgbench[ray]'``).
- ``slurm``: one submitit job per run in a job array (``pip install 'dgbench[slurm]'``); on
  preemption submitit requeues the job, which resumes from the run's checkpoint.
"""

from __future__ import annotations

import ctypes
import importlib.util
import multiprocessing as mp
import os
import shutil
import signal
import socket
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from dgbench import config as C
from dgbench.core.errors import ConfigError, DGBenchError
from dgbench.plan.planner import make_plan
from dgbench.run.execute import execute
from dgbench.store.states import DONE, FAILED, RUNNING

#: a launch's status of a run: a run state (done, failed, running: held by another
#: process), or submitted (to SLURM, not waited for)
SUBMITTED = "submitted"


@dataclass
class Options:
    """How runs are launched (the launcher flags of ``dgbench run`` and ``dgbench sweep``)."""

    launcher: str = "local"
    jobs: int = 1
    threads: int | None = None  # per run; None: the cores given, divided by jobs
    keep_checkpoints: bool = False
    keep_weights: bool = True  # the trained network's weights (model.pt); --drop-weights
    tensorboard: bool = False
    ray_address: str | None = None
    slurm: dict[str, Any] = field(default_factory=dict)  # partition, time_min, gpus, ...
    wait: bool = False  # slurm: wait for the jobs (else submit and return)


def cores() -> int:
    """The CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


#: environment variables that set the CPU threads, in the order torch reads them
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def environment_threads() -> tuple[int, str] | None:
    """The thread count the environment sets explicitly (``OMP_NUM_THREADS=1``), and the
    variable that sets it; None when none does (a value OpenMP would not read, such as
    ``abc``, sets nothing; of a nested list ``4,2`` the outer level counts)."""
    for name in THREAD_VARIABLES:
        text = os.environ.get(name, "").split(",")[0].strip()
        if text.isdigit() and int(text) >= 1:
            return int(text), name
    return None


def threads_per_run(opts: Options) -> int:
    """torch's intra-op threads for each run: ``--threads``, else what the environment sets
    (``OMP_NUM_THREADS``: processes started side by side from several shells then share the
    cores as their user meant), else the cores given divided by the number of runs at once
    (torch's own default oversubscribes shared cores)."""
    return threads_and_source(opts)[0]


def threads_and_source(opts: Options) -> tuple[int, str]:
    """:func:`threads_per_run` and where the number comes from, for the user to see."""
    if opts.threads:
        return opts.threads, "--threads"
    env = environment_threads()
    if env is not None:
        return env
    jobs = max(1, opts.jobs)
    return max(1, cores() // jobs), (f"{cores()} cores / {jobs} jobs" if jobs > 1
                                     else f"the {cores()} cores given")


def check(opts: Options) -> None:
    """Refuse an impossible or unavailable launcher before anything is launched or written."""
    if opts.launcher not in LAUNCHERS:
        raise ConfigError(f"--launcher must be one of {', '.join(LAUNCHERS)}; got {opts.launcher!r}")
    if opts.jobs < 1 or (opts.threads is not None and opts.threads < 1):
        raise ConfigError("--jobs and --threads must be at least 1")
    most = max(64, 4 * cores())  # beyond it a thread pool fails to start (libgomp) or crawls
    if opts.launcher == "local" and opts.threads is not None and opts.threads > most:
        raise ConfigError(f"--threads {opts.threads} is far more than the {cores()} cores here "
                          f"(at most {most}); more torch threads than cores slow a run down")
    s = opts.slurm
    if s.get("time_min", 1) < 1 or s.get("gpus", 0) < 0 or s.get("array_parallelism", 1) < 1:
        raise ConfigError("--slurm-time and --slurm-array-parallelism must be at least 1, "
                          "--slurm-gpus at least 0")
    if opts.jobs > 1 and opts.launcher != "local":
        raise ConfigError("--jobs is for --launcher local (Ray and SLURM size their own pools)")
    if opts.launcher != "slurm" and (opts.wait or s.get("local") or s.get("partition")):
        raise ConfigError("--wait, --slurm-local and --slurm-partition are for --launcher slurm")
    extra = LAUNCHERS[opts.launcher].needs
    if extra and importlib.util.find_spec(extra) is None:
        raise ConfigError(f"--launcher {opts.launcher} needs {extra}: pip install "
                          f"'dgbench[{opts.launcher}]'")
    if opts.launcher == "slurm" and not s.get("local") and shutil.which("sbatch") is None:
        raise ConfigError("--launcher slurm finds no SLURM here (no sbatch on the PATH): launch "
                          "from a SLURM login node, or add --slurm-local to run the jobs on this "
                          "machine through submitit")
    if opts.ray_address is not None:
        if opts.launcher != "ray":
            raise ConfigError("--ray-address is for --launcher ray")
        _check_reachable(opts.ray_address)


def _check_reachable(address: str) -> None:
    """A ``host:port`` or ``ray://host:port`` Ray address that answers on TCP within a few
    seconds (Ray itself retries for a minute and then raises at length). ``auto`` and
    ``local`` are left to Ray."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray-address must be host:port, ray://host:port, auto or local; "
                          f"got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"cannot reach a Ray cluster at {address} ({exc.strerror or exc}); "
                          "check --ray-address, or leave it out for a local Ray") from None


# -- one run: the picklable call every engine schedules --------------------------------------
def run_one(tree: dict[str, Any], run_id: str, out: str, opts: Options,
            progress: bool = False) -> dict[str, Any]:
    """Plan the single-run config ``tree`` (a record's ``config``) and train its run into
    ``out`` unless it is finished or held elsewhere: ``{"run_id", "status", "error"}``, the
    status a run state (:mod:`dgbench.store.states`). A run id the re-made plan does not hold
    (the config plans another run here) is a failure that names both."""
    torch.set_num_threads(threads_per_run(opts))
    plan = make_plan(C.from_dict(tree))  # here: the device is resolved on this machine
    mine = [r for r in plan.runs if r.run_id == run_id]
    if not mine:
        planned = ", ".join(r.run_id for r in plan.runs)
        return {"run_id": run_id, "status": FAILED,
                "error": f"run {run_id} ({tree.get('experiment')}) is not what its config plans "
                         f"here (it plans {planned}); nothing was run"}
    plan.runs = mine
    done = execute(plan, out, progress=progress, log=lambda line: None,
                   keep_checkpoints=opts.keep_checkpoints, tensorboard=opts.tensorboard,
                   keep_weights=opts.keep_weights)
    if done.failed:
        return {"run_id": run_id, "status": FAILED, "error": str(done.failed[0][1])}
    return {"run_id": run_id, "status": RUNNING if done.elsewhere else DONE, "error": None}


class RunJob:
    """``run_one`` as a submitit callable: on preemption or timeout it asks to be requeued,
    and the requeued job resumes from the run's last checkpoint."""

    def __call__(self, *args: Any) -> dict[str, Any]:
        return run_one(*args)

    def checkpoint(self, *args: Any) -> Any:
        import submitit  # lazy: submitit, an optional extra (slurm)

        return submitit.helpers.DelayedSubmission(RunJob(), *args)


# -- the launchers ---------------------------------------------------------------------------
def launch(jobs: list[tuple[dict[str, Any], str]], out: str | Path, opts: Options,
           log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run ``jobs`` (single-run config, run id) with the chosen launcher; their statuses."""
    check(opts)
    if not jobs:
        return []
    return LAUNCHERS[opts.launcher].launch(jobs, str(out), opts, log)


def _local(jobs: list[tuple[dict, str]], out: str, opts: Options,
           log: Callable[[str], None]) -> list[dict[str, Any]]:
    if opts.jobs == 1:
        statuses = []
        for i, (tree, run_id) in enumerate(jobs, 1):
            status = run_one(tree, run_id, out, opts)
            log(f"[{i}/{len(jobs)}] {run_id}: {status['status']}")
            statuses.append(status)
        return statuses
    gpus = _gpus()
    workers = min(opts.jobs, len(jobs))  # a worker without a run would only idle
    statuses: dict[int, dict[str, Any]] = {}
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                               initializer=_worker_init, initargs=(gpus,))
    futures = {pool.submit(run_one, tree, run_id, out, opts): i
               for i, (tree, run_id) in enumerate(jobs)}
    try:
        for future in as_completed(futures):
            statuses[futures[future]] = status = future.result()
            log(f"[{len(statuses)}/{len(jobs)}] {status['run_id']}: {status['status']}")
    except BrokenProcessPool:  # a worker died (killed, out of memory): not a hang
        for future, i in futures.items():  # finished before the pool broke: kept
            if future.done() and not future.cancelled() and future.exception() is None:
                statuses.setdefault(i, future.result())
        lost = [run_id for i, (_, run_id) in enumerate(jobs) if i not in statuses]
        log(f"a worker process died (killed from outside, or out of memory) with "
            f"{len(lost)} of {len(jobs)} runs unfinished; the same command again resumes "
            "them from their checkpoints")
        for i, (_, run_id) in enumerate(jobs):
            statuses.setdefault(i, {"run_id": run_id, "status": FAILED, "error": (
                "not finished: a worker process of the pool died (killed from outside, or "
                "out of memory); the same command again resumes it from its checkpoint")})
    except BaseException:  # Ctrl-C: stop now, start nothing more, end the workers
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        raise
    pool.shutdown(wait=True)
    return [statuses[i] for i in range(len(jobs))]


def _worker_init(gpus: int) -> None:
    """One GPU per worker process (round-robin over the visible ones), set before torch uses
    CUDA in it (importing torch does not start CUDA); and, on Linux, a worker that dies with
    the command: a killed driver would otherwise leave its workers training on (the run's
    claim then goes stale and the next command resumes it)."""
    _die_with_parent()
    index = mp.current_process()._identity[0] - 1 if mp.current_process()._identity else 0
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(index % gpus)


def _die_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when the process that started it ends
    (``prctl(PR_SET_PDEATHSIG)``); nothing elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    parent = mp.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it ended before the request
        os._exit(1)


def _gpus() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def gpus_to_ask(device: str, cluster_gpus: float) -> int:
    """The GPUs a Ray task asks for to train a run asking for ``device``, on a cluster with
    ``cluster_gpus`` GPUs in all (what the cluster has, not the driver: a driver on a
    machine without a GPU still sends ``auto`` runs to the GPU nodes)."""
    if device.startswith("cuda"):
        return 1
    return 1 if device == "auto" and cluster_gpus >= 1 else 0


def _ray(jobs: list[tuple[dict, str]], out: str, opts: Options,
         log: Callable[[str], None]) -> list[dict[str, Any]]:
    import ray  # lazy: ray, an optional extra

    try:
        if opts.ray_address:
            ray.init(address=opts.ray_address, ignore_reinit_error=True, log_to_driver=False)
        else:
            ray.init(num_cpus=cores(), ignore_reinit_error=True, log_to_driver=False,
                     include_dashboard=False)
    except Exception as exc:  # ConnectionError, RuntimeError, ...: Ray says many things
        raise DGBenchError(f"cannot reach a Ray cluster at {opts.ray_address or 'a local Ray'}"
                           f" ({type(exc).__name__}: {exc}); check --ray-address") from None
    remote = ray.remote(num_cpus=threads_per_run(opts))(run_one)
    cluster_gpus = ray.cluster_resources().get("GPU", 0)
    refs = [remote.options(num_gpus=gpus_to_ask(tree.get("device", "auto"), cluster_gpus))
            .remote(tree, run_id, out, opts) for tree, run_id in jobs]
    statuses = []
    for i, status in enumerate(ray.get(refs), 1):
        log(f"[{i}/{len(jobs)}] {status['run_id']}: {status['status']}")
        statuses.append(status)
    return statuses


def _slurm(jobs: list[tuple[dict, str]], out: str, opts: Options,
           log: Callable[[str], None]) -> list[dict[str, Any]]:
    import submitit  # lazy: submitit, an optional extra (slurm)

    s = opts.slurm
    cluster = "local" if s.get("local") else None  # the local executor: tests, a workstation
    executor = submitit.AutoExecutor(folder=str(Path(out) / ".submitit"), cluster=cluster)
    params: dict[str, Any] = {"timeout_min": int(s.get("time_min", 60)),
                              "cpus_per_task": threads_per_run(opts)}
    if cluster is None:
        params.update(slurm_partition=s.get("partition"), gpus_per_node=int(s.get("gpus", 0)),
                      slurm_array_parallelism=int(s.get("array_parallelism", 256)))
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    args = [list(a) for a in zip(*[(tree, run_id, out, opts) for tree, run_id in jobs])]
    submitted = executor.map_array(RunJob(), *args)
    log(f"submitted {len(submitted)} job(s) ({submitted[0].job_id}...); logs under "
        f"{Path(out) / '.submitit'}; 'dgbench status {out}' follows them")
    if not (opts.wait or cluster == "local"):
        return [{"run_id": run_id, "status": SUBMITTED, "error": None} for _, run_id in jobs]
    statuses = [job.result() for job in submitted]
    for i, status in enumerate(statuses, 1):
        log(f"[{i}/{len(jobs)}] {status['run_id']}: {status['status']}")
    return statuses


@dataclass(frozen=True)
class Launcher:
    """One engine: its name (``--launcher``), what it does (for ``--help``), the package it
    needs (an extra of the same name), and the function that schedules the runs."""

    name: str
    help: str
    needs: str | None
    launch: Callable[..., list[dict[str, Any]]]


LAUNCHERS = {x.name: x for x in (
    Launcher("local", "this machine: here, or --jobs N worker processes", None, _local),
    Launcher("ray", "a Ray cluster (--ray-address) or a local Ray", "ray", _ray),
    Launcher("slurm", "SLURM through submitit, one job per run in a job array", "submitit",
             _slurm),
)}
