"""A record's independent S3 calls go out together: overlap counted on the client, never timed.

In Lambda each S3 call is a round trip of 10-30 ms billed as wall time, so a skip must cost one round
trip whatever the number of sizes, and a render four (the HEADs, the pinned GET, the PUTs, the check
of the source after writing) plus the imaging. The order that makes a render safe stays: the GET is
pinned to the ETag the first HEADs saw, and the source is checked only once every PUT is done.
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any

import imagegen
import pytest
from conftest import SOURCE_BUCKET, Aws, run_batch, s3_body, s3_record, sqs_record, with_config

from processor import fanout
from processor.config import Config
from processor.spec import Size

KEY = "original/a.jpg"
FIVE = (Size(100, 100), Size(200, 200), Size(300, 300), Size(640, 640), Size(1024, 1024))


class Calls:
    """The S3 calls of a client in order of sending, with how many were in flight at once.

    ``gate`` holds the first ``parties`` calls of an operation until all of them are in flight
    together (a barrier): calls sent one after another would never all get there, and fail after its
    timeout. Every other call is held ``hold`` seconds, so that calls sent together overlap; only a
    gate makes that sure on a loaded machine, where a thread may start later than ``hold``.
    """

    def __init__(self, s3: Any, *, gate: dict[str, int] | None = None, hold: float = 0.02) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most = 0
        self.rounds: list[list[str]] = []  # the operations of each burst (in flight overlapping)
        self.log: list[tuple[str, str, dict[str, Any]]] = []  # ("send" | "done", operation, params)
        self.barriers = {
            name: threading.Barrier(parties, timeout=10) for name, parties in (gate or {}).items()
        }
        self.hold = hold
        self.sent: dict[str, int] = {}
        self.params: dict[int, tuple[str, dict[str, Any]]] = {}
        s3.meta.events.register("before-parameter-build.s3", self._call)
        s3.meta.events.register_first("before-send.s3", self._send)  # before moto's stubber answers
        s3.meta.events.register("after-call.s3", self._done)

    def _call(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.params[threading.get_ident()] = (model.name, dict(params))

    def _send(self, **_: Any) -> None:
        name, params = self.params[threading.get_ident()]
        with self.lock:
            if self.in_flight == 0:
                self.rounds.append([])
            self.rounds[-1].append(name)
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self.log.append(("send", name, params))
            self.sent[name] = self.sent.get(name, 0) + 1
            gated = name in self.barriers and self.sent[name] <= self.barriers[name].parties
        if gated:
            self.barriers[name].wait()
        else:
            threading.Event().wait(self.hold)

    def _done(self, model: Any, **_: Any) -> None:
        with self.lock:
            self.in_flight -= 1
            self.log.append(("done", model.name, {}))


def run(aws: Aws, config: Config, event_name: str = "ObjectCreated:Put") -> dict[str, Any]:
    return run_batch(
        aws, config, sqs_record(s3_body(s3_record(KEY, event_name=event_name)), message_id="m-1")
    )


@pytest.fixture
def five(config: Config) -> Config:
    return with_config(config, sizes=FIVE)


def test_a_skip_sends_the_source_head_and_every_rendition_head_at_once(aws: Aws, five: Config) -> None:
    aws.put_source(KEY, imagegen.photo_jpeg(640, 480))
    assert run(aws, five) == {"batchItemFailures": []}

    calls = Calls(aws.s3, gate={"HeadObject": 6})  # the source and five renditions, all in flight together
    assert run(aws, five) == {"batchItemFailures": []}

    assert calls.rounds == [["HeadObject"] * 6]  # one round trip, nothing else


def test_a_render_is_four_round_trips_with_the_puts_at_once(aws: Aws, five: Config) -> None:
    aws.put_source(KEY, imagegen.photo_jpeg(640, 480))

    calls = Calls(aws.s3, gate={"HeadObject": 6, "PutObject": 5})
    assert run(aws, five) == {"batchItemFailures": []}

    assert calls.rounds == [["HeadObject"] * 6, ["GetObject"], ["PutObject"] * 5, ["HeadObject"]]
    assert len(aws.dest_keys()) == 5


def test_the_get_is_pinned_and_the_source_is_checked_only_after_every_put(aws: Aws, five: Config) -> None:
    etag = aws.put_source(KEY, imagegen.photo_jpeg(640, 480))

    calls = Calls(aws.s3)
    assert run(aws, five) == {"batchItemFailures": []}

    (get,) = [params for event, name, params in calls.log if event == "send" and name == "GetObject"]
    assert get["IfMatch"] == f'"{etag}"'
    last_put_done = max(
        i for i, (event, name, _) in enumerate(calls.log) if (event, name) == ("done", "PutObject")
    )
    check = max(i for i, (event, name, _) in enumerate(calls.log) if (event, name) == ("send", "HeadObject"))
    assert check > last_put_done


def test_a_delete_is_three_round_trips(aws: Aws, five: Config) -> None:
    aws.put_source(KEY, imagegen.photo_jpeg(640, 480))
    assert run(aws, five) == {"batchItemFailures": []}
    aws.s3.delete_object(Bucket=SOURCE_BUCKET, Key=KEY)

    calls = Calls(aws.s3, gate={"HeadObject": 6})
    assert run(aws, five, "ObjectRemoved:Delete") == {"batchItemFailures": []}

    assert calls.rounds == [["HeadObject"] * 6, ["DeleteObjects"], ["HeadObject"]]
    assert aws.dest_keys() == []


def test_a_failing_rendition_head_retries_the_removal_of_a_deleted_source(aws: Aws, five: Config) -> None:
    """A removal deletes only what its HEADs found to be this source's renditions (a name may be
    shared with another source: tests/test_shared_names.py): a HEAD that failed is retried, never
    answered by a blind delete."""
    aws.put_source(KEY, imagegen.photo_jpeg(640, 480))
    assert run(aws, five) == {"batchItemFailures": []}
    aws.s3.delete_object(Bucket=SOURCE_BUCKET, Key=KEY)

    def fail_rendition_heads(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "HeadObject" and params["Bucket"] != SOURCE_BUCKET:
            raise aws.s3.exceptions.ClientError({"Error": {"Code": "SlowDown"}}, "HeadObject")

    aws.s3.meta.events.register("before-parameter-build.s3", fail_rendition_heads)
    assert run(aws, five, "ObjectRemoved:Delete") == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert len(aws.dest_keys()) == 5

    aws.s3.meta.events.unregister("before-parameter-build.s3", fail_rendition_heads)
    assert run(aws, five, "ObjectRemoved:Delete") == {"batchItemFailures": []}  # the retry
    assert aws.dest_keys() == []


def test_a_failing_rendition_head_retries_the_record_when_the_source_is_there(aws: Aws, five: Config) -> None:
    aws.put_source(KEY, imagegen.photo_jpeg(640, 480))

    def fail_one(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "HeadObject" and params["Key"].startswith("resized/640x640/"):
            raise aws.s3.exceptions.ClientError({"Error": {"Code": "SlowDown"}}, "HeadObject")

    aws.s3.meta.events.register("before-parameter-build.s3", fail_one)
    assert run(aws, five) == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert aws.dest_keys() == []  # nothing rendered on a half-known state


def test_run_all_waits_for_every_call_then_raises_the_first_failure_in_order() -> None:
    finished: list[str] = []
    release = threading.Event()

    def slow() -> str:
        release.wait(10)
        finished.append("slow")
        return "slow"

    def fails(message: str) -> str:
        release.set()
        raise ValueError(message)

    with pytest.raises(ValueError, match="first"):
        fanout.run_all([slow, lambda: fails("first"), lambda: fails("second")])
    assert finished == ["slow"]  # nothing left in flight
    assert fanout.settle([lambda: 1]) == [1]


def test_the_calls_run_in_the_callers_context() -> None:
    name: contextvars.ContextVar[str] = contextvars.ContextVar("name")
    name.set("record-1")

    assert fanout.run_all([name.get, name.get, name.get]) == ["record-1"] * 3
