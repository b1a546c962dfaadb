"""Training-step speed, as ratios measured side by side (interleaved rounds, medians).

    python scripts/bench_train.py [--what loop,augmenters,amp] [--threads 1] [--rounds 6]
        [--steps 8] [--data-root ../shared/data/PACS] [--device cpu|cuda]

loop        dgbench's full step (the loader over the decoded-image cache, the batch
            augmentation, the augmenters, forward, backward, SGD, the loop's bookkeeping:
            ``dgbench.run.loop.train_epoch`` itself) against a bare loop over the same model
            (built by the same ``prepare``, same seed) on batches made beforehand, in memory.
            The pacs-lodo-cpu job (ResNet-18 width 16, 64 px, batch 32, crossdomain) with
            none and efdmix, target photo; the digits dataset at 64 px where PACS is absent.
            Also the loader alone per step, to say where the difference goes.
            Target (issue 16): dgbench >= 0.9x the bare loop's images/s on the CPU.
augmenters  ResNet-18 (full width) with none / mixstyle / efdmix after layer1-3, p=0.5, on a
            fixed batch: each step time as a ratio to none's. CPU: 64 px, batch 32, float32;
            CUDA: 224 px, batch 128, bf16 autocast, channels_last, with peak memory.
            Target: mixstyle <= 1.05x none.
amp         CPU only: ResNet-18 and ResNet-50 at 64 px, batch 16: float32 against bfloat16
            autocast + channels_last (``train.cpu_amp``), at one and two threads.
compile     torch.compile of the pacs-lodo-cpu model (with its augmenters) against eager, after
            the compile (its time is printed), and the loss difference after 3 steps.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from dgbench import config as C
from dgbench.models.backbones import build_backbone
from dgbench.models.insertion import insert_augmenters
from dgbench.plan.planner import make_plan, resolve
from dgbench.augmenters import AUGMENTERS
from dgbench.run.loop import prepare, train_epoch

PACS = Path(__file__).resolve().parents[2] / "shared" / "data" / "PACS"


class NoBar:
    def update(self, n: int = 1) -> None:
        pass


class Take:
    """The next ``n`` batches of an endless walk over ``batches`` (epoch after epoch)."""

    def __init__(self, batches: Any) -> None:
        self.walk = itertools.chain.from_iterable(iter(batches) for _ in itertools.count())
        self.n = 0

    def __call__(self, n: int) -> "Take":
        self.n = n
        return self

    def __iter__(self):
        return itertools.islice(self.walk, self.n)


def job(aug: str, root: str) -> tuple[Any, Any, str]:
    """The pacs-lodo-cpu job for ``aug`` on target photo (digits at 64 px without PACS)."""
    user = C.read_preset("pacs-lodo-cpu")
    if Path(root).is_dir():
        user.update({"data.root": root, "protocol.targets": ["photo"]})
        what = "PACS (target photo)"
    else:
        user.update({"data.name": "digits", "protocol.targets": ["photo"]})
        what = "digits at 64 px (no PACS found)"
    user.update({"aug.names": [aug], "train.epochs": 1})
    plan = make_plan(resolve(user))
    return plan.runs[0], plan.dataset, what


def bare_steps(model: Any, opt: Any, env: Any, batches: list) -> float:
    """Forward, loss, backward and SGD over ``batches`` and nothing else; the last loss."""
    model.train()
    for x, y in batches:
        with env.autocast():
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return float(loss.detach())


def loop(ns: argparse.Namespace) -> None:
    for aug in ("none", "efdmix"):
        run, dataset, what = job(aug, ns.data_root)
        ours, bare, feed = (prepare(run, dataset, progress=False) for _ in range(3))
        bs = run.config.data.batch_size
        walk, feed_walk = Take(ours.batches), Take(feed.batches)
        premade = list(itertools.islice(iter(bare.batches), ns.steps))
        for group in ours.optimizer.param_groups + bare.optimizer.param_groups:
            group["lr"] = run.config.train.lr
        times: dict[str, list[float]] = {"dgbench": [], "bare": [], "loader": []}
        for r in range(ns.rounds + 1):  # the first round warms up
            t = time.perf_counter()
            train_epoch(ours.model, walk(ns.steps), ours.optimizer, ours.scaler, ours.env, 0.0,
                        NoBar())
            t_ours = time.perf_counter() - t
            t = time.perf_counter()
            bare_steps(bare.model, bare.optimizer, bare.env, premade)
            t_bare = time.perf_counter() - t
            t = time.perf_counter()
            for _ in feed_walk(ns.steps):
                pass
            t_feed = time.perf_counter() - t
            if r:
                for k, v in zip(times, (t_ours, t_bare, t_feed)):
                    times[k].append(v / ns.steps)
        med = {k: statistics.median(v) for k, v in times.items()}
        ratio = med["bare"] / med["dgbench"]
        print(f"loop, {aug}: {what}, batch {bs}, {torch.get_num_threads()} thread(s), "
              f"{ns.rounds} rounds x {ns.steps} steps")
        print(f"  bare loop {1000 * med['bare']:7.1f} ms/step {bs / med['bare']:6.0f} img/s | "
              f"dgbench {1000 * med['dgbench']:7.1f} ms/step {bs / med['dgbench']:6.0f} img/s | "
              f"{ratio:.3f}x (target >= 0.90x: {'met' if ratio >= 0.9 else 'NOT met'})")
        rest = med["dgbench"] - med["bare"] - med["loader"]
        print(f"  where the difference goes: loader + batch augmentation "
              f"{1000 * med['loader']:.1f} ms/step, the rest (bookkeeping, noise) "
              f"{1000 * rest:+.1f} ms/step")


def model_with(name: str, p: float, device: torch.device, channels_last: bool,
               backbone: str = "resnet18") -> tuple:
    torch.manual_seed(0)  # the same initial weights for every augmenter
    model = build_backbone(backbone, 7)
    if name != "none":
        cls = AUGMENTERS.get(name)
        insert_augmenters(model, ["layer1", "layer2", "layer3"], lambda: cls(p=p), name)
    model.to(device).train()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    return model, opt


def steps(model, opt, x, y, n: int, device: torch.device, amp: bool) -> list[float]:
    times = []
    for _ in range(n):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return times


def augmenters(ns: argparse.Namespace) -> None:
    device = torch.device(ns.device)
    cuda = device.type == "cuda"
    size, batch = (224, 128) if cuda else (64, 32)
    x = torch.randn(batch, 3, size, size, device=device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 7, (batch,), device=device)
    names = ("none", "mixstyle", "efdmix")
    setups = {name: model_with(name, 0.5, device, cuda) for name in names}
    peak = {}
    for name in names:  # warm up (allocator, kernels); peak memory of a step
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        steps(*setups[name], x, y, 2, device, cuda)
        peak[name] = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None
    times: dict[str, list[float]] = {name: [] for name in names}
    torch.manual_seed(1)
    for _ in range(ns.rounds):
        for name in names:
            times[name] += steps(*setups[name], x, y, ns.steps, device, cuda)
    base = statistics.median(times["none"])
    where = torch.cuda.get_device_name(device) if cuda else f"{torch.get_num_threads()} thread(s)"
    print(f"augmenters: ResNet-18, after layer1-3 (p=0.5), {device} ({where}), {size} px, batch "
          f"{batch}{', bf16 autocast + channels_last' if cuda else ', float32'}; "
          f"{ns.rounds} interleaved rounds x {ns.steps} steps")
    for name in names:
        med = statistics.median(times[name])
        goal = {"mixstyle": 1.05}.get(name)
        verdict = f"  (target <= {goal:.2f}x: {'met' if med / base <= goal else 'NOT met'})" \
            if goal else ""
        memory = f"  peak {peak[name]:.2f} GiB" if peak[name] is not None else ""
        print(f"  {name:<9} {1000 * med:8.1f} ms/step {batch / med:7.0f} img/s "
              f"{med / base:.3f}x none{verdict}{memory}")


def amp(ns: argparse.Namespace) -> None:
    device = torch.device("cpu")
    print(f"amp: {torch.backends.cpu.get_cpu_capability()} CPU kernels; 64 px, batch 16, "
          f"none; float32 against bfloat16 autocast + channels_last; {ns.amp_rounds} rounds")
    x, y = torch.randn(16, 3, 64, 64), torch.randint(0, 7, (16,))
    xl = x.contiguous(memory_format=torch.channels_last)
    for backbone in ("resnet18", "resnet50"):
        fp32 = model_with("none", 0.5, device, False, backbone)
        bf16 = model_with("none", 0.5, device, True, backbone)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            steps(*fp32, x, y, 1, device, False), steps(*bf16, xl, y, 1, device, True)
            a, b = [], []
            for _ in range(ns.amp_rounds):
                a += steps(*fp32, x, y, 1, device, False)
                b += steps(*bf16, xl, y, 1, device, True)
            fa, fb = statistics.median(a), statistics.median(b)
            print(f"  {backbone} {threads} thread(s): float32 {1000 * fa:7.0f} ms/step, "
                  f"bf16 + channels_last {1000 * fb:7.0f} ms/step: {fa / fb:.2f}x the speed")
    torch.set_num_threads(ns.threads)


def compiled(ns: argparse.Namespace) -> None:
    for aug in ("none", "efdmix"):
        run, dataset, what = job(aug, ns.data_root)
        eager, other = (prepare(run, dataset, progress=False) for _ in range(2))
        batches = list(itertools.islice(iter(eager.batches), 3))
        fast = torch.compile(other.model)
        steppers = {"eager": (eager.model, eager.optimizer, eager.env),
                    "compiled": (fast, other.optimizer, other.env)}
        losses = {}
        for name, stepper in steppers.items():
            t = time.perf_counter()
            torch.manual_seed(5)  # the augmenters draw the same
            losses[name] = (bare_steps(*stepper, batches), time.perf_counter() - t)
        a, b = [], []
        for _ in range(ns.rounds):
            for out, stepper in ((a, steppers["eager"]), (b, steppers["compiled"])):
                t = time.perf_counter()
                bare_steps(*stepper, batches)
                out.append((time.perf_counter() - t) / len(batches))
        fa, fb = statistics.median(a), statistics.median(b)
        print(f"compile, {aug} ({what}): first 3 steps {losses['compiled'][1]:.0f} s compiled "
              f"vs {losses['eager'][1]:.1f} s eager; then {1000 * fa:.0f} ms/step eager, "
              f"{1000 * fb:.0f} ms/step compiled: {fa / fb:.2f}x the speed; loss after 3 "
              f"steps differs by {abs(losses['compiled'][0] - losses['eager'][0]):.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", default="loop,augmenters,amp",
                        help="comma-separated: loop, augmenters, amp, compile")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--amp-rounds", type=int, default=3)
    parser.add_argument("--data-root", default=str(PACS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ns = parser.parse_args()
    torch.set_num_threads(ns.threads)
    print(f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()} CPU kernels, "
          f"{ns.threads} thread(s)")
    sections = {"loop": loop, "augmenters": augmenters, "amp": amp, "compile": compiled}
    for name in ns.what.split(","):
        if name not in sections:
            parser.error(f"--what takes {', '.join(sections)}; got {name!r}")
        if name == "amp" and ns.device != "cpu":
            print("amp: CPU only (CUDA runs use autocast already: train.amp)")
            continue
        sections[name](ns)


if __name__ == "__main__":
    main()
