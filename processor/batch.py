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
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog

from observability import tracing
from processor import dead_letter
from processor.config import Config
from processor.errors import DeadlineExceeded, ProcessingError, UnexpectedError, classify
from processor.events import ObjectRef, SqsMessage, parse_body
from processor.followups import Followups
from processor.reconcile import Outcome, Result, reconcile

OK, DEAD_LETTERED, FAILED = "ok", "dead-lettered", "failed"
RETRY = "retry"  # a record outcome: failed transiently, SQS delivers it again


@dataclass
class RecordReport:
    """What happened to one S3 record: the unit of logs and metrics."""

    outcome: str  # rendered, skipped, deleted, ignored, retry or dead-lettered
    error_class: str | None = None
    duration_ms: float | None = None  # None: never started
    source_bytes: int = 0
    output_bytes: int = 0
    renditions: int = 0


@dataclass
class MessageOutcome:
    message_id: str
    status: str  # OK, DEAD_LETTERED or FAILED
    records: list[RecordReport] = field(default_factory=list)


@dataclass
class BatchResult:
    outcomes: list[MessageOutcome]

    def response(self) -> dict[str, list[dict[str, str]]]:
        """Lambda's partial batch response (needs ``ReportBatchItemFailures`` on the mapping)."""
        return {
            "batchItemFailures": [
                {"itemIdentifier": o.message_id} for o in self.outcomes if o.status == FAILED
            ]
        }

    def records(self) -> Iterator[RecordReport]:
        for outcome in self.outcomes:
            yield from outcome.records


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
    followups = Followups.create(config, s3=s3, dynamodb=dynamodb, sns=sns)

    def work(message: SqsMessage) -> MessageOutcome:
        structlog.contextvars.bind_contextvars(
            message_id=message.message_id, receive_count=message.receive_count
        )
        if remaining_ms() < config.deadline_margin_ms:
            error = DeadlineExceeded(f"under {config.deadline_margin_ms} ms left; not started")
            log.warning("record.deferred", outcome=RETRY, error_class=error.error_class)
            return MessageOutcome(message.message_id, FAILED, [RecordReport(RETRY, error.error_class)])
        return _process_message(message, config, s3, sqs, log, followups=followups)

    if not messages:
        return BatchResult([])
    traced = tracing.in_current_trace(work)
    workers = max(1, min(config.concurrency, len(messages)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="record") as pool:
        # Each task runs in its own copy of the caller's context: request id in, record context out.
        futures = [pool.submit(contextvars.copy_context().run, traced, message) for message in messages]
        return BatchResult([future.result() for future in futures])


def _process_message(
    message: SqsMessage, config: Config, s3: Any, sqs: Any, log: Any, *, followups: Followups | None = None
) -> MessageOutcome:
    try:
        notification = parse_body(message.body)
    except ProcessingError as error:
        report = RecordReport(DEAD_LETTERED, error.error_class)
        return _dead_letter(message, error, config=config, sqs=sqs, log=log, records=[report])
    if notification.test_event:
        log.info("record.ignored", outcome="ignored", reason="s3-test-event")
        return MessageOutcome(message.message_id, OK, [RecordReport("ignored")])

    reports: list[RecordReport] = []
    transient = False
    permanent: list[tuple[ObjectRef, Result, ProcessingError]] = []
    for ref in notification.refs:
        result = Result(Outcome.SKIPPED)
        report, error = _process_record(
            ref,
            config,
            s3,
            log,
            message_id=message.message_id,
            followups=followups,
            redelivered=_redelivered(message),
            result=result,
        )
        reports.append(report)
        if error is not None and error.transient:
            transient = True
        elif error is not None:
            permanent.append((ref, result, error))
    # A transient failure wins: the retry may well clear it, and the permanent one is re-found then.
    if transient:
        _settle_failed(reports, RETRY)
        return MessageOutcome(message.message_id, FAILED, reports)
    if permanent:
        return _dead_letter(
            message,
            permanent[0][2],
            config=config,
            sqs=sqs,
            log=log,
            records=reports,
            followups=followups,
            failed_sources=permanent,
        )
    return MessageOutcome(message.message_id, OK, reports)


def _process_record(
    ref: ObjectRef,
    config: Config,
    s3: Any,
    log: Any,
    *,
    message_id: str,
    result: Result,
    followups: Followups | None = None,
    redelivered: bool = False,
) -> tuple[RecordReport, ProcessingError | None]:
    """Reconcile one record, logging and tracing it; failures are returned classified, never raised.

    ``result`` is filled in as the work goes: the caller reads the source's HEAD from it even when
    the record failed."""
    started = time.perf_counter()
    with (
        structlog.contextvars.bound_contextvars(**_record_context(ref)),
        _unbound_on_exit("source_etag"),  # bound by reconcile once it knows the source
        tracing.subsegment("record", **tracing.record_annotations(message_id, ref.key)) as segment,
    ):
        try:
            result = reconcile(ref, config, s3, followups=followups, redelivered=redelivered, result=result)
        except Exception as exc:
            error = classify(exc)
            extra = {"stale_renditions_removed": True} if result.stale_removed else {}
            _log_failure(log, error, exc, outcome=RETRY if error.transient else DEAD_LETTERED, **extra)
            tracing.annotate(segment, outcome="failed", error_class=error.error_class)
            return RecordReport("failed", error.error_class, _ms_since(started)), error
        report = RecordReport(
            result.outcome.value,
            duration_ms=_ms_since(started),
            source_bytes=result.source_bytes,
            output_bytes=result.output_bytes,
            renditions=len(result.renditions),
        )
        log.info(
            f"record.{result.outcome.value}",
            outcome=result.outcome.value,
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


def _settle_failed(reports: list[RecordReport], outcome: str) -> None:
    """Failed records end as ``outcome`` once the message's fate is known."""
    for report in reports:
        if report.outcome == "failed":
            report.outcome = outcome


def _dead_letter(
    message: SqsMessage,
    error: ProcessingError,
    *,
    config: Config,
    sqs: Any,
    log: Any,
    records: list[RecordReport],
    followups: Followups | None = None,
    failed_sources: Sequence[tuple[ObjectRef, Result, ProcessingError]] = (),
) -> MessageOutcome:
    if not config.dlq_url:
        # Without DLQ_URL we cannot park it ourselves: let SQS retry and redrive it.
        log.warning("dead_letter.unconfigured", outcome=RETRY, error_class=error.error_class)
        _settle_failed(records, RETRY)
        return MessageOutcome(message.message_id, FAILED, records)
    if followups is not None:
        # Before the DLQ send: if announcing or recording fails, the whole message is retried rather
        # than dead-lettered now and again on the retry.
        try:
            for ref, result, failure in failed_sources:
                with structlog.contextvars.bound_contextvars(key=ref.key, bucket=ref.bucket):
                    followups.after_dead_letter(ref, result.source, failure)
        except Exception as exc:
            _log_failure(log, classify(exc), exc, outcome=RETRY, stage="dead-letter-followups")
            _settle_failed(records, RETRY)
            return MessageOutcome(message.message_id, FAILED, records)
    try:
        dead_letter.send(sqs, config.dlq_url, message, error)
    except Exception as exc:  # the record stays in the batch failures: nothing is lost
        _log_failure(log, classify(exc), exc, outcome=RETRY, stage="dead-letter")
        _settle_failed(records, RETRY)
        return MessageOutcome(message.message_id, FAILED, records)
    fields = {"outcome": DEAD_LETTERED, "error_class": error.error_class, "error": str(error)}
    if not failed_sources:  # the body named no record (InvalidEvent): a line for the message alone
        log.warning("record.dead_lettered", **fields)
    for ref, _, _ in failed_sources:  # one line per failed record, with its bucket and key
        with structlog.contextvars.bound_contextvars(**_record_context(ref)):
            log.warning("record.dead_lettered", **fields)
    _settle_failed(records, DEAD_LETTERED)
    return MessageOutcome(message.message_id, DEAD_LETTERED, records)


def _log_failure(log: Any, error: ProcessingError, exc: BaseException, *, outcome: str, **extra: Any) -> None:
    fields = {"outcome": outcome, "error_class": error.error_class, "error": str(error), **extra}
    if isinstance(error, UnexpectedError):
        log.error("record.error", exc_info=exc, **fields)  # a bug or an unforeseen outage: keep the traceback
    else:
        log.warning("record.error", **fields)
