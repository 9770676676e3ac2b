"""observability.metrics: EMF documents checked against the specification's rules, and exact values.

``emf_problems`` implements the rules of CloudWatch's "Specification: Embedded metric format" that a
producer controls (root node, metadata object, MetricDirective, MetricDefinition, target members),
and every document the builder makes is checked with it.
"""

from __future__ import annotations

import io
import json
import math
import threading
import time
from typing import Any

import pytest

from observability import metrics
from observability.metrics import BatchMetrics
from observability.outcomes import Outcome

TS = 1_700_000_000_123
FN = "imgproc-ProcessorFunction-AbC123"

# MetricDefinition.Unit: the CloudWatch StandardUnit values.
EMF_UNITS = frozenset(
    {
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    }
)
MAX_EVENT_BYTES = 256 * 1024  # a CloudWatch Logs event; EMF documents share the limit


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def emf_problems(document: Any) -> list[str]:
    """Every way ``document`` breaks the EMF specification (empty when it is a valid document)."""
    problems: list[str] = []
    if not isinstance(document, dict):
        return ["root node is not a JSON object"]
    try:
        size = len(json.dumps(document, allow_nan=False).encode())
    except ValueError as exc:
        return [f"not strict JSON: {exc}"]
    if size > MAX_EVENT_BYTES:
        problems.append(f"{size} bytes, above the {MAX_EVENT_BYTES}-byte log event limit")
    aws = document.get("_aws")
    if not isinstance(aws, dict):
        return [*problems, "_aws is missing or not an object"]
    timestamp = aws.get("Timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
        problems.append(f"_aws.Timestamp must be a non-negative integer of ms, not {timestamp!r}")
    directives = aws.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return [*problems, "_aws.CloudWatchMetrics must be a non-empty array of MetricDirective"]
    for d, directive in enumerate(directives):
        where = f"CloudWatchMetrics[{d}]"
        if not isinstance(directive, dict):
            problems.append(f"{where} is not an object")
            continue
        extra = set(directive) - {"Namespace", "Dimensions", "Metrics"}
        if extra:
            problems.append(f"{where} has members the specification does not define: {sorted(extra)}")
        namespace = directive.get("Namespace")
        if not isinstance(namespace, str) or not 1 <= len(namespace) <= 1024:
            problems.append(f"{where}.Namespace must be a string of 1-1024 characters")
        dimension_sets = directive.get("Dimensions")
        if not isinstance(dimension_sets, list) or not dimension_sets:
            problems.append(f"{where}.Dimensions must be a non-empty array of dimension sets")
            dimension_sets = []
        for s, dimension_set in enumerate(dimension_sets):
            if not isinstance(dimension_set, list) or len(dimension_set) > 30:
                problems.append(f"{where}.Dimensions[{s}] must be an array of at most 30 names")
                continue
            for name in dimension_set:
                if not isinstance(name, str) or not 1 <= len(name) <= 250:
                    problems.append(f"{where}.Dimensions[{s}]: {name!r} is not a 1-250 character string")
                    continue
                value = document.get(name)
                if not isinstance(value, str):
                    problems.append(f"dimension {name!r} has no string member in the root node")
                elif not value or len(value) > 1024 or not value.isascii() or not value.strip():
                    problems.append(f"dimension {name!r} value {value!r} is not 1-1024 ASCII characters")
        definitions = directive.get("Metrics")
        if not isinstance(definitions, list):
            problems.append(f"{where}.Metrics must be an array")
            definitions = []
        if len(definitions) > 100:
            problems.append(f"{where}.Metrics has {len(definitions)} MetricDefinitions, above 100")
        for m, definition in enumerate(definitions):
            if not isinstance(definition, dict):
                problems.append(f"{where}.Metrics[{m}] is not an object")
                continue
            extra = set(definition) - {"Name", "Unit", "StorageResolution"}
            if extra:
                problems.append(f"{where}.Metrics[{m}] has unknown members {sorted(extra)}")
            name = definition.get("Name")
            if not isinstance(name, str) or not 1 <= len(name) <= 1024:
                problems.append(f"{where}.Metrics[{m}].Name must be a string of 1-1024 characters")
                continue
            if "Unit" in definition and definition["Unit"] not in EMF_UNITS:
                problems.append(f"metric {name!r}: unit {definition['Unit']!r} is not a CloudWatch unit")
            value = document.get(name)
            if isinstance(value, list):
                if not value or len(value) > 100:
                    problems.append(f"metric {name!r} has {len(value)} values; 1-100 allowed")
                if not all(_is_number(v) for v in value):
                    problems.append(f"metric {name!r} has a value that is not a finite number")
            elif not _is_number(value):
                problems.append(f"metric {name!r} has no numeric member in the root node ({value!r})")
    return problems


def assert_valid(documents: list[dict[str, Any]]) -> None:
    for document in documents:
        assert emf_problems(document) == [], json.dumps(document)


def _sample() -> BatchMetrics:
    batch = BatchMetrics()
    batch.add_record("rendered", processing_ms=120.5, source_bytes=1000, output_bytes=300, renditions=2)
    batch.add_record("rendered", processing_ms=80, source_bytes=2000, output_bytes=500, renditions=1)
    batch.add_record("deleted", processing_ms=10.25)
    batch.add_record("skipped", processing_ms=5.0)
    batch.add_record("ignored", processing_ms=0.1)  # not reconciled: no ProcessingTime
    batch.add_record("retry", error_class="Throttled", processing_ms=30)
    batch.add_record("dead-lettered", error_class="CorruptImage", processing_ms=15)
    batch.add_record("retry", error_class="DeadlineExceeded")  # never started: no ProcessingTime
    batch.add_record("dead-lettered", error_class="CorruptImage", processing_ms=12)
    return batch


# ----------------------------------------------------------------------------------------------------
# the validator itself
# ----------------------------------------------------------------------------------------------------
def test_validator_accepts_the_specification_example_shape() -> None:
    document = {
        "_aws": {
            "Timestamp": 1574109732004,
            "CloudWatchMetrics": [
                {
                    "Namespace": "lambda-function-metrics",
                    "Dimensions": [["functionVersion"]],
                    "Metrics": [{"Name": "time", "Unit": "Milliseconds"}],
                }
            ],
        },
        "functionVersion": "$LATEST",
        "time": 100,
        "requestId": "989ffbf8-9ace-4817-a57c-e4dd734019ee",
    }
    assert emf_problems(document) == []


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda d: d["_aws"].update(Timestamp=1.5), "Timestamp"),
        (lambda d: d["_aws"].update(Timestamp="1700000000000"), "Timestamp"),
        (lambda d: d.pop("FunctionName"), "dimension 'FunctionName'"),
        (lambda d: d.update(FunctionName=42), "dimension 'FunctionName'"),
        (lambda d: d.update(RecordsProcessed="3"), "metric 'RecordsProcessed'"),
        (lambda d: d.pop("RecordsSkipped"), "metric 'RecordsSkipped'"),
        (lambda d: d.update(ProcessingTime=list(range(101))), "101 values"),
        (lambda d: d.update(ProcessingTime=[1.0, math.nan]), "not strict JSON"),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0].update(Dimensions="FunctionName"), "Dimensions"),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0].update(Unit="ms"), "unit 'ms'"),
        (
            lambda d: d["_aws"]["CloudWatchMetrics"][0].update(
                Metrics=[{"Name": f"M{i}", "Unit": "Count"} for i in range(101)]
            ),
            "above 100",
        ),
        (lambda d: d.pop("_aws"), "_aws"),
    ],
)
def test_validator_rejects_what_the_specification_forbids(breakage: Any, expected: str) -> None:
    (document, *_) = _sample().documents(FN, TS)
    breakage(document)
    problems = emf_problems(document)
    assert any(expected in p for p in problems), problems


# ----------------------------------------------------------------------------------------------------
# the builder
# ----------------------------------------------------------------------------------------------------
def test_an_empty_batch_emits_nothing() -> None:
    batch = BatchMetrics()
    assert batch.documents(FN, TS) == []
    out = io.StringIO()
    assert batch.flush(out) == 0
    assert out.getvalue() == ""


def test_sample_batch_exact_documents() -> None:
    documents = _sample().documents(FN, TS)
    assert_valid(documents)
    general = {"Namespace": "ImageProcessor", "Dimensions": [["FunctionName"]]}
    by_class = {"Namespace": "ImageProcessor", "Dimensions": [["FunctionName", "ErrorClass"]]}
    assert documents == [
        {
            "_aws": {
                "Timestamp": TS,
                "CloudWatchMetrics": [
                    {
                        **general,
                        "Metrics": [
                            {"Name": "RecordsProcessed", "Unit": "Count"},
                            {"Name": "RecordsSkipped", "Unit": "Count"},
                            {"Name": "RecordsFailed", "Unit": "Count"},
                            {"Name": "RenditionsWritten", "Unit": "Count"},
                            {"Name": "ProcessingTime", "Unit": "Milliseconds"},
                            {"Name": "SourceBytes", "Unit": "Bytes"},
                            {"Name": "OutputBytes", "Unit": "Bytes"},
                        ],
                    }
                ],
            },
            "FunctionName": FN,
            "RecordsProcessed": 3,  # 2 rendered + 1 deleted
            "RecordsSkipped": 2,  # skipped + ignored
            "RecordsFailed": 4,  # 2 retry + 2 dead-lettered
            "RenditionsWritten": 3,
            "ProcessingTime": [120.5, 80.0, 10.25, 5.0, 30.0, 15.0, 12.0],
            "SourceBytes": [1000, 2000],
            "OutputBytes": [300, 500],
        },
        {
            "_aws": {
                "Timestamp": TS,
                "CloudWatchMetrics": [{**by_class, "Metrics": [{"Name": "RecordsFailed", "Unit": "Count"}]}],
            },
            "FunctionName": FN,
            "ErrorClass": "CorruptImage",
            "RecordsFailed": 2,
        },
        {
            "_aws": {
                "Timestamp": TS,
                "CloudWatchMetrics": [{**by_class, "Metrics": [{"Name": "RecordsFailed", "Unit": "Count"}]}],
            },
            "FunctionName": FN,
            "ErrorClass": "DeadlineExceeded",
            "RecordsFailed": 1,
        },
        {
            "_aws": {
                "Timestamp": TS,
                "CloudWatchMetrics": [{**by_class, "Metrics": [{"Name": "RecordsFailed", "Unit": "Count"}]}],
            },
            "FunctionName": FN,
            "ErrorClass": "Throttled",
            "RecordsFailed": 1,
        },
    ]


def test_per_class_failures_add_up_to_the_general_count() -> None:
    general, *per_class = _sample().documents(FN, TS)
    assert sum(d["RecordsFailed"] for d in per_class) == general["RecordsFailed"]


def test_zero_counts_are_explicit_and_empty_distributions_are_left_out() -> None:
    batch = BatchMetrics()
    batch.add_record("ignored", processing_ms=0.2)
    (document,) = batch.documents(FN, TS)
    assert_valid([document])
    assert {k: document[k] for k in metrics.COUNTS} == {
        "RecordsProcessed": 0,
        "RecordsSkipped": 1,
        "RecordsFailed": 0,
        "RenditionsWritten": 0,
    }
    for name in metrics.DISTRIBUTIONS:
        assert name not in document
    declared = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert declared == list(metrics.COUNTS)


def test_more_than_100_values_are_split_over_several_documents() -> None:
    batch = BatchMetrics()
    for i in range(250):
        batch.add_record("rendered", processing_ms=i, source_bytes=i, output_bytes=2 * i, renditions=2)
    batch.add_record("retry", error_class="ServiceError", processing_ms=999)
    documents = batch.documents(FN, TS)
    assert_valid(documents)
    general = [d for d in documents if "ErrorClass" not in d]
    assert len(general) == 3
    assert [len(d["ProcessingTime"]) for d in general] == [100, 100, 51]
    assert [len(d["SourceBytes"]) for d in general] == [100, 100, 50]
    # The counts are emitted once, in the first document only.
    assert general[0]["RecordsProcessed"] == 250
    assert general[0]["RenditionsWritten"] == 500
    for later in general[1:]:
        assert not set(metrics.COUNTS) & set(later)
    assert [v for d in general for v in d["OutputBytes"]] == [2 * i for i in range(250)]
    assert [v for d in general for v in d["ProcessingTime"]] == [float(i) for i in range(250)] + [999.0]


def test_every_emitted_metric_and_dimension_set_is_declared_in_emitted() -> None:
    seen = {
        (definition["Name"], tuple(dimension_set))
        for document in _sample().documents(FN, TS)
        for directive in document["_aws"]["CloudWatchMetrics"]
        for dimension_set in directive["Dimensions"]
        for definition in directive["Metrics"]
    }
    assert seen == metrics.EMITTED


def test_units_and_names_follow_the_design() -> None:
    # docs/design.md, "Contract: metrics": the seven names; ProcessingTime in ms; bytes for sizes.
    assert set(metrics.UNITS) == {
        "RecordsProcessed",
        "RecordsSkipped",
        "RecordsFailed",
        "RenditionsWritten",
        "ProcessingTime",
        "SourceBytes",
        "OutputBytes",
    }
    assert metrics.UNITS["ProcessingTime"] == "Milliseconds"
    assert metrics.UNITS["SourceBytes"] == metrics.UNITS["OutputBytes"] == "Bytes"
    assert metrics.NAMESPACE == "ImageProcessor"


def test_outcomes_are_the_handlers_log_vocabulary() -> None:
    # One enum (observability.outcomes) for the handler, the metrics and the poller: every outcome
    # counts in exactly one of the three record counts, and the values are the log lines' strings.
    groups = (metrics.PROCESSED_OUTCOMES, metrics.SKIPPED_OUTCOMES, metrics.FAILED_OUTCOMES)
    assert set(Outcome) == metrics.OUTCOMES == set().union(*groups)
    assert sum(len(group) for group in groups) == len(Outcome)
    assert {o.value for o in Outcome} == {
        "rendered",
        "deleted",
        "skipped",
        "ignored",
        "retry",
        "dead-lettered",
    }
    assert {"retry", "dead-lettered"} == metrics.FAILED_OUTCOMES


def test_invalid_records_are_refused() -> None:
    batch = BatchMetrics()
    with pytest.raises(ValueError, match="unknown outcome"):
        batch.add_record("ok")
    with pytest.raises(ValueError, match="needs an error_class"):
        batch.add_record("retry")
    with pytest.raises(ValueError, match="needs an error_class"):
        batch.add_record("dead-lettered", error_class="")
    assert len(batch) == 0


def test_odd_values_never_make_invalid_json() -> None:
    batch = BatchMetrics()
    batch.add_record("skipped", processing_ms=math.nan)
    batch.add_record("skipped", processing_ms=math.inf)
    batch.add_record("rendered", processing_ms=-3, source_bytes=-1, output_bytes=5, renditions=-2)
    (document,) = batch.documents(FN, TS)
    assert_valid([document])
    assert document["ProcessingTime"] == [0.0]
    assert document["SourceBytes"] == [0]
    assert document["RenditionsWritten"] == 0


def test_records_from_many_threads_are_all_counted() -> None:
    batch = BatchMetrics()

    def add() -> None:
        for _ in range(500):
            batch.add_record("rendered", processing_ms=1, source_bytes=1, output_bytes=1, renditions=2)
            batch.add_record("retry", error_class="NetworkError", processing_ms=1)

    threads = [threading.Thread(target=add) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    documents = batch.documents(FN, TS)
    assert_valid(documents)
    assert documents[0]["RecordsProcessed"] == 4000
    assert documents[0]["RecordsFailed"] == 4000
    assert documents[0]["RenditionsWritten"] == 8000
    assert documents[-1] | {"_aws": None} == {
        "_aws": None,
        "FunctionName": FN,
        "ErrorClass": "NetworkError",
        "RecordsFailed": 4000,
    }
    assert sum(len(d.get("ProcessingTime", [])) for d in documents) == 8000


# ----------------------------------------------------------------------------------------------------
# flush
# ----------------------------------------------------------------------------------------------------
def test_flush_writes_one_valid_json_line_per_document_then_resets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", FN)
    batch = _sample()
    expected = batch.documents(FN, TS)
    out = io.StringIO()
    assert batch.flush(out, timestamp_ms=TS) == len(expected) == 4
    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == expected
    assert all("\n" not in line and line.startswith("{") for line in lines)
    assert len(batch) == 0
    assert batch.flush(out) == 0  # reset: a second flush writes nothing


def test_flush_uses_the_lambda_function_name_or_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    out = io.StringIO()
    batch = BatchMetrics()
    batch.add_record("skipped", processing_ms=1)
    lo = int(time.time() * 1000)
    batch.flush(out)
    hi = int(time.time() * 1000)
    document = json.loads(out.getvalue())
    assert document["FunctionName"] == "local"
    timestamp = document["_aws"]["Timestamp"]
    assert isinstance(timestamp, int)
    assert lo <= timestamp <= hi  # "now", in milliseconds


def test_flush_defaults_to_the_current_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    batch = BatchMetrics()
    batch.add_record("deleted", processing_ms=2)
    assert batch.flush(function_name=FN, timestamp_ms=TS) == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert emf_problems(json.loads(line)) == []
