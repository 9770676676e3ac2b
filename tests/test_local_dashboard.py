"""`imgproc dashboard`: the pure reader of worker logs (exact aggregates on synthetic files written with
the real EMF builder) and the command after a real local run (a PNG and an HTML page)."""

from __future__ import annotations

import html
import io
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import imagegen
import pytest
from conftest import eventually, local_runtime
from PIL import Image

from imgproc import cli, local, poller
from imgproc import dashboard as command
from observability import metrics
from observability.dashboards import (
    drawing_graphs,
    layout,
    local_logs,
    local_metrics,
    local_panels,
    local_view,
)
from observability.dashboards.local_metrics import Window
from observability.dashboards.local_panels import AlarmPanel, GraphPanel, QueueSnapshot, TablePanel
from observability.metrics import BatchMetrics

FN = "imgproc-ProcessorFunction-AbC123"
OTHER_FN = "other-ProcessorFunction-Zz9"
NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
MINUTE = 60_000
B1150 = NOW_MS - 10 * MINUTE  # bucket starts
B1152 = NOW_MS - 8 * MINUTE
SOURCE = "imgproc-source-123456789012-us-east-1"


def at(ms: int) -> str:
    """A log line's timestamp, as structlog's TimeStamper writes it."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def log(event: str, ms: int, *, request_id: str, function_name: str = FN, **fields: Any) -> str:
    """A handler log line shaped as the handler writes it (see processor/batch.py, handler.py)."""
    line = {
        "logger": "processor",
        **fields,
        "event": event,
        "request_id": request_id,
        "cold_start": False,
        "function_name": function_name,
        "level": "warning" if "error_class" in fields else "info",
        "timestamp": at(ms),
    }
    return json.dumps(line)


def record(event: str, ms: int, key: str, message_id: str, request_id: str, **fields: Any) -> str:
    context = {"message_id": message_id, "receive_count": 1, "key": key, "bucket": SOURCE}
    return log(event, ms, request_id=request_id, **context, **fields)


def emf(batch: BatchMetrics, ms: int, function_name: str = FN) -> list[str]:
    stream = io.StringIO()
    batch.flush(stream, function_name=function_name, timestamp_ms=ms)
    return stream.getvalue().splitlines()


def batch_a() -> list[str]:
    """11:50:10, worker 0: two rendered, one skipped, one dead-lettered NotAnImage."""
    ms, rid = B1150 + 10_000, "req-a"
    lines = [
        record("record.rendered", ms, "original/a1.jpg", "m-a1", rid, outcome="rendered", renditions=2),
        record("record.rendered", ms, "original/a2.jpg", "m-a2", rid, outcome="rendered", renditions=2),
        record("record.skipped", ms, "original/a3.jpg", "m-a3", rid, outcome="skipped"),
        record(
            "record.error", ms, "original/bad <a&b>.jpg", "m-a4", rid,
            outcome="dead-lettered", error_class="NotAnImage", error="not an image",
        ),
        log(
            "record.dead_lettered", ms + 5, request_id=rid, message_id="m-a4",
            outcome="dead-lettered", error_class="NotAnImage", error="not an image",
        ),
    ]  # fmt: skip
    metrics_ = BatchMetrics()
    metrics_.add_record("rendered", processing_ms=100, source_bytes=1000, output_bytes=300, renditions=2)
    metrics_.add_record("rendered", processing_ms=200, source_bytes=3000, output_bytes=700, renditions=2)
    metrics_.add_record("skipped", processing_ms=10)
    metrics_.add_record("dead-lettered", error_class="NotAnImage", processing_ms=50)
    return [
        *lines,
        *emf(metrics_, ms + 10),
        log("batch.done", ms + 11, request_id=rid, records=4, failures=0),
    ]


def batch_b() -> list[str]:
    """11:50:40, worker 1: one rendered; one NotAnImage whose DLQ send failed, so it is retried."""
    ms, rid = B1150 + 40_000, "req-b"
    lines = [
        record("record.rendered", ms, "original/b1.jpg", "m-b1", rid, outcome="rendered", renditions=2),
        record(
            "record.error", ms, "original/b2.jpg", "m-b2", rid,
            outcome="dead-lettered", error_class="NotAnImage", error="not an image",
        ),
        log(
            "record.error", ms + 7, request_id=rid, message_id="m-b2", stage="dead-letter",
            outcome="retry", error_class="ServiceError", error="SQS said 503",
        ),
    ]  # fmt: skip
    metrics_ = BatchMetrics()
    metrics_.add_record("rendered", processing_ms=300, source_bytes=5000, output_bytes=1000, renditions=2)
    metrics_.add_record("retry", error_class="NotAnImage", processing_ms=20)
    return [
        *lines,
        *emf(metrics_, ms + 10),
        log("batch.done", ms + 11, request_id=rid, records=2, failures=1),
    ]


def batch_c() -> list[str]:
    """11:52:05, worker 0: CorruptImage dead-lettered, a body that is no S3 event, a test event."""
    ms, rid = B1152 + 5_000, "req-c"
    lines = [
        record(
            "record.error", ms, "original/c1.png", "m-c1", rid,
            outcome="dead-lettered", error_class="CorruptImage", error="truncated",
        ),
        log(
            "record.dead_lettered", ms + 1, request_id=rid, message_id="m-c1",
            outcome="dead-lettered", error_class="CorruptImage", error="truncated",
        ),
        log(
            "record.dead_lettered", ms + 2, request_id=rid, message_id="m-c2",
            outcome="dead-lettered", error_class="InvalidEvent", error="body is not JSON",
        ),
        log(
            "record.ignored", ms + 3, request_id=rid, message_id="m-c3",
            outcome="ignored", reason="s3-test-event",
        ),
    ]  # fmt: skip
    metrics_ = BatchMetrics()
    metrics_.add_record("dead-lettered", error_class="CorruptImage", processing_ms=40)
    metrics_.add_record("dead-lettered", error_class="InvalidEvent")  # never started: no time
    metrics_.add_record("ignored")
    return [
        *lines,
        *emf(metrics_, ms + 10),
        log("batch.done", ms + 11, request_id=rid, records=3, failures=0),
    ]


def other_function_batch() -> list[str]:
    """11:51, another stack's function (same state dir, an earlier `imgproc up`)."""
    ms = B1150 + 70_000
    metrics_ = BatchMetrics()
    metrics_.add_record("dead-lettered", error_class="CorruptImage", processing_ms=5)
    return [
        log(
            "record.error", ms, request_id="req-o", function_name=OTHER_FN, message_id="m-o",
            key="original/o", outcome="dead-lettered", error_class="CorruptImage", error="x",
        ),
        *emf(metrics_, ms, OTHER_FN),
    ]  # fmt: skip


def old_batch() -> list[str]:
    """10:00: outside the one-hour window."""
    ms = NOW_MS - 2 * 3600_000
    metrics_ = BatchMetrics()
    metrics_.add_record("rendered", processing_ms=9999, source_bytes=1, output_bytes=1, renditions=2)
    return [
        record("record.rendered", ms, "original/old.jpg", "m-old", "req-old", outcome="rendered"),
        *emf(metrics_, ms),
    ]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A state dir as the local runtime leaves it: two worker files (and the embedded AWS's log)."""
    logs = tmp_path / "state" / "logs"
    logs.mkdir(parents=True)
    worker0 = [*old_batch(), *batch_a(), "Traceback (most recent call last):", *batch_c(), '{"_aws": {"Times']
    worker1 = [*batch_b(), *other_function_batch()]
    (logs / "worker-0.jsonl").write_text("\n".join(worker0) + "\n")
    (logs / "worker-1.jsonl").write_text("\n".join(worker1) + "\n")
    (logs / "moto.log").write_text("127.0.0.1 - - GET / 200\n")
    return tmp_path / "state"


def hour() -> Window:
    return Window.ending(NOW_MS, 3600)


def read(state_dir: Path) -> local_logs.WorkerLogs:
    window = hour()
    return local_logs.read_worker_logs(state_dir / "logs", since_ms=window.start_ms, until_ms=window.end_ms)


# ----------------------------------------------------------------------------------------------------
# the pure reader
# ----------------------------------------------------------------------------------------------------
def test_reads_emf_documents_and_log_lines_of_every_worker_in_the_window(state_dir: Path) -> None:
    logs = read(state_dir)

    assert [p.name for p in logs.files] == ["worker-0.jsonl", "worker-1.jsonl"]
    assert logs.unreadable == 2  # the traceback line and the cut-off document
    assert logs.function_names == {FN, OTHER_FN}
    assert {d.timestamp_ms for d in logs.documents} == {
        B1150 + 10_010,
        B1150 + 40_010,
        B1152 + 5_010,
        B1150 + 70_000,
    }
    assert len(logs.invocations) == 3


def test_counts_per_minute_as_the_records_widget_shows_them(state_dir: Path) -> None:
    docs, window, dims = read(state_dir).documents, hour(), {metrics.FUNCTION_NAME: FN}

    def sums(name: str) -> dict[int, float]:
        return local_metrics.metric_series(docs, name, "Sum", window, dims)

    assert sums(metrics.RECORDS_PROCESSED) == {B1150: 3, B1152: 0}
    assert sums(metrics.RECORDS_SKIPPED) == {B1150: 1, B1152: 1}
    assert sums(metrics.RECORDS_FAILED) == {B1150: 2, B1152: 2}
    assert sums(metrics.RENDITIONS_WRITTEN) == {B1150: 6, B1152: 0}
    assert local_metrics.failed_by_class(docs, window, FN) == {
        "CorruptImage": {B1152: 1},
        "InvalidEvent": {B1152: 1},
        "NotAnImage": {B1150: 2},
    }
    # Every function's documents when the stack (and so its function) is unknown.
    everything = {metrics.FUNCTION_NAME: None}
    assert local_metrics.metric_series(docs, metrics.RECORDS_FAILED, "Sum", window, everything) == {
        B1150: 2,
        B1150 + MINUTE: 1,
        B1152: 2,
    }


def test_percentiles_bytes_and_error_rate_per_minute(state_dir: Path) -> None:
    docs, window, dims = read(state_dir).documents, hour(), {metrics.FUNCTION_NAME: FN}

    def series(name: str, stat: str) -> dict[int, float]:
        return local_metrics.metric_series(docs, name, stat, window, dims)

    # 11:50 values: 100, 200, 10, 50 (batch a) and 300, 20 (batch b); nearest rank.
    assert series(metrics.PROCESSING_TIME, "p50") == {B1150: 50, B1152: 40}
    assert series(metrics.PROCESSING_TIME, "p90") == {B1150: 300, B1152: 40}
    assert series(metrics.PROCESSING_TIME, "p99") == {B1150: 300, B1152: 40}
    assert series(metrics.SOURCE_BYTES, "Average") == {B1150: 3000}
    assert series(metrics.OUTPUT_BYTES, "Average") == {B1150: pytest.approx(2000 / 3)}
    assert local_metrics.error_rate(docs, window, FN) == {
        B1150: pytest.approx(100 * 2 / 6),
        B1152: pytest.approx(100 * 2 / 3),
    }


def test_percentile_is_nearest_rank() -> None:
    values = list(range(100, 0, -1))
    assert [local_metrics.percentile(values, p) for p in (50, 90, 99, 100)] == [50, 90, 99, 100]
    assert local_metrics.statistic([4.0], "p99") == 4.0
    assert local_metrics.statistic([], "Sum") is None
    assert local_metrics.statistic([1.0], "tm90") is None


def test_totals_over_the_window(state_dir: Path) -> None:
    totals = local_metrics.totals(read(state_dir), hour(), FN)

    assert totals.counts == {
        "RecordsProcessed": 3,
        "RecordsSkipped": 2,
        "RecordsFailed": 4,
        "RenditionsWritten": 6,
    }
    assert totals.failed_by_class == {"CorruptImage": 1, "InvalidEvent": 1, "NotAnImage": 2}
    assert totals.processing_ms == {"p50": 50, "p90": 300, "p99": 300, "Maximum": 300}
    assert (totals.source_bytes, totals.output_bytes, totals.rendered_sources) == (9000, 2000, 3)
    assert totals.error_rate_percent == pytest.approx(100 * 4 / 9)
    # The log lines tell the same story as the metrics: one entry per failed record.
    assert totals.outcomes == {"dead-lettered": 3, "ignored": 1, "rendered": 3, "retry": 1, "skipped": 1}
    assert totals.invocations == 3


def test_latest_failures_one_per_failed_record_with_its_final_outcome(state_dir: Path) -> None:
    logs = read(state_dir).only(FN)

    failures = local_logs.latest_failures(logs.failures)

    assert [(f.key, f.error_class, f.outcome, f.message_id) for f in failures] == [
        (None, "InvalidEvent", "dead-lettered", "m-c2"),
        ("original/c1.png", "CorruptImage", "dead-lettered", "m-c1"),
        # The DLQ send failed: the record is retried, and its class is still the record's own.
        ("original/b2.jpg", "NotAnImage", "retry", "m-b2"),
        ("original/bad <a&b>.jpg", "NotAnImage", "dead-lettered", "m-a4"),
    ]
    assert failures[1].timestamp == at(B1152 + 5_001)
    assert failures[1].event == "record.dead_lettered"
    assert [f.message_id for f in local_logs.latest_failures(logs.failures, limit=2)] == ["m-c2", "m-c1"]


def test_parse_emf_takes_every_dimension_set_and_skips_what_is_not_ours() -> None:
    doc = {
        "_aws": {
            "Timestamp": 5,
            "CloudWatchMetrics": [
                {
                    "Namespace": metrics.NAMESPACE,
                    "Dimensions": [["FunctionName"], []],
                    "Metrics": [{"Name": "A"}],
                },
                {"Namespace": "Other", "Dimensions": [["FunctionName"]], "Metrics": [{"Name": "B"}]},
            ],
        },
        "FunctionName": "f",
        "A": [1, 2.5],
        "B": 3,
    }
    found = local_logs.parse_emf(doc)
    assert [(d.dimensions, d.values) for d in found] == [
        ({"FunctionName": "f"}, {"A": (1.0, 2.5)}),
        ({}, {"A": (1.0, 2.5)}),
    ]
    assert local_logs.parse_emf({"_aws": {"Timestamp": "x"}}) == []
    assert local_logs.parse_emf({"event": "batch.done"}) == []


@pytest.mark.parametrize(
    ("text", "seconds"), [("1h", 3600), ("90m", 5400), ("1h30m", 5400), ("2d", 172800), ("120s", 120)]
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert local_metrics.parse_duration(text) == seconds
    assert local_metrics.parse_duration(local_metrics.format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "1", "h", "1 hour", "-1h", "30s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|shorter"):
        local_metrics.parse_duration(text)


def test_buckets_grow_with_the_window() -> None:
    assert Window.ending(NOW_MS, 3600).bucket_ms == 60_000
    assert Window.ending(NOW_MS, 3 * 3600).bucket_ms == 60_000
    assert Window.ending(NOW_MS, 6 * 3600).bucket_ms == 300_000
    assert Window.ending(NOW_MS, 7 * 86400).bucket_ms == 3600_000


# ----------------------------------------------------------------------------------------------------
# the view: the CloudWatch widgets, computed locally
# ----------------------------------------------------------------------------------------------------
SNAPSHOT = QueueSnapshot(
    ingest_visible=3,
    ingest_in_flight=2,
    ingest_oldest_age_seconds=None,
    dlq_visible=4,
    dlq_in_flight=1,
    dlq_oldest_age_seconds=75,
)
PARAMETERS = {"ErrorRateAlarmPercent": "5", "OldestMessageAlarmSeconds": "900"}


def panels(view: local_panels.View) -> dict[str, local_panels.Panel]:
    return {panel.title: panel for row in view.rows for panel in row}


def test_the_view_has_every_widget_of_the_cloudwatch_dashboard_in_its_place(state_dir: Path) -> None:
    view = local_view.build_view(read(state_dir), hour(), function_name=FN, queues=SNAPSHOT)

    assert [[p.title for p in row] for row in view.rows] == [[w.title for w in row] for row in layout.ROWS]
    assert [[p.width for p in row] for row in view.rows] == [[w.width for w in row] for row in layout.ROWS]


def test_the_graph_panels_carry_the_widgets_series(state_dir: Path) -> None:
    view = local_view.build_view(
        read(state_dir), hour(), function_name=FN, queues=SNAPSHOT, parameters=PARAMETERS
    )
    by_title = panels(view)
    records = by_title["Records per minute: processed, skipped, failed"]
    assert isinstance(records, GraphPanel)
    assert [(line.label, line.points) for line in records.lines] == [
        ("processed (rendered or deleted)", {B1150: 3, B1152: 0}),
        ("skipped (up to date or ignored)", {B1150: 1, B1152: 1}),
        ("failed (retried or dead-lettered)", {B1150: 2, B1152: 2}),
    ]
    assert records.left_label == "records per minute"
    by_class = by_title["Failed records per minute, by error class"]
    assert isinstance(by_class, GraphPanel)
    assert by_class.stacked
    assert [line.label for line in by_class.lines] == ["CorruptImage", "InvalidEvent", "NotAnImage"]
    rate = by_title["Error rate (%), alarm above 5%"]  # the threshold's value, not its parameter name
    assert isinstance(rate, GraphPanel)
    assert [line.label for line in rate.lines] == ["failed records (% of all records)"]  # inputs hidden
    assert rate.threshold == ("alarm: 5 %", 5.0)
    timing = by_title["Processing time per record (ms)"]
    assert isinstance(timing, GraphPanel)
    assert [(line.label, line.points) for line in timing.lines] == [
        ("p50", {B1150: 50, B1152: 40}),
        ("p90", {B1150: 300, B1152: 40}),
        ("p99", {B1150: 300, B1152: 40}),
    ]
    assert timing.left_label == "ms"
    sizes = by_title["Bytes per rendered source (average)"]
    assert isinstance(sizes, GraphPanel)
    assert sizes.bytes_axis
    assert [line.points for line in sizes.lines] == [{B1150: 3000}, {B1150: pytest.approx(2000 / 3)}]
    lam = by_title["Lambda invocations, errors, throttles"]
    assert isinstance(lam, GraphPanel)
    assert [line.points for line in lam.lines] == [{B1150: 2, B1152: 1}]
    assert lam.missing == ["errors", "throttles"]


def test_queue_panels_show_the_queues_now_or_say_they_are_unavailable(state_dir: Path) -> None:
    view = local_view.build_view(read(state_dir), hour(), function_name=FN, queues=SNAPSHOT)
    ingest = panels(view)["Ingest queue: waiting and in flight"]
    dlq = panels(view)["Dead-letter queue depth"]
    assert isinstance(ingest, GraphPanel)
    assert isinstance(dlq, GraphPanel)
    assert [(s.label, s.value) for s in ingest.stats] == [
        ("waiting (visible), now", "3"),
        ("in flight (not visible), now", "2"),
    ]
    assert [s.value for s in dlq.stats][-1] == "75 s"  # oldest message, from the DLQ peek

    offline = local_view.build_view(
        read(state_dir), hour(), function_name=None, queues=None, queues_unavailable="queues: unavailable (x)"
    )
    for title in ("Ingest queue: waiting and in flight", "Dead-letter queue depth"):
        panel = panels(offline)[title]
        assert isinstance(panel, GraphPanel)
        assert panel.stats == []
        assert panel.notes == ["queues: unavailable (x)"]


def test_alarm_states_where_the_local_data_allow(state_dir: Path) -> None:
    view = local_view.build_view(
        read(state_dir), hour(), function_name=FN, queues=SNAPSHOT, parameters=PARAMETERS
    )
    (alarm_panel,) = view.rows[0]
    assert isinstance(alarm_panel, AlarmPanel)
    states = {tile.name: tile.state for tile in alarm_panel.alarms}
    assert states == {
        "dlq-not-empty": "ALARM",  # 4 visible (+1 in flight)
        "ingest-oldest-message": "NO DATA",  # the embedded AWS has no SQS metrics
        "error-rate": "OK",  # 44% in 11:50-11:55 only: 1 of the 3 five-minute periods, 2 needed
        "function-errors": "N/A LOCALLY",
        "function-throttles": "N/A LOCALLY",
    }

    # Failures in two of the last three periods: the error-rate alarm fires.
    logs = read(state_dir)
    late = BatchMetrics()
    late.add_record("retry", error_class="Throttled", processing_ms=1)
    logs = local_logs.read_lines(emf(late, NOW_MS - 3 * MINUTE), logs)
    view = local_view.build_view(logs, hour(), function_name=FN, queues=None, parameters=PARAMETERS)
    tiles = {tile.name: tile for tile in view.rows[0][0].alarms}  # type: ignore[union-attr]
    assert tiles["error-rate"].state == "ALARM"
    assert tiles["dlq-not-empty"].state == "NO DATA"


def test_failures_table(state_dir: Path) -> None:
    view = local_view.build_view(read(state_dir), hour(), function_name=FN, queues=None)
    table = view.rows[3][0]
    assert isinstance(table, TablePanel)
    assert table.columns[:4] == ["time (UTC)", "key", "error class", "outcome"]
    assert [row[1:4] for row in table.rows] == [
        ["-", "InvalidEvent", "dead-lettered"],
        ["original/c1.png", "CorruptImage", "dead-lettered"],
        ["original/b2.jpg", "NotAnImage", "retry"],
        ["original/bad <a&b>.jpg", "NotAnImage", "dead-lettered"],
    ]


# ----------------------------------------------------------------------------------------------------
# the command
# ----------------------------------------------------------------------------------------------------
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_unreachable_endpoint_still_draws_the_metrics(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(command, "datetime", _FrozenDatetime)
    endpoint = f"http://127.0.0.1:{closed_port()}"
    page = tmp_path / "d.html"

    code = cli.main(
        ["dashboard", "--state-dir", str(state_dir), "--output", str(page), "--endpoint-url", endpoint]
    )

    assert code == 0
    captured = capsys.readouterr()
    assert f"queues unavailable: endpoint {endpoint} unreachable" in captured.err
    text = page.read_text()
    assert "queues: unavailable" in text
    assert html.escape("original/bad <a&b>.jpg") in text
    assert "bad <a&b>" not in text
    # Without the stack the function is unknown: every function's records count.
    assert "processed 3  ·  skipped 2  ·  failed 5 (CorruptImage 2, InvalidEvent 1, NotAnImage 2)" in text


class _FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return NOW


def test_json_output(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(command, "datetime", _FrozenDatetime)
    out = tmp_path / "d.png"
    args = ["dashboard", "--state-dir", str(state_dir), "--output", str(out), "--json", "--window", "30m"]

    assert cli.main([*args, "--endpoint-url", f"http://127.0.0.1:{closed_port()}"]) == 0

    doc = json.loads(capsys.readouterr().out)
    assert doc["window"] == {
        "start": "2026-11-27T11:30:00Z",
        "end": "2026-11-27T12:00:00Z",
        "bucket_seconds": 60,
    }
    assert doc["queues"] is None
    assert doc["totals"]["counts"]["RecordsFailed"] == 5
    assert doc["latest_failures"][0]["error_class"] == "InvalidEvent"
    assert png_size(out) >= (1200, 800)


def test_without_a_local_run_it_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        ["dashboard", "--state-dir", str(tmp_path / "nothing"), "--output", str(tmp_path / "d.png")]
    )
    assert code == 1
    assert "no local run here" in capsys.readouterr().err
    assert not (tmp_path / "d.png").exists()


@pytest.mark.parametrize(("option", "value"), [("--output", "d.jpg"), ("--window", "soon")])
def test_bad_options_are_refused(option: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["dashboard", option, value])
    assert exit_.value.code == 2
    assert option in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------
# after a real local run
# ----------------------------------------------------------------------------------------------------
POISON = 'original/e2e/<poison> & "quotes" $1$.jpg'


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[local.LocalRuntime, Path]]:
    """A real local run: two images rendered, one poison file dead-lettered; the runtime keeps running."""
    state = tmp_path_factory.mktemp("state")
    options = poller.WorkerOptions(log_dir=state / "logs")
    with local_runtime(workers=1, options=options) as runtime:
        s3, out = runtime.client("s3"), runtime.outputs
        s3.put_object(
            Bucket=out["SourceBucketName"], Key="original/e2e/a.jpg", Body=imagegen.photo_jpeg(640, 480)
        )
        s3.put_object(
            Bucket=out["SourceBucketName"], Key="original/e2e/b.png", Body=imagegen.png_rgba(300, 200)
        )
        s3.put_object(Bucket=out["SourceBucketName"], Key=POISON, Body=b"<html>not an image</html>")

        def settled() -> bool:
            runtime.update_totals()  # counted once the batch is over: its metrics are in the log
            return runtime.totals["rendered"] >= 2 and runtime.totals["dead-lettered"] >= 1

        def dead_lettered() -> bool:
            attributes = runtime.client("sqs").get_queue_attributes(
                QueueUrl=out["DeadLetterQueueUrl"], AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            return int(attributes["ApproximateNumberOfMessages"]) >= 1

        def rendered() -> bool:
            listed = s3.list_objects_v2(Bucket=out["DestinationBucketName"], Prefix="resized/")
            return listed.get("KeyCount", 0) >= 4

        eventually(rendered)
        eventually(dead_lettered)
        eventually(settled)
        yield runtime, state


@pytest.mark.e2e
def test_dashboard_writes_an_image_after_a_local_run(
    local_run: tuple[local.LocalRuntime, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime, state = local_run
    image = tmp_path / "d.png"

    code = cli.main(
        [
            "dashboard",
            "--state-dir",
            str(state),
            "--output",
            str(image),
            "--endpoint-url",
            runtime.endpoint_url,
            "--json",
        ]
    )

    assert code == 0
    width, height = png_size(image)
    assert width >= 1200
    assert height >= 800
    doc = json.loads(capsys.readouterr().out)
    assert doc["function_name"] == runtime.outputs["FunctionName"]
    assert doc["queues"]["dlq_visible"] >= 1
    # The numbers drawn, through the pure reader.
    window = Window.ending(int(time.time() * 1000), 3600)
    totals = local_metrics.totals(local_logs.read_worker_logs(state / "logs"), window, doc["function_name"])
    assert totals.counts[metrics.RECORDS_PROCESSED] == 2
    assert totals.outcomes["rendered"] == 2
    assert totals.failed_by_class == {"NotAnImage": 1}
    assert doc["totals"]["failed_by_class"] == {"NotAnImage": 1}


@pytest.mark.e2e
def test_dashboard_html_after_a_local_run(local_run: tuple[local.LocalRuntime, Path], tmp_path: Path) -> None:
    runtime, state = local_run
    page = tmp_path / "d.html"

    code = cli.main(
        [
            "dashboard",
            "--state-dir",
            str(state),
            "--output",
            str(page),
            "--endpoint-url",
            runtime.endpoint_url,
        ]
    )

    assert code == 0
    text = page.read_text()
    assert html.escape(POISON) in text
    assert "<poison>" not in text
    assert '<img src="data:image/png;base64,' in text
    assert "queues: unavailable" not in text
    assert "NotAnImage" in text


def test_a_line_breaks_where_a_bucket_has_no_data() -> None:
    minute = 60_000
    points = {0: 1.0, minute: 2.0, 5 * minute: 4.0, 6 * minute: 3.0, 9 * minute: 1.0}
    starts, values = drawing_graphs.broken_at_gaps(points, minute)
    assert starts == [0, minute, 2 * minute, 5 * minute, 6 * minute, 7 * minute, 9 * minute]
    assert [v if v == v else None for v in values] == [1.0, 2.0, None, 4.0, 3.0, None, 1.0]  # NaN: a gap
    assert drawing_graphs.broken_at_gaps({0: 1.0, minute: 1.0}, minute) == ([0, minute], [1.0, 1.0])


def test_the_drawn_line_has_the_gap_too() -> None:
    from matplotlib.figure import Figure

    minute = 60_000
    window = Window(0, 10 * minute, minute)
    panel = GraphPanel("t", 8, 6, lines=[local_panels.Line("records", {0: 1.0, 5 * minute: 2.0})])
    axes = Figure().add_subplot()
    drawing_graphs.draw_graph(axes, panel, window)
    (line,) = axes.get_lines()[:1]
    ys = list(line.get_ydata())
    assert len(ys) == 3
    assert ys[1] != ys[1]  # NaN: matplotlib leaves the idle minutes undrawn
