"""`imgproc dashboard`: the on-call dashboard of a local run, as a PNG or a self-contained HTML page.

The metrics and failures come from what the local runtime captured (the handler's EMF documents and
JSON log lines in ``<state-dir>/logs/worker-N.jsonl``, read by :mod:`observability.local_dashboard`),
the queue numbers from the stack at the endpoint (the same ones `imgproc status` prints). The panels
are the CloudWatch dashboard's widgets (:data:`observability.dashboard.ROWS`), titles included. When
the endpoint cannot be reached or the stack is missing, the metric panels are drawn all the same and
the queue panels say "queues: unavailable".

matplotlib is imported only when drawing (``Figure`` and the Agg canvas, no pyplot), so the other
commands do not pay for it.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from imgproc import aws, local, status, template
from observability import local_dashboard, metrics
from observability.local_dashboard import AlarmPanel, GraphPanel, TablePanel, View

DEFAULT_OUTPUT = Path("imgproc-dashboard.png")
DEFAULT_WINDOW = "1h"
FORMATS = {".png": "png", ".html": "html", ".htm": "html"}
TITLE = "imgproc on-call dashboard (local run)"

# Drawing: inches at DPI, CloudWatch grid units (24 columns; widget heights as in ROWS).
DPI = 100
WIDTH_IN = 20.0
HEADER_IN = 2.0
UNIT_IN = 0.62
TABLE_ROW_IN = 0.34
_STATE_COLOURS = {
    local_dashboard.ALARM: "#d62728",
    local_dashboard.OK: "#2ca02c",
    local_dashboard.NO_DATA: "#8c8c8c",
    local_dashboard.UNAVAILABLE: "#c7c7c7",
}
_OUTCOME_COLOURS = {"dead-lettered": "#fbe3e3", "retry": "#fff1d6"}
_MARKERS = (("o", 10), ("s", 7.5), ("^", 6), ("D", 5), ("v", 5), ("P", 5))  # distinct when values meet
_PALETTE = ("#1f77b4", "#2ca02c", "#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_KEY_WIDTH = 58  # characters of a key in the PNG table (the HTML table shows them whole)
_ERROR_WIDTH = 62


class DashboardError(RuntimeError):
    """Nothing to draw from, or nowhere to write; the message says which."""


@dataclass
class StackView:
    """What the stack at the endpoint tells: function, thresholds and queues (or why not)."""

    function_name: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    queues: local_dashboard.QueueSnapshot | None = None
    problem: str | None = None  # why the queues are unavailable

    @property
    def unavailable_note(self) -> str:
        """The queue panels' note, with the reason when there is one."""
        unavailable = local_dashboard.QUEUES_UNAVAILABLE
        return f"{unavailable} ({self.problem})" if self.problem else unavailable


# ----------------------------------------------------------------------------------------------------
# reading the stack and the logs
# ----------------------------------------------------------------------------------------------------
def endpoint_reachable(endpoint_url: str, timeout: float = 2.0) -> bool:
    """True when a TCP connection to the endpoint opens: a stopped `imgproc up` is told at once, not
    after the SDK's retries."""
    parsed = urlparse(endpoint_url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def template_defaults() -> dict[str, str]:
    """The template's parameter defaults (alarm thresholds when the stack cannot be read)."""
    try:
        parameters = template.load().get("Parameters") or {}
    except (OSError, ValueError):
        return {}
    return {name: str(p["Default"]) for name, p in parameters.items() if "Default" in p}


def read_stack(args: argparse.Namespace) -> StackView:
    """The stack's function, parameters and queue numbers; never raises for AWS trouble."""
    view = StackView(parameters=template_defaults())
    if args.endpoint_url and not endpoint_reachable(args.endpoint_url):
        view.problem = f"endpoint {args.endpoint_url} unreachable"
        return view
    try:
        cfn = aws.client(args, "cloudformation")
        outputs = aws.stack_outputs(cfn, args.stack_name)
        stack = cfn.describe_stacks(StackName=args.stack_name)["Stacks"][0]
        view.parameters.update(
            {p["ParameterKey"]: str(p.get("ParameterValue", "")) for p in stack.get("Parameters") or []}
        )
        view.function_name = outputs.get("FunctionName") or None
        snapshot = status.collect(args)
    except aws.StackNotFound as exc:
        view.problem = str(exc)
        return view
    except (ClientError, BotoCoreError) as exc:
        view.problem = f"AWS said: {exc}"
        return view
    view.queues = local_dashboard.QueueSnapshot(
        ingest_visible=snapshot.ingest.visible,
        ingest_in_flight=snapshot.ingest.in_flight,
        ingest_oldest_age_seconds=snapshot.ingest.oldest_age_seconds,
        dlq_visible=snapshot.dlq.visible,
        dlq_in_flight=snapshot.dlq.in_flight,
        dlq_oldest_age_seconds=snapshot.dlq.oldest_age_seconds,
    )
    return view


@dataclass
class Dashboard:
    view: View
    header: list[str]
    generated_at: datetime
    stack: StackView
    logs: local_dashboard.WorkerLogs


def collect(args: argparse.Namespace, now: datetime | None = None) -> Dashboard:
    """Everything the dashboard shows; :class:`DashboardError` when there is no local run to read."""
    now = now or datetime.now(UTC)
    log_dir = args.state_dir / "logs"
    if not log_dir.is_dir():
        raise DashboardError(
            f"no local run here: {log_dir} does not exist (start one with `imgproc up`, or pass --state-dir)"
        )
    window = local_dashboard.Window.ending(int(now.timestamp() * 1000), args.window)
    logs = local_dashboard.read_worker_logs(log_dir, since_ms=window.start_ms, until_ms=window.end_ms)
    stack = read_stack(args)
    function_name = stack.function_name
    view = local_dashboard.build_view(
        logs,
        window,
        function_name=function_name,
        queues=stack.queues,
        queues_unavailable=stack.unavailable_note,
        parameters=stack.parameters,
        format_age=status.format_age,
    )
    header = _header(args, now, window=window, stack=stack, logs=logs, view=view)
    return Dashboard(view, header, now, stack, logs)


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _header(
    args: argparse.Namespace,
    now: datetime,
    *,
    window: local_dashboard.Window,
    stack: StackView,
    logs: local_dashboard.WorkerLogs,
    view: View,
) -> list[str]:
    endpoint = args.endpoint_url or "AWS (no --endpoint-url)"
    start, span = _utc(window.start_ms), local_dashboard.format_duration(args.window)
    lines = [
        f"stack {args.stack_name}  ·  endpoint {endpoint}  ·  region {args.region}",
        f"window {start:%Y-%m-%d %H:%M} → {now:%H:%M} UTC (last {span}, {window.bucket_label} buckets)"
        f"  ·  generated at {now:%Y-%m-%dT%H:%M:%SZ}",
    ]
    files = len(logs.files)
    source = f"logs {args.state_dir / 'logs'} ({files} worker file{'s' * (files != 1)})"
    if stack.function_name:
        source += f"  ·  function {stack.function_name}"
        others = logs.function_names - {stack.function_name}
        if stack.function_name not in logs.function_names:
            source += " (no log lines of it in this window" + (
                f"; the logs name {', '.join(sorted(others))})" if others else ")"
            )
    elif logs.function_names:
        source += f"  ·  functions: every one in the logs ({len(logs.function_names)})"
    else:
        source += "  ·  no handler output in this window"
    lines.append(source)
    if stack.queues is None:
        lines.append(stack.unavailable_note)
    else:
        q = stack.queues
        lines.append(
            f"queues now: ingest {q.ingest_visible} waiting, {q.ingest_in_flight} in flight, oldest"
            f" {status.format_age(q.ingest_oldest_age_seconds)}  ·  dead-letter {q.dlq_visible}"
            f" (+{q.dlq_in_flight} in flight), oldest {status.format_age(q.dlq_oldest_age_seconds)}"
        )
    lines.append(_totals_line(view.totals))
    return lines


def _totals_line(totals: local_dashboard.Totals) -> str:
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
        f"bytes in {_bytes(totals.source_bytes)} / out {_bytes(totals.output_bytes)}",
    ]
    return "in this window: " + "  ·  ".join(parts)


def _bytes(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB"):
        n /= 1024
        if n < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} GiB"


# ----------------------------------------------------------------------------------------------------
# drawing
# ----------------------------------------------------------------------------------------------------
def render_png(board: Dashboard) -> bytes:
    """The dashboard as a PNG image."""
    import matplotlib  # noqa: PLC0415 - only this command needs it, and only when drawing

    # No mathtext: keys and error messages may hold "$"; labels are text, never formulas.
    with matplotlib.rc_context({"text.parse_math": False, "font.size": 12, "axes.titlesize": 14.5}):
        figure = _figure(board)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def _figure(board: Dashboard) -> Any:
    from matplotlib.figure import Figure  # noqa: PLC0415

    rows = board.view.rows
    heights = [HEADER_IN] + [max(_height_in(p) for p in row) for row in rows]
    # Constrained layout keeps titles, tick labels and axis labels of neighbouring panels apart.
    figure = Figure(figsize=(WIDTH_IN, sum(heights)), dpi=DPI, layout="constrained")
    figure.get_layout_engine().set(w_pad=0.15, h_pad=0.12, wspace=0.0, hspace=0.03)
    grid = figure.add_gridspec(len(heights), 1, height_ratios=heights)
    _draw_header(figure.add_subplot(grid[0, 0]), board)
    for r, row in enumerate(rows, start=1):
        # One sub-grid per row, a column per widget, as wide as the widget (of 24, as in CloudWatch).
        widths = [panel.width for panel in row]
        spare = [24 - sum(widths)] if sum(widths) < 24 else []
        cells = grid[r, 0].subgridspec(1, len(widths) + len(spare), width_ratios=widths + spare)
        for i, panel in enumerate(row):
            axes = figure.add_subplot(cells[0, i])
            if isinstance(panel, GraphPanel):
                _draw_graph(axes, panel, board.view.window)
            elif isinstance(panel, TablePanel):
                _draw_table(axes, panel)
            elif isinstance(panel, AlarmPanel):
                _draw_alarms(axes, panel)
    # Text, tables and tiles are placed inside their panels by hand: the layout makes room for the
    # panels' titles, ticks and axis labels only.
    for axes in figure.axes:
        for artist in [*axes.texts, *axes.tables, *axes.patches]:
            artist.set_in_layout(False)
    return figure


def _height_in(panel: local_dashboard.Panel) -> float:
    """The widget's height; a table only as tall as its rows (CloudWatch scrolls, a PNG cannot)."""
    if isinstance(panel, TablePanel):
        return 0.75 + TABLE_ROW_IN * (max(2, len(panel.rows)) + 1)
    return panel.height * UNIT_IN


def _draw_header(axes: Any, board: Dashboard) -> None:
    from matplotlib.transforms import offset_copy  # noqa: PLC0415

    axes.set_axis_off()
    axes.text(0, 1, TITLE, fontsize=24, fontweight="bold", va="top", transform=axes.transAxes)
    for i, line in enumerate(board.header):
        warn = line.startswith(local_dashboard.QUEUES_UNAVAILABLE)
        axes.text(
            0,
            1,
            line,
            fontsize=13.5,
            va="top",
            color="#b00000" if warn else "#222222",
            fontweight="bold" if warn else "normal",
            transform=offset_copy(axes.transAxes, fig=axes.figure, y=-40 - 22 * i, units="points"),
        )


def _title(axes: Any, title: str) -> None:
    axes.set_title(title, loc="left", fontsize=14.5, fontweight="bold", pad=8)


def _draw_graph(axes: Any, panel: GraphPanel, window: local_dashboard.Window) -> None:
    from matplotlib import dates, ticker  # noqa: PLC0415
    from matplotlib.lines import Line2D  # noqa: PLC0415

    _title(axes, panel.title)
    drawn = [line for line in panel.lines if line.points]
    if not drawn:
        _draw_stats_or_notes(axes, panel, empty=bool(panel.lines))
        return
    right = axes.twinx() if any(line.right_axis for line in drawn) else None
    _plot_lines(axes, right, drawn, panel, window)
    if panel.threshold is not None:
        label, value = panel.threshold
        axes.axhline(value, color="#d62728", linestyle="--", linewidth=1.5, label=label)
    # Whole buckets, and a margin: the current bucket's point (at its middle) must not be cut off.
    margin = (window.end_ms - window.start_ms) // 40
    axes.set_xlim(
        _utc(window.bucket(window.start_ms)), _utc(window.bucket(window.end_ms) + window.bucket_ms + margin)
    )
    locator = dates.AutoDateLocator(minticks=3, maxticks=7, tz=UTC)
    axes.xaxis.set_major_locator(locator)
    days = window.end_ms - window.start_ms > 86_400_000
    axes.xaxis.set_major_formatter(dates.DateFormatter("%m-%d %H:%M" if days else "%H:%M", tz=UTC))
    axes.set_xlabel("time (UTC)", fontsize=11)
    axes.set_ylim(bottom=0, top=_top(drawn, panel))
    axes.set_ylabel(panel.left_label, fontsize=12)
    if panel.bytes_axis:
        axes.yaxis.set_major_formatter(ticker.EngFormatter(unit="B", sep=" "))
    elif all(float(v).is_integer() for line in drawn for v in line.points.values()):
        axes.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    if right is not None:
        right.set_ylim(bottom=0)
        right.set_ylabel(panel.right_label, fontsize=12)
    axes.tick_params(labelsize=11)
    axes.grid(True, axis="y", color="#e5e5e5")
    handles, labels = axes.get_legend_handles_labels()
    if right is not None:
        more = right.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    for label in panel.missing:  # series of the widget that the local runtime has no data for
        handles.append(Line2D([], [], linestyle="none"))
        labels.append(f"{label}: not recorded locally")
    axes.legend(handles, labels, loc="upper left", fontsize=10.5, framealpha=0.85)
    for i, note in enumerate(panel.notes):
        axes.text(
            0.99,
            0.97 - i * 0.1,
            note,
            transform=axes.transAxes,
            ha="right",
            va="top",
            fontsize=10,
            color="#555555",
            style="italic",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 2},
        )


def _plot_lines(
    axes: Any,
    right: Any,
    drawn: Sequence[local_dashboard.Line],
    panel: GraphPanel,
    window: local_dashboard.Window,
) -> None:
    """Stacked bars, or lines broken where a bucket has no data, at the middle of their buckets."""
    half = timedelta(milliseconds=window.bucket_ms / 2)
    # Bar width in days (matplotlib dates): most of a bucket, and never thinner than 1/90 of the window.
    width = max(window.bucket_ms * 0.8, (window.end_ms - window.start_ms) / 90) / 86_400_000
    bottoms: dict[int, float] = {}
    for i, line in enumerate(drawn):
        colour = _PALETTE[i % len(_PALETTE)]
        target = right if line.right_axis and right is not None else axes
        if panel.stacked:
            xs = [_utc(ms) + half for ms in line.points]
            base = [bottoms.get(ms, 0.0) for ms in line.points]
            ys = list(line.points.values())
            target.bar(xs, ys, width=width, bottom=base, color=colour, label=line.label)
            for ms, y in line.points.items():
                bottoms[ms] = bottoms.get(ms, 0.0) + y
        else:
            starts, values = broken_at_gaps(line.points, window.bucket_ms)
            marker, size = _MARKERS[i % len(_MARKERS)]
            xs = [_utc(ms) + half for ms in starts]
            target.plot(
                xs, values, marker=marker, markersize=size, linewidth=2, color=colour, label=line.label
            )


def broken_at_gaps(points: local_dashboard.Series, bucket_ms: int) -> tuple[list[int], list[float]]:
    """The bucket starts and values of ``points`` in time order, with a NaN in the first empty bucket
    after each run of data: matplotlib breaks a line at NaN, so an idle stretch shows as a gap instead
    of a slope drawn from the last busy minute to the next one (a missing bucket means no data)."""
    starts: list[int] = []
    values: list[float] = []
    for ms in sorted(points):
        if starts and ms - starts[-1] > bucket_ms:
            starts.append(starts[-1] + bucket_ms)
            values.append(math.nan)
        starts.append(ms)
        values.append(points[ms])
    return starts, values


def _top(lines: Sequence[local_dashboard.Line], panel: GraphPanel) -> float:
    """The left axis' top: room above the highest point for the legend (it sits top left)."""
    left = [line for line in lines if not line.right_axis]
    if panel.stacked:
        totals: dict[int, float] = {}
        for line in left:
            for ms, y in line.points.items():
                totals[ms] = totals.get(ms, 0.0) + y
        values = list(totals.values())
    else:
        values = [v for line in left for v in line.points.values()]
    if panel.threshold is not None:
        values.append(panel.threshold[1])
    entries = len(lines) + len(panel.missing) + (panel.threshold is not None)
    return max(1.0, *values) * (1.25 + 0.12 * entries)


def _draw_stats_or_notes(axes: Any, panel: GraphPanel, *, empty: bool) -> None:
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_color("#dddddd")
    if panel.stats:
        n = len(panel.stats)
        for i, stat in enumerate(panel.stats):
            x = (i + 0.5) / n
            axes.text(
                x,
                0.55,
                stat.value,
                ha="center",
                va="center",
                fontsize=34,
                fontweight="bold",
                transform=axes.transAxes,
                color="#1f4e79",
            )
            axes.text(x, 0.3, stat.label, ha="center", va="center", fontsize=12, transform=axes.transAxes)
        for i, note in enumerate(panel.notes):
            axes.text(
                0.5,
                0.1 - i * 0.08,
                note,
                ha="center",
                va="center",
                fontsize=10,
                color="#666666",
                style="italic",
                transform=axes.transAxes,
            )
        return
    texts = (["no data in this window"] if empty else []) + list(panel.notes)
    if panel.missing:
        texts.append(f"not recorded by the local runtime: {', '.join(panel.missing)}")
    y = 0.62
    for text in texts:
        if text.startswith(local_dashboard.QUEUES_UNAVAILABLE):
            reason = text.removeprefix(local_dashboard.QUEUES_UNAVAILABLE).strip(" ()")
            axes.text(
                0.5,
                y,
                local_dashboard.QUEUES_UNAVAILABLE,
                ha="center",
                va="center",
                fontsize=20,
                fontweight="bold",
                color="#b00000",
                transform=axes.transAxes,
            )
            if reason:
                axes.text(
                    0.5,
                    y - 0.17,
                    _wrap(reason, 55),
                    ha="center",
                    va="top",
                    fontsize=11,
                    color="#666666",
                    transform=axes.transAxes,
                )
            y -= 0.4
        else:
            axes.text(
                0.5,
                y,
                _wrap(text, 55),
                ha="center",
                va="center",
                fontsize=12.5,
                color="#555555",
                transform=axes.transAxes,
            )
            y -= 0.2


def _wrap(text: str, width: int) -> str:
    import textwrap  # noqa: PLC0415

    return "\n".join(textwrap.wrap(text, width)) or text


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _clip_middle(text: str, width: int) -> str:
    """Keys: keep the start (the prefix) and the end (the file name)."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[-(width - 1 - head) :]


def _draw_table(axes: Any, panel: TablePanel) -> None:
    axes.set_axis_off()
    _title(axes, panel.title)
    if not panel.rows:
        axes.text(
            0.5,
            0.5,
            panel.notes[0] if panel.notes else "",
            ha="center",
            va="center",
            fontsize=16,
            color="#2ca02c",
            transform=axes.transAxes,
        )
        return
    cells = [
        [time, _clip_middle(key, _KEY_WIDTH), error_class, outcome, _clip(error, _ERROR_WIDTH)]
        for time, key, error_class, outcome, error in panel.rows
    ]
    share = (len(cells) + 1) / (max(2, len(cells)) + 1)  # of the panel's height: see _height_in
    table = axes.table(
        cellText=cells,
        colLabels=panel.columns,
        colWidths=[0.11, 0.32, 0.11, 0.09, 0.37],
        cellLoc="left",
        colLoc="left",
        bbox=(0, 1 - share, 1, share),
    )
    table.auto_set_font_size(False)
    table.set_fontsize(11.5)
    for (row, _col), cell in table.get_celld().items():
        cell.set_edgecolor("#dddddd")
        if row == 0:
            cell.set_facecolor("#eeeeee")
            cell.get_text().set_fontweight("bold")
        else:
            cell.set_facecolor(_OUTCOME_COLOURS.get(panel.rows[row - 1][3], "white"))


def _draw_alarms(axes: Any, panel: AlarmPanel) -> None:
    from matplotlib.patches import FancyBboxPatch  # noqa: PLC0415

    axes.set_axis_off()
    _title(axes, panel.title)
    n = len(panel.alarms)
    gap = 0.01
    width = (1 - gap * (n - 1)) / n
    for i, tile in enumerate(panel.alarms):
        x = i * (width + gap)
        colour = _STATE_COLOURS.get(tile.state, "#c7c7c7")
        dark = tile.state in (local_dashboard.ALARM, local_dashboard.OK, local_dashboard.NO_DATA)
        ink = "white" if dark else "#333333"
        axes.add_patch(
            FancyBboxPatch(
                (x, 0.02),
                width,
                0.9,
                boxstyle="round,pad=0,rounding_size=0.04",
                transform=axes.transAxes,
                facecolor=colour,
                edgecolor="none",
            )
        )
        axes.text(
            x + 0.012,
            0.8,
            tile.name,
            fontsize=14,
            fontweight="bold",
            color=ink,
            va="top",
            transform=axes.transAxes,
        )
        axes.text(
            x + 0.012,
            0.5,
            tile.state,
            fontsize=18,
            fontweight="bold",
            color=ink,
            va="center",
            transform=axes.transAxes,
        )
        axes.text(
            x + 0.012,
            0.2,
            _clip(tile.detail, 44),
            fontsize=10.5,
            color=ink,
            va="center",
            transform=axes.transAxes,
        )


def render_html(board: Dashboard, png: bytes) -> str:
    """One self-contained page: the PNG inline, and the failures as a table of text (keys escaped)."""
    e = html.escape
    table = next(p for row in board.view.rows for p in row if isinstance(p, TablePanel))
    header = "\n".join(f"<li>{e(line)}</li>" for line in board.header)
    if board.view.failures:
        rows = "\n".join(
            f'<tr class="{e(f.outcome)}"><td>{e(f.timestamp)}</td><td><code>{e(f.key or "-")}</code></td>'
            f"<td>{e(f.error_class)}</td><td>{e(f.outcome)}</td><td>{e(f.error or '')}</td>"
            f"<td><code>{e(f.message_id or '-')}</code></td></tr>"
            for f in board.view.failures
        )
        failures = (
            "<table>\n<thead><tr><th>time (UTC)</th><th>key</th><th>error class</th><th>outcome</th>"
            f"<th>error</th><th>message id</th></tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>"
        )
    else:
        failures = "<p>No failures in this window.</p>"
    image = base64.b64encode(png).decode("ascii")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{e(TITLE)}: {e(board.header[0])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
ul.header {{ list-style: none; padding: 0; line-height: 1.5; }}
img {{ max-width: 100%; height: auto; border: 1px solid #ddd; }}
table {{ border-collapse: collapse; margin-top: .5rem; }}
th, td {{ border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; vertical-align: top; }}
th {{ background: #eee; }}
tr.dead-lettered {{ background: #fbe3e3; }}
tr.retry {{ background: #fff1d6; }}
</style>
</head>
<body>
<h1>{e(TITLE)}</h1>
<ul class="header">
{header}
</ul>
<img src="data:image/png;base64,{image}" alt="{e(TITLE)}">
<h2>{e(table.title)}</h2>
{failures}
</body>
</html>
"""


# ----------------------------------------------------------------------------------------------------
# the command
# ----------------------------------------------------------------------------------------------------
def _window(raw: str) -> int:
    try:
        return local_dashboard.parse_duration(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _output(raw: str) -> Path:
    path = Path(raw)
    if path.suffix.lower() not in FORMATS:
        raise argparse.ArgumentTypeError(f"{raw!r}: the file name must end in .png or .html")
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Metrics and failures come from the worker logs of a local run (<state-dir>/logs/worker-N.jsonl:"
        " the handler's EMF documents and JSON log lines); queue numbers from the stack at the endpoint,"
        " as `imgproc status` shows them. When the endpoint is unreachable or the stack missing, the"
        " metric panels are still drawn and the queue panels say 'queues: unavailable'. Exit status: 0"
        " when the file was written, 1 when there is no local run to read or the file cannot be written, 2"
        " bad options."
    )
    aws.add_arguments(parser)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=local.STATE_DIR,
        help=f"state directory of the local run, as given to `imgproc up` (default {local.STATE_DIR})",
    )
    parser.add_argument(
        "--output",
        type=_output,
        default=DEFAULT_OUTPUT,
        metavar="FILE",
        help=f"image (.png) or self-contained page (.html) to write (default {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--window",
        type=_window,
        default=DEFAULT_WINDOW,
        metavar="DURATION",
        help=f"how far back to look: 30m, 1h, 6h, 2d, 1h30m ... (default {DEFAULT_WINDOW})",
    )


def run(args: argparse.Namespace) -> int:
    try:
        board = collect(args)
        png = render_png(board)
        kind = FORMATS[args.output.suffix.lower()]
        data = png if kind == "png" else render_html(board, png).encode("utf-8")
        args.output.write_bytes(data)
    except DashboardError as exc:
        print(f"imgproc dashboard: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"imgproc dashboard: cannot write {args.output}: {exc}", file=sys.stderr)
        return 1
    if board.stack.problem:
        print(f"imgproc dashboard: queues unavailable: {board.stack.problem}", file=sys.stderr)
    if args.json:
        print(json.dumps(_json(board, args)))
    else:
        print(f"wrote {args.output} ({kind.upper()}, {len(data):,} bytes)")
        for line in board.header[2:]:
            print(f"  {line}")
    return 0


def _json(board: Dashboard, args: argparse.Namespace) -> dict[str, Any]:
    window = board.view.window
    queues = board.stack.queues
    return {
        "output": str(args.output),
        "generated_at": board.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "stack": args.stack_name,
        "endpoint_url": args.endpoint_url,
        "window": {
            "start": _utc(window.start_ms).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": _utc(window.end_ms).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "bucket_seconds": window.bucket_ms // 1000,
        },
        "function_name": board.view.function_name,
        "log_files": [str(p) for p in board.logs.files],
        "queues": None if queues is None else queues.__dict__,
        "queues_problem": board.stack.problem,
        "totals": board.view.totals.to_json(),
        "alarms": [
            {"name": t.name, "state": t.state, "detail": t.detail}
            for row in board.view.rows
            for p in row
            if isinstance(p, AlarmPanel)
            for t in p.alarms
        ],
        "latest_failures": [f.to_json() for f in board.view.failures],
    }
