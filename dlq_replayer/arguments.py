"""The options of `imgproc dlq inspect | replay | purge` (what the command does with them:
:mod:`dlq_replayer.dlq`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlq_replayer.follow import DEFAULT_TIMEOUT, MAX_TIMEOUT
from dlq_replayer.scan import MAX_VISIBILITY
from toolkit import aws
from toolkit.durations import duration, format_duration
from toolkit.options import add_rate, whole

DEFAULT_VISIBILITY = 120
DEFAULT_MAX_REPLAYS = 3
DEFAULT_SAMPLES = 3
DEFAULT_PREFIX_DEPTH = 2

_positive_int = whole(1)
_count = whole(0)
_visibility = whole(1, MAX_VISIBILITY, too_large=f"at most {MAX_VISIBILITY} seconds (12 hours)")


def _follow_timeout(raw: str) -> float:
    """``--follow-timeout``: a duration longer than 0s, at most :data:`MAX_TIMEOUT`."""
    seconds = duration(raw)
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be longer than 0s")
    if seconds > MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"at most {format_duration(MAX_TIMEOUT)}")
    return seconds


def _add_common(parser: argparse.ArgumentParser, *, verb: str) -> None:
    aws.add_arguments(parser)
    selection = parser.add_argument_group("which messages (all of them without these)")
    selection.add_argument(
        "--error-class",
        action="append",
        default=[],
        metavar="CLASS",
        help="only this error-class, case-insensitive (repeat or comma-separate for several); messages "
        "that SQS redrove after their retries are RetriesExhausted",
    )
    selection.add_argument(
        "--key-prefix",
        action="append",
        default=[],
        metavar="PREFIX",
        help="only messages naming an S3 key that starts with PREFIX, e.g. original/2026/ (repeatable)",
    )
    selection.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="KEY",
        help="only messages naming exactly this S3 key, as S3 stores it (not URL-encoded; repeatable): "
        "unlike --key-prefix, original/a.jpg does not also select original/a.jpg.old",
    )
    selection.add_argument(
        "--older-than",
        type=duration,
        metavar="AGE",
        help="only messages sent at least AGE ago: 30s, 15m, 2h, 1d",
    )
    selection.add_argument(
        "--newer-than", type=duration, metavar="AGE", help="only messages sent at most AGE ago"
    )
    selection.add_argument(
        "--max", type=_positive_int, metavar="N", help=f"{verb} at most N matching messages"
    )
    parser.add_argument(
        "--visibility",
        type=_visibility,
        default=DEFAULT_VISIBILITY,
        metavar="SECONDS",
        help=f"how long a message read stays hidden from other readers during the scan (default "
        f"{DEFAULT_VISIBILITY}); should the command die, that is when they reappear",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "The DLQ and the ingest queue are the stack's DeadLetterQueueUrl and QueueUrl outputs. Nothing is "
        "deleted from the DLQ before it is safely on the ingest queue or in the archive, and every message "
        "read but not taken is made visible again. Run 'imgproc dlq ACTION --help' for an action's options."
    )
    parser.set_defaults(dlq_parser=parser)
    actions = parser.add_subparsers(dest="dlq_action", metavar="ACTION")

    text = "Count DLQ messages by error class, key prefix, age and replay count, with samples."
    sub = actions.add_parser("inspect", help=text, description=text)
    sub.epilog = (
        "Consumes nothing: each message read stays hidden for --visibility seconds and is released when the "
        "scan ends. Exit status: 0; 1 when the stack or AWS cannot be read; 2 bad options; 130 interrupted."
    )
    _add_common(sub, verb="read")
    sub.add_argument(
        "--samples",
        type=_count,
        default=DEFAULT_SAMPLES,
        metavar="N",
        help="samples per error class (default 3)",
    )
    sub.add_argument(
        "--prefix-depth",
        type=_positive_int,
        default=DEFAULT_PREFIX_DEPTH,
        metavar="N",
        help="folders of a key that make its prefix (default 2: original/2026/)",
    )

    text = "Move DLQ messages back to the ingest queue (body and attributes kept, replay-count + 1)."
    sub = actions.add_parser("replay", help=text, description=text)
    sub.epilog = (
        "Sends in batches of 10 and deletes from the DLQ only the messages whose send SQS accepted; refused "
        "and capped ones stay on the DLQ and are listed. Messages that do not match are released at once. "
        "Exit status: 0 when every matching message moved (a dry run: would move) and, with --follow, every "
        "replayed key rendered, ignored by the handler or its source is gone; 1 when one was refused, "
        "capped or left behind, on an AWS error, or with --follow when a replayed key failed again (back on "
        "the DLQ) or was still pending at the deadline; 2 for bad options or when --native is not "
        "supported; 130 after Ctrl-C (during the follow: with the tally known so far)."
    )
    _add_common(sub, verb="replay")
    sub.add_argument("--dry-run", action="store_true", help="report what would move; change nothing")
    add_rate(sub)
    sub.add_argument(
        "--max-replays",
        type=_count,
        default=DEFAULT_MAX_REPLAYS,
        metavar="N",
        help=f"leave messages already replayed N times on the DLQ (default {DEFAULT_MAX_REPLAYS})",
    )
    sub.add_argument("--force", action="store_true", help="replay even messages that reached --max-replays")
    sub.add_argument(
        "--native",
        action="store_true",
        help="let SQS move the whole queue (StartMessageMoveTask); no filters, --max, --dry-run or --follow, "
        "and replay-count is neither incremented nor checked",
    )
    sub.add_argument(
        "--follow",
        action="store_true",
        help="after the replay, follow each replayed key until its outcome is known: rendered (every "
        "rendition carries the source's current ETag), failed again (back on the DLQ, with its class), "
        "ignored (the handler acknowledges it and renders nothing), source gone, or still pending at "
        "--follow-timeout; reads S3 (HEADs) and the DLQ (released at once)",
    )
    sub.add_argument(
        "--follow-timeout",
        type=_follow_timeout,
        metavar="DURATION",
        help=f"how long --follow waits for the outcomes, e.g. 90s, 10m, 1h30m, units in any case (default "
        f"{format_duration(DEFAULT_TIMEOUT)}, at most {format_duration(MAX_TIMEOUT)})",
    )

    text = "Delete DLQ messages after a confirmation, archiving each one to a JSON Lines file first."
    sub = actions.add_parser("purge", help=text, description=text)
    sub.epilog = (
        "An archive line holds MessageId, Body, MessageAttributes and Attributes; lines are appended and "
        "fsynced before their messages are deleted. Exit status: 0 when every matching message was purged; "
        "1 when one could not be, or on an AWS or archive error; 2 for bad options or when not confirmed."
    )
    _add_common(sub, verb="purge")
    sub.add_argument(
        "-y", "--yes", action="store_true", help="do not ask for confirmation (needed without a terminal)"
    )
    where = sub.add_mutually_exclusive_group()
    where.add_argument(
        "--archive",
        type=Path,
        metavar="FILE",
        help="append the purged messages to FILE (default: dlq-archive-<UTC timestamp>.jsonl here)",
    )
    where.add_argument(
        "--no-archive", action="store_true", help="no archive: purged messages are gone for good"
    )
    sub.add_argument("--dry-run", action="store_true", help="report what would be purged; change nothing")
    add_rate(sub, "deletes")
