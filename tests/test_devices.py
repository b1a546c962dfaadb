"""Where runs compute: the device (and CUDA's speed settings) is resolved on the machine that
trains a run, not where it was planned; the CPU threads an explicit environment setting asks
for; what a record says about the machine (CPU model, torch's CPU kernels)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from dgbench import config as C
from dgbench.cli import main
from dgbench.plan.planner import make_plan, resolve
from dgbench.run import launch

DIGITS = {"data.name": "digits", "data.subsample": 24, "train.epochs": 1,
          "protocol.targets": ["photo"], "aug.names": ["efdmix"]}
ARGS = ["run", "--dataset", "digits", "--targets", "photo", "--aug", "efdmix", "--no-progress",
        "data.subsample=24", "train.epochs=1"]

# A machine with a GPU, faked: torch says CUDA is there (so ``device: auto`` resolves to it);
# the first real CUDA call then fails, after the run has said which device it resolved.
FAKE_CUDA = """
import os
mode = os.environ.get("DGBENCH_TEST_FAKE_CUDA")
if mode:
    import torch

    def _here():  # 'visible': where the engine handed one over (Ray sets CUDA_VISIBLE_DEVICES
        # in the worker when a task that asked for a GPU starts)
        return mode == "always" or bool(os.environ.get("CUDA_VISIBLE_DEVICES"))

    torch.cuda.is_available = _here
    torch.cuda.device_count = lambda: int(_here())
    torch.cuda.get_device_name = lambda *args, **kwargs: "Fake GPU"
"""


def _fake_cuda_here(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Fake GPU")


def _hide_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def _fake_cuda_in_workers(tmp_path: Path, monkeypatch, mode: str = "always") -> None:
    """Processes started from now on (pool workers, Ray workers, submitit jobs) see a GPU:
    always, or (``visible``) where they were handed one."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FAKE_CUDA)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setenv("DGBENCH_TEST_FAKE_CUDA", mode)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def _configs(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.rglob("config.json"))
            if p.parent.name != ".submitit"]


def test_the_plan_keeps_the_asked_device_and_todays_ids(monkeypatch):
    _hide_cuda(monkeypatch)
    plan = make_plan(resolve(DIGITS))
    (run,) = plan.runs
    assert run.config.device == "auto" and plan.device == "cpu"
    assert run.config.train.amp is True and run.config.train.channels_last is True  # as asked
    # the id this run had when the planning host wrote its device into the config
    assert run.run_id == "845ea8f2ad12"
    _fake_cuda_here(monkeypatch)
    again = make_plan(resolve(DIGITS))
    assert again.device == "cuda" and again.runs[0].run_id == run.run_id  # asked, not where


def test_identity_holds_what_was_asked_not_where():
    from dgbench.plan.runs import run_id

    base = C.Config()
    cpu, cuda, no_amp = C.Config(device="cpu"), C.Config(device="cuda"), C.Config()
    no_amp.train.amp = False
    assert run_id(cpu) == run_id(base) == run_id(cuda)  # where it runs is not what it is
    assert run_id(no_amp) != run_id(base)  # full precision on a GPU is another run


def test_a_cuda_run_planned_for_elsewhere_is_not_refused_here(monkeypatch):
    _hide_cuda(monkeypatch)
    cfg = resolve({**DIGITS, "device": "cuda"})
    with pytest.raises(Exception, match="CUDA is not available here"):
        make_plan(cfg)  # to train here
    plan = make_plan(cfg, here=False)  # Ray / SLURM: checked where it trains
    assert plan.device is None and plan.runs[0].config.device == "cuda"


def test_a_run_resolves_its_device_where_it_trains(tmp_path, monkeypatch):
    """Planned where CUDA is hidden, executed where a GPU is (faked): the run goes to CUDA."""
    _hide_cuda(monkeypatch)
    plan = make_plan(resolve(DIGITS))
    tree, run_id = C.to_dict(plan.runs[0].config), plan.runs[0].run_id
    _fake_cuda_here(monkeypatch)
    status = launch.run_one(tree, run_id, str(tmp_path), launch.Options(threads=1))
    assert status["status"] == "failed"  # the fake GPU cannot compute, but it was chosen
    (written,) = _configs(tmp_path)
    assert written["device"] == "cuda" and written["config"]["device"] == "auto"


def test_a_cpu_record_says_what_was_used(tmp_path, monkeypatch):
    _hide_cuda(monkeypatch)
    assert main([*ARGS, "--threads", "1", "--out", str(tmp_path)]) == 0
    (record,) = [json.loads(p.read_text()) for p in tmp_path.rglob("record.json")]
    assert record["config"]["device"] == "cpu"
    assert record["config"]["train"]["amp"] is False  # not used on the CPU
    assert record["config"]["train"]["channels_last"] is False
    assert record["device"]["type"] == "cpu" and record["device"]["amp"] is None
    env = record["environment"]
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert isinstance(env["cpu"], str) and env["cpu"]


@pytest.mark.parametrize("launcher", [["--jobs", "2"], ["--launcher", "ray"],
                                      ["--launcher", "slurm", "--slurm-local"]],
                         ids=["local-pool", "ray", "submitit-local"])
def test_launched_runs_resolve_the_device_on_the_worker(tmp_path, monkeypatch, launcher,
                                                         capsys):
    """The driver has no GPU; the workers have one (faked): every run picks CUDA there."""
    _hide_cuda(monkeypatch)
    _fake_cuda_in_workers(tmp_path, monkeypatch, "visible" if launcher[1] == "ray" else "always")
    if launcher[1] == "ray":
        ray = pytest.importorskip("ray")
        # a local cluster that says it has a GPU: the tasks must ask for it to be given it
        ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        code = main([*ARGS, "--aug", "efdmix,none", "--threads", "1", *launcher,
                     "--out", str(tmp_path / "res")])
    finally:
        if launcher[1] == "ray":
            ray.shutdown()
    assert code == 2  # the fake GPU cannot compute
    configs = _configs(tmp_path / "res")
    assert len(configs) == 2 and all(c["device"] == "cuda" for c in configs)
    assert all(c["config"]["device"] == "auto" for c in configs)
    assert "nvidia" in capsys.readouterr().err.lower()  # the failure says what it tried


def test_ray_asks_the_cluster_for_gpus_not_the_driver():
    assert launch.gpus_to_ask("auto", 4) == 1 and launch.gpus_to_ask("auto", 0) == 0
    assert launch.gpus_to_ask("cuda:1", 0) == 1 and launch.gpus_to_ask("cpu", 8) == 0


# -- threads ---------------------------------------------------------------------------------
def test_an_explicit_environment_thread_count_wins_over_the_default(monkeypatch):
    for name in launch.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(launch, "cores", lambda: 8)
    assert launch.threads_and_source(launch.Options(jobs=2)) == (4, "8 cores / 2 jobs")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert launch.threads_and_source(launch.Options(jobs=2)) == (1, "OMP_NUM_THREADS")
    assert launch.threads_per_run(launch.Options(threads=3)) == 3  # the flag wins over both
    monkeypatch.setenv("OMP_NUM_THREADS", "abc")  # OpenMP ignores it, and so do we
    monkeypatch.setenv("MKL_NUM_THREADS", "2,1")
    assert launch.threads_and_source(launch.Options()) == (2, "MKL_NUM_THREADS")


def test_a_run_under_omp_num_threads_1_uses_one_thread(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    try:
        assert main([*ARGS, "--out", str(tmp_path)]) == 0
    finally:
        torch.set_num_threads(before)
    assert "1 CPU thread(s) per run (OMP_NUM_THREADS)" in capsys.readouterr().out
    (record,) = [json.loads(p.read_text()) for p in tmp_path.rglob("record.json")]
    assert record["environment"]["cpu_threads"] == 1


def test_the_report_shows_the_cpu_and_its_kernels(tmp_path):
    pytest.importorskip("matplotlib")
    assert main([*ARGS, "--threads", "1", "--out", str(tmp_path)]) == 0
    page = tmp_path / "page.html"
    assert main(["report", str(tmp_path), "-o", str(page)]) == 0
    html = page.read_text()
    assert "cpu_capability" in html and torch.backends.cpu.get_cpu_capability() in html



# A worker process that dies while it trains (killed from outside, out of memory): torch's
# first optimizer step in it ends the process, as the kernel's OOM killer would.
DIE_IN_WORKER = """
import os
if os.environ.get("DGBENCH_TEST_DIE") and "--multiprocessing-fork" in " ".join(__import__("sys").argv):
    import torch

    def _die(*args, **kwargs):
        os._exit(9)

    torch.optim.SGD.step = _die
"""


def test_a_dead_pool_worker_fails_its_runs_instead_of_hanging(tmp_path, monkeypatch, capsys):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(DIE_IN_WORKER)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setenv("DGBENCH_TEST_DIE", "1")
    plan = make_plan(resolve({**DIGITS, "aug.names": ["none", "efdmix"]}))
    jobs = [(C.to_dict(r.config), r.run_id) for r in plan.runs]
    lines: list[str] = []
    statuses = launch.launch(jobs, tmp_path, launch.Options(jobs=2, threads=1), lines.append)
    assert [s["run_id"] for s in statuses] == [r for _, r in jobs]  # in the plan's order
    assert all(s["status"] == "failed" and "worker process" in s["error"] for s in statuses)
    assert any("a worker process died" in line and "resumes" in line for line in lines)


def test_pool_workers_end_with_a_killed_command(tmp_path):
    """A command killed outright (SIGKILL: no cleanup runs) takes its pool workers with it;
    they do not train on unseen (their claims go stale and a rerun resumes the runs)."""
    import signal
    import subprocess
    import sys
    import time

    from dgbench.store import claims

    args = [sys.executable, "-m", "dgbench", "run", "--dataset", "digits", "--targets", "photo",
            "--aug", "none,efdmix", "--no-progress", "--jobs", "2", "--threads", "1",
            "train.epochs=50", "--out", str(tmp_path)]
    driver = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        held: list[dict] = []
        while time.time() < deadline and len(held) < 2:
            held = [c for c in (claims.read(p.parent) for p in tmp_path.rglob(claims.CLAIM)) if c]
            time.sleep(0.5)
        assert len(held) == 2, "the two workers never started training"
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
        deadline = time.time() + 30
        while time.time() < deadline and any(claims._alive(int(c["pid"])) for c in held):
            time.sleep(0.5)
        assert not any(claims._alive(int(c["pid"])) for c in held)
    finally:
        driver.kill()
