"""The handler's log lines about one key: read from a local run's files, or found with CloudWatch Logs
Insights in AWS.

The handler logs one JSON object per line, with the source key as ``key`` on every line of a record
(:mod:`observability.logs`). The local runtime (``imgproc up``) writes them to
``<state-dir>/logs/worker-N.jsonl``; in AWS they are in the function's log group, where the Insights
query of :func:`insights_query` finds them. Either way the lines come back as the JSON objects the
handler wrote, and :func:`describe_line` shows one in a line.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from observability.dashboards.local_logs import LOG_GLOB, json_object, parse_timestamp

LOG_LINES = 10  # the key's last lines shown
OLD_LOGS_SECONDS = 86_400  # newest local log older than this: perhaps another run's (a day)
QUERY_TIMEOUT = 60.0  # seconds to wait for an Insights query
_DONE = frozenset({"Complete", "Failed", "Cancelled", "Timeout", "Unknown"})
# The fields of a line shown after its time and event, in this order, when present.
_SHOWN = ("outcome", "error_class", "error", "source_etag", "message_id", "backfill")


@dataclass
class HandlerLogs:
    """The key's last handler lines (oldest first), and where they come from."""

    origin: str  # "local", "insights" (run), "query" (printed, not run)
    lines: list[dict[str, Any]] = field(default_factory=list)
    where: str = ""  # the log directory or the log group
    query: str | None = None
    note: str | None = None  # why there are none, or what went wrong
    warning: str | None = None  # why the lines may not be about this run (local logs left from another)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)  # every field is JSON already


def local_lines(
    log_dir: Path,
    key: str,
    limit: int = LOG_LINES,
    *,
    source_modified: datetime | None = None,
    now: datetime | None = None,
) -> HandlerLogs:
    """The last ``limit`` lines about ``key`` in a local run's worker logs.

    ``.imgproc/logs`` outlives its run: when the newest worker log was last written before the key's
    source (``source_modified``) or over a day ago, the lines may be another run's, and it says so."""
    logs = HandlerLogs("local", where=str(log_dir))
    files = sorted(log_dir.glob(LOG_GLOB)) if log_dir.is_dir() else []
    if not files:
        logs.note = f"no local run's logs under {log_dir} (pass the --state-dir given to `imgproc up`)"
        return logs
    logs.warning = _old_logs(files, source_modified, now or datetime.now(UTC))
    found: list[tuple[int, dict[str, Any]]] = []
    for path in files:
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if '"key"' not in line:  # the record's lines only (cheap, before parsing)
                    continue
                doc = json_object(line.strip())
                if doc is not None and doc.get("key") == key:
                    found.append((parse_timestamp(doc.get("timestamp")) or 0, doc))
    found.sort(key=lambda pair: pair[0])
    logs.lines = [doc for _, doc in found[-limit:]]
    if not logs.lines:
        logs.note = f"no handler line names this key in {log_dir}"
    return logs


def _old_logs(files: list[Path], source_modified: datetime | None, now: datetime) -> str | None:
    newest = datetime.fromtimestamp(max(path.stat().st_mtime for path in files), UTC)
    stamp = newest.strftime("%Y-%m-%dT%H:%M:%SZ")
    if source_modified is not None and newest < source_modified:
        why = f"the newest worker log was written at {stamp}, before the source was"
    elif (now - newest).total_seconds() > OLD_LOGS_SECONDS:
        why = f"the newest worker log was written at {stamp}, over a day ago"
    else:
        return None
    return (
        f"{why}: these logs may be from another run (pass the --state-dir given to the `imgproc up` "
        "serving this endpoint)"
    )


def insights_query(key: str, limit: int = LOG_LINES) -> str:
    """The Logs Insights query for ``key``'s last ``limit`` handler lines."""
    lines = ["fields @timestamp, @message", f"| filter key = {_json_string(key)}", "| sort @timestamp desc"]
    return "\n".join([*lines, f"| limit {limit}"])


def run_insights(
    logs_client: Any,
    log_group: str,
    query: str,
    start: datetime,
    end: datetime,
    *,
    timeout: float = QUERY_TIMEOUT,
    poll: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> HandlerLogs:
    """Run ``query`` over ``log_group`` between ``start`` and ``end``; the lines, oldest first."""
    logs = HandlerLogs("insights", where=log_group, query=query)
    query_id = logs_client.start_query(
        logGroupName=log_group,
        startTime=int(start.timestamp()),
        endTime=math.ceil(end.timestamp()),  # whole seconds: the last one counts
        queryString=query,
    )["queryId"]
    deadline = time.monotonic() + timeout
    while True:
        response = logs_client.get_query_results(queryId=query_id)
        status = response.get("status", "Unknown")
        if status in _DONE or time.monotonic() >= deadline:
            break
        sleep(poll)
    if status != "Complete":
        logs.note = f"the query ended {status} (query id {query_id})"
    rows = [{cell["field"]: cell.get("value") for cell in row} for row in response.get("results", [])]
    logs.lines = [_line_of(row) for row in reversed(rows)]  # the query sorts newest first
    if not logs.lines and logs.note is None:
        logs.note = f"no line names this key in {log_group} in that window"
    return logs


def describe_line(doc: Mapping[str, Any]) -> str:
    """One handler line in one line: its time, event, and the fields that tell what happened."""
    parts = [str(doc.get("timestamp", "?")), str(doc.get("event", "?"))]
    parts += [f"{name}={doc[name]}" for name in _SHOWN if doc.get(name) not in (None, "", False)]
    return "  ".join(parts)


def _line_of(row: Mapping[str, Any]) -> dict[str, Any]:
    doc = json_object(str(row.get("@message") or ""))
    if doc is None:
        return {"timestamp": row.get("@timestamp"), "event": row.get("@message")}
    doc.setdefault("timestamp", row.get("@timestamp"))
    return doc


def _json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
