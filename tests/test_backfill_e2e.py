"""End to end on the embedded AWS with the pipeline running: `imgproc backfill --from-inventory`
re-creates renditions that were lost, from an S3 Inventory report (as S3 lays one out)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import imagegen
import pytest
from conftest import eventually, local_runtime
from inventorykit import put_report, row

from imgproc import local, poller

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
NAMES = ["inv/one.jpg", "inv/a b+c/ünï (2).png"]


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local.LocalRuntime]:
    options = poller.WorkerOptions(log_dir=tmp_path_factory.mktemp("state") / "logs", retry_after=1)
    with local_runtime(workers=1, options=options) as rt:
        yield rt


def renditions(rt: local.LocalRuntime, name: str) -> list[str]:
    """The source ETags the two renditions of ``name`` were made from (absent ones left out)."""
    s3, found = rt.client("s3"), []
    for box in ("100x100", "300x300"):
        try:
            head = s3.head_object(Bucket=rt.outputs["DestinationBucketName"], Key=f"resized/{box}/{name}")
        except s3.exceptions.ClientError:
            continue
        found.append(head["Metadata"]["source-etag"])
    return found


def test_backfill_from_an_inventory_report_brings_lost_renditions_back(runtime: local.LocalRuntime) -> None:
    s3 = runtime.client("s3")
    source, dest = runtime.outputs["SourceBucketName"], runtime.outputs["DestinationBucketName"]
    etags = {}
    for i, name in enumerate(NAMES):
        body = imagegen.photo_jpeg(200, 150, seed=i) if name.endswith(".jpg") else imagegen.png_rgba(120, 80)
        etags[name] = s3.put_object(Bucket=source, Key=f"original/{name}", Body=body)["ETag"].strip('"')
    for name in NAMES:  # the upload's own notification renders them first
        eventually(lambda n=name: renditions(runtime, n) == [etags[n]] * 2, timeout=60)
        for box in ("100x100", "300x300"):
            s3.delete_object(Bucket=dest, Key=f"resized/{box}/{name}")  # lost
    assert all(renditions(runtime, name) == [] for name in NAMES)

    s3.create_bucket(Bucket="imgproc-inventory")
    rows = [row(f"original/{n}", etag=etags[n]) for n in NAMES] + [row("original/inv/")]
    report = put_report(s3, dest_bucket="imgproc-inventory", source_bucket=source, files=[rows])
    result = subprocess.run(
        [
            str(BIN / "imgproc"),
            "backfill",
            "--endpoint-url",
            runtime.endpoint_url,
            "--from-inventory",
            report.url,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, ""), result.stderr[-2000:]
    doc = json.loads(result.stdout)
    assert (doc["listed"], doc["filtered"], doc["enqueued"], doc["complete"]) == (3, 1, 2, True)
    assert doc["checkpoint"] == f"{report.data_keys[0]}:3"

    for name in NAMES:
        eventually(lambda n=name: renditions(runtime, n) == [etags[n]] * 2, timeout=60)
