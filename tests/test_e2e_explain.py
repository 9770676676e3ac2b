"""`imgproc explain` and `imgproc enqueue` end to end on the embedded AWS, the pipeline running: a
rendered key is healthy, a corrupt upload is explained as dead-lettered with its class and the fix,
renditions deleted behind the pipeline's back come back after the `enqueue` explain proposes, and the
key's handler lines come from the local run's logs."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imagegen
import pytest
from conftest import eventually, local_runtime

from imgproc import cli, local, poller

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="module")
def runtime(state_dir: Path) -> Iterator[local.LocalRuntime]:
    options = poller.WorkerOptions(log_dir=state_dir / "logs", retry_after=1)
    with local_runtime(workers=1, options=options) as rt:
        yield rt


def imgproc(
    runtime: local.LocalRuntime, state_dir: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    local_logs = ["--state-dir", str(state_dir)] if args[0] == "explain" else []
    code = cli.main([*args, "--endpoint-url", runtime.endpoint_url, *local_logs])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out


def explain(
    runtime: local.LocalRuntime, state_dir: Path, capsys: pytest.CaptureFixture[str], key: str
) -> tuple[int, dict[str, Any]]:
    code, out = imgproc(runtime, state_dir, capsys, "explain", key, "--json")
    (entry,) = json.loads(out)["keys"]
    return code, entry


def upload(runtime: local.LocalRuntime, key: str, data: bytes) -> str:
    s3 = runtime.client("s3")
    return s3.put_object(Bucket=runtime.outputs["SourceBucketName"], Key=key, Body=data)["ETag"].strip('"')


def renditions(runtime: local.LocalRuntime, name: str) -> list[str]:
    return [f"resized/300x300/{name}", f"resized/100x100/{name}"]


def current(runtime: local.LocalRuntime, name: str, etag: str) -> bool:
    s3 = runtime.client("s3")
    for key in renditions(runtime, name):
        try:
            meta = s3.head_object(Bucket=runtime.outputs["DestinationBucketName"], Key=key)["Metadata"]
        except s3.exceptions.ClientError:
            return False
        if meta.get("source-etag") != etag:
            return False
    return True


def test_a_rendered_key_is_healthy_with_its_handler_lines(
    runtime: local.LocalRuntime, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, name = "original/explain/ok +é.jpg", "explain/ok +é.jpg"
    etag = upload(runtime, key, imagegen.photo_jpeg(640, 480))
    eventually(lambda: current(runtime, name, etag))

    def explained() -> tuple[int, dict[str, Any]] | None:
        code, entry = explain(runtime, state_dir, capsys, key)
        return (code, entry) if entry["logs"]["lines"] else None  # the worker's file may lag a moment

    code, entry = eventually(explained)
    assert code == 0
    assert entry["verdict"]["state"] == "healthy"
    assert [r["state"] for r in entry["renditions"]] == ["current", "current"]
    assert entry["logs"]["origin"] == "local"
    assert "record.rendered" in [line["event"] for line in entry["logs"]["lines"]]


def test_a_corrupt_upload_is_explained_as_dead_lettered_with_the_fix(
    runtime: local.LocalRuntime, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "original/explain/corrupt é.jpg"
    upload(runtime, key, imagegen.photo_jpeg(640, 480)[:400])

    def dead_lettered() -> tuple[int, dict[str, Any]] | None:
        code, entry = explain(runtime, state_dir, capsys, key)
        return (code, entry) if entry["dead_letters"] else None

    code, entry = eventually(dead_lettered)
    assert code == 1
    (letter,) = entry["dead_letters"]
    assert letter["error_class"] == "CorruptImage"
    assert entry["verdict"]["state"] == "dead-lettered"
    assert entry["verdict"]["fix"].startswith("fix the source: ")

    code, out = imgproc(runtime, state_dir, capsys, "explain", key)
    assert code == 1
    assert out.splitlines()[-1].startswith("verdict: dead-lettered: dead-lettered as CorruptImage at ")
    # explain read the DLQ without consuming: the message is still there, visible.
    dlq = runtime.client("sqs").get_queue_attributes(
        QueueUrl=runtime.outputs["DeadLetterQueueUrl"], AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert dlq["Attributes"]["ApproximateNumberOfMessages"] == "1"


def test_renditions_deleted_behind_the_pipelines_back_come_back_after_enqueue(
    runtime: local.LocalRuntime, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, name = "original/explain/lost+found.jpg", "explain/lost+found.jpg"
    etag = upload(runtime, key, imagegen.photo_jpeg(640, 480))
    eventually(lambda: current(runtime, name, etag))
    s3 = runtime.client("s3")
    for rendition in renditions(runtime, name):  # the destination bucket sends no events
        s3.delete_object(Bucket=runtime.outputs["DestinationBucketName"], Key=rendition)

    code, entry = explain(runtime, state_dir, capsys, key)
    assert code == 1
    assert entry["verdict"]["state"] == "missing"
    fix = entry["verdict"]["fix"]
    assert fix == f"imgproc enqueue {shlex.quote(key)}"

    code, out = imgproc(runtime, state_dir, capsys, "enqueue", key)
    assert code == 0
    assert out.startswith("enqueued 1 of 1 key(s) on ")
    eventually(lambda: current(runtime, name, etag))
    code, entry = explain(runtime, state_dir, capsys, f"resized/100x100/{name}")
    assert code == 0
    assert entry["source_key"] == key
