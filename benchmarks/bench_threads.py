"""Benchmark: does rendering a batch on threads scale? (Pillow releases the GIL to decode and resize.)

Renders the same N generated 12 MP JPEGs (default renditions) serially and on a thread pool of
2 (and --threads) workers, as processor.batch does with a batch's records, and prints the
throughput of each and its ratio to the serial run measured in the same process.

    python benchmarks/bench_threads.py [--images N] [--threads T ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import imagegen  # noqa: E402

from processor.imaging import render  # noqa: E402
from processor.spec import Fit, RenditionSpec, Size  # noqa: E402

SPECS = [RenditionSpec(Size(w, h), Fit.CONTAIN, None, 85) for w, h in ((300, 300), (100, 100))]


def run(sources: list[bytes], threads: int) -> float:
    """Seconds to render every source on ``threads`` workers (1: plain loop)."""
    start = time.perf_counter()
    if threads == 1:
        for data in sources:
            render(data, SPECS, max_pixels=100_000_000)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(lambda d: render(d, SPECS, max_pixels=100_000_000), sources))
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=16, help="12 MP JPEGs per run (default 16)")
    parser.add_argument("--threads", type=int, nargs="*", default=[2, 4], help="pool sizes (default 2 4)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per setting; the best counts")
    args = parser.parse_args()
    print(f"generating {args.images} 12 MP JPEGs", file=sys.stderr)
    sources = [imagegen.photo_jpeg(4000, 3000, seed=i) for i in range(args.images)]
    run(sources[:2], 1)  # warm-up
    print(f"{os.cpu_count()} CPUs; {args.images} images of 12 MP; best of {args.repeat}")
    print(f"{'threads':>7}  {'seconds':>8}  {'images/s':>8}  {'vs serial':>9}")
    serial = None
    for threads in [1, *args.threads]:
        best = min(run(sources, threads) for _ in range(args.repeat))
        serial = serial or best
        print(f"{threads:>7}  {best:8.2f}  {args.images / best:8.1f}  {serial / best:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
