"""`imgproc backfill`: enqueue S3-event-shaped messages for source objects that already exist.

For a stack deployed over a bucket that already holds images (or after the queue lost messages,
e.g. past its retention), this lists the source bucket and puts one message per key on the ingest
queue, exactly as S3 would have on upload; the function then renders whatever is missing or stale.

Usage::

    imgproc backfill --dry-run                          # what would be enqueued (nothing is sent)
    imgproc backfill                                    # every key under the source prefix
    imgproc backfill --prefix original/2024/ --suffix .jpg,.png --since 7d --rate 200
    imgproc backfill --skip-current                     # HEAD the renditions first: stale keys only
    imgproc backfill --max-backlog 2000                 # stay at most ~2,000 messages ahead of the function
    imgproc backfill --start-after 'original/m/…'       # resume where an earlier run stopped

Listing is streamed (``ListObjectsV2`` pages of 1,000, in key order) and sent in ``SendMessageBatch``
calls of 10 as it goes, so memory stays bounded however many keys the bucket holds. Filters: the
prefix (default and outer bound: the function's ``SOURCE_PREFIX``), ``--since`` (``LastModified`` at
or after an ISO-8601 time or ``7d``/``12h``/``30m``, inclusive at S3's one-second precision),
``--suffix`` (comma-separated, case-insensitive), and whatever the handler would ignore anyway
(folder markers). With ``--skip-current`` each remaining key's renditions are HEADed (8 at a time)
and the key is skipped when every rendition's idempotency marker matches the listed ETag and the
current recipe, as the handler itself would decide.

The messages are indistinguishable, for the handler, from S3's own: one record per message with
every field of a real ``ObjectCreated`` record (key URL-encoded as S3 does, ETag, size, sequencer),
``configurationId`` ``imgproc-backfill`` and one extra field, ``"imgprocBackfill": true``
(:data:`processor.events.BACKFILL_MARKER`), which the handler logs as ``backfill=true``. The event
name is always ``ObjectCreated:Put``: the handler reconciles each key with its current state, so the
name is only a hint.

Pacing: ``--rate`` caps messages per second; ``--max-backlog N`` holds the sends back while the ingest
queue has N or more messages waiting (:class:`~dlq_replayer.throughput.Backpressure`), so that a
backfill of millions never runs more than about N messages ahead of the function, whatever speed it
is consuming at: fresh uploads then wait behind at most N backfilled keys, not behind the whole
backlog, and no backfilled message sits in the queue long enough to meet its retention period.

Checkpoint and resume: the summary's ``last_key`` is the greatest key such that it and every key
before it was enqueued, skipped or filtered out. Ctrl-C stops once the batch in flight is settled,
prints ``interrupted; resume with: imgproc backfill --start-after '<last_key>' …`` and exits 130 (a
second Ctrl-C stops at once; the checkpoint is then still safe, but the unsettled batch may be sent
again on resume). Entries that SQS still refuses after the retries are listed, the checkpoint stays
before the first of them, and the exit status is 1. Resuming from the checkpoint guarantees that
every key is enqueued at least once; a key is enqueued twice only when it follows a failed entry or
was in flight at a second Ctrl-C or a connection failure, which is harmless: the handler
reconciles. ``--max-keys N`` stops after N listed keys the same way (exit 0), for a trial run or a
run in slices.

Exit status: 0 all matching keys enqueued, 1 some entries could not be sent (or AWS failed
mid-run), 2 usage or stack errors, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any
from urllib.parse import quote_plus

from botocore.exceptions import BotoCoreError, ClientError

from dlq_replayer.interrupts import CtrlCStops
from dlq_replayer.throughput import SQS_BATCH, Backpressure, Progress, RateLimiter, send_batch
from imgproc import aws
from imgproc.boundary import UsageError
from imgproc.function import load_function
from processor import markers, storage
from processor.config import Config, ConfigError
from processor.events import BACKFILL_MARKER
from processor.renditions import ignore_reason, plan_renditions

CONFIGURATION_ID = "imgproc-backfill"  # s3.configurationId of every backfilled record
EVENT_NAME = "ObjectCreated:Put"  # a hint only: the handler reconciles with the source's current state
PRINCIPAL = "imgproc-backfill"  # userIdentity / ownerIdentity principalId
LIST_PAGE = 1000  # ListObjectsV2 maximum
HEAD_THREADS = 8  # --skip-current: rendition HEADs in flight at once
CHECK_CHUNK = 64  # --skip-current: keys checked ahead of the sender, at most
MAX_LISTED_FAILURES = 1000  # failed keys kept for the report (all are counted)
FAILED_BATCHES_ABORT = 3  # consecutive batches with no entry accepted: stop, SQS is refusing everything

_AWS_OPTIONS = (("--stack-name", "stack_name"), ("--endpoint-url", "endpoint_url"), ("--region", "region"))
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

# Decisions on a listed key.
FILTERED = "filtered"  # outside --since / --suffix, or a key the handler ignores (folder marker)
CURRENT = "current"  # --skip-current: every rendition is up to date
ENQUEUE = "enqueue"


class BackfillError(RuntimeError):
    """The stack's function configuration cannot be used; the message says why (exit 1: the
    environment is wrong, not the command line)."""


# --- the messages ------------------------------------------------------------------------------


def encode_key(key: str) -> str:
    """The key as S3 writes it into event records: form-encoded (space as ``+``), ``/`` kept."""
    return quote_plus(key, safe="/")


def s3_record(
    *,
    bucket: str,
    key: str,
    size: int,
    etag: str,
    region: str,
    event_time: datetime,
    sequencer: str,
    request_id: str,
) -> dict[str, Any]:
    """One ``ObjectCreated:Put`` record shaped exactly like S3's, plus ``imgprocBackfill: true``.

    ``versionId`` is absent: ``ListObjectsV2`` does not return it, and the handler reads the current
    version anyway.
    """
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": event_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "eventName": EVENT_NAME,
        "userIdentity": {"principalId": PRINCIPAL},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": request_id, "x-amz-id-2": CONFIGURATION_ID},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": CONFIGURATION_ID,
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": PRINCIPAL},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": {
                "key": encode_key(key),
                "size": int(size),
                "eTag": markers.strip_quotes(etag),
                "sequencer": sequencer,
            },
        },
        BACKFILL_MARKER: True,
    }


def message_body(record: dict[str, Any]) -> str:
    """An SQS body as S3 writes it: ``{"Records": [record]}``, compact JSON."""
    return json.dumps({"Records": [record]}, separators=(",", ":"))


# --- options -----------------------------------------------------------------------------------


def parse_since(raw: str, now: datetime | None = None) -> datetime:
    """``7d``, ``12h``, ``30m``, ``90s``, ``2w`` ago, or an ISO-8601 date/time (naive means UTC);
    floored to the second, since S3's ``LastModified`` has one-second precision."""
    now = now or datetime.now(UTC)
    match = _DURATION.match(raw)
    if match:
        when = now - timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})
    else:
        try:
            when = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{raw!r} is neither an ISO-8601 date/time nor a duration like 7d, 12h, 30m"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).replace(microsecond=0)


def parse_suffixes(raw: str) -> tuple[str, ...]:
    suffixes = tuple(dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip()))
    if not suffixes:
        raise argparse.ArgumentTypeError("give at least one suffix, e.g. .jpg,.png")
    return suffixes


# --- the run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where keys come from and go to, and the function's configuration (for filters and markers)."""

    bucket: str
    queue_url: str
    region: str
    config: Config


@dataclass(frozen=True)
class Options:
    prefix: str
    start_after: str | None = None
    since: datetime | None = None
    suffixes: tuple[str, ...] = ()
    skip_current: bool = False
    dry_run: bool = False
    max_keys: int | None = None
    max_backlog: int | None = None


@dataclass
class Summary:
    listed: int = 0
    filtered: int = 0
    current: int = 0
    enqueued: int = 0  # with --dry-run: would be enqueued
    failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)  # the first MAX_LISTED_FAILURES
    last_key: str | None = None  # the checkpoint
    complete: bool = False  # listing exhausted, and every matching key enqueued
    stopped: str | None = None  # "interrupted", "max-keys", "send-failures", "error"
    error: str | None = None
    elapsed_seconds: float = 0.0
    held_back_seconds: float = 0.0  # --max-backlog: time spent waiting for the queue to drain


MIN_RATE_SECONDS = 0.5  # a rate over a shorter time says more about the clock than about the work


def rate_text(count: int, seconds: float) -> str:
    """`` (N/s)``, or nothing when ``seconds`` is too short for a rate to mean anything."""
    if seconds < MIN_RATE_SECONDS:
        return ""
    rate = count / seconds
    return f" ({rate:,.1f}/s)" if rate < 10 else f" ({rate:,.0f}/s)"


@dataclass
class BackfillProgress(Progress):
    """Progress of a listing of unknown length: keys listed, enqueued, skipped; no ETA."""

    summary: Summary = field(default_factory=Summary)
    backpressure: Backpressure | None = None

    def line(self) -> str:
        elapsed = time.monotonic() - self._started
        s = self.summary
        text = (
            f"{self.label}: listed {s.listed:,}{rate_text(s.listed, elapsed)}, enqueued {s.enqueued:,}, "
            f"skipped {s.filtered + s.current:,}, failed {s.failed:,}; at {s.last_key or '(start)'}"
        )
        gate = self.backpressure
        if gate is not None and gate.waiting is not None:
            text += f"; held back: {gate.waiting:,} waiting in the queue (--max-backlog {gate.limit:,})"
        return text


@dataclass
class _Pending:
    key: str
    body: str
    before: str | None  # the checkpoint if this entry is the first one not enqueued


class Backfill:
    """One backfill run: list, filter, check, send in batches of 10, keep the checkpoint.

    ``stop`` is checked after every key (so after every settled batch) and while held back by
    ``--max-backlog``; setting it is how Ctrl-C and tests end a run early with a clean checkpoint.
    ``backlog_poll``: seconds between reads of the queue's depth while held back.
    """

    def __init__(
        self,
        *,
        s3: Any,
        sqs: Any,
        target: Target,
        options: Options,
        limiter: RateLimiter | None = None,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        send_sleep: Callable[[float], None] = time.sleep,
        backlog_poll: float = 1.0,
    ) -> None:
        self.s3, self.sqs, self.target, self.options = s3, sqs, target, options
        self.limiter = limiter or RateLimiter(None)
        self.summary = Summary(last_key=options.start_after)
        self.progress = progress
        self.stop = stop or threading.Event()
        self.backpressure = Backpressure(
            sqs, target.queue_url, options.max_backlog, poll=backlog_poll, stop=self.stop
        )
        self._clock = clock
        self._send_sleep = send_sleep
        self._request_id = uuid.uuid4().hex[:16].upper()
        self._examined = options.start_after  # the last key looked at, in listing order
        self._frozen = False  # an entry failed: the checkpoint stays before it
        self._failed_batches = 0

    # listing and deciding

    def _listing(self) -> Iterator[dict[str, Any]]:
        """The objects under the prefix after ``start_after``, page by page (never all at once)."""
        page_size = min(LIST_PAGE, self.options.max_keys or LIST_PAGE)
        params: dict[str, Any] = {"Bucket": self.target.bucket, "Prefix": self.options.prefix}
        params["MaxKeys"] = page_size
        if self.options.start_after:
            params["StartAfter"] = self.options.start_after
        while True:
            page = self.s3.list_objects_v2(**params)
            yield from page.get("Contents", [])
            if not page.get("IsTruncated") or not page.get("NextContinuationToken"):
                return
            params["ContinuationToken"] = page["NextContinuationToken"]

    def _filtered_out(self, obj: dict[str, Any]) -> bool:
        key = obj["Key"]
        if ignore_reason(self.target.bucket, key, self.target.config):
            return True  # e.g. a folder marker: the handler would only acknowledge it
        if self.options.suffixes and not key.lower().endswith(self.options.suffixes):
            return True
        return self.options.since is not None and obj["LastModified"] < self.options.since

    def is_current(self, key: str, etag: str) -> bool:
        """True when every rendition of ``key`` carries a marker for ``etag`` and today's recipe."""
        config = self.target.config
        for plan in plan_renditions(config, key):
            if not any(
                markers.is_current(storage.head_metadata(self.s3, config.dest_bucket, c.key), etag, c.digest)
                for c in plan.candidates
            ):
                return False
        return True

    def decisions(self) -> Iterator[tuple[dict[str, Any], str]]:
        """Each listed object with its decision, in listing order."""
        listing = self._listing()
        if not self.options.skip_current:
            for obj in listing:
                yield obj, FILTERED if self._filtered_out(obj) else ENQUEUE
            return
        pool = ThreadPoolExecutor(HEAD_THREADS, thread_name_prefix="backfill-head")
        try:
            while chunk := list(islice(listing, CHECK_CHUNK)):
                checks: list[Future[bool] | None] = [
                    None
                    if self._filtered_out(obj)
                    else pool.submit(self.is_current, obj["Key"], markers.strip_quotes(obj["ETag"]))
                    for obj in chunk
                ]
                for obj, check in zip(chunk, checks, strict=True):
                    if check is None:
                        yield obj, FILTERED
                    else:
                        yield obj, CURRENT if check.result() else ENQUEUE
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    # sending and the checkpoint

    def _advance(self, key: str | None) -> None:
        if not self._frozen:
            self.summary.last_key = key

    def _body(self, obj: dict[str, Any]) -> str:
        now = self._clock()
        record = s3_record(
            bucket=self.target.bucket,
            key=obj["Key"],
            size=obj.get("Size", 0),
            etag=obj.get("ETag", ""),
            region=self.target.region,
            event_time=now,
            sequencer=f"{time.time_ns():018X}",
            request_id=self._request_id,
        )
        return message_body(record)

    def _flush(self, pending: list[_Pending]) -> None:
        """Send ``pending`` (up to 10); settle the checkpoint by each entry's fate."""
        if not pending:
            return
        if self.options.dry_run:
            self.summary.enqueued += len(pending)
            pending.clear()
            self._advance(self._examined)
            return
        redraw = (lambda: self.progress.advance(0)) if self.progress else None
        if not self.backpressure.acquire(len(pending), on_wait=redraw):
            # Stopped while held back: nothing sent, the checkpoint stays before the batch.
            self._advance(pending[0].before)
            pending.clear()
            return
        self.limiter.acquire(len(pending))
        result = send_batch(
            self.sqs,
            self.target.queue_url,
            [{"MessageBody": p.body} for p in pending],
            sleep=self._send_sleep,
        )
        self.summary.enqueued += len(result.sent)
        for index, reason in result.failed.items():
            self.summary.failed += 1
            if len(self.summary.failures) < MAX_LISTED_FAILURES:
                self.summary.failures.append({"key": pending[index].key, "error": reason})
        if result.failed:
            self._advance(pending[min(result.failed)].before)
            self._frozen = True
        else:
            self._advance(self._examined)
        self._failed_batches = 0 if result.sent else self._failed_batches + 1
        pending.clear()

    def _take(self, obj: dict[str, Any], decision: str, pending: list[_Pending]) -> None:
        """Account for one listed object, in order; send the batch once it holds 10."""
        key = obj["Key"]
        self.summary.listed += 1
        if decision == ENQUEUE:
            pending.append(_Pending(key, self._body(obj), before=self._examined))
        elif decision == CURRENT:
            self.summary.current += 1
        else:
            self.summary.filtered += 1
        self._examined = key
        if not pending:
            self._advance(key)
        elif len(pending) == SQS_BATCH:
            self._flush(pending)
        if self.progress:
            self.progress.advance()

    def _stop_reason(self) -> str | None:
        if self._failed_batches >= FAILED_BATCHES_ABORT:
            return "send-failures"
        if self.stop.is_set():
            return "interrupted"
        if self.options.max_keys and self.summary.listed >= self.options.max_keys:
            return "max-keys"
        return None

    def run(self) -> Summary:
        """List, decide and send until the listing ends or a stop is asked for; return the summary.

        AWS errors other than per-entry send failures propagate; ``self.summary`` then holds the
        counts and the checkpoint so far.
        """
        started = time.monotonic()
        pending: list[_Pending] = []
        exhausted = False
        try:
            decisions = self.decisions()
            try:
                for obj, decision in decisions:
                    self._take(obj, decision, pending)
                    self.summary.stopped = self._stop_reason()
                    if self.summary.stopped:
                        break
                else:
                    exhausted = True
            finally:
                decisions.close()  # cancels the rendition checks still queued
            self._flush(pending)  # the last partial batch, also when stopping: it is settled here
        finally:
            self.summary.elapsed_seconds = round(time.monotonic() - started, 3)
            self.summary.held_back_seconds = round(self.backpressure.waited_seconds, 3)
            if self.progress:
                self.progress.close()
        self.summary.complete = exhausted and not self.summary.failed
        return self.summary


# --- the command -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Enqueue S3-event-shaped messages for source objects that already exist, so that the\n"
        "function renders them: a streaming listing, filters, a rate limit, resumable."
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Messages look exactly like S3's ObjectCreated:Put records (one per message), with\n"
        '"imgprocBackfill": true. Keys are listed in order; the summary\'s last_key is the\n'
        "checkpoint: it and every key before it were enqueued, skipped or filtered out.\n"
        "Ctrl-C stops after the batch in flight and prints the resume command.\n"
        "\n"
        "Exit status: 0 all matching keys enqueued; 1 some could not be sent (listed; resume\n"
        "from the checkpoint to retry them), or the stack, AWS or credentials failed; 2 bad\n"
        "options; 130 interrupted."
    )
    aws.add_arguments(parser)
    parser.add_argument(
        "--prefix",
        help="only keys under PREFIX, which must lie within the function's SOURCE_PREFIX "
        "(default: SOURCE_PREFIX itself)",
    )
    parser.add_argument(
        "--since",
        type=parse_since,
        metavar="WHEN",
        help="only objects last modified at or after WHEN: an ISO-8601 date/time (UTC unless it "
        "says otherwise) or a duration ago such as 7d, 12h, 30m",
    )
    parser.add_argument(
        "--suffix",
        type=parse_suffixes,
        metavar="LIST",
        help="only keys ending in one of these comma-separated suffixes, case-insensitive (e.g. .jpg,.png)",
    )
    parser.add_argument(
        "--skip-current",
        action="store_true",
        help="HEAD each key's renditions first and enqueue only keys with a missing or stale one",
    )
    parser.add_argument("--dry-run", action="store_true", help="list, filter and check, but send nothing")
    parser.add_argument(
        "--rate",
        type=aws.positive(float),
        metavar="N",
        help="at most N messages per second (default: no limit)",
    )
    parser.add_argument(
        "--max-backlog",
        type=aws.positive(int),
        metavar="N",
        help="hold the sends back while the ingest queue has N or more messages waiting, so the "
        "backfill stays about N messages ahead of the function and fresh uploads are not queued behind "
        "it (default: no limit)",
    )
    parser.add_argument(
        "--start-after",
        metavar="KEY",
        help="resume: list only keys after KEY (the last_key a previous run printed)",
    )
    parser.add_argument(
        "--max-keys",
        type=aws.positive(int),
        metavar="N",
        help="stop after N listed keys and print the resume command (a trial run, or work in slices)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        target, prefix = _resolve(args)
    except UsageError as exc:
        print(f"imgproc backfill: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except (BackfillError, aws.StackNotFound, ConfigError) as exc:
        print(f"imgproc backfill: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    options = Options(
        prefix=prefix,
        start_after=args.start_after or None,
        since=args.since,
        suffixes=args.suffix or (),
        skip_current=args.skip_current,
        dry_run=args.dry_run,
        max_keys=args.max_keys,
        max_backlog=args.max_backlog,
    )
    job = Backfill(
        s3=aws.client(args, "s3"),
        sqs=aws.client(args, "sqs"),
        target=target,
        options=options,
        limiter=RateLimiter(args.rate),
    )
    job.progress = BackfillProgress("backfill", summary=job.summary, backpressure=job.backpressure)
    with CtrlCStops(job.stop, "imgproc backfill: stopping after the batch in flight"):
        try:
            summary = job.run()
        except KeyboardInterrupt:  # a second Ctrl-C: stop at once, the checkpoint is still safe
            summary = job.summary
            summary.stopped = "interrupted"
        except (ClientError, BotoCoreError) as exc:
            summary = job.summary
            summary.stopped, summary.error = "error", str(exc)
    _report(args, target, options, summary)
    if summary.stopped == "interrupted":
        return EXIT_INTERRUPTED
    if summary.failed or summary.stopped in ("send-failures", "error"):
        return EXIT_FAILED
    return EXIT_OK


def _resolve(args: argparse.Namespace) -> tuple[Target, str]:
    """The source bucket, the queue, the function's configuration, and the prefix to list."""
    outputs = aws.stack_outputs(
        aws.client(args, "cloudformation"),
        args.stack_name,
        required=("SourceBucketName", "QueueUrl", "FunctionName"),
    )
    function = load_function(aws.client(args, "lambda"), outputs["FunctionName"])
    try:
        config = Config.from_env(function.environment)
    except ConfigError as exc:
        raise BackfillError(f"function {function.name}: {exc}") from None
    prefix = args.prefix if args.prefix is not None else config.source_prefix
    if not prefix.startswith(config.source_prefix):
        raise UsageError(
            f"--prefix {prefix!r} is outside the function's SOURCE_PREFIX {config.source_prefix!r}: "
            "the handler would ignore every key"
        )
    target = Target(
        bucket=outputs["SourceBucketName"], queue_url=outputs["QueueUrl"], region=args.region, config=config
    )
    return target, prefix


def _sh(value: str) -> str:
    """Always single-quoted, so a key is visibly one argument whatever it holds."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def resume_command(args: argparse.Namespace, options: Options, checkpoint: str | None) -> str:
    """The command that continues this run after ``checkpoint`` with the same filters.

    A relative ``--since`` is written as the absolute time it meant, so the resumed run selects the
    same objects.
    """
    defaults = argparse.ArgumentParser(add_help=False)
    aws.add_arguments(defaults)
    default = defaults.parse_args([])
    parts = ["imgproc", "backfill"]
    if checkpoint:
        parts += ["--start-after", _sh(checkpoint)]
    for flag, name in _AWS_OPTIONS:
        value = getattr(args, name)
        if value and value != getattr(default, name):
            parts += [flag, shlex.quote(value)]
    if args.prefix is not None:
        parts += ["--prefix", shlex.quote(args.prefix)]
    if options.since is not None:
        parts += ["--since", markers.utc_timestamp(options.since)]
    if options.suffixes:
        parts += ["--suffix", shlex.quote(",".join(options.suffixes))]
    if options.skip_current:
        parts.append("--skip-current")
    if options.dry_run:
        parts.append("--dry-run")
    if args.rate:
        parts += ["--rate", f"{args.rate:g}"]
    if options.max_backlog:
        parts += ["--max-backlog", str(options.max_backlog)]
    if args.json:
        parts.append("--json")
    return " ".join(parts)


def _report(args: argparse.Namespace, target: Target, options: Options, summary: Summary) -> None:
    resume = None
    if summary.stopped or summary.failed:
        resume = resume_command(args, options, summary.last_key)
        if summary.stopped == "interrupted":
            hint = "interrupted"
        elif summary.stopped == "max-keys":
            hint = f"stopped after {summary.listed:,} keys (--max-keys)"
        elif summary.stopped == "error":
            hint = f"stopped by an error ({summary.error})"
        else:
            hint = f"{summary.failed:,} key(s) not enqueued"
            if summary.stopped == "send-failures":
                hint += f"; stopped after {FAILED_BATCHES_ABORT} batches in a row were refused"
        print(f"{hint}; resume with: {resume}", file=sys.stderr, flush=True)
    if args.json:
        doc = {
            "stack": args.stack_name,
            "bucket": target.bucket,
            "prefix": options.prefix,
            "queue_url": target.queue_url,
            "start_after": options.start_after,
            "since": None if options.since is None else markers.utc_timestamp(options.since),
            "suffixes": list(options.suffixes),
            "skip_current": options.skip_current,
            "dry_run": options.dry_run,
            "rate": args.rate,
            "max_keys": options.max_keys,
            "max_backlog": options.max_backlog,
            "listed": summary.listed,
            "filtered": summary.filtered,
            "current": summary.current,
            "enqueued": summary.enqueued,
            "failed": summary.failed,
            "failures": summary.failures,
            "last_key": summary.last_key,
            "complete": summary.complete,
            "stopped": summary.stopped,
            "error": summary.error,
            "elapsed_seconds": summary.elapsed_seconds,
            "held_back_seconds": summary.held_back_seconds,
            "resume": resume,
        }
        print(json.dumps(doc, ensure_ascii=False), flush=True)
        return
    print(render(target, options, summary), flush=True)


_STATES = {
    "interrupted": "interrupted",
    "max-keys": "stopped at --max-keys",
    "send-failures": "stopped: SQS refused every entry",
    "error": "stopped by an error",
}


def render(target: Target, options: Options, summary: Summary) -> str:
    """The human summary."""
    queue = target.queue_url.rstrip("/").rsplit("/", 1)[-1]
    state = "complete" if summary.complete else _STATES.get(summary.stopped or "", "incomplete")
    title = f"backfill s3://{target.bucket}/{options.prefix} -> {queue}: {state}"
    if options.dry_run:
        title += " (dry run: nothing sent)"
    after = f" after {options.start_after}" if options.start_after else ""
    took = f"{summary.elapsed_seconds:.1f}s{rate_text(summary.listed, summary.elapsed_seconds)}"
    rows = [
        ("listed", summary.listed, f"keys{after} in {took}"),
        ("filtered", summary.filtered, "not matching --since / --suffix, or ignored by the handler"),
    ]
    if options.skip_current:
        rows.append(("current", summary.current, "every rendition up to date: skipped"))
    rows.append(("enqueued", summary.enqueued, "would be enqueued" if options.dry_run else ""))
    rows.append(("failed", summary.failed, "not enqueued, listed below" if summary.failed else ""))
    width = max(len(f"{count:,}") for _, count, _ in rows)
    lines = [title]
    lines += [f"  {name:<9}{count:>{width},}  {note}".rstrip() for name, count, note in rows]
    if options.max_backlog:
        held = summary.held_back_seconds
        lines.append(f"  held back {held:.1f}s in all (--max-backlog {options.max_backlog:,})")
    lines.append(f"  last key {summary.last_key or '(none)'}")
    for failure in summary.failures:
        lines.append(f"  failed: {failure['key']}: {failure['error']}")
    if summary.failed > len(summary.failures):
        lines.append(f"  … and {summary.failed - len(summary.failures):,} more")
    return "\n".join(lines)
