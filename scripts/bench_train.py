"""Training-step time of ResNet-18 with none / mixstyle / efdmix after layer1-3, as ratios to none.

    python scripts/bench_train.py [--rounds 12] [--steps 5] [--p 0.5] [--device cpu|cuda]

CPU: 64 px, batch 32, float32. CUDA: 224 px, batch 128, bfloat16 autocast, channels_last.
A step is forward, cross-entropy, backward and an SGD update, on a fixed random batch. The
augmenters are timed interleaved (none, mixstyle, efdmix, none, ...) in rounds of ``--steps``
steps; each augmenter's median step time is compared with none's. ``--p`` is the augmenters'
gate probability (0.5: as trained; 1.0: every step augments, the worst case).
Targets (issue 6): efdmix <= 1.15x on CPU and <= 1.10x on CUDA; mixstyle <= 1.05x.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from dgbench.models import build_backbone, insert_augmenters
from dgbench.registry import AUGMENTERS

AUGS = ("none", "mixstyle", "efdmix")


def make(name: str, p: float, device: torch.device, channels_last: bool) -> tuple:
    torch.manual_seed(0)  # the same initial weights for every augmenter
    model = build_backbone("resnet18", 7)
    cls = AUGMENTERS.get(name)
    insert_augmenters(model, ["layer1", "layer2", "layer3"],
                      (lambda: cls(p=p)) if name != "none" else cls, name)
    model.to(device).train()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    return model, opt


def run_steps(model, opt, x, y, steps: int, device: torch.device, amp: bool) -> list[float]:
    times = []
    for _ in range(steps):
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--p", type=float, default=0.5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ns = parser.parse_args()
    device = torch.device(ns.device)
    cuda = device.type == "cuda"
    size, batch = (224, 128) if cuda else (64, 32)
    x = torch.randn(batch, 3, size, size, device=device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 7, (batch,), device=device)
    setups = {name: make(name, ns.p, device, cuda) for name in AUGS}
    for name in AUGS:  # warm up (allocator, kernels)
        run_steps(*setups[name], x, y, 2, device, cuda)
    times: dict[str, list[float]] = {name: [] for name in AUGS}
    torch.manual_seed(1)
    for _ in range(ns.rounds):
        for name in AUGS:
            times[name] += run_steps(*setups[name], x, y, ns.steps, device, cuda)
    base = statistics.median(times["none"])
    print(f"ResNet-18, augmenters after layer1-3 (p={ns.p}), {device} "
          f"({torch.cuda.get_device_name(device) if cuda else f'{torch.get_num_threads()} threads'}), "
          f"{size} px, batch {batch}{', bf16 autocast + channels_last' if cuda else ', float32'}; "
          f"{ns.rounds} interleaved rounds x {ns.steps} steps")
    targets = {"mixstyle": 1.05, "efdmix": 1.10 if cuda else 1.15}
    for name in AUGS:
        med = statistics.median(times[name])
        ratio = med / base
        verdict = ""
        if name in targets:
            verdict = f"  (target <= {targets[name]:.2f}x: {'met' if ratio <= targets[name] else 'NOT met'})"
        print(f"  {name:<9} {1000 * med:8.1f} ms/step  {batch / med:7.0f} img/s  "
              f"{ratio:.3f}x none{verdict}")


if __name__ == "__main__":
    main()
