"""`imgproc dlq inspect | replay | purge`: see what failed and why, put back what is now fixable, and
clear the rest, without ever losing a message.

- ``inspect`` (:mod:`dlq_replayer.census`) reads the DLQ, each message hidden for ``--visibility``
  seconds and all released at the end, and counts by error class, key prefix, age and replay count.
- ``replay`` (:mod:`dlq_replayer.moves`) sends the selected messages to the ingest queue with their
  body and attributes and ``replay-count`` + 1, and deletes from the DLQ exactly what SQS accepted;
  messages that reached ``--max-replays`` stay. The handler copies ``replay-count`` when it
  dead-letters a message again, so the cap holds across rounds. ``--native`` hands the whole queue to
  SQS's ``StartMessageMoveTask`` instead. ``--follow`` then follows each replayed key to its outcome
  (:mod:`dlq_replayer.follow`, run by :mod:`dlq_replayer.replay_follow`).
- ``purge`` appends the selected messages to an fsynced JSON Lines archive, then deletes them.

This module runs the command: confirmation, progress and exit codes; its options are in
:mod:`dlq_replayer.arguments`, the human summaries are laid out in :mod:`dlq_replayer.render`.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dlq_replayer import census, follow, moves, render, replay_follow
from dlq_replayer.scan import Depth, Filters, Scanner, queue_depth
from processor.errors import PermanentError
from toolkit import aws, interrupts
from toolkit.dead_letters import RETRIES_EXHAUSTED
from toolkit.durations import format_duration
from toolkit.errors import StackNotFound, aws_message, one_line
from toolkit.function import FunctionConfigError
from toolkit.interrupts import CtrlCStops
from toolkit.stack import Output, read_outputs
from toolkit.terminal import Block, show
from toolkit.throughput import Progress, RateLimiter

INTERRUPTED = 130  # exit status after Ctrl-C, as shells report it


class DlqError(RuntimeError):
    """A problem the operator must fix (options, stack); ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Queues:
    dlq_url: str
    dlq_arn: str
    ingest_url: str
    ingest_arn: str

    @property
    def dlq_name(self) -> str:
        return self.dlq_arn.rsplit(":", 1)[-1]

    @property
    def ingest_name(self) -> str:
        return self.ingest_arn.rsplit(":", 1)[-1]


def find_queues(args: argparse.Namespace) -> Queues:
    """The queues named by the stack's outputs (docs/design.md, "Contract: stack outputs")."""
    names = (Output.DLQ_URL, Output.DLQ_ARN, Output.QUEUE_URL, Output.QUEUE_ARN)
    outputs = read_outputs(aws.client(args, "cloudformation"), args.stack_name, required=names)
    return Queues(outputs.dlq_url, outputs.dlq_arn, outputs.queue_url, outputs.queue_arn)


# What a DLQ message's error class can be: the handler's permanent classes, and SQS's own redrive.
KNOWN_ERROR_CLASSES = (*sorted(c.__name__ for c in PermanentError.__subclasses__()), RETRIES_EXHAUSTED)


def filters_from(args: argparse.Namespace) -> Filters:
    classes = tuple(c.strip() for raw in args.error_class for c in raw.split(",") if c.strip())
    filters = Filters(
        error_classes=classes,
        key_prefixes=tuple(p for p in args.key_prefix if p),
        keys=tuple(dict.fromkeys(k for k in args.key if k)),
        older_than=args.older_than,
        newer_than=args.newer_than,
    )
    unknown = [c for c in classes if c.lower() not in {k.lower() for k in KNOWN_ERROR_CLASSES}]
    if unknown:  # a typo would silently select nothing; a class of another version may still be real
        print(
            f"imgproc dlq {args.dlq_action}: warning: --error-class {', '.join(unknown)} is not a class "
            f"this version writes ({', '.join(KNOWN_ERROR_CLASSES)}); only messages carrying it match",
            file=sys.stderr,
            flush=True,
        )
    older, newer = filters.older_than, filters.newer_than
    if older is not None and newer is not None and older >= newer:
        raise DlqError(
            f"--older-than {format_duration(older)} with --newer-than {format_duration(newer)} "
            "selects nothing",
            code=2,
        )
    return filters


# ---------------------------------------------------------------------------------------------------
# Running


def run(args: argparse.Namespace) -> int:
    action = _ACTIONS.get(getattr(args, "dlq_action", None) or "")
    if action is None:
        args.dlq_parser.print_help(sys.stderr)
        return 2
    try:  # what stops an action before it starts: bad options, no stack, AWS refusing the first calls
        return action(args)
    except DlqError as exc:
        return _fail(args.dlq_action, str(exc), exc.code)
    except (StackNotFound, ClientError, BotoCoreError) as exc:
        return _fail(args.dlq_action, aws_message(exc) or str(exc), 1)


def _fail(action: str, message: str, code: int) -> int:
    print(f"imgproc dlq {action}: {message}", file=sys.stderr, flush=True)
    return code


def _show(args: argparse.Namespace, doc: dict[str, Any], human: list[Block]) -> None:
    """``--json``: the document, as it always was; else the human summary (rich on a terminal)."""
    if args.json:
        print(json.dumps(doc), flush=True)
    else:
        show(human, sys.stdout)


def _prepare(args: argparse.Namespace) -> tuple[Filters, Any, Queues, Depth]:
    filters = filters_from(args)
    sqs = aws.client(args, "sqs")
    queues = find_queues(args)
    return filters, sqs, queues, queue_depth(sqs, queues.dlq_url)


def _run_inspect(args: argparse.Namespace) -> int:
    filters, sqs, queues, depth = _prepare(args)
    report = census.InspectReport(queues.dlq_name, queues.dlq_url, filters, depth)
    scanner = Scanner(sqs, queues.dlq_url, visibility=args.visibility)
    progress = Progress("dlq inspect: read", total=depth.visible or None)
    code = 0
    try:
        with _stops_on_ctrl_c(scanner, "inspect"):
            census.inspect(
                scanner,
                report,
                limit=args.max,
                samples=args.samples,
                prefix_depth=args.prefix_depth,
                now=_now(),
                progress=progress,
            )
    except KeyboardInterrupt:
        report.interrupted, code = True, INTERRUPTED
    except (ClientError, BotoCoreError) as exc:
        code = _fail("inspect", aws_message(exc) or str(exc), 1)
    finally:
        progress.close()
        report.released += scanner.close()
        report.release_failures = list(scanner.release_failures)
    if code != 1:
        _show(args, report.to_json(args.visibility), render.render_inspect(report, args.visibility))
    return code


def _stops_on_ctrl_c(scanner: Scanner, action: str) -> CtrlCStops:
    """Ctrl-C stops ``scanner``'s command between AWS calls, never inside a receive (see
    :mod:`toolkit.interrupts`); what it holds is then released by the caller's ``close``."""
    if scanner.stop is None:
        scanner.stop = threading.Event()
    return CtrlCStops(scanner.stop, f"imgproc dlq {action}: stopping after the call in flight")


def _moving_scanner(args: argparse.Namespace, sqs: Any, queues: Queues, depth: Depth) -> Scanner:
    """The scanner of a replay or a purge: it takes only the messages that were on the DLQ when the run
    started, so a run never takes its own output (a replayed message that failed again) back."""
    return Scanner(
        sqs,
        queues.dlq_url,
        visibility=args.visibility,
        sent_before_ms=depth.cutoff_ms,
        stop=threading.Event(),
    )


def _limiter(args: argparse.Namespace, scanner: Scanner) -> RateLimiter:
    """``--rate``, waiting on the scanner's stop event: Ctrl-C cuts a wait for the rate short."""
    stop = scanner.stop
    return RateLimiter(args.rate, sleep=stop.wait if stop is not None else time.sleep)


def _execute(
    args: argparse.Namespace,
    report: moves.MoveReport,
    scanner: Scanner,
    work: Callable[[Progress, datetime], None],
    after: Callable[[], None] = lambda: None,
    *,
    summary: bool = True,
) -> int:
    """Run ``work``, then release whatever is still held and print the summary (unless ``summary`` is
    False: the caller prints it), whatever happened."""
    progress = Progress(f"dlq {report.action}: scanned", total=report.depth.visible or None)
    try:
        with _stops_on_ctrl_c(scanner, report.action):
            work(progress, _now())
            interrupts.check(scanner.stop)  # a Ctrl-C after the work's last check was still a Ctrl-C
    except KeyboardInterrupt:
        report.interrupted = True
    except (ClientError, BotoCoreError, OSError) as exc:
        report.error = aws_message(exc) or str(exc)
    finally:
        progress.close()
        after()
        report.released += scanner.close()
        report.release_failures = list(scanner.release_failures)
        report.arrived_during_run = scanner.late
    if summary:
        _show(args, report.to_json(args.visibility), render.render_move(report, args.visibility))
    if report.interrupted:
        return INTERRUPTED
    return 0 if report.ok else 1


def _run_replay(args: argparse.Namespace) -> int:
    if args.follow_timeout is not None and not args.follow:
        raise DlqError("--follow-timeout needs --follow", code=2)
    if args.native:
        return _run_native(args)
    if args.follow and args.dry_run:
        raise DlqError("--follow follows a real replay: a --dry-run sends nothing to follow", code=2)
    filters, sqs, queues, depth = _prepare(args)
    tracker = follow.Tracker(_follow_target(args, queues), depth.cutoff_ms) if args.follow else None
    report = moves.MoveReport(
        "replay",
        queues.dlq_name,
        queues.dlq_url,
        filters,
        depth,
        dry_run=args.dry_run,
        destination=queues.ingest_url,
        limit=args.max,
        rate=args.rate,
        max_replays=None if args.force else args.max_replays,
    )
    scanner = _moving_scanner(args, sqs, queues, depth)
    limiter = _limiter(args, scanner)

    def work(progress: Progress, now: datetime) -> None:
        on_sent = None if tracker is None else tracker.sent
        moves.replay(sqs, scanner, report, limiter=limiter, now=now, progress=progress, on_sent=on_sent)

    code = _execute(args, report, scanner, work, summary=not (args.follow and args.json))
    if tracker is None:
        return code
    return replay_follow.run(args, sqs, tracker, report, code)


def _follow_target(args: argparse.Namespace, queues: Queues) -> follow.Target:
    try:
        return follow.resolve(args, queues.dlq_url)
    except FunctionConfigError as exc:
        raise DlqError(f"--follow: {exc}") from None


def _run_native(args: argparse.Namespace) -> int:
    filters = filters_from(args)
    given = {
        "filters": not filters.empty,
        "--max": args.max is not None,
        "--dry-run": args.dry_run,
        "--follow": args.follow,
    }
    conflicts = [name for name, present in given.items() if present]
    if conflicts:
        raise DlqError(
            f"--native moves the whole queue: it cannot be combined with {', '.join(conflicts)}; "
            "run without --native to replay message by message",
            code=2,
        )
    rate = args.rate
    if rate is not None and (rate != int(rate) or rate > moves.NATIVE_MAX_RATE):
        raise DlqError(f"--native needs a whole --rate from 1 to {moves.NATIVE_MAX_RATE}", code=2)
    sqs = aws.client(args, "sqs")
    queues = find_queues(args)
    depth = queue_depth(sqs, queues.dlq_url)
    try:
        handle = moves.native_move(
            sqs, queues.dlq_arn, queues.ingest_arn, None if rate is None else int(rate), args.endpoint_url
        )
    except moves.NativeUnsupported as exc:
        raise DlqError(
            f"native move not supported by this endpoint ({one_line(str(exc), 200)}); "
            "run without --native to replay message by message",
            code=2,
        ) from None
    warning = (
        "SQS moves every message as it is: replay-count is not incremented and --max-replays is not "
        "applied, so poison messages come back to the DLQ"
    )
    speed = f"at most {int(rate)}/s" if rate else "rate chosen by SQS"
    text: list[Block] = [
        f"started an SQS message move task: {queues.dlq_name} -> {queues.ingest_name} "
        f"({depth.visible} visible, {speed})",
        f"task handle: {handle}",
        f"follow it:   aws sqs list-message-move-tasks --source-arn {queues.dlq_arn}",
        f"warning: {warning}",
    ]
    doc = {
        "action": "replay",
        "native": True,
        "queue": queues.dlq_name,
        "url": queues.dlq_url,
        "destination": queues.ingest_url,
        "visible_at_start": depth.visible,
        "rate": rate,
        "task_handle": handle,
        "warnings": [warning],
    }
    _show(args, doc, text)
    return 0


def default_archive(now: datetime) -> Path:
    return Path(f"dlq-archive-{now.strftime('%Y%m%dT%H%M%SZ')}.jsonl")


def confirm(prompt: str) -> bool:
    """Ask on the terminal; False when there is none (scripts pass --yes)."""
    if not sys.stdin.isatty():
        return False
    print(prompt, end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in {"y", "yes"}


def _purge_prompt(
    filters: Filters, args: argparse.Namespace, queues: Queues, depth: Depth, path: Path | None
) -> str:
    which = "every message" if filters.empty else f"the messages matching {filters.describe()}"
    limit = f" (at most {args.max})" if args.max else ""
    keep = (
        f"Each is first appended to {path}."
        if path
        else "They are NOT archived (--no-archive): purged messages cannot be recovered."
    )
    question = f"Purge {which}{limit} from the DLQ {queues.dlq_name} ({depth.visible} visible)?"
    return f"{question}\n{keep}\nProceed? [y/N] "


def _run_purge(args: argparse.Namespace) -> int:
    filters, sqs, queues, depth = _prepare(args)
    path = None if args.no_archive or args.dry_run else (args.archive or default_archive(_now()))
    if not (args.dry_run or args.yes or confirm(_purge_prompt(filters, args, queues, depth, path))):
        return _fail("purge", "not confirmed, nothing deleted (scripts pass --yes)", 2)
    report = moves.MoveReport(
        "purge",
        queues.dlq_name,
        queues.dlq_url,
        filters,
        depth,
        dry_run=args.dry_run,
        archive=None if path is None else str(path),
        limit=args.max,
        rate=args.rate,
    )
    archive = None if path is None else moves.Archive(path)
    scanner = _moving_scanner(args, sqs, queues, depth)
    limiter = _limiter(args, scanner)

    def work(progress: Progress, now: datetime) -> None:
        moves.purge(sqs, scanner, report, archive=archive, limiter=limiter, now=now, progress=progress)

    return _execute(args, report, scanner, work, after=archive.close if archive else lambda: None)


_ACTIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "inspect": _run_inspect,
    "replay": _run_replay,
    "purge": _run_purge,
}
