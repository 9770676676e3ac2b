"""The dashboard of a local run drawn as one PNG with matplotlib: the header, then the panels of the
CloudWatch dashboard in its rows and widths (graphs in :mod:`observability.dashboards.drawing_graphs`,
the failures table and the alarm tiles here).

matplotlib is imported only when drawing (``Figure`` and the Agg canvas, no pyplot), so the other
commands do not pay for it.
"""

from __future__ import annotations

import io
from typing import Any

from observability.dashboards.drawing_graphs import axes_text, draw_graph, panel_title
from observability.dashboards.local_board import TITLE, Dashboard
from observability.dashboards.local_panels import (
    ALARM,
    NO_DATA,
    OK,
    QUEUES_UNAVAILABLE,
    UNAVAILABLE,
    AlarmPanel,
    GraphPanel,
    Panel,
    TablePanel,
)

# Drawing: inches at DPI, CloudWatch grid units (24 columns; widget heights as in ROWS).
DPI = 100
WIDTH_IN = 20.0
HEADER_IN = 2.0
UNIT_IN = 0.62
TABLE_ROW_IN = 0.34
_STATE_COLOURS = {
    ALARM: "#d62728",
    OK: "#2ca02c",
    NO_DATA: "#8c8c8c",
    UNAVAILABLE: "#c7c7c7",
}
_OUTCOME_COLOURS = {"dead-lettered": "#fbe3e3", "retry": "#fff1d6"}
_KEY_WIDTH = 58  # characters of a key in the PNG table (the HTML table shows them whole)
_ERROR_WIDTH = 62


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
                draw_graph(axes, panel, board.view.window)
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


def _height_in(panel: Panel) -> float:
    """The widget's height; a table only as tall as its rows (CloudWatch scrolls, a PNG cannot)."""
    if isinstance(panel, TablePanel):
        return 0.75 + TABLE_ROW_IN * (max(2, len(panel.rows)) + 1)
    return panel.height * UNIT_IN


def _draw_header(axes: Any, board: Dashboard) -> None:
    from matplotlib.transforms import offset_copy  # noqa: PLC0415

    axes.set_axis_off()
    axes_text(axes, 0, 1, TITLE, fontsize=24, fontweight="bold", va="top")
    for i, line in enumerate(board.header):
        warn = line.startswith(QUEUES_UNAVAILABLE)
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
    panel_title(axes, panel.title)
    if not panel.rows:
        axes_text(
            axes,
            0.5,
            0.5,
            panel.notes[0] if panel.notes else "",
            ha="center",
            va="center",
            fontsize=16,
            color="#2ca02c",
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
    panel_title(axes, panel.title)
    n = len(panel.alarms)
    gap = 0.01
    width = (1 - gap * (n - 1)) / n
    for i, tile in enumerate(panel.alarms):
        x = i * (width + gap)
        colour = _STATE_COLOURS.get(tile.state, "#c7c7c7")
        dark = tile.state in (ALARM, OK, NO_DATA)
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
        axes_text(axes, x + 0.012, 0.8, tile.name, fontsize=14, fontweight="bold", color=ink, va="top")
        axes_text(axes, x + 0.012, 0.5, tile.state, fontsize=18, fontweight="bold", color=ink, va="center")
        axes_text(axes, x + 0.012, 0.2, _clip(tile.detail, 44), fontsize=10.5, color=ink, va="center")
