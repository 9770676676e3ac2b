"""CloudWatch metrics for one SQS batch, as Embedded Metric Format (EMF) log lines.

The handler makes no CloudWatch API call: it prints EMF documents (JSON lines) to stdout once per
batch, and Lambda's log pipeline turns them into metrics in the namespace ``ImageProcessor``.
:class:`BatchMetrics` is a pure builder (thread-safe: the batch's records run on a thread pool);
:meth:`BatchMetrics.flush` is the only side effect.

What is counted. A *record* is one S3 event record of an SQS message (one source key), or the whole
message when it was never split into records (body not an S3 notification, or not started because
the invocation was about to time out). ``outcome`` is the value of the ``outcome`` field of the
handler's log line for that record, so metrics and logs use one vocabulary:

=================== ================================================================================
metric              what it counts
=================== ================================================================================
RecordsProcessed    records whose renditions were written (``rendered``) or deleted because the
                    source is gone (``deleted``)
RecordsSkipped      records that needed no work: every rendition already current (``skipped``), or
                    not ours to process (``ignored``: prefix, loop guard, ``s3:TestEvent``, source
                    gone with DELETE_ON_REMOVE off)
RecordsFailed       records that failed: transiently, to be retried by SQS (``retry``), or
                    permanently and sent to the DLQ (``dead-lettered``); also emitted per
                    ``ErrorClass`` (``processor.errors`` class name, e.g. ``CorruptImage``)
RenditionsWritten   renditions PUT to the destination bucket
ProcessingTime      ms, one value per record that was reconciled (every outcome except ``ignored``
                    and records never started): percentiles come from these values
SourceBytes         bytes, one value per rendered record: the size of the source downloaded
OutputBytes         bytes, one value per rendered record: the total size of the renditions written
=================== ================================================================================

Counts are per delivery: a record SQS delivers again (after a failure, or a replay) counts again.
Every metric carries the dimension ``FunctionName`` (``AWS_LAMBDA_FUNCTION_NAME``, ``local`` when
unset), so several stacks in one account never mix; ``RecordsFailed`` is also emitted with
``FunctionName`` + ``ErrorClass``. The four counts are emitted even when zero, so that graphs and
the error-rate alarm see 0 rather than a gap whenever the function ran.

EMF rules followed (CloudWatch "Specification: Embedded metric format"): ``_aws.Timestamp`` in
integer milliseconds; each ``MetricDirective`` names its ``Namespace``, its ``Dimensions`` (a list
of dimension sets, each a list of names present as string members of the document) and its
``Metrics`` (``Name`` and ``Unit``, at most 100); every metric is a member of the document holding a
number or an array of at most 100 numbers. Distributions with more than 100 values in a batch are
split over several documents.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from observability import outcomes
from observability.outcomes import Outcome

NAMESPACE = "ImageProcessor"
FUNCTION_NAME = "FunctionName"
ERROR_CLASS = "ErrorClass"
LOCAL_FUNCTION_NAME = "local"  # FunctionName when AWS_LAMBDA_FUNCTION_NAME is unset (tests, scripts)

# The dimension sets of the two kinds of document.
GENERAL_DIMENSIONS: tuple[str, ...] = (FUNCTION_NAME,)
ERROR_DIMENSIONS: tuple[str, ...] = (FUNCTION_NAME, ERROR_CLASS)

# Metric name -> CloudWatch unit (docs/design.md, "Contract: metrics").
RECORDS_PROCESSED = "RecordsProcessed"
RECORDS_SKIPPED = "RecordsSkipped"
RECORDS_FAILED = "RecordsFailed"
RENDITIONS_WRITTEN = "RenditionsWritten"
PROCESSING_TIME = "ProcessingTime"
SOURCE_BYTES = "SourceBytes"
OUTPUT_BYTES = "OutputBytes"
UNITS: dict[str, str] = {
    RECORDS_PROCESSED: "Count",
    RECORDS_SKIPPED: "Count",
    RECORDS_FAILED: "Count",
    RENDITIONS_WRITTEN: "Count",
    PROCESSING_TIME: "Milliseconds",
    SOURCE_BYTES: "Bytes",
    OUTPUT_BYTES: "Bytes",
}
COUNTS: tuple[str, ...] = (RECORDS_PROCESSED, RECORDS_SKIPPED, RECORDS_FAILED, RENDITIONS_WRITTEN)
DISTRIBUTIONS: tuple[str, ...] = (PROCESSING_TIME, SOURCE_BYTES, OUTPUT_BYTES)

# Every (metric, dimension set) this module emits: what dashboards and alarms may refer to.
EMITTED: frozenset[tuple[str, tuple[str, ...]]] = frozenset(
    {(name, GENERAL_DIMENSIONS) for name in UNITS} | {(RECORDS_FAILED, ERROR_DIMENSIONS)}
)

# EMF limits.
MAX_VALUES_PER_METRIC = 100

# Outcomes (the values of the `outcome` field of the handler's log lines) by the count they add to.
PROCESSED_OUTCOMES = outcomes.PROCESSED
SKIPPED_OUTCOMES = outcomes.NOT_NEEDED
FAILED_OUTCOMES = outcomes.FAILED
OUTCOMES: frozenset[Outcome] = frozenset(Outcome)


@dataclass
class _Tally:
    counts: Counter[str] = field(default_factory=Counter)
    failed_by_class: Counter[str] = field(default_factory=Counter)
    values: dict[str, list[float | int]] = field(default_factory=lambda: {m: [] for m in DISTRIBUTIONS})
    records: int = 0


class BatchMetrics:
    """Collects one batch's records; :meth:`documents` turns them into EMF documents.

    Typical use in the batch: one ``add_record`` per record (from any worker thread), then one
    ``flush()`` after the batch, whatever happened.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tally = _Tally()

    def __len__(self) -> int:
        """Records added so far."""
        return self._tally.records

    def add_record(
        self,
        outcome: Outcome | str,
        *,
        error_class: str | None = None,
        processing_ms: float | None = None,
        source_bytes: int = 0,
        output_bytes: int = 0,
        renditions: int = 0,
    ) -> None:
        """Count one record.

        ``outcome`` is one of :data:`OUTCOMES`; ``error_class`` is required for ``retry`` and
        ``dead-lettered`` (the ``ProcessingError.error_class``) and ignored otherwise.
        ``processing_ms`` is the wall time spent on the record (None when it was never started);
        the byte sizes and ``renditions`` matter for ``rendered`` records only.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; expected one of {sorted(map(str, OUTCOMES))}")
        failed = outcome in FAILED_OUTCOMES
        if failed and not error_class:
            raise ValueError(f"outcome {str(outcome)!r} needs an error_class")
        with self._lock:
            tally = self._tally
            tally.records += 1
            if outcome in PROCESSED_OUTCOMES:
                tally.counts[RECORDS_PROCESSED] += 1
            elif failed:
                tally.counts[RECORDS_FAILED] += 1
                tally.failed_by_class[str(error_class)] += 1
            else:
                tally.counts[RECORDS_SKIPPED] += 1
            if outcome != Outcome.IGNORED and processing_ms is not None and math.isfinite(processing_ms):
                tally.values[PROCESSING_TIME].append(round(max(0.0, float(processing_ms)), 3))
            if outcome == Outcome.RENDERED:
                tally.counts[RENDITIONS_WRITTEN] += max(0, int(renditions))
                tally.values[SOURCE_BYTES].append(max(0, int(source_bytes)))
                tally.values[OUTPUT_BYTES].append(max(0, int(output_bytes)))

    def documents(self, function_name: str, timestamp_ms: int) -> list[dict[str, Any]]:
        """The EMF documents for the records added so far; none for an empty batch. Pure."""
        with self._lock:
            tally = self._tally
            if not tally.records:
                return []
            counts = {name: tally.counts[name] for name in COUNTS}
            chunks = {name: list(_chunks(tally.values[name])) for name in DISTRIBUTIONS}
            failed_by_class = sorted(tally.failed_by_class.items())

        dimensions = {FUNCTION_NAME: function_name}
        documents: list[dict[str, Any]] = []
        rounds = max([1, *(len(c) for c in chunks.values())])
        for index in range(rounds):
            values: dict[str, Any] = dict(counts) if index == 0 else {}
            for name in DISTRIBUTIONS:
                if index < len(chunks[name]):
                    values[name] = chunks[name][index]
            documents.append(_document(timestamp_ms, GENERAL_DIMENSIONS, dimensions, values))
        for error_class, count in failed_by_class:
            documents.append(
                _document(
                    timestamp_ms,
                    ERROR_DIMENSIONS,
                    {**dimensions, ERROR_CLASS: error_class},
                    {RECORDS_FAILED: count},
                )
            )
        return documents

    def flush(
        self,
        stream: TextIO | None = None,
        *,
        function_name: str | None = None,
        timestamp_ms: int | None = None,
    ) -> int:
        """Write the documents to ``stream`` (stdout by default), one JSON line each; then reset.

        Returns the number of lines written (0 for an empty batch). ``function_name`` defaults to
        :func:`current_function_name`, ``timestamp_ms`` to now.
        """
        documents = self.documents(
            function_name if function_name is not None else current_function_name(),
            timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
        )
        out = stream if stream is not None else sys.stdout  # looked up now: tests and the poller swap it
        for document in documents:
            # One write per line, so that concurrent writers to the same stream cannot split it.
            out.write(json.dumps(document, separators=(",", ":"), allow_nan=False) + "\n")
        if documents:
            out.flush()
        with self._lock:
            self._tally = _Tally()
        return len(documents)


def current_function_name() -> str:
    """The ``FunctionName`` dimension value: the Lambda function's name, or ``local``."""
    return os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or LOCAL_FUNCTION_NAME


def _chunks(values: list[float | int]) -> Iterator[list[float | int]]:
    for start in range(0, len(values), MAX_VALUES_PER_METRIC):
        yield values[start : start + MAX_VALUES_PER_METRIC]


def _document(
    timestamp_ms: int,
    dimension_set: tuple[str, ...],
    dimensions: dict[str, str],
    values: dict[str, Any],
) -> dict[str, Any]:
    metrics = [{"Name": name, "Unit": UNITS[name]} for name in values]  # 7 at most: far below the limit
    return {
        "_aws": {
            "Timestamp": int(timestamp_ms),
            "CloudWatchMetrics": [
                {"Namespace": NAMESPACE, "Dimensions": [list(dimension_set)], "Metrics": metrics}
            ],
        },
        **dimensions,
        **values,
    }
