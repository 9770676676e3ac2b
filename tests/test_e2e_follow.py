"""`imgproc dlq replay --follow` end to end: the embedded AWS, the poller and the handler, the CLI as a
separate process. Its own module: the embedded AWS shares moto's state with this process, where the
other follow tests' module keeps a stack of the same name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import imagegen
import pytest
from conftest import eventually, local_runtime
from dlqkit import CORRUPT, Stack

from imgproc import local, poller

pytestmark = pytest.mark.e2e


def test_follow_on_the_embedded_aws(tmp_path: Path) -> None:
    options = poller.WorkerOptions(log_dir=tmp_path / "logs", retry_after=1)
    with local_runtime(workers=1, options=options) as rt:
        _follow_replays(rt)


def _follow_replays(rt: local.LocalRuntime) -> None:
    s3, sqs = rt.client("s3"), rt.client("sqs")
    source = rt.outputs["SourceBucketName"]
    stack = Stack(rt.outputs, sqs)
    keys = [f"original/e2e/fixed-{i}.jpg" for i in range(3)]
    still = "original/e2e/still corrupt.jpg"
    for key in [*keys, still]:
        s3.put_object(Bucket=source, Key=key, Body=CORRUPT)
    eventually(lambda: stack.counts() == {"ingest": (0, 0), "dlq": (4, 0)}, timeout=90)

    def fix_quietly(*fixed: str) -> None:
        """Valid uploads whose S3 events are lost (the notification is off meanwhile): only a replay
        renders them."""
        notification = s3.get_bucket_notification_configuration(Bucket=source)
        notification.pop("ResponseMetadata", None)
        s3.put_bucket_notification_configuration(Bucket=source, NotificationConfiguration={})
        for key in fixed:
            s3.put_object(Bucket=source, Key=key, Body=imagegen.photo_jpeg(320, 240))
        s3.put_bucket_notification_configuration(Bucket=source, NotificationConfiguration=notification)

    fix_quietly(*keys)

    def replay(*extra: str) -> subprocess.CompletedProcess[str]:
        command = [str(Path(sys.executable).parent / "imgproc"), "dlq", "replay", "--follow"]
        command += ["--follow-timeout", "90s", "--endpoint-url", rt.endpoint_url, *extra]
        result = subprocess.run(command, capture_output=True, text=True, timeout=150, check=False)
        assert "Traceback" not in result.stderr
        return result

    result = replay("--json")
    doc = json.loads(result.stdout)
    assert result.returncode == 1, result.stderr
    tally = {"rendered": 3, "failed_again": 1, "ignored": 0, "source_gone": 0, "pending": 0}
    assert doc["follow"]["tally"] == tally
    assert [(f["key"], f["error_class"]) for f in doc["follow"]["failed_again"]] == [(still, "CorruptImage")]
    eventually(lambda: stack.counts() == {"ingest": (0, 0), "dlq": (1, 0)})

    fix_quietly(still)
    result = replay()
    print(result.stdout)  # the tally quoted in docs/operators.md
    assert result.returncode == 0, result.stdout + result.stderr
    assert "  rendered          1" in result.stdout.splitlines()
    assert stack.counts() == {"ingest": (0, 0), "dlq": (0, 0)}
