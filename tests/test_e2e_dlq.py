"""`imgproc dlq inspect` and `replay` end to end: the embedded AWS, the poller and the handler, the CLI
as a separate process. Its own module: the embedded AWS starts empty (conftest.local_runtime), which
would also empty the in-process stack the other DLQ tests share."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import imagegen
import pytest
from conftest import eventually, local_runtime
from dlqkit import Stack

from imgproc import local, poller
from toolkit import dead_letters


@pytest.mark.e2e
def test_inspect_and_replay_on_the_embedded_aws(tmp_path: Path) -> None:
    options = poller.WorkerOptions(
        log_dir=tmp_path / "logs", retry_after=1, fault_spec="s3.GetObject@always-fails=*"
    )
    with local_runtime(workers=1, overrides={"MaxReceiveCount": "2"}, options=options) as rt:
        _inspect_and_replay(rt)


def _inspect_and_replay(rt: local.LocalRuntime) -> None:
    s3, sqs = rt.client("s3"), rt.client("sqs")
    source, dest = rt.outputs["SourceBucketName"], rt.outputs["DestinationBucketName"]
    stack = Stack(rt.outputs, sqs)
    s3.put_object(Bucket=source, Key="original/e2e/always-fails.jpg", Body=imagegen.photo_jpeg(64, 48))
    s3.put_object(Bucket=source, Key="original/e2e/poison.jpg", Body=b"<html>not an image</html>")

    def both_dead_lettered() -> bool:
        return stack.counts() == {"ingest": (0, 0), "dlq": (2, 0)}

    eventually(both_dead_lettered, timeout=90)  # generous: a loaded 2-core machine runs other tests too

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [
            str(Path(sys.executable).parent / "imgproc"),
            "dlq",
            *args,
            "--endpoint-url",
            rt.endpoint_url,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert "Traceback" not in result.stderr
        return result

    def imgproc(*args: str) -> tuple[int, dict[str, Any]]:
        result = run(*args, "--json")
        return result.returncode, json.loads(result.stdout)

    # The embedded AWS answers StartMessageMoveTask with a bare HTTP 500.
    native = run("replay", "--native")
    assert (native.returncode, native.stdout) == (2, "")
    assert native.stderr.startswith("imgproc dlq replay: native move not supported by this endpoint (")

    code, doc = imgproc("inspect")
    assert code == 0
    assert doc["by_error_class"] == {"NotAnImage": 1, "RetriesExhausted": 1}
    assert doc["by_key_prefix"] == {"original/e2e/": 2}
    assert stack.counts() == {"ingest": (0, 0), "dlq": (2, 0)}

    # The fault is still there: a capped replay leaves the message where it is.
    code, doc = imgproc("replay", "--error-class", "RetriesExhausted", "--max-replays", "0")
    assert (code, doc["moved"], doc["capped"]["count"]) == (1, 0, 1)
    assert stack.counts() == {"ingest": (0, 0), "dlq": (2, 0)}

    # The poison upload is fixed at the source: replay it, and the handler renders it.
    etag = s3.put_object(Bucket=source, Key="original/e2e/poison.jpg", Body=imagegen.photo_jpeg(320, 240))[
        "ETag"
    ].strip('"')
    code, doc = imgproc("replay", "--error-class", "NotAnImage")
    assert (code, doc["moved"], doc["skipped"]) == (0, 1, 1)

    def rendered() -> bool:
        try:
            head = s3.head_object(Bucket=dest, Key="resized/300x300/e2e/poison.jpg")
        except s3.exceptions.ClientError:
            return False
        return head["Metadata"].get("source-etag") == etag

    eventually(rendered)
    eventually(lambda: stack.counts() == {"ingest": (0, 0), "dlq": (1, 0)})
    (left,) = stack.snapshot(stack.dlq).values()
    assert dead_letters.source_keys(left["Body"]) == ["original/e2e/always-fails.jpg"]

    # With the pipeline running, a replay of N always-failing messages moves exactly N: each one is
    # back on the DLQ within milliseconds, and the run leaves it there for the next run.
    poison = [f"original/e2e/poison-{i}.jpg" for i in range(3)]
    for key in poison:
        s3.put_object(Bucket=source, Key=key, Body=b"<html>still not an image</html>")
    eventually(lambda: stack.counts() == {"ingest": (0, 0), "dlq": (4, 0)}, timeout=90)
    for round_number, extra in ((1, ()), (2, ("--force",))):
        code, doc = imgproc("replay", "--error-class", "NotAnImage", *extra)
        assert (code, doc["matched"], doc["moved"]) == (0, 3, 3)
        assert doc["arrived_during_run"] + doc["repeated"] <= 3  # those back before the scan ended

        def back_on_the_dlq(count: str = str(round_number)) -> bool:
            found = stack.snapshot(stack.dlq).values()
            counts = [m["MessageAttributes"].get("replay-count", {}).get("StringValue") for m in found]
            return sorted(c for c in counts if c) == [count] * 3

        eventually(back_on_the_dlq, timeout=60)
