"""Drawing one graph panel with matplotlib: lines broken at idle buckets or stacked bars, the alarm
threshold, the series the local runtime does not record; or, for a queue widget, its numbers now.

Called by :mod:`observability.dashboards.drawing`, which imports matplotlib only when drawing.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from datetime import UTC, timedelta
from typing import Any

from observability.dashboards.local_metrics import Series, Window, utc
from observability.dashboards.local_panels import QUEUES_UNAVAILABLE, GraphPanel, Line

_MARKERS = (("o", 10), ("s", 7.5), ("^", 6), ("D", 5), ("v", 5), ("P", 5))  # distinct when values meet
_PALETTE = ("#1f77b4", "#2ca02c", "#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def axes_text(axes: Any, x: float, y: float, text: str, **style: Any) -> None:
    """``text`` at ``(x, y)`` in the panel's own coordinates (0 to 1 across and up), whatever its data."""
    axes.text(x, y, text, transform=axes.transAxes, **style)


def panel_title(axes: Any, title: str) -> None:
    """A panel's title, top left and bold, as CloudWatch writes a widget's."""
    axes.set_title(title, loc="left", fontsize=14.5, fontweight="bold", pad=8)


def draw_graph(axes: Any, panel: GraphPanel, window: Window) -> None:
    """The panel's series over the whole window (UTC times), or its numbers now when it has none."""
    from matplotlib import dates, ticker  # noqa: PLC0415
    from matplotlib.lines import Line2D  # noqa: PLC0415

    panel_title(axes, panel.title)
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
        utc(window.bucket(window.start_ms)), utc(window.bucket(window.end_ms) + window.bucket_ms + margin)
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
        axes_text(
            axes,
            0.99,
            0.97 - i * 0.1,
            note,
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
    drawn: Sequence[Line],
    panel: GraphPanel,
    window: Window,
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
            xs = [utc(ms) + half for ms in line.points]
            base = [bottoms.get(ms, 0.0) for ms in line.points]
            ys = list(line.points.values())
            target.bar(xs, ys, width=width, bottom=base, color=colour, label=line.label)
            for ms, y in line.points.items():
                bottoms[ms] = bottoms.get(ms, 0.0) + y
        else:
            starts, values = broken_at_gaps(line.points, window.bucket_ms)
            marker, size = _MARKERS[i % len(_MARKERS)]
            xs = [utc(ms) + half for ms in starts]
            target.plot(
                xs, values, marker=marker, markersize=size, linewidth=2, color=colour, label=line.label
            )


def broken_at_gaps(points: Series, bucket_ms: int) -> tuple[list[int], list[float]]:
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


def _top(lines: Sequence[Line], panel: GraphPanel) -> float:
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
            axes_text(
                axes,
                x,
                0.55,
                stat.value,
                ha="center",
                va="center",
                fontsize=34,
                fontweight="bold",
                color="#1f4e79",
            )
            axes_text(axes, x, 0.3, stat.label, ha="center", va="center", fontsize=12)
        for i, note in enumerate(panel.notes):
            axes_text(
                axes,
                0.5,
                0.1 - i * 0.08,
                note,
                ha="center",
                va="center",
                fontsize=10,
                color="#666666",
                style="italic",
            )
        return
    texts = (["no data in this window"] if empty else []) + list(panel.notes)
    if panel.missing:
        texts.append(f"not recorded by the local runtime: {', '.join(panel.missing)}")
    y = 0.62
    for text in texts:
        if text.startswith(QUEUES_UNAVAILABLE):
            reason = text.removeprefix(QUEUES_UNAVAILABLE).strip(" ()")
            axes_text(
                axes,
                0.5,
                y,
                QUEUES_UNAVAILABLE,
                ha="center",
                va="center",
                fontsize=20,
                fontweight="bold",
                color="#b00000",
            )
            if reason:
                axes_text(
                    axes,
                    0.5,
                    y - 0.17,
                    _wrap(reason, 55),
                    ha="center",
                    va="top",
                    fontsize=11,
                    color="#666666",
                )
            y -= 0.4
        else:
            axes_text(axes, 0.5, y, _wrap(text, 55), ha="center", va="center", fontsize=12.5, color="#555555")
            y -= 0.2


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text
