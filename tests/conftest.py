"""Shared fixtures: an in-process moto AWS with the pipeline's buckets and queues, and event builders."""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
import uuid
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote_plus

import boto3
import botocore.loaders
import botocore.session
import pytest
import structlog
from moto import mock_aws

from imgproc import deploy
from observability import logs
from processor import handler
from processor.batch import process_batch
from processor.config import Config
from processor.events import parse_sqs_event
from toolkit import aws as imgproc_aws

REGION = "us-east-1"
SOURCE_BUCKET = "imgproc-source"
DEST_BUCKET = "imgproc-dest"


class _SearchPaths(list[str]):
    """A loader's search paths that ignore a path they already have (see :func:`_shared_loader`)."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


_LOADERS: dict[str | None, botocore.loaders.Loader] = {}


def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    """One botocore data loader per search path for the whole test process.

    Every ``mock_aws()`` drops boto3's default session, so each test's clients come from a new botocore
    session, whose new loader parses the service models' JSON again: about half of the time of a test
    that builds a few clients (the ``aws`` fixture, the handler's runtime, the CLI's clients). The
    loader only reads botocore's and boto3's data files and caches what it parsed, so sharing it
    changes no client; boto3 appends its own data path to the loader of each session it makes, kept
    once here.
    """
    if search_path_string not in _LOADERS:
        loader = botocore.loaders.create_loader(search_path_string)
        loader._search_paths = _SearchPaths(loader.search_paths)
        _LOADERS[search_path_string] = loader
    return _LOADERS[search_path_string]


botocore.session.create_loader = _shared_loader


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Each test starts and ends with structlog's defaults: a test that configured it to write to a
    captured stream must not leave later tests writing to that stream once it is closed."""
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture(autouse=True)
def _aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region: nothing in the tests may ever reach real AWS."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@dataclass
class Aws:
    s3: Any
    sqs: Any
    queue_url: str
    dlq_url: str
    calls: Counter[str]  # "s3.GetObject" -> count, recorded for every S3 call from `s3`

    def put_source(self, key: str, data: bytes, **extra: Any) -> str:
        """Upload a source object; returns its ETag without quotes."""
        return self.s3.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=data, **extra)["ETag"].strip('"')

    def dest_keys(self) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=DEST_BUCKET)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def dest_object(self, key: str) -> dict[str, Any]:
        return self.s3.get_object(Bucket=DEST_BUCKET, Key=key)

    def dlq_messages(self) -> list[dict[str, Any]]:
        """Every message on the DLQ (received with a long visibility timeout, so each is seen once)."""
        found: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.dlq_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                VisibilityTimeout=300,
            ).get("Messages", [])
            if not batch:
                return found
            found.extend(batch)


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        s3.create_bucket(Bucket=SOURCE_BUCKET)
        s3.create_bucket(Bucket=DEST_BUCKET)
        dlq_url = sqs.create_queue(QueueName="imgproc-dlq")["QueueUrl"]
        queue_url = sqs.create_queue(QueueName="imgproc-ingest")["QueueUrl"]
        calls: Counter[str] = Counter()
        s3.meta.events.register("before-call.s3.*", lambda model, **_: calls.update([f"s3.{model.name}"]))
        yield Aws(s3=s3, sqs=sqs, queue_url=queue_url, dlq_url=dlq_url, calls=calls)


@pytest.fixture
def environ() -> Iterator[None]:
    """Running the handler as the deployed function makes this process look like its container
    (os.environ, the handler's cached clients): undo both after the test."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    handler.runtime.cache_clear()  # its clients belong to this test's moto


def tiny_zip() -> bytes:
    """A placeholder function code zip: a processor package whose handler returns ``{}``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("processor/__init__.py", "")
        archive.writestr("processor/handler.py", "def lambda_handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def hook_sqs(monkeypatch: pytest.MonkeyPatch, event: str, callback: Callable[..., Any]) -> None:
    """Register ``callback`` for ``event`` on every SQS client the CLI builds (``toolkit.aws.client``)."""
    build = imgproc_aws.client

    def client(args: Any, service: str) -> Any:
        made = build(args, service)
        if service == "sqs":
            made.meta.events.register(event, callback)
        return made

    monkeypatch.setattr(imgproc_aws, "client", client)


@contextlib.contextmanager
def _stack_in_moto() -> Iterator[dict[str, str]]:
    """The real template deployed into in-process moto, as `imgproc deploy` does; yields its outputs.

    The code zip is a placeholder: these tests run the handler (if at all) from the source tree.
    """
    request = deploy.DeployRequest(
        stack_name="imgproc",
        region=REGION,
        overrides={"EnableCloudFront": "false", "EventSourceMappingEnabled": "false"},
        zip_bytes=tiny_zip(),
        method="direct",
    )
    with mock_aws(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Tried to parse AWS", UserWarning)  # types moto skips
        yield deploy.deploy(request, progress=lambda line: None).outputs


@pytest.fixture
def deployed_stack() -> Iterator[dict[str, str]]:
    """A stack of its own for the test (see :func:`_stack_in_moto`)."""
    with _stack_in_moto() as outputs:
        yield outputs


@pytest.fixture(scope="module")
def module_stack() -> Iterator[dict[str, str]]:
    """One stack for a whole module, for tests that only use its queues and buckets: deploying the
    template costs about a second, emptying them (:func:`stack`) a few milliseconds."""
    with _stack_in_moto() as outputs:
        yield outputs


@pytest.fixture
def config(aws: Aws) -> Config:
    return Config(dest_bucket=DEST_BUCKET, dlq_url=aws.dlq_url, concurrency=2)


def with_config(config: Config, **changes: Any) -> Config:
    return replace(config, **changes)


def s3_record(key: str, event_name: str = "ObjectCreated:Put", bucket: str = SOURCE_BUCKET) -> dict[str, Any]:
    """One S3 notification record as S3 writes it (key URL-encoded with '+' for spaces)."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2026-11-27T00:00:00.000Z",
        "eventName": event_name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key, safe="/"), "size": 1, "sequencer": "0055AED6DCD90281E5"},
        },
    }


def s3_body(*records: dict[str, Any]) -> str:
    return json.dumps({"Records": list(records)})


@contextlib.contextmanager
def local_runtime(**options: Any) -> Iterator[Any]:
    """A :class:`imgproc.local.LocalRuntime` started in this process, as `imgproc up` starts one; the
    environment it sets (AWS_ENDPOINT_URL, credentials) is restored after. ``options``: LocalRuntime's,
    over the defaults of a 2-worker run of the stack "imgproc" in us-east-1.

    `imgproc up` is a process of its own and always starts on an empty embedded AWS. Here moto's state
    is shared by everything in the test process, so it is emptied first: another module's runtime
    leaves a stack of the same name behind, and deploying over it updates it instead (its function,
    say one a test broke, its queues' attributes, its messages). A module using this must not rely on
    an in-process stack of its own (``module_stack``) as well: that is emptied too.
    """
    from moto.moto_api._internal.models import moto_api_backend

    from imgproc import local  # here, not at the top: it needs the local extra

    moto_api_backend.reset()
    saved = dict(os.environ)
    try:
        settings = {"port": 0, "workers": 2, "stack_name": "imgproc", "region": REGION, "overrides": {}}
        with local.LocalRuntime(**{**settings, **options}) as runtime:
            yield runtime
    finally:
        os.environ.clear()
        os.environ.update(saved)


def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``check`` until it returns something truthy (returned); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"not true after {timeout} s: {check.__name__}"
        time.sleep(0.25)
    return value


# The fields of one record of Lambda's SQS event.
LAMBDA_SQS_RECORD_KEYS = frozenset(
    {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
)


def sqs_record(body: str, message_id: str | None = None, **message_attributes: str) -> dict[str, Any]:
    """One record of Lambda's SQS event."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "handle",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
        "messageAttributes": {
            name: {"stringValue": value, "dataType": "Number" if value.isdigit() else "String"}
            for name, value in message_attributes.items()
        },
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:imgproc-ingest",
        "awsRegion": REGION,
    }


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def run_batch(aws: Aws, config: Config, *records: dict[str, Any], remaining: Any = None) -> dict[str, Any]:
    """Run one batch of SQS ``records`` through the processor; Lambda's partial batch response."""
    result = process_batch(
        parse_sqs_event(sqs_event(*records)),
        config=config,
        s3=aws.s3,
        sqs=aws.sqs,
        remaining_ms=remaining or (lambda: 900_000),
        log=logs.get_logger("test"),
    )
    return result.response()


@pytest.fixture
def log() -> Any:
    logs.configure("DEBUG")
    return logs.get_logger("test")


@pytest.fixture
def emptied_stack(module_stack: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The module's stack with its queues and buckets emptied for this test; its outputs."""
    # moto's documented switch: real SQS allows one PurgeQueue a minute, a test module needs one a test.
    monkeypatch.setenv("MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR", "false")
    sqs, s3 = boto3.client("sqs", region_name=REGION), boto3.client("s3", region_name=REGION)
    for url in (module_stack["QueueUrl"], module_stack["DeadLetterQueueUrl"]):
        sqs.purge_queue(QueueUrl=url)  # moto empties at once, messages in flight included
    for bucket in (module_stack["SourceBucketName"], module_stack["DestinationBucketName"]):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    return module_stack


@pytest.fixture
def s3() -> Any:
    """An S3 client of whichever moto the test runs (in-process, or a server through AWS_ENDPOINT_URL)."""
    return boto3.client("s3", region_name=REGION)


@pytest.fixture
def sqs() -> Any:
    """An SQS client, as :func:`s3`."""
    return boto3.client("sqs", region_name=REGION)


@pytest.fixture
def stack(emptied_stack: dict[str, str]) -> Any:
    """The module's emptied stack: its outputs and an SQS client (:class:`dlqkit.Stack`)."""
    from dlqkit import Stack

    return Stack(emptied_stack, boto3.client("sqs", region_name=REGION))


@pytest.fixture
def short_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto answers exactly: an empty short poll means an empty queue (real SQS needs long polls)."""
    from dlq_replayer import scan

    monkeypatch.setattr(scan, "WAIT_SECONDS", 0)
    monkeypatch.setattr(scan, "EMPTY_POLLS", 1)
