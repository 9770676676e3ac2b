"""End to end on the embedded AWS: real S3 notifications, real SQS redrive, the poller, the handler."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imagegen
import pytest
from conftest import eventually, local_runtime
from PIL import Image

from imgproc import local, poller
from processor.errors import InvalidEvent
from processor.events import parse_body

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
FAULTS = "s3.GetObject@flaky-once=1,s3.GetObject@always-fails=*"


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the runtime's workers write their JSON log lines (worker-N.jsonl)."""
    return tmp_path_factory.mktemp("state") / "logs"


@pytest.fixture(scope="module")
def runtime(log_dir: Path) -> Iterator[local.LocalRuntime]:
    options = poller.WorkerOptions(log_dir=log_dir, retry_after=1, fault_spec=FAULTS)
    with local_runtime(overrides={"MaxReceiveCount": "3"}, options=options) as rt:
        yield rt


def marker(rt: local.LocalRuntime, key: str) -> dict[str, str] | None:
    s3 = rt.client("s3")
    try:
        return s3.head_object(Bucket=rt.outputs["DestinationBucketName"], Key=key)["Metadata"]
    except s3.exceptions.ClientError:
        return None


def upload(rt: local.LocalRuntime, key: str, data: bytes) -> str:
    return (
        rt.client("s3")
        .put_object(Bucket=rt.outputs["SourceBucketName"], Key=key, Body=data)["ETag"]
        .strip('"')
    )


def renditions_of(rt: local.LocalRuntime, name: str, etag: str) -> bool:
    keys = [f"resized/100x100/{name}", f"resized/300x300/{name}"]
    return all((marker(rt, k) or {}).get("source-etag") == etag for k in keys)


def dlq_entry(rt: local.LocalRuntime, key: str) -> dict[str, Any] | None:
    """The DLQ message for ``key``, read without consuming it (visibility timeout 0)."""
    messages = (
        rt.client("sqs")
        .receive_message(
            QueueUrl=rt.outputs["DeadLetterQueueUrl"],
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
            VisibilityTimeout=0,
        )
        .get("Messages", [])
    )
    for message in messages:
        try:
            keys = [ref.key for ref in parse_body(message["Body"]).refs]
        except InvalidEvent:
            continue
        if key in keys:
            return message
    return None


def test_upload_with_boto3_renders_every_rendition(runtime: local.LocalRuntime) -> None:
    etag = upload(runtime, "original/e2e/boto3 photo.jpg", imagegen.photo_jpeg(1200, 800))

    eventually(lambda: renditions_of(runtime, "e2e/boto3 photo.jpg", etag))

    body = (
        runtime.client("s3")
        .get_object(
            Bucket=runtime.outputs["DestinationBucketName"], Key="resized/300x300/e2e/boto3 photo.jpg"
        )["Body"]
        .read()
    )
    assert Image.open(io.BytesIO(body)).size == (300, 200)
    meta = marker(runtime, "resized/300x300/e2e/boto3 photo.jpg")
    assert meta is not None
    assert meta["source-key"] == "original/e2e/boto3%20photo.jpg"


def test_dead_workers_are_replaced_and_polling_goes_on(runtime: local.LocalRuntime) -> None:
    runtime.take_notices()
    dead = runtime.worker_pids
    assert len(dead) == 2
    for pid in dead:  # both, idle: nothing would consume without a replacement
        os.kill(pid, signal.SIGKILL)

    eventually(lambda: len(runtime.worker_pids) == 2 and not set(runtime.worker_pids) & set(dead))
    # A long poll a dead worker had open still runs on the server for up to WaitTimeSeconds (1 s) and
    # would take a message sent meanwhile into flight until the visibility timeout: let it end.
    time.sleep(2.5)
    etag = upload(runtime, "original/e2e/after-the-kill.jpg", imagegen.photo_jpeg(320, 240))
    eventually(lambda: renditions_of(runtime, "e2e/after-the-kill.jpg", etag))
    reports = [line for line in runtime.take_notices() if "was killed by SIGKILL" in line]
    assert sorted(reports) == [
        f"worker {i} was killed by SIGKILL; started a new one (the batch it held comes back after the "
        "queue's visibility timeout)"
        for i in (0, 1)
    ]


def test_upload_with_the_aws_cli(runtime: local.LocalRuntime, tmp_path: Path) -> None:
    photo = tmp_path / "cli.png"
    photo.write_bytes(imagegen.png_rgba(400, 200))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    target = f"s3://{runtime.outputs['SourceBucketName']}/original/e2e/cli.png"
    subprocess.run(
        [str(BIN / "aws"), "--endpoint-url", runtime.endpoint_url, "s3", "cp", str(photo), target],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    etag = (
        runtime.client("s3")
        .head_object(Bucket=runtime.outputs["SourceBucketName"], Key="original/e2e/cli.png")["ETag"]
        .strip('"')
    )

    eventually(lambda: renditions_of(runtime, "e2e/cli.png", etag))


def test_overwrite_re_renders_and_delete_removes(runtime: local.LocalRuntime) -> None:
    key, name = "original/e2e/cycle.jpg", "e2e/cycle.jpg"
    first = upload(runtime, key, imagegen.photo_jpeg(640, 480))
    eventually(lambda: renditions_of(runtime, name, first))

    second = upload(runtime, key, imagegen.photo_jpeg(480, 640, seed=2))
    eventually(lambda: renditions_of(runtime, name, second))

    runtime.client("s3").delete_object(Bucket=runtime.outputs["SourceBucketName"], Key=key)
    eventually(lambda: marker(runtime, f"resized/100x100/{name}") is None)
    assert marker(runtime, f"resized/300x300/{name}") is None


def test_poison_image_is_dead_lettered_with_its_reason(runtime: local.LocalRuntime) -> None:
    upload(runtime, "original/e2e/poison.jpg", b"<html>not an image</html>")

    message = eventually(lambda: dlq_entry(runtime, "original/e2e/poison.jpg"))

    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["error-class"] == "NotAnImage"
    assert attributes["replay-count"] == "0"


def test_a_valid_image_overwritten_by_a_corrupt_one_loses_its_renditions(runtime: local.LocalRuntime) -> None:
    key, name = "original/e2e/spoiled.jpg", "e2e/spoiled.jpg"
    first = upload(runtime, key, imagegen.photo_jpeg(640, 480))
    eventually(lambda: renditions_of(runtime, name, first))
    jpeg = imagegen.photo_jpeg(640, 480, seed=3)

    upload(runtime, key, jpeg[: len(jpeg) // 3])  # truncated

    message = eventually(lambda: dlq_entry(runtime, key))
    assert message["MessageAttributes"]["error-class"]["StringValue"] == "CorruptImage"
    # The DLQ entry is sent only after the stale renditions are gone: none may be served any more.
    assert marker(runtime, f"resized/100x100/{name}") is None
    assert marker(runtime, f"resized/300x300/{name}") is None

    fixed = upload(runtime, key, imagegen.photo_jpeg(320, 240, seed=4))  # a later valid upload renders
    eventually(lambda: renditions_of(runtime, name, fixed))


def test_an_iphone_heic_is_rendered_upright_and_a_truncated_one_dead_lettered(
    runtime: local.LocalRuntime,
) -> None:
    """A HEIC as phones write it (rotation in its irot box and repeated in EXIF): rendered once,
    upright, in the configured format; the same file cut short is dead-lettered as CorruptImage."""
    displayed = imagegen.corner_markers(640, 480)
    heic = imagegen.heif(imagegen.stored_for_orientation(displayed, 6), orientation=6, quality=90)
    etag = upload(runtime, "original/e2e/iphone.heic", heic)
    upload(runtime, "original/e2e/cut.heic", heic[: len(heic) * 3 // 4])

    # auto and a key naming no output format: JPEG for opaque pixels, its extension appended.
    eventually(lambda: renditions_of(runtime, "e2e/iphone.heic.jpg", etag))
    s3, bucket = runtime.client("s3"), runtime.outputs["DestinationBucketName"]
    got = s3.get_object(Bucket=bucket, Key="resized/300x300/e2e/iphone.heic.jpg")
    assert got["ContentType"] == "image/jpeg"
    image = Image.open(io.BytesIO(got["Body"].read()))
    assert image.size == (300, 225)
    assert image.convert("RGB").getpixel((60, 45))[0] > 200  # top left is the red marker: upright
    message = eventually(lambda: dlq_entry(runtime, "original/e2e/cut.heic"))
    assert message["MessageAttributes"]["error-class"]["StringValue"] == "CorruptImage"


def worker_log_lines(log_dir: Path, key: str) -> list[dict[str, Any]]:
    """The workers' JSON log lines about source ``key``, all workers' files merged in time order."""
    found: list[dict[str, Any]] = []
    for path in sorted(log_dir.glob("worker-*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line still being written
            if isinstance(entry, dict) and entry.get("key") == key:
                found.append(entry)
    return sorted(found, key=lambda entry: entry["timestamp"])  # ISO 8601 UTC: sorts as text


def test_a_transient_failure_is_retried_and_succeeds(runtime: local.LocalRuntime, log_dir: Path) -> None:
    key = "original/e2e/flaky-once.jpg"
    etag = upload(runtime, key, imagegen.photo_jpeg(320, 240))
    eventually(lambda: renditions_of(runtime, "e2e/flaky-once.jpg", etag))
    assert dlq_entry(runtime, key) is None

    # The injected GetObject fault was logged as a retry before the record was rendered.
    def rendered_lines() -> list[dict[str, Any]]:
        lines = worker_log_lines(log_dir, key)
        return lines if any(entry["event"] == "record.rendered" for entry in lines) else []

    lines = eventually(rendered_lines)
    events = [entry["event"] for entry in lines]
    assert "record.error" in events, events
    error = lines[events.index("record.error")]
    assert error["outcome"] == "retry"
    assert "injected" in error["error"]
    assert events.index("record.error") < events.index("record.rendered"), events


def test_a_record_that_always_fails_is_redriven_by_sqs(runtime: local.LocalRuntime) -> None:
    upload(runtime, "original/e2e/always-fails.jpg", imagegen.photo_jpeg(320, 240))

    message = eventually(lambda: dlq_entry(runtime, "original/e2e/always-fails.jpg"), timeout=60)

    # SQS's own redrive: no attributes of ours, and received maxReceiveCount (3) times first. moto
    # moves the message to the DLQ with its receive count (3), and dlq_entry's own receive adds one.
    assert "MessageAttributes" not in message or "error-class" not in message["MessageAttributes"]
    assert int(message["Attributes"]["ApproximateReceiveCount"]) >= 4
    assert marker(runtime, "resized/100x100/e2e/always-fails.jpg") is None


def run_cli(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "imgproc"), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_demo_exits_zero_and_says_what_it_found_in_json(tmp_path: Path) -> None:
    result = run_cli("demo", "--json", "--port", "0", "--state-dir", str(tmp_path), timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert len(report["renditions"]) >= 8  # every sample but the corrupt one, in two sizes
    assert all(r["width"] and r["height"] and r["bytes"] for r in report["renditions"])
    assert [d["error_class"] for d in report["dead_letters"]] == ["CorruptImage"]
    assert report["outputs"]["SourceBucketName"]


def test_demo_with_extras_shows_the_catalog_and_the_notifications(tmp_path: Path) -> None:
    result = run_cli("demo", "--with-extras", "--port", "0", "--state-dir", str(tmp_path), timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "demo: all renditions, the DLQ entry, catalog items and notifications are there" in out
    assert "watermark: '(c) imgproc demo' bottom-right, opacity 0.5" in out
    catalog = out.split("\ncatalog (DynamoDB table ")[1].split("\nnotifications")[0]
    assert catalog.count(" rendered ") == 4
    assert "original/demo/corrupt.jpg          dead-lettered  CorruptImage" in catalog
    notifications = out.split("\nnotifications (SNS topic ")[1]
    assert notifications.count("outcome=rendered") == 4
    assert notifications.count("error_class=CorruptImage outcome=dead-lettered") == 1


def children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        for child in map(int, text):
            found |= {child} | children_of(child)
    return found


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def test_ctrl_c_on_up_stops_everything(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [str(BIN / "imgproc"), "up", "--port", "0", "--workers", "2", "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C to stop" in line:
                break
        assert any("export AWS_ENDPOINT_URL=http://127.0.0.1:" in line for line in lines)
        workers = eventually(lambda: children_of(process.pid), timeout=10)
        assert len(workers) >= 2

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    eventually(lambda: not any(alive(pid) for pid in workers), timeout=10)
