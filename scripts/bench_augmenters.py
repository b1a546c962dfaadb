"""Forward + backward time of every registered augmenter on ResNet feature shapes, with EFDMix
and MixStyle side by side with the reference formulations (the official code, as
docs/protocols.md describes it).

    python scripts/bench_augmenters.py [--batch 32] [--repeats 15] [--device cpu|cuda]
        [--dtype float32|bfloat16|float16] [--threads N] [--only efdmix,mixstyle]

Shapes: ResNet-18 layer1..3 and ResNet-50 layer1..2 at 224 px. Each augmenter fires on every
call (p=1). Ours and the reference are timed interleaved (A/B/A/B...) and the medians are
compared, since this machine is noisy. Before timing, EFDMix's output and input gradient are
checked equal to the reference's for the same lambda and pairing.
Features are made in ``--dtype`` (CUDA: bfloat16 is what autocast hands an augmenter).
Targets (issue 16): EFDMix at most 0.50x the reference's time at every shape on the CPU.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import time
from contextlib import contextmanager

import torch

import dgbench.augmenters.efdmix as efdmix_module
from dgbench.augmenters import AUGMENTERS

SHAPES = {  # (C, H, W) of a stage's output at 224 px
    "r18 layer1": (64, 56, 56), "r18 layer2": (128, 28, 28), "r18 layer3": (256, 14, 14),
    "r50 layer1": (256, 56, 56), "r50 layer2": (512, 28, 28),
}


def reference_efdmix(x: torch.Tensor, lam: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """EFDMix as the official code computes it: sort, argsort of the indices, gather."""
    b, c, h, w = x.shape
    flat = x.view(b, c, -1)
    values, index = torch.sort(flat, -1)
    inverse = index.argsort(-1)
    matched = values[perm].gather(-1, inverse)
    lam = lam.view(b, 1, 1)
    return (flat + (1 - lam) * (matched - flat.detach())).view(b, c, h, w)


def reference_mixstyle(x: torch.Tensor, lam: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """MixStyle as the official code computes it: mean and var in two passes, then normalise."""
    mu = x.mean(dim=(2, 3), keepdim=True)
    sig = (x.var(dim=(2, 3), keepdim=True) + 1e-6).sqrt()
    mu, sig = mu.detach(), sig.detach()
    x_normed = (x - mu) / sig
    lam = lam.view(-1, 1, 1, 1)
    return x_normed * (lam * sig + (1 - lam) * sig[perm]) + (lam * mu + (1 - lam) * mu[perm])


def drawn(batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """lambda ~ Beta(0.1, 0.1) and a random pairing, drawn as ours draws them."""
    conc = torch.full((batch,), 0.1, device=device)
    return torch.distributions.Beta(conc, conc).sample(), torch.randperm(batch, device=device)


@contextmanager
def fixed_draws(module, lam: torch.Tensor, perm: torch.Tensor):
    """Make an augmenter module use the given lambda and pairing."""
    saved = module.beta_weights, module.partner_indices
    module.beta_weights = lambda b, a, like: lam.view(-1, 1, 1, 1).to(like.device)
    module.partner_indices = lambda b, mix, device: perm.to(device)
    try:
        yield
    finally:
        module.beta_weights, module.partner_indices = saved


def check_efdmix(device: torch.device) -> float:
    """Largest difference of output and input gradient between ours and the reference."""
    x = torch.randn(8, 16, 12, 12, device=device)
    lam, perm = drawn(8, device)
    upstream = torch.randn_like(x)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    with fixed_draws(efdmix_module, lam, perm):
        out = AUGMENTERS.get("efdmix")(p=1.0).train()(a)
    (out * upstream).sum().backward()
    ref = reference_efdmix(b, lam, perm)
    (ref * upstream).sum().backward()
    return max(float((out - ref).abs().max().detach()), float((a.grad - b.grad).abs().max()))


def step_time(fn, x: torch.Tensor, upstream: torch.Tensor, device: torch.device) -> float:
    x.grad = None
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn(x).backward(upstream)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    parser.add_argument("--only", default=None, help="comma-separated augmenters (default: all)")
    ns = parser.parse_args()
    if ns.threads:
        torch.set_num_threads(ns.threads)
    device, dtype = torch.device(ns.device), getattr(torch, ns.dtype)
    diff = check_efdmix(device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"{torch.backends.cpu.get_cpu_capability()} CPU, {torch.get_num_threads()} threads"
    print(f"device {device} ({where}), {ns.dtype}, batch {ns.batch}, torch {torch.__version__}; "
          f"EFDMix vs reference: max |output or gradient difference| = {diff:.2e}")
    assert diff < 1e-5, "EFDMix differs from the reference formulation"
    references = {"efdmix": reference_efdmix, "mixstyle": reference_mixstyle}
    rows = []
    for shape_name, chw in SHAPES.items():
        x = torch.randn(ns.batch, *chw, device=device).relu_().to(dtype).requires_grad_()
        upstream = torch.randn_like(x)
        for name in (ns.only.split(",") if ns.only else AUGMENTERS.names()):
            kwargs = {"p": 1.0} if "p" in inspect.signature(AUGMENTERS.get(name)).parameters else {}
            aug = AUGMENTERS.get(name)(**kwargs).train()
            ours_fn = aug
            if name in references:
                ref = references[name]

                def ref_fn(t, ref=ref):  # the reference draws as ours does
                    lam, perm = drawn(t.shape[0], t.device)
                    return ref(t, lam, perm)
            ours, theirs = [], []
            for i in range(ns.repeats + 2):  # two warm-up rounds
                a = step_time(ours_fn, x, upstream, device)
                b = step_time(ref_fn, x, upstream, device) if name in references else None
                if i >= 2:
                    ours.append(a)
                    if b is not None:
                        theirs.append(b)
            o = statistics.median(ours)
            if theirs:
                r = statistics.median(theirs)
                rows.append((shape_name, name, f"{o:.2f}", f"{r:.2f}", f"{o / r:.2f}x"))
            else:
                rows.append((shape_name, name, f"{o:.2f}", "-", "-"))
    from tabulate import tabulate

    print(tabulate(rows, ["shape (224 px)", "augmenter", "ours ms", "reference ms", "ratio"],
                   tablefmt="simple", disable_numparse=True))
    efdmix = [float(r[4][:-1]) for r in rows if r[1] == "efdmix"]
    if efdmix:
        target = f"(target <= 0.50x on CPU: {'met' if max(efdmix) <= 0.5 else 'NOT met'})" \
            if device.type == "cpu" else "(no target on CUDA)"
        print(f"EFDMix worst ratio {max(efdmix):.2f}x {target}")


if __name__ == "__main__":
    main()
