"""One SQS batch: records in parallel, partial failures out, nothing ever lost.

Each message ends in exactly one of three states:
- ``ok``: every record reconciled, ignored or skipped; SQS deletes the message;
- ``dead-lettered``: a record failed permanently and the DLQ accepted the message with its reason;
- ``failed``: a transient error, a deadline, or a DLQ we could not reach; the message id goes to
  ``batchItemFailures`` and SQS delivers it again (and finally redrives it to the DLQ).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from processor import dead_letter
from processor.config import Config
from processor.errors import DeadlineExceeded, ProcessingError, UnexpectedError, classify
from processor.events import SqsMessage, parse_body
from processor.reconcile import Result, reconcile

OK, DEAD_LETTERED, FAILED = "ok", "dead-lettered", "failed"


@dataclass
class MessageOutcome:
    message_id: str
    status: str  # OK, DEAD_LETTERED or FAILED
    error: ProcessingError | None = None
    results: list[Result] = field(default_factory=list)


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


def process_batch(
    messages: Sequence[SqsMessage],
    *,
    config: Config,
    s3: Any,
    sqs: Any,
    remaining_ms: Callable[[], int],
    log: Any,
) -> BatchResult:
    """Process ``messages`` on a small thread pool; a record starts only while time remains."""

    def work(message: SqsMessage) -> MessageOutcome:
        message_log = log.bind(message_id=message.message_id, receive_count=message.receive_count)
        if remaining_ms() < config.deadline_margin_ms:
            error = DeadlineExceeded(f"under {config.deadline_margin_ms} ms left; not started")
            message_log.warning("record.deferred", outcome="retry", error_class=error.error_class)
            return MessageOutcome(message.message_id, FAILED, error)
        return _process_message(message, config, s3, sqs, message_log)

    if not messages:
        return BatchResult([])
    workers = max(1, min(config.concurrency, len(messages)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="record") as pool:
        return BatchResult(list(pool.map(work, messages)))


def _process_message(message: SqsMessage, config: Config, s3: Any, sqs: Any, log: Any) -> MessageOutcome:
    try:
        notification = parse_body(message.body)
    except ProcessingError as error:
        return _dead_letter(message, error, config=config, sqs=sqs, log=log, results=[])
    if notification.test_event:
        log.info("record.ignored", outcome="ignored", reason="s3-test-event")
        return MessageOutcome(message.message_id, OK)

    results: list[Result] = []
    transient: ProcessingError | None = None
    permanent: ProcessingError | None = None
    for ref in notification.refs:
        record_log = log.bind(
            bucket=ref.bucket, key=ref.key, event_name=ref.event_name, backfill=ref.backfill
        )
        try:
            result = reconcile(ref, config, s3)
        except Exception as exc:
            error = classify(exc)
            if error.transient:
                transient = transient or error
                _log_failure(record_log, error, exc, outcome="retry")
            else:
                permanent = permanent or error
                _log_failure(record_log, error, exc, outcome="dead-lettered")
            continue
        results.append(result)
        record_log.info(
            f"record.{result.outcome.value}",
            outcome=result.outcome.value,
            reason=result.reason,
            renditions=len(result.renditions),
            source_bytes=result.source_bytes,
            output_bytes=result.output_bytes,
            timings_ms=result.timings_ms,
        )
    # A transient failure wins: the retry may well clear it, and the permanent one is re-found then.
    if transient:
        return MessageOutcome(message.message_id, FAILED, transient, results)
    if permanent:
        return _dead_letter(message, permanent, config=config, sqs=sqs, log=log, results=results)
    return MessageOutcome(message.message_id, OK, None, results)


def _dead_letter(
    message: SqsMessage, error: ProcessingError, *, config: Config, sqs: Any, log: Any, results: list[Result]
) -> MessageOutcome:
    if not config.dlq_url:
        # Without DLQ_URL we cannot park it ourselves: let SQS retry and redrive it.
        log.warning("dead_letter.unconfigured", outcome="retry", error_class=error.error_class)
        return MessageOutcome(message.message_id, FAILED, error, results)
    try:
        dead_letter.send(sqs, config.dlq_url, message, error)
    except Exception as exc:
        _log_failure(log, classify(exc), exc, outcome="retry", stage="dead-letter")
        return MessageOutcome(message.message_id, FAILED, error, results)
    log.warning(
        "record.dead_lettered", outcome="dead-lettered", error_class=error.error_class, error=str(error)
    )
    return MessageOutcome(message.message_id, DEAD_LETTERED, error, results)


def _log_failure(log: Any, error: ProcessingError, exc: BaseException, *, outcome: str, **extra: Any) -> None:
    fields = {"outcome": outcome, "error_class": error.error_class, "error": str(error), **extra}
    if isinstance(error, UnexpectedError):
        log.error("record.error", exc_info=exc, **fields)  # a bug or an unforeseen outage: keep the traceback
    else:
        log.warning("record.error", **fields)
