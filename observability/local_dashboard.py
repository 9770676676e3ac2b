"""The on-call view of a local run, computed from what the local runtime captured. Pure: no I/O but
reading the worker log files, no plotting (``imgproc dashboard`` draws what :func:`build_view` returns).

The local runtime (``imgproc up``) writes each worker's stdout to ``<state-dir>/logs/worker-N.jsonl``:
the handler's JSON log lines and, once per batch, the EMF documents of :mod:`observability.metrics`.
In AWS, CloudWatch turns those documents into metrics and the dashboard of
:mod:`observability.dashboard` graphs them; here the same documents are read back and the same
widgets are computed from them:

- every ``ImageProcessor`` metric of a widget, with the widget's statistic (``Sum``, ``Average``,
  ``Maximum``, ``Minimum``, ``SampleCount``, ``pNN``) per time bucket, for the widget's dimension set
  (``FunctionName``; ``FunctionName`` + ``ErrorClass`` for the failed-by-class search);
- the error rate, as the dashboard's expression computes it;
- the latest failures from the log lines, as the Logs Insights widget lists them;
- the SQS widgets from a snapshot of the queues (the embedded AWS keeps no metric history), and the
  Lambda widgets from the log lines where they can be (invocations), marked unavailable otherwise;
- the alarms' states, where the local data allow.

Percentiles are nearest-rank over the raw values of the bucket (the smallest value with at least p%
of the values at or below it). A bucket without any document has no datapoint (a gap, as in
CloudWatch); the counts are emitted even when zero, so a bucket in which the function ran has 0.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from observability import dashboard, metrics

LOG_GLOB = "worker-*.jsonl"
QUEUES_UNAVAILABLE = "queues: unavailable"  # the note queue panels carry without a queue snapshot
LATEST_FAILURES = 10
MAX_BUCKETS = 180  # longer windows get coarser buckets, as CloudWatch raises a graph's period
_BUCKET_CHOICES = (dashboard.PERIOD, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400)

Series = dict[int, float]  # bucket start (epoch ms) -> value; a missing bucket is a gap

# States of an alarm tile.
ALARM, OK, NO_DATA, UNAVAILABLE = "ALARM", "OK", "NO DATA", "N/A LOCALLY"

# Queue numbers the SQS widgets show, by (queue, metric) of the widget definitions.
_SQS_FIELDS: dict[tuple[str, str], str] = {
    (dashboard.INGEST_QUEUE.name, "ApproximateNumberOfMessagesVisible"): "ingest_visible",
    (dashboard.INGEST_QUEUE.name, "ApproximateNumberOfMessagesNotVisible"): "ingest_in_flight",
    (dashboard.INGEST_QUEUE.name, "ApproximateAgeOfOldestMessage"): "ingest_oldest_age_seconds",
    (dashboard.DEAD_LETTER_QUEUE.name, "ApproximateNumberOfMessagesVisible"): "dlq_visible",
    (dashboard.DEAD_LETTER_QUEUE.name, "ApproximateNumberOfMessagesNotVisible"): "dlq_in_flight",
}
_AGE_METRICS = frozenset({"ApproximateAgeOfOldestMessage"})
_LAMBDA_FROM_LOGS = "Invocations"  # the one AWS/Lambda metric the log lines give (batch.done lines)


# ----------------------------------------------------------------------------------------------------
# reading the worker log files
# ----------------------------------------------------------------------------------------------------
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
        doc = _json_object(text)
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


def _json_object(text: str) -> dict[str, Any] | None:
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


# ----------------------------------------------------------------------------------------------------
# time window and statistics
# ----------------------------------------------------------------------------------------------------
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds in ``90s``, ``30m``, ``1h``, ``1h30m``, ``2d``; ValueError otherwise."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not a duration like 90s, 30m, 1h, 1h30m or 2d")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds < 60:
        raise ValueError(f"{text!r} is shorter than one minute")
    return int(seconds)


def format_duration(seconds: int) -> str:
    """``1h``, ``1h30m``, ``2d``, ``45m``, ``90s`` → the shortest exact form."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


@dataclass(frozen=True)
class Window:
    """``[start_ms, end_ms]``, in buckets of ``bucket_ms`` aligned on the epoch (as CloudWatch periods)."""

    start_ms: int
    end_ms: int
    bucket_ms: int

    @classmethod
    def ending(cls, end_ms: int, seconds: int, bucket_seconds: int | None = None) -> Window:
        bucket = bucket_seconds or choose_bucket(seconds)
        return cls(end_ms - seconds * 1000, end_ms, bucket * 1000)

    def bucket(self, timestamp_ms: int) -> int:
        return timestamp_ms - timestamp_ms % self.bucket_ms

    def contains(self, timestamp_ms: int) -> bool:
        return self.start_ms <= timestamp_ms <= self.end_ms

    @property
    def bucket_label(self) -> str:
        """``minute``, ``5 min``, ``hour``: what one bucket is, for axis labels."""
        seconds = self.bucket_ms // 1000
        if seconds == 60:
            return "minute"
        if seconds == 3600:
            return "hour"
        if seconds % 3600 == 0:
            return f"{seconds // 3600} h"
        return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def choose_bucket(window_seconds: int) -> int:
    """Seconds per bucket: one minute (the dashboard's period) unless that makes too many buckets."""
    for seconds in _BUCKET_CHOICES:
        if window_seconds / seconds <= MAX_BUCKETS:
            return seconds
    return _BUCKET_CHOICES[-1]


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of non-empty ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


_STATISTICS: dict[str, Callable[[Sequence[float]], float]] = {
    "Sum": lambda values: float(sum(values)),
    "Average": lambda values: float(sum(values)) / len(values),
    "Maximum": lambda values: float(max(values)),
    "Minimum": lambda values: float(min(values)),
    "SampleCount": lambda values: float(len(values)),
}
_PERCENTILE = re.compile(r"p(\d+(?:\.\d+)?)")


def statistic(values: Sequence[float], stat: str) -> float | None:
    """A CloudWatch statistic of ``values``; None for no values or an unknown statistic."""
    if not values:
        return None
    if stat in _STATISTICS:
        return _STATISTICS[stat](values)
    match = _PERCENTILE.fullmatch(stat)
    if match and 0 < float(match.group(1)) <= 100:
        return percentile(values, float(match.group(1)))
    return None


def _matches(doc: MetricDocument, dimensions: Mapping[str, str | None]) -> bool:
    """The document's dimension set is exactly ``dimensions`` (a None value matches any value)."""
    if set(doc.dimensions) != set(dimensions):
        return False
    return all(value is None or doc.dimensions[name] == value for name, value in dimensions.items())


def metric_series(
    documents: Iterable[MetricDocument],
    name: str,
    stat: str,
    window: Window,
    dimensions: Mapping[str, str | None],
) -> Series:
    """``stat`` of metric ``name`` per bucket of ``window``, over the documents of that dimension set."""
    values: dict[int, list[float]] = defaultdict(list)
    for doc in documents:
        if name in doc.values and window.contains(doc.timestamp_ms) and _matches(doc, dimensions):
            values[window.bucket(doc.timestamp_ms)].extend(doc.values[name])
    series = {bucket: statistic(found, stat) for bucket, found in values.items()}
    return {bucket: value for bucket, value in sorted(series.items()) if value is not None}


def failed_by_class(
    documents: Iterable[MetricDocument], window: Window, function_name: str | None
) -> dict[str, Series]:
    """``RecordsFailed`` Sum per bucket for each ``ErrorClass`` (the dashboard's SEARCH), by class."""
    docs = [d for d in documents if metrics.ERROR_CLASS in d.dimensions]
    classes = sorted({d.dimensions[metrics.ERROR_CLASS] for d in docs})
    return {
        error_class: metric_series(
            docs,
            metrics.RECORDS_FAILED,
            "Sum",
            window,
            {metrics.FUNCTION_NAME: function_name, metrics.ERROR_CLASS: error_class},
        )
        for error_class in classes
    }


def error_rate(documents: Sequence[MetricDocument], window: Window, function_name: str | None) -> Series:
    """``100 * FILL(failed, 0) / (FILL(processed, 0) + FILL(skipped, 0) + FILL(failed, 0))`` per
    bucket: defined where any of the three has a datapoint and the denominator is not 0."""
    dims = {metrics.FUNCTION_NAME: function_name}
    failed, processed, skipped = (
        metric_series(documents, name, "Sum", window, dims)
        for name in (metrics.RECORDS_FAILED, metrics.RECORDS_PROCESSED, metrics.RECORDS_SKIPPED)
    )
    rate = {}
    for bucket in sorted(set(failed) | set(processed) | set(skipped)):
        total = failed.get(bucket, 0) + processed.get(bucket, 0) + skipped.get(bucket, 0)
        if total:
            rate[bucket] = 100 * failed.get(bucket, 0) / total
    return rate


@dataclass(frozen=True)
class Totals:
    """The whole window at once: what the widgets add up to."""

    counts: dict[str, int]  # RecordsProcessed, RecordsSkipped, RecordsFailed, RenditionsWritten
    failed_by_class: dict[str, int]
    processing_ms: dict[str, float | None]  # p50, p90, p99, Maximum
    source_bytes: int
    output_bytes: int
    rendered_sources: int  # SourceBytes values: one per rendered record
    error_rate_percent: float | None
    outcomes: dict[str, int]  # records by the outcome of their log lines (failures merged, as listed)
    invocations: int  # batch.done lines

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "failed_by_class": self.failed_by_class,
            "processing_time_ms": self.processing_ms,
            "source_bytes": self.source_bytes,
            "output_bytes": self.output_bytes,
            "rendered_sources": self.rendered_sources,
            "error_rate_percent": self.error_rate_percent,
            "outcomes": self.outcomes,
            "invocations": self.invocations,
        }


def totals(logs: WorkerLogs, window: Window, function_name: str | None = None) -> Totals:
    """Sums, percentiles and bytes over the whole window (one bucket as wide as the window)."""
    whole = Window(window.start_ms, window.end_ms, bucket_ms=10**15)  # every timestamp: one bucket
    dims: dict[str, str | None] = {metrics.FUNCTION_NAME: function_name}

    def one(name: str, stat: str, dimensions: Mapping[str, str | None] = dims) -> float | None:
        series = metric_series(logs.documents, name, stat, whole, dimensions)
        return next(iter(series.values()), None)

    counts = {name: int(one(name, "Sum") or 0) for name in metrics.COUNTS}
    by_class = {
        error_class: int(next(iter(series.values()), 0))
        for error_class, series in failed_by_class(logs.documents, whole, function_name).items()
    }
    all_records = sum(
        counts[n] for n in (metrics.RECORDS_PROCESSED, metrics.RECORDS_SKIPPED, metrics.RECORDS_FAILED)
    )
    logs = logs.only(function_name)
    outcomes = Counter(r.outcome for r in logs.records if window.contains(r.timestamp_ms))
    outcomes.update(f.outcome for f in logs.failures if window.contains(f.timestamp_ms))
    return Totals(
        counts=counts,
        failed_by_class=by_class,
        processing_ms={stat: one(metrics.PROCESSING_TIME, stat) for stat in ("p50", "p90", "p99", "Maximum")},
        source_bytes=int(one(metrics.SOURCE_BYTES, "Sum") or 0),
        output_bytes=int(one(metrics.OUTPUT_BYTES, "Sum") or 0),
        rendered_sources=int(one(metrics.SOURCE_BYTES, "SampleCount") or 0),
        error_rate_percent=100 * counts[metrics.RECORDS_FAILED] / all_records if all_records else None,
        outcomes=dict(sorted(outcomes.items())),
        invocations=sum(1 for i in logs.invocations if window.contains(i.timestamp_ms)),
    )


def latest_failures(failures: Iterable[Failure], limit: int = LATEST_FAILURES) -> list[Failure]:
    """The ``limit`` most recent failures, newest first."""
    return sorted(failures, key=lambda f: f.timestamp_ms, reverse=True)[:limit]


# ----------------------------------------------------------------------------------------------------
# the view: the dashboard's widgets, computed locally
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueSnapshot:
    """The queues now (``imgproc status``'s numbers); ages None when unknown."""

    ingest_visible: int
    ingest_in_flight: int
    ingest_oldest_age_seconds: float | None
    dlq_visible: int
    dlq_in_flight: int
    dlq_oldest_age_seconds: float | None

    def value(self, queue: str, metric_name: str) -> float | None:
        attribute = _SQS_FIELDS.get((queue, metric_name))
        return None if attribute is None else getattr(self, attribute)


@dataclass(frozen=True)
class Line:
    label: str
    points: Series
    right_axis: bool = False


@dataclass(frozen=True)
class Stat:
    """A current value shown as a number (queues: no history locally)."""

    label: str
    value: str


@dataclass
class GraphPanel:
    title: str
    width: int
    height: int
    lines: list[Line] = field(default_factory=list)
    stats: list[Stat] = field(default_factory=list)  # shown instead of a graph when there are no lines
    stacked: bool = False
    left_label: str = ""
    right_label: str = ""
    threshold: tuple[str, float] | None = None
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # series the local runtime does not record
    bytes_axis: bool = False


@dataclass
class TablePanel:
    title: str
    width: int
    height: int
    columns: list[str]
    rows: list[list[str]]
    failures: list[Failure]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AlarmTile:
    name: str
    state: str  # ALARM, OK, NO DATA, N/A LOCALLY
    detail: str


@dataclass
class AlarmPanel:
    title: str
    width: int
    height: int
    alarms: list[AlarmTile]


Panel = GraphPanel | TablePanel | AlarmPanel


@dataclass
class View:
    rows: list[list[Panel]]
    window: Window
    totals: Totals
    failures: list[Failure]  # the latest, newest first
    function_name: str | None
    queues: QueueSnapshot | None


def build_view(
    logs: WorkerLogs,
    window: Window,
    *,
    function_name: str | None,
    queues: QueueSnapshot | None,
    queues_unavailable: str = QUEUES_UNAVAILABLE,
    parameters: Mapping[str, str] | None = None,
    now_ms: int | None = None,
    format_age: Callable[[float | None], str] = lambda s: "unknown" if s is None else f"{s:.0f} s",
) -> View:
    """Every widget of :data:`observability.dashboard.ROWS`, computed from ``logs`` (restricted to
    ``function_name`` unless None) and ``queues``; ``parameters`` are the stack's (alarm thresholds).
    ``format_age`` writes a queue age (``imgproc status`` passes its own, so both read alike)."""
    logs = logs.only(function_name)
    parameters = parameters or {}
    now_ms = window.end_ms if now_ms is None else now_ms
    failures = latest_failures(f for f in logs.failures if window.contains(f.timestamp_ms))
    context = _Context(
        logs, window, function_name, queues, queues_unavailable, parameters, now_ms, format_age
    )
    rows: list[list[Panel]] = []
    for row in dashboard.ROWS:
        panels: list[Panel] = []
        for widget in row:
            if isinstance(widget, dashboard.Graph):
                panels.append(context.graph(widget))
            elif isinstance(widget, dashboard.LogTable):
                panels.append(_failures_table(widget, failures))
            else:
                panels.append(AlarmPanel(widget.title, widget.width, widget.height, context.alarms()))
        rows.append(panels)
    return View(rows, window, totals(logs, window), failures, function_name, queues)


def _failures_table(widget: dashboard.LogTable, failures: list[Failure]) -> TablePanel:
    rows = [
        [f.timestamp[:19].replace("T", " "), f.key or "-", f.error_class, f.outcome, f.error or ""]
        for f in failures
    ]
    notes = [] if failures else ["no failures in this window"]
    columns = ["time (UTC)", "key", "error class", "outcome", "error"]
    return TablePanel(widget.title, widget.width, widget.height, columns, rows, failures, notes)


@dataclass
class _Context:
    logs: WorkerLogs
    window: Window
    function_name: str | None
    queues: QueueSnapshot | None
    queues_unavailable: str
    parameters: Mapping[str, str]
    now_ms: int
    format_age: Callable[[float | None], str]

    def title(self, text: str) -> str:
        """A widget title with the ``${Parameter}`` references that ``Fn::Sub`` resolves in CloudWatch
        replaced by the stack's values (left as written when unknown)."""
        return re.sub(r"\$\{([A-Za-z0-9]+)\}", lambda m: self.parameters.get(m.group(1), m.group(0)), text)

    def graph(self, widget: dashboard.Graph) -> GraphPanel:
        panel = GraphPanel(
            self.title(widget.title),
            widget.width,
            widget.height,
            stacked=widget.stacked,
            left_label=widget.left_label or "",
            right_label=widget.right_label or "",
        )
        if widget.threshold is not None:
            label, raw = widget.threshold
            value = self.threshold(raw.var)
            if value is not None:
                panel.threshold = (f"{label}: {value:g} {widget.left_label or ''}".rstrip(), value)
        inputs = {m.id: m for m in widget.metrics if isinstance(m, dashboard.Metric) and m.id}
        for item in widget.metrics:
            if isinstance(item, dashboard.Expression):
                self.expression(panel, item, inputs)
            elif item.visible:
                self.metric(panel, item)
        if not panel.left_label:
            panel.left_label = self.unit_label(widget)
        return panel

    def unit_label(self, widget: dashboard.Graph) -> str:
        first = widget.metrics[0]
        if isinstance(first, dashboard.Expression) or first.namespace != metrics.NAMESPACE:
            return f"records per {self.window.bucket_label}" if first is dashboard.FAILED_BY_CLASS else ""
        unit = metrics.UNITS[first.name]
        if unit == "Count":
            noun = "renditions" if first.name == metrics.RENDITIONS_WRITTEN else "records"
            return f"{noun} per {self.window.bucket_label}"
        return {"Milliseconds": "ms", "Bytes": "bytes"}.get(unit, unit)

    def metric(self, panel: GraphPanel, metric: dashboard.Metric) -> None:
        label = metric.label or metric.name
        if metric.namespace == metrics.NAMESPACE:
            dims = {name: self.function_name for name, _ in metric.dimensions}
            series = metric_series(self.logs.documents, metric.name, metric.stat, self.window, dims)
            panel.lines.append(Line(label, series, metric.right_axis))
            panel.bytes_axis = panel.bytes_axis or metrics.UNITS[metric.name] == "Bytes"
        elif metric.namespace == "AWS/SQS":
            self.queue_stat(panel, label, [metric])
        elif metric.namespace == "AWS/Lambda" and metric.name == _LAMBDA_FROM_LOGS:
            counts: Counter[int] = Counter(
                self.window.bucket(i.timestamp_ms)
                for i in self.logs.invocations
                if self.window.contains(i.timestamp_ms)
            )
            panel.lines.append(Line(f"{label} (batch.done log lines)", dict(sorted(counts.items()))))
        else:
            panel.missing.append(label)

    def queue_stat(self, panel: GraphPanel, label: str, sqs_metrics: Sequence[dashboard.Metric]) -> None:
        """A queue widget's series as its current value (no history on the embedded AWS)."""
        if self.queues is None:
            if self.queues_unavailable not in panel.notes:
                panel.notes.append(self.queues_unavailable)
            return
        value = self.queue_value(sqs_metrics)
        if any(m.name in _AGE_METRICS for m in sqs_metrics):
            text = self.format_age(value)
            if value is None:
                panel.notes.append("the embedded AWS keeps no SQS metrics (ApproximateAgeOfOldestMessage)")
        else:
            text = "unknown" if value is None else f"{value:.0f}"
        panel.stats.append(Stat(f"{label}, now", text))
        dead_letter = any(_queue(m) == dashboard.DEAD_LETTER_QUEUE.name for m in sqs_metrics)
        oldest = Stat("oldest message, now", self.format_age(self.queues.dlq_oldest_age_seconds))
        if dead_letter and oldest not in panel.stats:
            panel.stats.append(oldest)

    def queue_value(self, sqs_metrics: Sequence[dashboard.Metric]) -> float | None:
        """The sum of the metrics' current values; None when one is unknown."""
        assert self.queues is not None
        values = [self.queues.value(_queue(m), m.name) for m in sqs_metrics]
        return None if any(v is None for v in values) else float(sum(v for v in values if v is not None))

    def expression(
        self, panel: GraphPanel, expression: dashboard.Expression, inputs: Mapping[str, dashboard.Metric]
    ) -> None:
        if expression is dashboard.FAILED_BY_CLASS:
            for error_class, series in failed_by_class(
                self.logs.documents, self.window, self.function_name
            ).items():
                panel.lines.append(Line(error_class, series))
            if not panel.lines:
                panel.notes.append("no failed records in this window")
        elif expression is dashboard.ERROR_RATE:
            panel.lines.append(
                Line(expression.label, error_rate(self.logs.documents, self.window, self.function_name))
            )
        elif (sqs_metrics := _sqs_sum(expression, inputs.values())) is not None:
            self.queue_stat(panel, expression.label, sqs_metrics)
        else:
            panel.notes.append(f"{expression.label}: expression not computed locally")

    def threshold(self, var: dashboard.Var) -> float | None:
        try:
            return float(self.parameters[var.name])
        except (KeyError, ValueError):
            return None

    def alarms(self) -> list[AlarmTile]:
        return [self.alarm(alarm) for alarm in dashboard.ALARMS]

    def alarm(self, alarm: dashboard.Alarm) -> AlarmTile:
        threshold = (
            self.threshold(alarm.threshold)
            if isinstance(alarm.threshold, dashboard.Var)
            else float(alarm.threshold)
        )
        if threshold is None:
            return AlarmTile(alarm.name, NO_DATA, "threshold parameter unknown")
        if alarm.math is not None and alarm.math[0] is dashboard.ERROR_RATE:
            return self.error_rate_alarm(alarm, threshold)
        if alarm.metric is not None:
            sqs_metrics = [alarm.metric] if alarm.metric.namespace == "AWS/SQS" else None
        else:
            assert alarm.math is not None
            sqs_metrics = _sqs_sum(alarm.math[0], alarm.math[1])
        if sqs_metrics is None:
            return AlarmTile(alarm.name, UNAVAILABLE, "not recorded by the local runtime")
        if self.queues is None:
            return AlarmTile(alarm.name, NO_DATA, QUEUES_UNAVAILABLE)
        value = self.queue_value(sqs_metrics)
        age = any(m.name in _AGE_METRICS for m in sqs_metrics)
        if value is None:
            return AlarmTile(alarm.name, NO_DATA, "the embedded AWS keeps no SQS metrics")
        shown, limit = (
            (self.format_age(value), self.format_age(threshold))
            if age
            else (f"{value:.0f}", f"{threshold:g}")
        )
        state = ALARM if _breaches(value, threshold, alarm.comparison) else OK
        return AlarmTile(alarm.name, state, f"now {shown} (alarm above {limit})")

    def error_rate_alarm(self, alarm: dashboard.Alarm, threshold: float) -> AlarmTile:
        periods = Window(
            self.now_ms - alarm.period * 1000 * alarm.evaluation_periods, self.now_ms, alarm.period * 1000
        )
        rate = error_rate(self.logs.documents, periods, self.function_name)
        # The evaluation_periods periods ending with the current one; missing data is not breaching.
        last = periods.bucket(self.now_ms)
        evaluated = [last - i * periods.bucket_ms for i in range(alarm.evaluation_periods)]
        breaching = sum(1 for b in evaluated if b in rate and _breaches(rate[b], threshold, alarm.comparison))
        needed = alarm.datapoints_to_alarm or alarm.evaluation_periods
        worst = max((rate[b] for b in evaluated if b in rate), default=None)
        detail = (
            f"{breaching} of {alarm.evaluation_periods} {alarm.period // 60}-min periods above {threshold:g}%"
            + ("" if worst is None else f" (max {worst:.1f}%)")
        )
        return AlarmTile(alarm.name, ALARM if breaching >= needed else OK, detail)


def _queue(metric: dashboard.Metric) -> str:
    return dict(metric.dimensions)["QueueName"].name


_SUM_TERM = re.compile(r"\s*(?:FILL\(\s*(\w+)\s*,\s*0\s*\)|(\w+))\s*")


def _sqs_sum(
    expression: dashboard.Expression, inputs: Iterable[dashboard.Metric]
) -> list[dashboard.Metric] | None:
    """The SQS metrics an expression adds up (``FILL(a, 0) + FILL(b, 0)``); None for any other one."""
    by_id = {m.id: m for m in inputs}
    found = []
    for term in expression.expression.split("+"):
        match = _SUM_TERM.fullmatch(term)
        metric = by_id.get(match.group(1) or match.group(2)) if match else None
        if metric is None or metric.namespace != "AWS/SQS":
            return None
        found.append(metric)
    return found


def _breaches(value: float, threshold: float, comparison: str) -> bool:
    return {
        "GreaterThanThreshold": value > threshold,
        "GreaterThanOrEqualToThreshold": value >= threshold,
        "LessThanThreshold": value < threshold,
        "LessThanOrEqualToThreshold": value <= threshold,
    }.get(comparison, False)
