"""Benchmark: the whole pipeline on the embedded AWS against the pure imaging time of the same files.

Starts `imgproc up`'s runtime (moto server, the real template, the poller with --workers), uploads
N generated 12 MP JPEGs at once, and times until every rendition exists with its marker. In the
same run it times processor.imaging.render on the same bytes, serially, in this process. Prints
images/s for both and their ratio: what the S3/SQS round trips, polling and batching cost on top of
the pixels (with W workers on this machine's cores the pipeline can also be faster than serial).

    python benchmarks/bench_e2e.py [--images N] [--workers W]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import imagegen  # noqa: E402

from imgproc import local, poller  # noqa: E402
from processor.imaging import render  # noqa: E402
from processor.spec import Fit, RenditionSpec, Size  # noqa: E402

SPECS = [RenditionSpec(Size(w, h), Fit.CONTAIN, None, 85) for w, h in ((300, 300), (100, 100))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=24, help="12 MP JPEGs to upload (default 24)")
    parser.add_argument("--workers", type=int, default=2, help="poller worker processes (default 2)")
    parser.add_argument("--megapixels", type=int, choices=(1, 12, 24), default=12)
    args = parser.parse_args()
    width, height = {1: (1155, 866), 12: (4000, 3000), 24: (6000, 4000)}[args.megapixels]

    print(f"generating {args.images} {args.megapixels} MP JPEGs", file=sys.stderr)
    sources = [imagegen.photo_jpeg(width, height, seed=i) for i in range(args.images)]

    start = time.perf_counter()
    for data in sources:
        render(data, SPECS, max_pixels=100_000_000)
    imaging_seconds = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        options = poller.WorkerOptions(log_dir=Path(tmp) / "logs")
        runtime = local.LocalRuntime(
            port=0,
            workers=args.workers,
            stack_name="imgproc",
            region="us-east-1",
            overrides={},
            options=options,
        )
        with runtime:
            s3 = runtime.client("s3")
            source, dest = runtime.outputs["SourceBucketName"], runtime.outputs["DestinationBucketName"]
            start = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                etags = list(
                    pool.map(
                        lambda i: s3.put_object(Bucket=source, Key=f"original/b/{i}.jpg", Body=sources[i])[
                            "ETag"
                        ],
                        range(args.images),
                    )
                )
            expected = {
                f"resized/{size}/b/{i}.jpg" for i in range(args.images) for size in ("100x100", "300x300")
            }
            while True:
                pages = s3.get_paginator("list_objects_v2").paginate(Bucket=dest, Prefix="resized/")
                found = {o["Key"] for page in pages for o in page.get("Contents", [])}
                done = len(expected & found)
                print(f"\r{done}/{len(expected)} renditions", end="", file=sys.stderr, flush=True)
                if done == len(expected):
                    break
                time.sleep(0.1)
            pipeline_seconds = time.perf_counter() - start
            print(file=sys.stderr)
    assert len(etags) == args.images

    print(f"{args.images} x {args.megapixels} MP JPEG, renditions 300x300 + 100x100, {args.workers} workers")
    print(f"{'':28} {'seconds':>8} {'images/s':>9}")
    print(f"{'imaging only (serial)':28} {imaging_seconds:8.2f} {args.images / imaging_seconds:9.1f}")
    print(f"{'pipeline, upload to done':28} {pipeline_seconds:8.2f} {args.images / pipeline_seconds:9.1f}")
    print(f"ratio pipeline / imaging time: {pipeline_seconds / imaging_seconds:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
