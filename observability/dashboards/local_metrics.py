"""A local run's metrics as CloudWatch would compute them: a time window cut into buckets, the
statistics of a widget per bucket, the error rate, and the window's totals. Pure.

Percentiles are nearest-rank over the raw values of the bucket (the smallest value with at least p%
of the values at or below it). A bucket without any document has no datapoint (a gap, as in
CloudWatch); the counts are emitted even when zero, so a bucket in which the function ran has 0.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from observability import metrics
from observability.dashboards.local_logs import MetricDocument, WorkerLogs
from observability.dashboards.widgets import PERIOD

MAX_BUCKETS = 180  # longer windows get coarser buckets, as CloudWatch raises a graph's period
_BUCKET_CHOICES = (PERIOD, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400)

Series = dict[int, float]  # bucket start (epoch ms) -> value; a missing bucket is a gap

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


def utc(ms: int) -> datetime:
    """The UTC moment of epoch milliseconds (a bucket start, a window's end)."""
    return datetime.fromtimestamp(ms / 1000, UTC)


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
