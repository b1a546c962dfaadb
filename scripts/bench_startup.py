"""How long the results commands take to start and finish on a small results folder, and
whether they import torch: each command run in a fresh interpreter, ``--repeats`` times,
interleaved across the checkouts given (so that both are timed under the same load).

    python scripts/bench_startup.py                         # this checkout
    python scripts/bench_startup.py --tree ../old-checkout  # side by side with another one

A checkout is put first on ``PYTHONPATH``; its ``dgbench/`` must hold its ``augmenters/`` and
``datasets/`` (an older checkout: link them there), else the installed ones are found. The
folder read is ``tests/data/results/digits-lodo`` (48 records), the same for every checkout.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDER = REPO / "tests" / "data" / "results" / "digits-lodo"

# runs a dgbench command (or loads a folder), then says whether torch / torchvision came in
WRAPPER = """
import sys
argv = sys.argv[1:]
if argv[0] == "load":
    from dgbench.results import load  # both layouts
    load(argv[1])
else:
    from dgbench.cli import main
    main(argv)
print("IMPORTED", int("torch" in sys.modules), int("torchvision" in sys.modules), file=sys.stderr)
"""


def commands(tmp: Path) -> dict[str, list[str]]:
    f = str(FOLDER)
    return {"dgbench table": ["table", f],
            "dgbench compare": ["compare", f, "--bootstrap", "1000"],
            "dgbench plot": ["plot", f, "-o", str(tmp / "bars.png")],
            "dgbench report": ["report", f, "-o", str(tmp / "report.html")],
            "results.load": ["load", f],
            "dgbench --help": ["--help"]}


def once(tree: Path, argv: list[str]) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WRAPPER, *argv], env=env, capture_output=True,
                          text=True)
    took = time.perf_counter() - start
    line = [ln for ln in done.stderr.splitlines() if ln.startswith("IMPORTED")]
    flags = line[-1].split()[1:] if line else ["?", "?"]
    return took, f"torch {'yes' if flags[0] == '1' else 'no'}, torchvision " \
                 f"{'yes' if flags[1] == '1' else 'no'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", default=[], type=Path,
                        help="another checkout to time beside this one (repeatable)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    trees = [REPO, *args.tree]
    with tempfile.TemporaryDirectory() as tmp:
        cmds = commands(Path(tmp))
        times = {(t, c): [] for t in trees for c in cmds}
        imported = {}
        for _ in range(args.repeats):
            for name, argv in cmds.items():
                for tree in trees:  # interleaved: the same moment's load for each tree
                    took, what = once(tree, argv)
                    times[(tree, name)].append(took)
                    imported[(tree, name)] = what
    print(f"median wall time of {args.repeats} runs each, fresh interpreter, {FOLDER}")
    for name in cmds:
        for tree in trees:
            t = times[(tree, name)]
            print(f"  {name:<16} {str(tree):<40} {statistics.median(t):6.2f} s  "
                  f"(min {min(t):.2f})  {imported[(tree, name)]}")
        if len(trees) > 1:
            base = statistics.median(times[(trees[1], name)])
            print(f"  {'':<16} {'ratio this / the other':<40} "
                  f"{statistics.median(times[(trees[0], name)]) / base:6.2f}x")


if __name__ == "__main__":
    main()
