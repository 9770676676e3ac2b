"""One local dashboard, ready to draw: the view of the panels, the stack it was read against, and the
header lines above the panels (which run, which window, the queues now, the window's totals).

``imgproc dashboard`` reads the stack and the logs (its I/O edge) and builds this; the PNG
(:mod:`observability.dashboards.drawing`) and the HTML page (:mod:`observability.dashboards.html_page`)
only draw it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from observability import metrics
from observability.dashboards.local_logs import WorkerLogs
from observability.dashboards.local_metrics import Totals, format_duration, utc
from observability.dashboards.local_panels import QUEUES_UNAVAILABLE, QueueSnapshot, View

TITLE = "imgproc on-call dashboard (local run)"


@dataclass
class StackView:
    """What the stack at the endpoint tells: function, thresholds and queues (or why not)."""

    function_name: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    queues: QueueSnapshot | None = None
    problem: str | None = None  # why the queues are unavailable

    @property
    def unavailable_note(self) -> str:
        """The queue panels' note, with the reason when there is one."""
        return f"{QUEUES_UNAVAILABLE} ({self.problem})" if self.problem else QUEUES_UNAVAILABLE


@dataclass(frozen=True)
class Source:
    """Where the dashboard's data come from, as the operator named them."""

    stack_name: str
    endpoint_url: str | None
    region: str | None
    log_dir: Path


@dataclass
class Dashboard:
    view: View
    header: list[str]
    generated_at: datetime
    stack: StackView
    logs: WorkerLogs


def header_lines(
    source: Source,
    now: datetime,
    *,
    stack: StackView,
    logs: WorkerLogs,
    view: View,
    format_age: Callable[[float | None], str],
) -> list[str]:
    """The lines above the panels; ``format_age`` writes a queue age as ``imgproc status`` does."""
    window = view.window
    endpoint = source.endpoint_url or "AWS (no --endpoint-url)"
    start, span = utc(window.start_ms), format_duration((window.end_ms - window.start_ms) // 1000)
    lines = [
        f"stack {source.stack_name}  ·  endpoint {endpoint}  ·  region {source.region}",
        f"window {start:%Y-%m-%d %H:%M} → {now:%H:%M} UTC (last {span}, {window.bucket_label} buckets)"
        f"  ·  generated at {now:%Y-%m-%dT%H:%M:%SZ}",
    ]
    files = len(logs.files)
    line = f"logs {source.log_dir} ({files} worker file{'s' * (files != 1)})"
    if stack.function_name:
        line += f"  ·  function {stack.function_name}"
        others = logs.function_names - {stack.function_name}
        if stack.function_name not in logs.function_names:
            line += " (no log lines of it in this window" + (
                f"; the logs name {', '.join(sorted(others))})" if others else ")"
            )
    elif logs.function_names:
        line += f"  ·  functions: every one in the logs ({len(logs.function_names)})"
    else:
        line += "  ·  no handler output in this window"
    lines.append(line)
    if stack.queues is None:
        lines.append(stack.unavailable_note)
    else:
        q = stack.queues
        lines.append(
            f"queues now: ingest {q.ingest_visible} waiting, {q.ingest_in_flight} in flight, oldest"
            f" {format_age(q.ingest_oldest_age_seconds)}  ·  dead-letter {q.dlq_visible}"
            f" (+{q.dlq_in_flight} in flight), oldest {format_age(q.dlq_oldest_age_seconds)}"
        )
    lines.append(totals_line(view.totals))
    return lines


def totals_line(totals: Totals) -> str:
    """The header line of what the window adds up to."""
    counts = totals.counts
    failed = counts[metrics.RECORDS_FAILED]
    by_class = ", ".join(f"{c} {n}" for c, n in sorted(totals.failed_by_class.items()))
    p = totals.processing_ms
    timing = (
        f"processing p50 {p['p50']:.0f} / p90 {p['p90']:.0f} / p99 {p['p99']:.0f} ms"
        if p["p50"] is not None
        else "processing time: no data"
    )
    parts = [
        f"processed {counts[metrics.RECORDS_PROCESSED]}",
        f"skipped {counts[metrics.RECORDS_SKIPPED]}",
        f"failed {failed}" + (f" ({by_class})" if by_class else ""),
        f"renditions {counts[metrics.RENDITIONS_WRITTEN]}",
        timing,
        f"bytes in {byte_size(totals.source_bytes)} / out {byte_size(totals.output_bytes)}",
    ]
    return "in this window: " + "  ·  ".join(parts)


def byte_size(n: float) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 MiB``, ``1.1 GiB``."""
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB"):
        n /= 1024
        if n < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} GiB"
