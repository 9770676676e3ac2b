"""One SQS batch: records in parallel, partial failures out, nothing ever lost.

Each message ends in exactly one of three states:
- ``ok``: every record reconciled, ignored or skipped; SQS deletes the message;
- ``dead-lettered``: a record failed permanently and the DLQ accepted the message with its reason;
- ``failed``: a transient error, a deadline, or a DLQ we could not reach; the message id goes to
  ``batchItemFailures`` and SQS delivers it again (and finally redrives it to the DLQ).

Every log line of a record carries its message id, bucket, key and (once known) source ETag: they are
bound once in structlog's context variables, which each record's thread task gets a copy of.

With the catalog or the notifications on (:mod:`processor.followups`), a message about to be
dead-lettered first gets its ``dead-lettered`` notification and catalog item; if either fails, the
message is ``failed`` instead (retried), so that it is never dead-lettered twice.
"""

from __future__ import annotations

import contextvars
import enum
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from observability import outcomes, tracing
from observability.outcomes import Outcome
from processor import dead_letter
from processor.config import Config
from processor.deps import Deps
from processor.errors import DeadlineExceeded, ProcessingError, UnexpectedError, classify
from processor.events import ObjectRef, SqsMessage, parse_body
from processor.followups import Followups
from processor.reconcile import ReconcileFailed, reconcile
from processor.storage import SourceHead

# The trace annotation of a record whose reconcile failed: its outcome (retry or dead-lettered) is
# decided per message, after the subsegment is closed.
_FAILED_ANNOTATION = "failed"


class MessageStatus(enum.StrEnum):
    """How a message ends (module doc)."""

    OK = "ok"
    DEAD_LETTERED = Outcome.DEAD_LETTERED.value
    FAILED = "failed"


@dataclass(frozen=True)
class RecordReport:
    """What happened to one S3 record: the unit of logs and metrics."""

    outcome: Outcome
    error_class: str | None = None
    duration_ms: float | None = None  # None: never started
    source_bytes: int = 0
    output_bytes: int = 0
    renditions: int = 0


@dataclass
class MessageOutcome:
    message_id: str
    status: MessageStatus
    records: list[RecordReport] = field(default_factory=list)


@dataclass
class BatchResult:
    outcomes: list[MessageOutcome]

    def response(self) -> dict[str, list[dict[str, str]]]:
        """Lambda's partial batch response (needs ``ReportBatchItemFailures`` on the mapping)."""
        return {
            "batchItemFailures": [
                {"itemIdentifier": o.message_id} for o in self.outcomes if o.status is MessageStatus.FAILED
            ]
        }

    def records(self) -> Iterator[RecordReport]:
        for outcome in self.outcomes:
            yield from outcome.records


@dataclass(frozen=True)
class _Failure:
    """A record that failed permanently: what dead-lettering its message needs."""

    ref: ObjectRef
    source: SourceHead | None  # the source's HEAD, when it was reached
    error: ProcessingError


def process_batch(
    messages: Sequence[SqsMessage],
    *,
    config: Config,
    s3: Any,
    sqs: Any,
    remaining_ms: Callable[[], int],
    log: Any,
    dynamodb: Any = None,
    sns: Any = None,
) -> BatchResult:
    """Process ``messages`` on a small thread pool; a record starts only while time remains.

    ``dynamodb`` and ``sns`` are needed only when ``config`` enables the catalog or the notifications.
    """
    deps = Deps(
        config=config,
        s3=s3,
        sqs=sqs,
        followups=Followups.create(config, s3=s3, dynamodb=dynamodb, sns=sns),
        log=log,
    )

    def work(message: SqsMessage) -> MessageOutcome:
        structlog.contextvars.bind_contextvars(
            message_id=message.message_id, receive_count=message.receive_count
        )
        if remaining_ms() < config.deadline_margin_ms:
            error = DeadlineExceeded(f"under {config.deadline_margin_ms} ms left; not started")
            log.warning("record.deferred", outcome=Outcome.RETRY, error_class=error.error_class)
            report = RecordReport(Outcome.RETRY, error.error_class)
            return MessageOutcome(message.message_id, MessageStatus.FAILED, [report])
        return _process_message(message, deps)

    if not messages:
        return BatchResult([])
    traced = tracing.in_current_trace(work)
    workers = max(1, min(config.concurrency, len(messages)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="record") as pool:
        # Each task runs in its own copy of the caller's context: request id in, record context out.
        futures = [pool.submit(contextvars.copy_context().run, traced, message) for message in messages]
        return BatchResult([future.result() for future in futures])


def _process_message(message: SqsMessage, deps: Deps) -> MessageOutcome:
    try:
        notification = parse_body(message.body)
    except ProcessingError as error:
        report = RecordReport(Outcome.DEAD_LETTERED, error.error_class)
        return _dead_letter(message, error, deps, records=[report])
    if notification.test_event:
        deps.log.info("record.ignored", outcome=Outcome.IGNORED, reason="s3-test-event")
        return MessageOutcome(message.message_id, MessageStatus.OK, [RecordReport(Outcome.IGNORED)])

    reports: list[RecordReport] = []
    transient = False
    permanent: list[_Failure] = []
    for ref in notification.refs:
        report, failure = _process_record(
            ref, deps, message_id=message.message_id, redelivered=_redelivered(message)
        )
        reports.append(report)
        if failure is not None and failure.error.transient:
            transient = True
        elif failure is not None:
            permanent.append(failure)
    # A transient failure wins: the retry may well clear it, and the permanent one is re-found then.
    if transient:
        return MessageOutcome(message.message_id, MessageStatus.FAILED, _settled(reports, Outcome.RETRY))
    if permanent:
        return _dead_letter(message, permanent[0].error, deps, records=reports, failures=permanent)
    return MessageOutcome(message.message_id, MessageStatus.OK, reports)


def _process_record(
    ref: ObjectRef, deps: Deps, *, message_id: str, redelivered: bool = False
) -> tuple[RecordReport, _Failure | None]:
    """Reconcile one record, logging and tracing it; failures are returned classified, never raised.

    A failed record's report carries the outcome its error alone would give it (``retry`` or
    ``dead-lettered``); the message's fate settles it (:func:`_settled`)."""
    log = deps.log
    started = time.perf_counter()
    with (
        structlog.contextvars.bound_contextvars(**_record_context(ref)),
        _unbound_on_exit("source_etag"),  # bound by reconcile once it knows the source
        tracing.subsegment("record", **tracing.record_annotations(message_id, ref.key)) as segment,
    ):
        try:
            result = reconcile(ref, deps, redelivered=redelivered)
        except ReconcileFailed as failed:
            exc = failed.cause
            error = classify(exc)
            outcome = Outcome.RETRY if error.transient else Outcome.DEAD_LETTERED
            extra = {"stale_renditions_removed": True} if failed.stale_removed else {}
            _log_failure(log, error, exc, outcome=outcome, **extra)
            tracing.annotate(segment, outcome=_FAILED_ANNOTATION, error_class=error.error_class)
            report = RecordReport(outcome, error.error_class, _ms_since(started))
            return report, _Failure(ref, failed.source, error)
        report = RecordReport(
            result.outcome,
            duration_ms=_ms_since(started),
            source_bytes=result.source_bytes,
            output_bytes=result.output_bytes,
            renditions=len(result.renditions),
        )
        log.info(
            f"record.{result.outcome.value}",
            outcome=result.outcome,
            reason=result.reason,
            renditions=report.renditions,
            source_bytes=report.source_bytes,
            output_bytes=report.output_bytes,
            duration_ms=report.duration_ms,
            timings_ms=result.timings_ms,
        )
        tracing.annotate(
            segment,
            outcome=result.outcome.value,
            metadata={"source_bytes": report.source_bytes, "output_bytes": report.output_bytes},
        )
        return report, None


def _record_context(ref: ObjectRef) -> dict[str, Any]:
    """What every log line about a record carries, beside the message id bound for the message."""
    return {"bucket": ref.bucket, "key": ref.key, "event_name": ref.event_name, "backfill": ref.backfill}


@contextmanager
def _unbound_on_exit(name: str) -> Iterator[None]:
    """Unbind the log context variable ``name`` when the block ends, however it ends: a variable
    bound deeper down must not reach the next record's lines."""
    try:
        yield
    finally:
        structlog.contextvars.unbind_contextvars(name)


def _redelivered(message: SqsMessage) -> bool:
    """Whether an earlier attempt of this message may have done part of its work: SQS delivered it
    before, or an operator replayed it from the DLQ (a new message, but the same work)."""
    return message.receive_count > 1 or message.replay_count > 0


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _settled(reports: list[RecordReport], outcome: Outcome) -> list[RecordReport]:
    """The failed records end as ``outcome`` once the message's fate is known; the others stay."""
    return [replace(r, outcome=outcome) if r.outcome in outcomes.FAILED else r for r in reports]


def _dead_letter(
    message: SqsMessage,
    error: ProcessingError,
    deps: Deps,
    *,
    records: list[RecordReport],
    failures: Sequence[_Failure] = (),
) -> MessageOutcome:
    log = deps.log
    retried = MessageOutcome(message.message_id, MessageStatus.FAILED, _settled(records, Outcome.RETRY))
    if not deps.config.dlq_url:
        # Without DLQ_URL we cannot park it ourselves: let SQS retry and redrive it.
        log.warning("dead_letter.unconfigured", outcome=Outcome.RETRY, error_class=error.error_class)
        return retried
    # Before the DLQ send: if announcing or recording fails, the whole message is retried rather
    # than dead-lettered now and again on the retry.
    try:
        for failure in failures:
            with structlog.contextvars.bound_contextvars(key=failure.ref.key, bucket=failure.ref.bucket):
                deps.followups.after_dead_letter(failure.ref, failure.source, failure.error)
    except Exception as exc:
        _log_failure(log, classify(exc), exc, outcome=Outcome.RETRY, stage="dead-letter-followups")
        return retried
    try:
        dead_letter.send(deps.sqs, deps.config.dlq_url, message, error)
    except Exception as exc:  # the record stays in the batch failures: nothing is lost
        _log_failure(log, classify(exc), exc, outcome=Outcome.RETRY, stage="dead-letter")
        return retried
    fields = {"outcome": Outcome.DEAD_LETTERED, "error_class": error.error_class, "error": str(error)}
    if not failures:  # the body named no record (InvalidEvent): a line for the message alone
        log.warning("record.dead_lettered", **fields)
    for failure in failures:  # one line per failed record, with its bucket and key
        with structlog.contextvars.bound_contextvars(**_record_context(failure.ref)):
            log.warning("record.dead_lettered", **fields)
    records = _settled(records, Outcome.DEAD_LETTERED)
    return MessageOutcome(message.message_id, MessageStatus.DEAD_LETTERED, records)


def _log_failure(
    log: Any, error: ProcessingError, exc: BaseException, *, outcome: Outcome, **extra: Any
) -> None:
    fields = {"outcome": outcome, "error_class": error.error_class, "error": str(error), **extra}
    if isinstance(error, UnexpectedError):
        log.error("record.error", exc_info=exc, **fields)  # a bug or an unforeseen outage: keep the traceback
    else:
        log.warning("record.error", **fields)
