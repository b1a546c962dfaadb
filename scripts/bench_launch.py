"""Launchers side by side: 16 tiny runs, serial, ``--jobs 2`` and a local Ray, one thread each.

    python scripts/bench_launch.py [--runs 16] [--subsample 64] [--epochs 2] [--rounds 1]

Each mode is one ``dgbench sweep`` command (a fresh process, a fresh results folder) over the
same 16 runs of the embedded digits dataset (8 seeds x none/efdmix, one target). Printed: the
wall time of each mode and its speed-up over serial, and each mode's overhead per run: the
time its worker slots spent not training, ``(wall x slots - sum of the runs' own wall_s) /
runs`` (process start, imports, planning, claims, Ray's workers, the tables at the end). Modes
are interleaved when ``--rounds`` > 1 (this machine is noisy); medians are printed.
Targets (issue 14): ``--jobs 2`` at least 1.5x faster than serial; Ray's overhead under 2 s a run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = {"serial": ([], 1), "local --jobs 2": (["--jobs", "2"], 2),
         "ray (local)": (["--launcher", "ray"], 2)}


def sweep_text(runs: int, subsample: int, epochs: int) -> str:
    seeds = list(range(max(1, runs // 2)))
    return (f"experiment: bench-launch\nbase:\n  data.name: digits\n  data.subsample: {subsample}\n"
            f"  train.epochs: {epochs}\n  protocol.targets: [photo]\n"
            f"  aug.names: [none, efdmix]\n  seeds: {seeds}\n")


def one(mode: str, sweep: Path, out: Path) -> tuple[float, list[float]]:
    """Wall time of one sweep command and the runs' own wall times."""
    flags, _ = MODES[mode]
    cmd = [sys.executable, "-m", "dgbench", "sweep", str(sweep), "--out", str(out),
           "--threads", "1", *flags]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    runs = [json.loads(p.read_text())["timing"]["wall_s"] for p in out.rglob("record.json")]
    return wall, runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=16)
    ap.add_argument("--subsample", type=int, default=64, help="images per domain and split")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-launch-"))
    sweep = tmp / "sweep.yaml"
    sweep.write_text(sweep_text(args.runs, args.subsample, args.epochs))
    walls: dict[str, list[float]] = {m: [] for m in MODES}
    overheads: dict[str, list[float]] = {m: [] for m in MODES}
    n = 0
    for r in range(args.rounds):
        for mode in MODES:
            wall, runs = one(mode, sweep, tmp / f"{r}-{mode.split()[0]}")
            n = len(runs)
            walls[mode].append(wall)
            overheads[mode].append((wall * MODES[mode][1] - sum(runs)) / max(1, n))
            print(f"round {r + 1}: {mode:<16} {wall:7.1f} s for {n} runs", flush=True)
    base = statistics.median(walls["serial"])
    print(f"\n{n} runs (digits, {args.subsample} images per split, {args.epochs} epochs, "
          f"one torch thread per run), median of {args.rounds} round(s):")
    print(f"{'mode':<16} {'wall s':>8} {'vs serial':>10} {'overhead s/run':>15}")
    for mode in MODES:
        wall = statistics.median(walls[mode])
        print(f"{mode:<16} {wall:8.1f} {base / wall:9.2f}x {statistics.median(overheads[mode]):15.2f}")
    extra = statistics.median(overheads["ray (local)"]) - statistics.median(overheads["local --jobs 2"])
    print(f"Ray's cost over the local pool (the same two worker slots, the same imports in each "
          f"worker): {extra:.2f} s per run")


if __name__ == "__main__":
    main()
