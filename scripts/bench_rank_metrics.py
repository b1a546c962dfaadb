"""Time dgbench.tasks.evaluate.rank_metrics on a Market-1501-sized problem (3,368 x 15,913).

    python scripts/bench_rank_metrics.py [--queries 3368 --gallery 15913 --chunk 256]

Random features stand in for a model's (751 identities, 6 cameras, 0 = distractor); prints
the wall time and the peak memory NumPy allocated while ranking (tracemalloc).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from dgbench.tasks.evaluate import rank_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=3368)
    parser.add_argument("--gallery", type=int, default=15913)
    parser.add_argument("--chunk", type=int, default=256)
    ns = parser.parse_args()
    rng = np.random.default_rng(0)
    q_pids, g_pids = rng.integers(1, 751, ns.queries), rng.integers(0, 751, ns.gallery)
    q_cams, g_cams = rng.integers(0, 6, ns.queries), rng.integers(0, 6, ns.gallery)
    dist = rng.random((ns.queries, ns.gallery), dtype=np.float32)
    tracemalloc.start()
    t = time.perf_counter()
    m = rank_metrics(dist, q_pids, g_pids, q_cams, g_cams, chunk=ns.chunk)
    seconds = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"{ns.queries} x {ns.gallery}, chunk {ns.chunk}: {seconds:.2f} s, peak "
          f"{peak / 2**30:.2f} GiB beyond the distance matrix ({dist.nbytes / 2**30:.2f} GiB); "
          f"mAP {m['mAP']:.4f}, rank1 {m['rank1']:.4f}, valid queries {m['num_valid']}")


if __name__ == "__main__":
    main()
