"""What a local run's worker logs say, read back: the handler's EMF documents, its failures, invocations
and record outcomes. Pure but for reading the files; malformed lines are counted, never raised.

The local runtime (``imgproc up``) writes each worker's stdout to ``<state-dir>/logs/worker-N.jsonl``:
the handler's JSON log lines and, once per batch, the EMF documents of :mod:`observability.metrics`.
In AWS, CloudWatch turns those documents into metrics and Logs Insights queries the lines; here
:func:`read_worker_logs` folds them into a :class:`WorkerLogs` that
:mod:`observability.dashboards.local_metrics` aggregates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from observability import metrics

LOG_GLOB = "worker-*.jsonl"
LATEST_FAILURES = 10


@dataclass(frozen=True)
class MetricDocument:
    """The ``ImageProcessor`` metrics of one EMF document for one of its dimension sets."""

    timestamp_ms: int
    dimensions: Mapping[str, str]  # the dimension set's names and their values
    values: Mapping[str, tuple[float, ...]]  # metric -> its values (a count is one value)


@dataclass(frozen=True)
class Failure:
    """One failed record of one delivery, as the handler's log lines tell it."""

    timestamp: str  # ISO-8601 UTC, as logged (the latest line of the record)
    timestamp_ms: int
    key: str | None  # None: the failure concerns the whole message (no S3 record parsed)
    error_class: str
    outcome: str  # retry or dead-lettered: the record's final fate in that delivery
    message_id: str | None
    event: str  # the line that settled the outcome
    error: str | None = None
    function_name: str | None = None
    request_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "key": self.key,
            "error_class": self.error_class,
            "outcome": self.outcome,
            "message_id": self.message_id,
            "event": self.event,
            "error": self.error,
        }


@dataclass(frozen=True)
class Invocation:
    """A handler invocation that completed (its ``batch.done`` line)."""

    timestamp_ms: int
    function_name: str | None
    records: int
    failures: int


@dataclass(frozen=True)
class RecordLine:
    """A record that did not fail: its ``record.*`` log line."""

    timestamp_ms: int
    function_name: str | None
    outcome: str  # rendered, deleted, skipped or ignored


@dataclass
class WorkerLogs:
    files: list[Path] = field(default_factory=list)
    documents: list[MetricDocument] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)  # oldest first
    invocations: list[Invocation] = field(default_factory=list)
    records: list[RecordLine] = field(default_factory=list)  # record.* lines of records that did not fail
    function_names: set[str] = field(default_factory=set)
    lines: int = 0
    unreadable: int = 0  # lines that are neither JSON objects nor parseable (e.g. a traceback)

    def only(self, function_name: str | None) -> WorkerLogs:
        """These logs restricted to ``function_name`` (None: unchanged)."""
        if function_name is None:
            return self
        return replace(
            self,
            documents=[d for d in self.documents if d.dimensions.get(metrics.FUNCTION_NAME) == function_name],
            failures=[f for f in self.failures if f.function_name == function_name],
            invocations=[i for i in self.invocations if i.function_name == function_name],
            records=[r for r in self.records if r.function_name == function_name],
        )


def parse_emf(document: Mapping[str, Any]) -> list[MetricDocument]:
    """The ``ImageProcessor`` metrics of an EMF document, one entry per dimension set; ``[]`` when it
    is not an EMF document of that namespace. Malformed members are skipped, never raised."""
    meta = document.get("_aws")
    if not isinstance(meta, Mapping):
        return []
    timestamp = meta.get("Timestamp")
    if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
        return []
    found = []
    for directive in meta.get("CloudWatchMetrics") or []:
        if not isinstance(directive, Mapping) or directive.get("Namespace") != metrics.NAMESPACE:
            continue
        values: dict[str, tuple[float, ...]] = {}
        for definition in directive.get("Metrics") or []:
            name = definition.get("Name") if isinstance(definition, Mapping) else None
            numbers = _numbers(document.get(name)) if isinstance(name, str) else None
            if numbers is not None:
                values[name] = numbers
        for dimension_set in directive.get("Dimensions") or [[]]:
            names = [n for n in dimension_set if isinstance(n, str)]
            if not all(isinstance(document.get(n), str) for n in names):
                continue
            if values:
                found.append(MetricDocument(int(timestamp), {n: document[n] for n in names}, values))
    return found


def _numbers(value: Any) -> tuple[float, ...] | None:
    items = value if isinstance(value, list) else [value]
    numbers = [
        v for v in items if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ]
    return tuple(float(v) for v in numbers) if numbers and len(numbers) == len(items) else None


def parse_timestamp(text: Any) -> int | None:
    """Epoch ms of an ISO-8601 timestamp (``...Z`` or with an offset; naive means UTC), or None."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def read_lines(
    lines: Iterable[str],
    logs: WorkerLogs | None = None,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> WorkerLogs:
    """Fold one worker's output (in the order written) into ``logs``; only what happened in
    ``[since_ms, until_ms]`` is kept."""
    logs = logs if logs is not None else WorkerLogs()

    def inside(ms: int | None) -> bool:
        return (
            ms is not None and (since_ms is None or ms >= since_ms) and (until_ms is None or ms <= until_ms)
        )

    failed_lines: list[tuple[int, dict[str, Any]]] = []
    for line in lines:
        text = line.strip()
        if not text:
            continue
        logs.lines += 1
        doc = json_object(text)
        if doc is None:
            logs.unreadable += 1
        elif "_aws" in doc:
            for metric_doc in parse_emf(doc):
                if inside(metric_doc.timestamp_ms):
                    logs.documents.append(metric_doc)
                    logs.function_names.add(metric_doc.dimensions.get(metrics.FUNCTION_NAME) or "")
        else:
            ms = parse_timestamp(doc.get("timestamp"))
            if ms is not None and inside(ms):
                _fold_log_line(logs, ms, doc, failed_lines)
    logs.function_names.discard("")
    logs.failures = sorted([*logs.failures, *merge_failures(failed_lines)], key=lambda f: f.timestamp_ms)
    return logs


def json_object(text: str) -> dict[str, Any] | None:
    """The JSON object a log line holds, or None (not JSON, not an object, a line cut short)."""
    if not text.startswith("{"):
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _fold_log_line(
    logs: WorkerLogs, ms: int, doc: dict[str, Any], failed_lines: list[tuple[int, dict[str, Any]]]
) -> None:
    event, outcome, function_name = doc.get("event"), doc.get("outcome"), doc.get("function_name")
    if isinstance(function_name, str):
        logs.function_names.add(function_name)
    if event == "batch.done":
        logs.invocations.append(
            Invocation(ms, function_name, _int(doc.get("records")), _int(doc.get("failures")))
        )
    elif outcome in metrics.FAILED_OUTCOMES:
        if isinstance(doc.get("error_class"), str):
            failed_lines.append((ms, doc))
    elif isinstance(event, str) and event.startswith("record.") and outcome in metrics.OUTCOMES:
        logs.records.append(RecordLine(ms, function_name, outcome))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def merge_failures(lines: Sequence[tuple[int, Mapping[str, Any]]]) -> list[Failure]:
    """One :class:`Failure` per failed record per delivery, from the failure lines of one worker.

    A record's failure is logged with its key (``record.error``), and so is its dead-lettering
    (``record.dead_lettered``, one line per failed record): the later line of a key replaces the
    earlier one. What else happens to a message is logged without a key (``dead_letter.unconfigured``
    or a failed DLQ send, both ``retry``): such a line settles the outcome of the keyed failures of
    the same message in the same invocation. A keyless line with no keyed failure before it
    (``record.deferred``, a body that is no S3 event) is a failure of its own.
    """
    by_record: dict[tuple[Any, ...], Failure] = {}
    keyed_by_message: dict[tuple[Any, ...], dict[tuple[Any, ...], None]] = {}  # an ordered set each
    for ms, line in lines:
        message = (line.get("function_name"), line.get("request_id"), line.get("message_id"))
        key = line.get("key")
        failure = Failure(
            timestamp=str(line.get("timestamp")),
            timestamp_ms=ms,
            key=key if isinstance(key, str) else None,
            error_class=str(line["error_class"]),
            outcome=str(line["outcome"]),
            message_id=line.get("message_id"),
            event=str(line.get("event")),
            error=line.get("error") if isinstance(line.get("error"), str) else None,
            function_name=line.get("function_name"),
            request_id=line.get("request_id"),
        )
        if failure.key is not None:
            by_record[(*message, failure.key)] = failure
            keyed_by_message.setdefault(message, {})[(*message, failure.key)] = None
            continue
        keyed = list(keyed_by_message.get(message, ()))
        if not keyed:
            by_record[(*message, None)] = failure
        for k in keyed:
            by_record[k] = replace(
                by_record[k],
                outcome=failure.outcome,
                event=failure.event,
                timestamp=failure.timestamp,
                timestamp_ms=ms,
            )
    return list(by_record.values())


def read_worker_logs(
    log_dir: Path, *, since_ms: int | None = None, until_ms: int | None = None
) -> WorkerLogs:
    """Every ``worker-N.jsonl`` under ``log_dir``, read in full; what happened in the window is kept."""
    logs = WorkerLogs()
    for path in sorted(log_dir.glob(LOG_GLOB)):
        logs.files.append(path)
        with path.open(encoding="utf-8", errors="replace") as lines:
            read_lines(lines, logs, since_ms=since_ms, until_ms=until_ms)
    return logs


def latest_failures(failures: Iterable[Failure], limit: int = LATEST_FAILURES) -> list[Failure]:
    """The ``limit`` most recent failures, newest first."""
    return sorted(failures, key=lambda f: f.timestamp_ms, reverse=True)[:limit]
