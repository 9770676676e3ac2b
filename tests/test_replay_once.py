"""One replay run moves each failure at most once, also while the pipeline works (in-process moto).

With the function running, a replayed message that fails again is back on the DLQ within
milliseconds; a run must not take it again. Same for a purge: it purges what was there when it
started. And Ctrl-C leaves nothing hidden.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import imagegen
import pytest
from conftest import hook_sqs, s3_body, s3_record
from dlqkit import Pipeline, Stack, run_dlq, run_json

from processor.errors import NotAnImage
from toolkit import dead_letters

pytestmark = [
    pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning"),
    pytest.mark.usefixtures("short_polls"),
]


@pytest.fixture
def pipeline(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    running = Pipeline(stack)
    hook_sqs(monkeypatch, "after-call.sqs.SendMessageBatch", running.drain)
    return running


def poison(stack: Stack, pipeline: Pipeline, count: int) -> list[str]:
    """``count`` corrupt uploads, each dead-lettered once by the function; returns their keys."""
    keys = [f"original/poison/{i}.jpg" for i in range(count)]
    for key in keys:
        pipeline.put(key, b"<html>not an image</html>")
        pipeline.notify(key)
    pipeline.drain()
    assert stack.counts() == {"ingest": (0, 0), "dlq": (count, 0)}
    return keys


def test_a_replay_moves_each_always_failing_message_exactly_once(
    stack: Stack, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    poison(stack, pipeline, 4)

    code, doc = run_json(capsys, "replay", "--error-class", "NotAnImage")

    assert (code, doc["scanned"], doc["matched"], doc["moved"]) == (0, 4, 4, 4)
    # Each came straight back and was left for the next run: recognised by its SentTimestamp after
    # the run's start, or (within the start's second) by the failure id the run already replayed.
    assert doc["arrived_during_run"] + doc["repeated"] == 4
    assert pipeline.records == 8  # 4 first failures, 4 replays: no more
    back = stack.snapshot(stack.dlq)
    assert len(back) == 4
    assert {m["MessageAttributes"]["replay-count"]["StringValue"] for m in back.values()} == {"1"}


def test_force_can_never_loop(stack: Stack, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    poison(stack, pipeline, 3)

    for round_number in (1, 2, 3, 4):
        code, doc = run_json(capsys, "replay", "--force")
        assert (code, doc["moved"], doc["arrived_during_run"] + doc["repeated"]) == (0, 3, 3)
        counts = {
            m["MessageAttributes"]["replay-count"]["StringValue"] for m in stack.snapshot(stack.dlq).values()
        }
        assert counts == {str(round_number)}
    assert pipeline.records == 3 + 4 * 3


def test_a_redriven_message_replayed_and_redriven_again_is_not_taken_twice(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQS's own redrive keeps no attributes of ours; the replay gives it ``original-message-id``,
    which SQS keeps on the next redrive: the run recognises its own output even without timestamps."""
    stack.redriven("original/slow.jpg")

    def redrive_at_once(params: dict[str, Any], **_: Any) -> None:
        for entry in params["Entries"]:  # a copy straight back on the DLQ, as a redrive would put it
            stack.sqs.send_message(
                QueueUrl=stack.dlq,
                MessageBody=entry["MessageBody"],
                MessageAttributes=entry["MessageAttributes"],
            )

    hook_sqs(monkeypatch, "before-parameter-build.sqs.SendMessageBatch", redrive_at_once)
    monkeypatch.setattr("dlq_replayer.scan.DATE_RESOLUTION_MS", 60_000)  # timestamps cannot tell them apart

    code, doc = run_json(capsys, "replay")

    assert (code, doc["moved"], doc["repeated"]) == (0, 1, 1)


def test_copies_of_one_failure_are_replayed_once_per_run(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker killed after its DLQ send but before the batch settled: the same failure twice."""
    stack.dead_letter("original/a.jpg", NotAnImage("x"), original_id="m-1")
    stack.dead_letter("original/a.jpg", NotAnImage("x"), original_id="m-1")

    code, doc = run_json(capsys, "replay")

    assert (code, doc["moved"], doc["repeated"]) == (0, 1, 1)
    assert stack.counts() == {"ingest": (1, 0), "dlq": (1, 0)}  # the copy waits, visible, for the next run


def test_two_failures_of_one_key_cost_one_render_once_the_source_is_fixed(
    stack: Stack, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    """A duplicate S3 event of a corrupt upload leaves two DLQ messages; replaying both after the fix
    renders once: the second finds the renditions current (HEADs only)."""
    key = "original/dup.jpg"
    pipeline.put(key, b"not yet an image")
    for _ in range(2):
        pipeline.notify(key)
    pipeline.drain()
    assert stack.depth(stack.dlq) == (2, 0)
    pipeline.put(key, imagegen.photo_jpeg(320, 240))

    code, doc = run_json(capsys, "replay")

    assert (code, doc["moved"]) == (0, 2)
    assert (pipeline.records, pipeline.renders) == (4, 1)
    assert stack.counts() == {"ingest": (0, 0), "dlq": (0, 0)}


def test_a_purge_purges_what_was_there_and_says_what_arrived_meanwhile(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    stack.dead_letter("original/a.jpg", NotAnImage("x"))
    stack.dead_letter("original/b.jpg", NotAnImage("x"))
    time.sleep(1.1)  # SQS's Date header has whole seconds: the run starts in a later one
    arrived: list[str] = []

    def a_new_failure(**_: Any) -> None:
        if not arrived:
            arrived.append("late")
            stack.sqs.send_message(QueueUrl=stack.dlq, MessageBody=s3_body(s3_record("original/late.jpg")))

    hook_sqs(monkeypatch, "before-call.sqs.DeleteMessageBatch", a_new_failure)
    monkeypatch.setattr("dlq_replayer.scan.DATE_RESOLUTION_MS", 0)  # moto's clock is this machine's

    code, doc = run_json(capsys, "purge", "--yes", "--archive", str(tmp_path / "a.jsonl"))

    assert (code, doc["moved"], doc["arrived_during_run"]) == (0, 2, 1)
    left = stack.snapshot(stack.dlq)
    assert [dead_letters.source_keys(m["Body"]) for m in left.values()] == [["original/late.jpg"]]


def test_ctrl_c_during_a_receive_leaves_nothing_hidden(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(25):
        stack.dead_letter(f"original/{i}.jpg", NotAnImage("x"))
    receives: list[int] = []

    def ctrl_c_mid_receive(**_: Any) -> None:
        receives.append(1)
        if len(receives) == 2:  # SQS has chosen and hidden the messages when the signal lands
            os.kill(os.getpid(), signal.SIGINT)

    hook_sqs(monkeypatch, "after-call.sqs.ReceiveMessage", ctrl_c_mid_receive)

    code, doc = run_json(capsys, "replay", "--max-replays", "0")  # every one capped: all stay

    assert code == 130
    assert doc["interrupted"] is True
    assert stack.counts() == {"ingest": (0, 0), "dlq": (25, 0)}  # released at once, none in flight


def test_ctrl_c_cuts_a_wait_for_the_rate_short_and_sends_nothing_more(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(30):
        stack.dead_letter(f"original/{i}.jpg", NotAnImage("x"))
    sends: list[int] = []

    def ctrl_c_after_the_first_send(**_: Any) -> None:
        sends.append(1)
        if len(sends) == 1:  # the next batch must wait 10 s for --rate 1: Ctrl-C lands in that wait
            threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()

    hook_sqs(monkeypatch, "after-call.sqs.SendMessageBatch", ctrl_c_after_the_first_send)
    started = time.monotonic()

    code, doc = run_json(capsys, "replay", "--rate", "1")

    assert time.monotonic() - started < 5  # not the 10 s the rate would have waited
    assert (code, doc["interrupted"], doc["moved"], len(sends)) == (130, True, 10, 1)
    assert stack.counts() == {"ingest": (10, 0), "dlq": (20, 0)}  # the rest visible again at once


def test_the_summary_says_in_one_line_what_was_left_for_the_next_run_and_why(
    stack: Stack, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    poison(stack, pipeline, 2)

    code, out, _ = run_dlq(capsys, "replay")

    assert code == 0
    (left,) = [line for line in out.splitlines() if line.startswith("left ")]
    assert left.startswith("left 2 message(s) on the DLQ for the next run: ")
