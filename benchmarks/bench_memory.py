"""Benchmark: the handler's peak memory per input, to choose the function's ``MemorySize``.

Each measurement is a fresh interpreter (its peak resident set, ``VmHWM``, is for its whole life): it
starts in-process moto, uploads the sources, notes its resident set, runs
``processor.handler.lambda_handler`` on one batch and reports the peak's growth over that baseline:
what the record(s) cost. The batch is one record, or ``CONCURRENCY`` (4, the function's default)
records of the same input at once, the worst a batch of large images can do. A separate interpreter
gives what the function holds before its first record (the handler imported, ``runtime()`` built):
in Lambda, the peak is about that plus the growth (moto's own memory is not the function's).

    python benchmarks/bench_memory.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ENV = {
    "AWS_ACCESS_KEY_ID": "testing",  # fake: nothing leaves this machine
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "DEST_BUCKET": "bench-dest",
    "SOURCE_BUCKET": "bench-source",
    "LOG_LEVEL": "WARNING",
    "CONCURRENCY": "4",
}

INPUTS = {
    "12 MP JPEG": "imagegen.photo_jpeg(4000, 3000)",
    "12 MP RGBA PNG": "imagegen.photo_png_rgba(4000, 3000)",
    "24 MP JPEG": "imagegen.photo_jpeg(6000, 4000)",
}

RECORDS = """
import json, os, sys
sys.path[:0] = [{root!r}, {tests!r}]
import boto3, imagegen
from moto import mock_aws
from conftest import s3_body, s3_record, sqs_event, sqs_record
from processor import handler

def peak_kib():
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over exec, so a child would report
    # its parent's peak (the benchmark's own image generation) whenever that is higher.
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

data = open({source!r}, "rb").read()  # made by the parent: its generation must not set the peak
with mock_aws():
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="bench-source")
    s3.create_bucket(Bucket="bench-dest")
    keys = [f"original/m/{{i}}{ext}" for i in range({records})]
    for key in keys:
        s3.put_object(Bucket="bench-source", Key=key, Body=data)
    del data
    handler.runtime()
    baseline = rss_kib()
    event = sqs_event(*[sqs_record(s3_body(s3_record(k, bucket="bench-source"))) for k in keys])
    saved, sys.stdout = sys.stdout, open(os.devnull, "w")
    response = handler.lambda_handler(event, None)
    sys.stdout = saved
    assert response == {{"batchItemFailures": []}}, response
print(json.dumps({{"baseline_kib": baseline, "peak_kib": peak_kib()}}))
"""

IDLE = """
import json, sys
sys.path[:0] = [{root!r}]
from processor import handler
handler.runtime()
with open("/proc/self/status") as f:
    print(json.dumps({{"peak_kib": next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))}}))
"""


def _run(script: str) -> dict[str, int]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **ENV}
    completed = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise SystemExit(completed.stderr[-2000:])
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> int:
    paths = {"root": str(ROOT), "tests": str(ROOT / "tests")}
    sys.path.insert(0, paths["tests"])
    import imagegen  # noqa: PLC0415 - the tests' generator, importable once the path is set

    tmp = tempfile.TemporaryDirectory(prefix="imgproc-memory-")
    files = {}
    for name, source in INPUTS.items():
        files[name] = Path(tmp.name) / name.replace(" ", "-")
        files[name].write_bytes(eval(source, {"imagegen": imagegen}))
    idle = _run(IDLE.format(**paths))["peak_kib"] / 1024
    print(f"function before its first record (handler imported, runtime() built): {idle:.0f} MiB\n")
    print(
        "| input | records at once | growth of the peak over the baseline MiB | estimated function peak MiB |"
    )
    print("| --- | --- | --- | --- |")
    for name in INPUTS:
        ext = ".png" if "PNG" in name else ".jpg"
        for records in (1, 4):
            script = RECORDS.format(source=str(files[name]), records=records, ext=ext, **paths)
            measured = _run(script)
            growth = (measured["peak_kib"] - measured["baseline_kib"]) / 1024
            print(f"| {name} | {records} | {growth:.0f} | {idle + growth:.0f} |")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
