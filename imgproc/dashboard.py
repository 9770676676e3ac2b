"""`imgproc dashboard`: the on-call dashboard of a local run, as a PNG or a self-contained HTML page.

This module is the command and its I/O edge: the options, reading the stack at the endpoint (the
queue numbers `imgproc status` prints, the function, the alarm thresholds) and the worker logs, and
writing the file. What the panels show and how they are drawn lives in :mod:`observability.dashboards`:
the metrics and failures are rebuilt from what the local runtime captured (the handler's EMF documents
and JSON log lines in ``<state-dir>/logs/worker-N.jsonl``, :mod:`~observability.dashboards.local_logs`),
the panels are the CloudWatch dashboard's widgets (:data:`~observability.dashboards.layout.ROWS`),
titles included (:mod:`~observability.dashboards.local_view`), and drawn by
:mod:`~observability.dashboards.drawing` (matplotlib, imported only when drawing) and
:mod:`~observability.dashboards.html_page`. When the endpoint cannot be reached or the stack is
missing, the metric panels are drawn all the same and the queue panels say "queues: unavailable".
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from imgproc import local, status, template
from observability.dashboards import drawing, html_page, local_logs, local_metrics, local_view
from observability.dashboards.local_board import Dashboard, Source, StackView, header_lines
from observability.dashboards.local_panels import AlarmPanel, QueueSnapshot
from toolkit import aws
from toolkit.errors import StackNotFound
from toolkit.stack import Output, read_outputs

DEFAULT_OUTPUT = Path("imgproc-dashboard.png")
DEFAULT_WINDOW = "1h"
FORMATS = {".png": "png", ".html": "html", ".htm": "html"}


class DashboardError(RuntimeError):
    """Nothing to draw from, or nowhere to write; the message says which."""


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
        outputs = read_outputs(cfn, args.stack_name)
        stack = cfn.describe_stacks(StackName=args.stack_name)["Stacks"][0]
        view.parameters.update(
            {p["ParameterKey"]: str(p.get("ParameterValue", "")) for p in stack.get("Parameters") or []}
        )
        view.function_name = outputs.get(Output.FUNCTION_NAME)
        snapshot = status.collect(args)
    except StackNotFound as exc:
        view.problem = str(exc)
        return view
    except (ClientError, BotoCoreError) as exc:
        view.problem = f"AWS said: {exc}"
        return view
    view.queues = QueueSnapshot(
        ingest_visible=snapshot.ingest.visible,
        ingest_in_flight=snapshot.ingest.in_flight,
        ingest_oldest_age_seconds=snapshot.ingest.oldest_age_seconds,
        dlq_visible=snapshot.dlq.visible,
        dlq_in_flight=snapshot.dlq.in_flight,
        dlq_oldest_age_seconds=snapshot.dlq.oldest_age_seconds,
    )
    return view


def collect(args: argparse.Namespace, now: datetime | None = None) -> Dashboard:
    """Everything the dashboard shows; :class:`DashboardError` when there is no local run to read."""
    now = now or datetime.now(UTC)
    log_dir = args.state_dir / "logs"
    if not log_dir.is_dir():
        raise DashboardError(
            f"no local run here: {log_dir} does not exist (start one with `imgproc up`, or pass --state-dir)"
        )
    window = local_metrics.Window.ending(int(now.timestamp() * 1000), args.window)
    logs = local_logs.read_worker_logs(log_dir, since_ms=window.start_ms, until_ms=window.end_ms)
    stack = read_stack(args)
    view = local_view.build_view(
        logs,
        window,
        function_name=stack.function_name,
        queues=stack.queues,
        queues_unavailable=stack.unavailable_note,
        parameters=stack.parameters,
        format_age=status.format_age,
    )
    source = Source(args.stack_name, args.endpoint_url, args.region, log_dir)
    header = header_lines(source, now, stack=stack, logs=logs, view=view, format_age=status.format_age)
    return Dashboard(view, header, now, stack, logs)


# ----------------------------------------------------------------------------------------------------
# the command
# ----------------------------------------------------------------------------------------------------
def _window(raw: str) -> int:
    try:
        return local_metrics.parse_duration(raw)
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
        png = drawing.render_png(board)
        kind = FORMATS[args.output.suffix.lower()]
        data = png if kind == "png" else html_page.render_html(board, png).encode("utf-8")
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
            "start": local_metrics.utc(window.start_ms).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": local_metrics.utc(window.end_ms).strftime("%Y-%m-%dT%H:%M:%SZ"),
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
