"""`imgproc dlq replay --follow` against the real stack deployed into in-process moto, with the function
run on each batch the replay sends (dlqkit.Pipeline): each outcome, the tally, the exit status, Ctrl-C.

The follow reads the deployed function's configuration, so the pipeline runs with exactly that one: the
markers it writes are the ones the follow checks. The end-to-end run on the embedded AWS is in
test_e2e_follow.py: this module's in-process moto stack must not be active meanwhile.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import time
from typing import Any

import boto3
import imagegen
import pytest
from botocore.exceptions import ClientError
from conftest import REGION, hook_sqs, s3_body, s3_record
from dlqkit import CORRUPT, Pipeline, Stack, run_dlq, run_json

from dlq_replayer import follow, moves, render
from dlq_replayer.outcomes import Outcome, Verdict
from imgproc import cli
from processor import dead_letter
from processor.config import Config
from processor.errors import CorruptImage, InvalidEvent
from processor.events import SqsMessage
from toolkit.function import load_function

pytestmark = [
    pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning"),
    pytest.mark.usefixtures("short_polls"),
]


@pytest.fixture(autouse=True)
def quick_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow, "FIRST_PAUSE", 0.02)
    monkeypatch.setattr(follow, "MAX_PAUSE", 0.05)


@pytest.fixture
def function_config(stack: Stack) -> Config:
    lam = boto3.client("lambda", region_name=REGION)
    return Config.from_env(load_function(lam, stack.outputs["FunctionName"]).environment)


@pytest.fixture
def pipeline(stack: Stack, function_config: Config) -> Pipeline:
    return Pipeline(stack, function_config)


@pytest.fixture
def running(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    """The pipeline turning each replayed batch around as soon as SQS took it."""
    hook_sqs(monkeypatch, "after-call.sqs.SendMessageBatch", pipeline.drain)
    return pipeline


def dead_lettered(stack: Stack, pipeline: Pipeline, *keys: str) -> None:
    """Corrupt uploads of ``keys``, each dead-lettered once by the function as CorruptImage."""
    for key in keys:
        pipeline.put(key, CORRUPT)
        pipeline.notify(key)
    pipeline.drain()
    assert stack.counts() == {"ingest": (0, 0), "dlq": (len(keys), 0)}


def fix(pipeline: Pipeline, key: str) -> str:
    """A valid upload of ``key`` whose S3 event is lost: only the replay can render it. Its ETag."""
    data = imagegen.photo_jpeg(320, 240)
    return str(
        pipeline.s3.put_object(Bucket=pipeline.config.source_bucket, Key=key, Body=data)["ETag"]
    ).strip('"')


def dead_letter_of(stack: Stack, key: str, original_id: str | None = None) -> None:
    """A CorruptImage dead letter of ``key`` in the stack's source bucket, as the handler writes it."""
    body = s3_body(s3_record(key, bucket=stack.outputs["SourceBucketName"]))
    message = SqsMessage(original_id or f"m-{key}", body, receive_count=1, replay_count=0)
    dead_letter.send(stack.sqs, stack.dlq, message, CorruptImage("x"))
    time.sleep(0.002)  # distinct SentTimestamps


def marker_etag(pipeline: Pipeline, key: str) -> str | None:
    try:
        head = pipeline.s3.head_object(Bucket=pipeline.config.dest_bucket, Key=key)
    except pipeline.s3.exceptions.ClientError:
        return None
    return head["Metadata"].get("source-etag")


def test_each_outcome_is_tallied_and_a_failure_again_exits_1(
    stack: Stack, running: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    fixed, bad, gone = "original/f/fixed.jpg", "original/f/bad.jpg", "original/f/gone one.jpg"
    dead_lettered(stack, running, fixed, bad, gone)
    etag = fix(running, fixed)
    running.s3.delete_object(Bucket=running.config.source_bucket, Key=gone)

    code, doc = run_json(capsys, "replay", "--follow", "--follow-timeout", "30s")

    assert (code, doc["moved"], doc["ok"]) == (1, 3, False)  # the top-level verdict agrees with the exit
    followed = doc["follow"]
    assert followed["tally"] == {
        "rendered": 1,
        "failed_again": 1,
        "ignored": 0,
        "source_gone": 1,
        "pending": 0,
    }
    assert [(f["key"], f["error_class"]) for f in followed["failed_again"]] == [(bad, "CorruptImage")]
    outcomes = {item["key"]: item["outcome"] for item in followed["keys"]}
    assert outcomes == {fixed: "rendered", bad: "failed again", gone: "source gone"}
    assert (followed["timed_out"], followed["interrupted"], followed["ok"]) == (False, False, False)
    assert marker_etag(running, "resized/300x300/f/fixed.jpg") == etag
    # Its reads of the DLQ consumed nothing and left nothing hidden: the failure is there, visible.
    assert stack.counts() == {"ingest": (0, 0), "dlq": (1, 0)}
    (back,) = stack.snapshot(stack.dlq).values()
    assert back["MessageAttributes"]["replay-count"]["StringValue"] == "1"


def test_all_rendered_exits_0_with_the_tally_in_plain_lines(
    stack: Stack, running: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = ["original/ok/a.jpg", "original/ok/b.jpg"]
    dead_lettered(stack, running, *keys)
    for key in keys:
        fix(running, key)

    code, out, err = run_dlq(capsys, "replay", "--follow")

    assert code == 0
    lines = out.splitlines()
    assert lines[2] == "replayed 2 (CorruptImage 2)"
    assert lines[3].startswith("follow: 2 replayed key(s), ")
    assert "(--follow-timeout 5m), 1 round(s)" in lines[3]
    assert lines[4:] == [
        "  outcome        keys",
        "  rendered          2",
        "  failed again      0",
        "  ignored           0",
        "  source gone       0",
        "  still pending     0",
    ]
    # Off a terminal, the live tally is plain lines on stderr.
    assert err.splitlines()[-1].endswith(
        ": rendered 2, failed again 0, ignored 0, source gone 0, still pending 0"
    )
    assert stack.counts() == {"ingest": (0, 0), "dlq": (0, 0)}


def test_nothing_consumes_the_replay_pending_at_the_deadline_exits_1(
    stack: Stack, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    fix(pipeline, "original/p.jpg")
    dead_letter_of(stack, "original/p.jpg")

    code, out, _ = run_dlq(capsys, "replay", "--follow", "--follow-timeout", "0.3s")

    assert code == 1
    assert "  still pending     1" in out.splitlines()
    assert out.splitlines()[-2:] == [
        "still pending at the deadline (queued, in flight or being retried):",
        "  original/p.jpg",
    ]
    assert stack.counts() == {"ingest": (1, 0), "dlq": (0, 0)}


def test_a_rendition_claimed_by_another_source_key_is_not_rendered_for_the_replayed_one(
    stack: Stack, pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `noext` (no extension, transparent: rendered as PNG) writes where `noext.png` does.
    bare, named = "original/c/noext", "original/c/noext.png"
    dead_lettered(stack, pipeline, named)
    pipeline.put(named, imagegen.png_rgba(64, 48))  # fixed, its event lost: the replay renders it
    pipeline.put(bare, imagegen.png_rgba(48, 64))

    def replayed_then_bare(**_: Any) -> None:
        pipeline.drain()  # the replayed `noext.png` renders...
        pipeline.notify(bare)
        pipeline.drain()  # ...then `noext` takes its rendition keys

    hook_sqs(monkeypatch, "after-call.sqs.SendMessageBatch", replayed_then_bare)

    code, doc = run_json(capsys, "replay", "--follow", "--follow-timeout", "0.5s")

    assert code == 1
    followed = doc["follow"]
    assert (followed["tally"]["rendered"], followed["tally"]["pending"]) == (0, 1)
    (item,) = followed["keys"]
    assert (item["key"], item["outcome"], item["claimed_by"]) == (named, "pending", bare)
    head = pipeline.s3.head_object(Bucket=pipeline.config.dest_bucket, Key="resized/300x300/c/noext.png")
    assert head["Metadata"]["source-key"] == bare
    # The summary says why it may never render.
    pending = follow.Item(named, {"m"}, verdict=Verdict(Outcome.PENDING, claimed_by=bare))
    lines = render.render_follow(follow.FollowReport(0.5, [pending], timed_out=True))
    assert lines[-1] == (
        f"  {named}  (its rendition is claimed by {bare}: a name collision, see imgproc explain)"
    )


def test_a_replay_that_sqs_redrives_again_failed_again_as_retries_exhausted(
    stack: Stack, pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.redriven("original/slow.jpg")
    fix(pipeline, "original/slow.jpg")

    def redrive_at_once(params: dict[str, Any], **_: Any) -> None:
        for entry in params["Entries"]:  # SQS's redrive keeps the attributes the replay set
            stack.sqs.send_message(
                QueueUrl=stack.dlq,
                MessageBody=entry["MessageBody"],
                MessageAttributes=entry["MessageAttributes"],
            )

    hook_sqs(monkeypatch, "before-parameter-build.sqs.SendMessageBatch", redrive_at_once)

    code, doc = run_json(capsys, "replay", "--follow")

    assert code == 1
    (failed,) = doc["follow"]["failed_again"]
    assert (failed["key"], failed["error_class"], failed["error_message"]) == (
        "original/slow.jpg",
        "RetriesExhausted",
        None,
    )


def test_an_older_copy_of_the_failure_left_on_the_dlq_is_not_a_new_failure(
    stack: Stack, running: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two copies of one failure: the run replays one and leaves the other (replay-count 0) for the
    next run; the follow does not take that copy for the replayed message coming back."""
    key = "original/twice.jpg"
    fix(running, key)
    dead_letter_of(stack, key, original_id="m-1")
    dead_letter_of(stack, key, original_id="m-1")

    code, doc = run_json(capsys, "replay", "--follow")

    assert (code, doc["moved"], doc["repeated"]) == (0, 1, 1)
    assert doc["follow"]["tally"]["rendered"] == 1
    assert stack.counts() == {"ingest": (0, 0), "dlq": (1, 0)}


def test_a_message_naming_no_key_is_followed_by_the_dlq_alone(
    stack: Stack, running: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    message = SqsMessage("m-garbage", "this is no S3 event", receive_count=1, replay_count=0)
    dead_letter.send(stack.sqs, stack.dlq, message, InvalidEvent("not JSON"))

    code, doc = run_json(capsys, "replay", "--follow")

    assert code == 1
    (item,) = doc["follow"]["keys"]
    assert (item["key"], item["failure_ids"], item["outcome"], item["error_class"]) == (
        None,
        ["m-garbage"],
        "failed again",
        "InvalidEvent",
    )


def test_a_round_heads_a_bounded_number_of_keys_in_turn(
    stack: Stack, running: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [f"original/turn/{i}.jpg" for i in range(3)]
    dead_lettered(stack, running, *keys)
    for key in keys:
        fix(running, key)
    monkeypatch.setattr(follow, "KEYS_PER_ROUND", 1)

    code, doc = run_json(capsys, "replay", "--follow", "--follow-timeout", "30s")

    assert (code, doc["follow"]["tally"]["rendered"], doc["follow"]["rounds"]) == (0, 3, 3)


def test_nothing_replayed_nothing_followed(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run_json(capsys, "replay", "--follow")

    assert (code, doc["moved"], doc["follow"]["rounds"], doc["follow"]["keys"]) == (0, 0, 0, [])


def test_an_aws_error_while_following_ends_it_with_exit_1(
    stack: Stack, pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fix(pipeline, "original/denied.jpg")
    dead_letter_of(stack, "original/denied.jpg")

    def denied(*args: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "HeadObject")

    monkeypatch.setattr(follow.storage, "head_source", denied)

    code, out, err = run_dlq(capsys, "replay", "--follow")

    assert code == 1
    assert out.splitlines()[-2:] == [
        "  original/denied.jpg",
        "follow stopped by an error: AWS refused (HeadObject): AccessDenied: Access Denied",
    ]
    assert "Traceback" not in err


def test_a_key_the_handler_ignores_is_known_at_once(
    stack: Stack, running: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.dead_letter("original/elsewhere.jpg", CorruptImage("x"))  # another bucket's event

    code, out, _ = run_dlq(capsys, "replay", "--follow", "--follow-timeout", "1m")

    assert code == 0
    assert "  ignored           1" in out.splitlines()
    assert out.splitlines()[-2:] == [
        "ignored by the handler (it acknowledges such records and renders nothing):",
        "  original/elsewhere.jpg  (foreign-bucket)",
    ]


def test_ctrl_c_during_the_follow_ends_with_what_is_known(
    stack: Stack, pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fix(pipeline, "original/wait.jpg")
    dead_letter_of(stack, "original/wait.jpg")
    read = follow.read_dead_letters

    def ctrl_c_in_the_first_round(sqs: Any, url: str) -> list[dict[str, Any]]:
        os.kill(os.getpid(), signal.SIGINT)  # lands while the round's calls go on
        return read(sqs, url)

    monkeypatch.setattr(follow, "read_dead_letters", ctrl_c_in_the_first_round)

    code, out, err = run_dlq(capsys, "replay", "--follow", "--follow-timeout", "1m", "--json")

    doc = json.loads(out)
    assert code == 130
    assert (doc["moved"], doc["follow"]["interrupted"], doc["follow"]["rounds"]) == (1, True, 1)
    assert doc["follow"]["pending"] == ["original/wait.jpg"]
    assert (
        err.strip()
        == "imgproc dlq replay: stopping the follow after the calls in flight (Ctrl-C again to stop at once)"
    )
    assert stack.counts() == {"ingest": (1, 0), "dlq": (0, 0)}  # nothing of the DLQ left hidden


def test_ctrl_c_in_a_first_round_that_settles_every_key_still_exits_130(
    stack: Stack, running: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dead_lettered(stack, running, "original/f/bad.jpg")  # fails again at once: final in the first round
    read = follow.read_dead_letters

    def ctrl_c_in_the_first_round(sqs: Any, url: str) -> list[dict[str, Any]]:
        os.kill(os.getpid(), signal.SIGINT)
        return read(sqs, url)

    monkeypatch.setattr(follow, "read_dead_letters", ctrl_c_in_the_first_round)

    code, doc = run_json(capsys, "replay", "--follow", "--follow-timeout", "1m")

    followed = doc["follow"]
    assert (code, followed["interrupted"], followed["rounds"], followed["ok"]) == (130, True, 1, False)
    assert followed["tally"]["failed_again"] == 1  # what the round learnt is kept


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--follow", "--dry-run"], "--follow follows a real replay: a --dry-run sends nothing to follow"),
        (["--follow", "--native"], "--native moves the whole queue: it cannot be combined with --follow"),
        (["--follow-timeout", "1m"], "--follow-timeout needs --follow"),
    ],
)
def test_follow_options_that_cannot_work_exit_2(
    stack: Stack, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    stack.dead_letter("original/a.jpg", CorruptImage("x"))

    code, out, err = run_dlq(capsys, "replay", *args)

    assert (code, out) == (2, "")
    assert err.startswith(f"imgproc dlq replay: {message}")
    assert stack.counts() == {"ingest": (0, 0), "dlq": (1, 0)}


# ---------------------------------------------------------------------------------------------------
# the live tally


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def report_of(*outcomes: Outcome) -> follow.FollowReport:
    report = follow.FollowReport(timeout=300, elapsed=12)
    report.items = [
        follow.Item(f"original/{i}.jpg", {f"m-{i}"}, None, Verdict(o)) for i, o in enumerate(outcomes)
    ]
    return report


def test_the_help_names_every_outcome_and_the_timeout_takes_units_in_any_case() -> None:
    parser = cli.build_parser()
    (dlq,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    (actions,) = [a for a in dlq.choices["dlq"]._actions if isinstance(a, argparse._SubParsersAction)]
    text = " ".join(actions.choices["replay"].format_help().split())
    assert "with --follow, every replayed key rendered, ignored by the handler or its source is gone" in text
    assert "ignored (the handler acknowledges it and renders nothing)" in text
    assert "units in any case" in text
    args = parser.parse_args(["dlq", "replay", "--follow", "--follow-timeout", "5M"])
    assert args.follow_timeout == 300


def test_on_a_terminal_the_tally_is_redrawn_in_place_then_erased(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    stream = Tty()
    with follow.TallyDisplay(stream, render.follow_live, render.follow_line) as display:
        display.update(report_of(Outcome.PENDING, Outcome.PENDING))
        display.update(report_of(Outcome.RENDERED, Outcome.FAILED_AGAIN))
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", stream.getvalue())
    assert "following 2 replayed key(s): 12s of 5m" in drawn
    assert re.search(r"^  rendered +1$", drawn, re.M)
    assert re.search(r"^  failed again +1$", drawn, re.M)
    assert stream.getvalue().endswith(
        "\x1b[1A\x1b[2K" * 7
    )  # its 7 lines erased at the end: the summary follows


def test_off_a_terminal_the_tally_is_a_line_when_it_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    with follow.TallyDisplay(stream, render.follow_live, render.follow_line) as display:
        display.update(report_of(Outcome.PENDING))
        display.update(report_of(Outcome.PENDING))  # unchanged: not printed again
        display.update(report_of(Outcome.RENDERED))  # changed, but too soon: printed at the end
    assert stream.getvalue().splitlines() == [
        "follow 12s of 5m: rendered 0, failed again 0, ignored 0, source gone 0, still pending 1",
        "follow 12s of 5m: rendered 1, failed again 0, ignored 0, source gone 0, still pending 0",
    ]


def test_every_key_of_a_message_back_on_the_dlq_failed_again_even_one_seen_rendered(
    stack: Stack, pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One message naming a rendered key and a corrupt one: a first round may see the first rendered
    before the handler gets the replayed message; once the message is back on the DLQ (the DLQ is per
    message), both keys failed again."""
    source = stack.outputs["SourceBucketName"]
    a, b = "original/m/a.jpg", "original/m/b.jpg"
    pipeline.put(a, imagegen.photo_jpeg(320, 240))
    pipeline.notify(a)
    pipeline.drain()
    pipeline.put(b, CORRUPT)
    body = s3_body(s3_record(a, bucket=source), s3_record(b, bucket=source))
    dead_letter.send(
        stack.sqs, stack.dlq, SqsMessage("m-ab", body, receive_count=1, replay_count=0), CorruptImage("x")
    )
    real, rounds = follow._heads, []

    def heads(*args: Any, **kwargs: Any) -> int:  # the handler gets the replay after round 1's HEADs
        turn = real(*args, **kwargs)
        rounds.append(turn)
        if len(rounds) == 1:
            pipeline.drain()
        return turn

    monkeypatch.setattr(follow, "_heads", heads)
    code, doc = run_json(capsys, "replay", "--follow", "--follow-timeout", "20s")

    assert {i["key"]: i["outcome"] for i in doc["follow"]["keys"]} == {a: "failed again", b: "failed again"}
    assert code == 1


def test_a_replayed_test_event_is_ignored_at_once(
    stack: Stack, running: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    """S3's s3:TestEvent names no key and the handler acknowledges it: nothing would ever settle it."""
    body = json.dumps(
        {
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": "2026-11-30T00:00:00Z",
            "Bucket": stack.outputs["SourceBucketName"],
            "RequestId": "R",
            "HostId": "H",
        }
    )
    stack.sqs.send_message(QueueUrl=stack.dlq, MessageBody=body)  # redriven by SQS: no attributes

    code, doc = run_json(capsys, "replay", "--follow", "--follow-timeout", "20s")

    assert (code, doc["follow"]["timed_out"], doc["follow"]["pending"]) == (0, False, [])
    assert doc["follow"]["tally"]["ignored"] == 1


def test_ctrl_c_after_the_replays_last_call_is_still_an_interruption(
    stack: Stack, pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Ctrl-C lands once the replay made its last stop check: acknowledged ("stopping after the
    call in flight"), so the follow must not start and the exit status is 130."""
    fix(pipeline, "original/late.jpg")
    dead_letter_of(stack, "original/late.jpg")
    replay = moves.replay

    def then_ctrl_c(*args: Any, **kwargs: Any) -> None:
        replay(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(moves, "replay", then_ctrl_c)

    code, doc = run_json(capsys, "replay", "--follow", "--follow-timeout", "1m")

    assert (code, doc["moved"], doc["interrupted"]) == (130, 1, True)
    assert doc["follow"] is None or doc["follow"]["rounds"] == 0
