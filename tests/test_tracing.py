"""X-Ray: silent and free outside Lambda; the expected subsegments with an in-memory emitter.

Each scenario runs in its own interpreter: patching botocore for X-Ray is process-wide and must not
leak into the other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each scenario is an interpreter of its own

ROOT = Path(__file__).resolve().parent.parent

SCENARIO = """
import io, json, os, socket, sys
sys.path[:0] = [{root!r}, {tests!r}]
os.environ.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1",
                  DEST_BUCKET="imgproc-dest")
import boto3, imagegen
from moto import mock_aws
from conftest import s3_body, s3_record, sqs_event, sqs_record

sent = []
real_sendto = socket.socket.sendto
socket.socket.sendto = lambda self, data, *a: sent.append(data) or real_sendto(self, data, *a)

{setup}

from processor import handler
with mock_aws():
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="imgproc-source")
    s3.create_bucket(Bucket="imgproc-dest")
    s3.put_object(Bucket="imgproc-source", Key="original/photos/a.jpg", Body=imagegen.photo_jpeg(640, 480))
    event = sqs_event(sqs_record(s3_body(s3_record("original/photos/a.jpg")), "m-1"))
    response = handler.lambda_handler(event, None)
sys.stdout = sys.__stdout__
print(json.dumps({{"response": response, "udp_packets": len(sent), "result": {result}}}))
"""


def run(setup: str, result: str, env: dict[str, str] | None = None) -> dict:
    script = SCENARIO.format(
        root=str(ROOT), tests=str(ROOT / "tests"), setup=textwrap.dedent(setup), result=result
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_outside_lambda_tracing_is_off_and_silent() -> None:
    out = run(
        setup="",
        result='{"enabled": __import__("observability.tracing").tracing.enabled(), '
        '"patched": "aws_xray_sdk" in sys.modules}',
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out["response"] == {"batchItemFailures": []}
    assert out["result"] == {"enabled": False, "patched": False}  # the SDK is not even imported
    assert out["udp_packets"] == 0


SUBSEGMENTS = """
from aws_xray_sdk.core import xray_recorder

class Memory:
    entities = []
    def send_entity(self, entity):
        self.entities.append(entity.to_dict())
    def set_daemon_address(self, address):
        pass

xray_recorder.configure(emitter=Memory(), sampling=False)
os.environ["IMGPROC_XRAY"] = "true"  # as a developer tracing locally would
"""

COLLECT = """[
    {"name": s["name"], "annotations": s.get("annotations", {}), "namespace": s.get("namespace"),
     "children": [c["name"] for c in s.get("subsegments", [])]}
    for e in Memory.entities for s in e.get("subsegments", [])
]"""


def test_with_an_emitter_every_record_and_stage_is_a_subsegment() -> None:
    out = run(setup=SUBSEGMENTS, result=COLLECT)

    assert out["response"] == {"batchItemFailures": []}
    assert out["udp_packets"] == 0  # the in-memory emitter, not the daemon
    (record,) = [s for s in out["result"] if s["name"] == "record"]
    assert record["annotations"] == {
        "message_id": "m-1",  # on-call finds a failing key's trace by key or by message id
        "key": "original/photos/a.jpg",
        "key_prefix": "original/photos/",
        "outcome": "rendered",
    }
    # the source's and the renditions' HEADs at once, then the check after writing
    assert record["children"].count("head") == 2
    for stage in ("get", "decode", "render 300x300", "render 100x100", "put"):
        assert stage in record["children"]


HEAD_CALLS = """[
    [(c["name"], c.get("aws", {}).get("operation")) for c in head.get("subsegments", [])]
    for e in Memory.entities for s in e.get("subsegments", []) if s["name"] == "record"
    for head in s.get("subsegments", []) if head["name"] == "head"
]"""


def test_the_s3_calls_sent_at_once_join_the_record_trace() -> None:
    out = run(setup=SUBSEGMENTS, result=HEAD_CALLS)

    first, check = out["result"]
    assert first == [["s3", "HeadObject"]] * 3  # sent from the pool's threads, traced under the stage
    assert check == [["s3", "HeadObject"]]


def test_a_long_key_is_annotated_cut_to_the_limit_and_still_searchable_by_prefix() -> None:
    from observability.tracing import MAX_ANNOTATED_KEY, record_annotations

    key = "original/" + "é" * 1000
    annotations = record_annotations("m-9", key)

    assert annotations["key"] == key[:MAX_ANNOTATED_KEY]
    assert key.startswith(annotations["key"])
    assert annotations["message_id"] == "m-9"
    assert annotations["key_prefix"] == "original/"
