"""Lambda entry point: ``processor.handler.lambda_handler``.

Configuration and AWS clients are built once per container (cold start) and reused by every
invocation; a bad configuration fails the cold start loudly instead of failing each record.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import botocore.session
import structlog
from botocore.config import Config as BotoConfig

from observability import logs, tracing
from observability.metrics import BatchMetrics
from processor import fanout
from processor.batch import BatchResult, process_batch
from processor.config import Config
from processor.events import parse_sqs_event


@dataclass(frozen=True)
class Runtime:
    config: Config
    s3: Any
    sqs: Any
    dynamodb: Any = None  # only when CATALOG_TABLE is set
    sns: Any = None  # only when NOTIFY_TOPIC_ARN is set
    invocations: Iterator[int] = field(default_factory=itertools.count)  # the first is the cold start


@functools.cache
def runtime() -> Runtime:
    """The container-wide configuration and clients (tests call ``runtime.cache_clear()``)."""
    config = Config.from_env()
    logs.configure(config.log_level)
    tracing.configure()
    boto_config = BotoConfig(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=30,
        # The records in flight, and the calls they send at once on the fan-out pool (processor.fanout,
        # at most MAX_THREADS of them): a connection each, so none queues on botocore's pool.
        max_pool_connections=max(10, config.concurrency + fanout.MAX_THREADS),
    )
    # botocore's own clients, not boto3's: the same API, but importing boto3 imports s3transfer (and
    # multiprocessing) for the transfer methods it adds, ~80 ms of every cold start for nothing.
    session = botocore.session.get_session()
    return Runtime(
        config=config,
        s3=session.create_client("s3", config=boto_config),
        sqs=session.create_client("sqs", config=boto_config),
        dynamodb=session.create_client("dynamodb", config=boto_config) if config.catalog_table else None,
        sns=session.create_client("sns", config=boto_config) if config.notify_topic_arn else None,
    )


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    """Process one SQS batch; return the ids of the messages SQS must deliver again."""
    return handle_batch(event, context).response()


def handle_batch(event: dict[str, Any], context: Any) -> BatchResult:
    """What :func:`lambda_handler` does, returning the whole result: each record's outcome.

    The local poller (``imgproc up``) counts outcomes from it rather than from the log lines."""
    rt = runtime()
    cold_start = next(rt.invocations) == 0
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        request_id=getattr(context, "aws_request_id", None),
        function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local"),
        cold_start=cold_start,
    )
    log = logs.get_logger("processor")
    remaining = getattr(context, "get_remaining_time_in_millis", None) or (lambda: math.inf)
    with tracing.invocation("imgproc"):
        result = process_batch(
            parse_sqs_event(event),
            config=rt.config,
            s3=rt.s3,
            sqs=rt.sqs,
            dynamodb=rt.dynamodb,
            sns=rt.sns,
            remaining_ms=remaining,
            log=log,
        )
    _emit_metrics(result, log)
    failures = len(result.response()["batchItemFailures"])
    log.info("batch.done", records=len(result.outcomes), failures=failures)
    return result


def _emit_metrics(result: BatchResult, log: Any) -> None:
    """One set of EMF documents per batch on stdout; a metrics bug must not fail finished work."""
    try:
        metrics = BatchMetrics()
        for record in result.records():
            metrics.add_record(
                record.outcome,
                error_class=record.error_class,
                processing_ms=record.duration_ms,
                source_bytes=record.source_bytes,
                output_bytes=record.output_bytes,
                renditions=record.renditions,
            )
        metrics.flush()
    except Exception:
        log.exception("metrics.failed")
