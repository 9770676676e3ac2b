"""observability.dashboards (cloudwatch, alarms, layout): the template's generated block, the dashboard
body, alarms and runbook.

The dashboard and alarms are Python data rendered into infra/cloudformation/imgproc.yaml; these tests
keep the two in step (drift), check that the dashboard JSON is valid once CloudFormation substitutes
its ${...} variables (also for real, by deploying into moto), that every ImageProcessor metric used is
one observability.metrics emits, and that every alarm tells on-call what to do first.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import decode_str
from conftest import tiny_zip
from moto import mock_aws

from observability import metrics
from observability.dashboards import alarms, cloudwatch, layout
from processor import errors

REPO = Path(__file__).resolve().parents[1]
RUNBOOK = REPO / "docs" / "runbook.md"
DESIGN = REPO / "docs" / "design.md"  # the contract, in the repo
PSEUDO_PARAMETERS = {"AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::StackName", "AWS::URLSuffix"}
IMGPROC_COMMAND = re.compile(r"`imgproc (status|dlq inspect|dlq replay|dlq purge|backfill|deploy)\b[^`]*`")


@pytest.fixture(scope="module")
def template_text() -> str:
    return cloudwatch.TEMPLATE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def template(template_text: str) -> dict[str, Any]:
    decoded, matches = decode_str(template_text)
    assert not matches, matches
    assert isinstance(decoded, dict)
    return decoded


@pytest.fixture(scope="module")
def generated() -> dict[str, dict[str, Any]]:
    return cloudwatch.resources()


def _sub_names(text: str) -> set[str]:
    """The names ``${Name}`` / ``${Name.Attr}`` refers to in an Fn::Sub string (``${!x}`` is literal)."""
    return {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)}


def _substitute(text: str, values: dict[str, str]) -> str:
    """What CloudFormation does to an Fn::Sub string: ``${Name}`` -> value, ``${!x}`` -> ``${x}``."""

    def one(match: re.Match[str]) -> str:
        inner = match.group(1)
        if inner.startswith("!"):
            return "${" + inner[1:] + "}"
        return values[inner]

    return re.sub(r"\$\{([^}]*)\}", one, text)


STACK = "imgproc-prod"
SUBSTITUTIONS = {
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": STACK,
    "ProcessorFunction": f"{STACK}-ProcessorFunction-AbCdEf123456",
    "IngestQueue.QueueName": f"{STACK}-ingest",
    "DeadLetterQueue.QueueName": f"{STACK}-dlq",
    "ProcessorLogGroup": f"/imgproc/{STACK}/processor",
    "ErrorRateAlarmPercent": "5",
    "OldestMessageAlarmSeconds": "900",
}


@pytest.fixture(scope="module")
def body() -> dict[str, Any]:
    text = _substitute(cloudwatch.dashboard_body(), SUBSTITUTIONS)
    parsed = json.loads(text)
    assert isinstance(parsed, dict)
    return parsed


def _widget_metric_rows(body: dict[str, Any]) -> Iterator[list[Any]]:
    for widget in body["widgets"]:
        if widget["type"] == "metric":
            yield from widget["properties"]["metrics"]


# ----------------------------------------------------------------------------------------------------
# the generated block
# ----------------------------------------------------------------------------------------------------
def test_the_templates_generated_block_is_up_to_date(template_text: str) -> None:
    assert cloudwatch.current_block(template_text) == cloudwatch.render(), (
        "infra/cloudformation/imgproc.yaml is out of date:"
        " run `python -m observability.dashboards.cloudwatch --write`"
    )
    assert cloudwatch.main(["--check"]) == 0


def test_check_fails_and_write_repairs_only_the_block(tmp_path: Path, template_text: str) -> None:
    copy = tmp_path / "imgproc.yaml"
    stale = template_text.replace("Threshold: 0\n", "Threshold: 1\n", 1)
    assert stale != template_text
    copy.write_text(stale, encoding="utf-8")
    assert cloudwatch.main(["--check", "--template", str(copy)]) == 1
    assert cloudwatch.main(["--write", "--template", str(copy)]) == 0
    assert copy.read_text(encoding="utf-8") == template_text
    assert cloudwatch.main(["--check", "--template", str(copy)]) == 0


def test_the_block_parses_back_to_the_generated_resources(
    template: dict[str, Any], generated: dict[str, dict[str, Any]]
) -> None:
    # The YAML rendering (short-form tags, folded and literal strings) loses nothing.
    for logical_id, resource in generated.items():
        assert template["Resources"][logical_id] == resource, logical_id


def test_every_name_the_generated_resources_use_exists(
    template: dict[str, Any], generated: dict[str, dict[str, Any]]
) -> None:
    known = set(template["Parameters"]) | set(template["Resources"]) | PSEUDO_PARAMETERS
    used: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Ref":
                    used.add(value)
                elif key == "Fn::GetAtt":
                    used.add(value[0])
                elif key == "Fn::Sub":
                    used.update(_sub_names(value))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(generated)
    assert used - known == set()
    # Every variable of the dashboard body is one the substitution below knows.
    body_variables = set(re.findall(r"\$\{([^!}][^}]*)\}", cloudwatch.dashboard_body()))
    assert body_variables <= set(SUBSTITUTIONS)


# ----------------------------------------------------------------------------------------------------
# the dashboard
# ----------------------------------------------------------------------------------------------------
def test_the_dashboard_is_named_like_the_dashboard_name_output(
    template: dict[str, Any], generated: dict[str, dict[str, Any]]
) -> None:
    resource = generated[cloudwatch.DASHBOARD]
    assert resource["Type"] == "AWS::CloudWatch::Dashboard"
    assert "Condition" not in resource
    assert resource["Properties"]["DashboardName"] == template["Outputs"]["DashboardName"]["Value"]
    assert resource["Properties"]["DashboardName"] == {"Fn::Sub": "${AWS::StackName}-imgproc"}


def test_the_body_is_json_once_substituted_and_the_widgets_fit_the_grid(body: dict[str, Any]) -> None:
    widgets = body["widgets"]
    assert {w["type"] for w in widgets} == {"metric", "log", "alarm"}
    occupied: set[tuple[int, int]] = set()
    for widget in widgets:
        x, y, width, height = (widget[k] for k in ("x", "y", "width", "height"))
        assert all(isinstance(v, int) for v in (x, y, width, height))
        assert x >= 0
        assert x + width <= 24
        assert min(width, height) >= 1
        cells = {(col, row) for col in range(x, x + width) for row in range(y, y + height)}
        assert not cells & occupied, f"{widget['properties'].get('title')} overlaps another widget"
        occupied |= cells
        properties = widget["properties"]
        assert properties["title"]
        if widget["type"] == "metric":
            assert properties["region"] == "eu-west-1"
            assert 1 <= len(properties["metrics"]) <= 100
            assert properties["period"] % 60 == 0
            for threshold in properties.get("annotations", {}).get("horizontal", []):
                assert isinstance(threshold["value"], int | float)
    # The alarms come first: what is wrong, within a minute.
    assert widgets[0]["type"] == "alarm"


def test_the_log_widget_lists_failing_keys_from_the_functions_log_group(body: dict[str, Any]) -> None:
    (widget,) = [w for w in body["widgets"] if w["type"] == "log"]
    properties = widget["properties"]
    assert properties["view"] == "table"
    assert properties["query"].startswith(f"SOURCE '/imgproc/{STACK}/processor' | ")
    query = properties["query"]
    for field in ("key", "error_class", "outcome", "error"):
        assert field in query
    assert "filter ispresent(error_class)" in query
    assert "sort @timestamp desc" in query


def test_the_alarm_widget_shows_every_alarm(
    body: dict[str, Any], generated: dict[str, dict[str, Any]]
) -> None:
    (widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    names = {
        _substitute(r["Properties"]["AlarmName"]["Fn::Sub"], SUBSTITUTIONS)
        for r in generated.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert widget["properties"]["alarms"] == [
        f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{STACK}-{alarm.name}" for alarm in alarms.ALARMS
    ]
    assert {arn.rsplit(":", 1)[1] for arn in widget["properties"]["alarms"]} == names


def test_the_dashboard_shows_the_queues_and_the_function(body: dict[str, Any]) -> None:
    shown = {
        (row[0], row[1], tuple(row[2:-1])) for row in _widget_metric_rows(body) if isinstance(row[0], str)
    }
    ingest, dlq = ("QueueName", f"{STACK}-ingest"), ("QueueName", f"{STACK}-dlq")
    function = ("FunctionName", SUBSTITUTIONS["ProcessorFunction"])
    for name in ("ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible"):
        assert ("AWS/SQS", name, ingest) in shown
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", ingest) in shown
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq) in shown
    for name in ("Invocations", "Errors", "Throttles", "ConcurrentExecutions", "Duration"):
        assert ("AWS/Lambda", name, function) in shown
    stats = {
        row[-1]["stat"]
        for row in _widget_metric_rows(body)
        if row[:2] == ["ImageProcessor", "ProcessingTime"]
    }
    assert stats == {"p50", "p90", "p99"}


def _imgproc_metrics_used(
    body: dict[str, Any], generated: dict[str, dict[str, Any]]
) -> set[tuple[str, frozenset]]:
    """(metric, dimension names) of every ImageProcessor metric the dashboard and alarms refer to."""
    used: set[tuple[str, frozenset]] = set()
    for row in _widget_metric_rows(body):
        if isinstance(row[0], str):
            if row[0] == metrics.NAMESPACE:
                used.add((row[1], frozenset(row[2:-1:2])))
            continue
        expression = row[0]["expression"]
        for schema, name in re.findall(r"SEARCH\('\{([^}]*)\}[^']*MetricName=\"(\w+)\"", expression):
            namespace, *dimensions = schema.split(",")
            if namespace == metrics.NAMESPACE:
                used.add((name, frozenset(dimensions)))
    for resource in generated.values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        properties = resource["Properties"]
        if properties.get("Namespace") == metrics.NAMESPACE:
            used.add((properties["MetricName"], frozenset(d["Name"] for d in properties["Dimensions"])))
        for query in properties.get("Metrics", []):
            metric = query.get("MetricStat", {}).get("Metric")
            if metric and metric["Namespace"] == metrics.NAMESPACE:
                used.add((metric["MetricName"], frozenset(d["Name"] for d in metric["Dimensions"])))
    return used


def test_every_imgproc_metric_used_is_emitted_with_those_dimensions(
    body: dict[str, Any], generated: dict[str, dict[str, Any]]
) -> None:
    used = _imgproc_metrics_used(body, generated)
    emitted = {(name, frozenset(dimensions)) for name, dimensions in metrics.EMITTED}
    assert used, "no ImageProcessor metric found: the parsing above is broken"
    assert used <= emitted, used - emitted
    # RecordsFailed by ErrorClass is on the dashboard (the SEARCH found it).
    assert (metrics.RECORDS_FAILED, frozenset(metrics.ERROR_DIMENSIONS)) in used


def test_every_design_metric_is_on_the_dashboard(body: dict[str, Any]) -> None:
    on_dashboard = {row[1] for row in _widget_metric_rows(body) if row[0] == metrics.NAMESPACE}
    on_dashboard |= {name for name, _ in _imgproc_metrics_used(body, {})}  # SEARCH expressions too
    assert on_dashboard >= set(metrics.UNITS)
    # docs/design.md, "Contract: metrics": the first column of its table names every metric.
    section = DESIGN.read_text(encoding="utf-8").split("\n## Contract: metrics\n", 1)[1].split("\n## ", 1)[0]
    design = set(re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE))
    assert design == set(metrics.UNITS)
    assert on_dashboard >= design


# ----------------------------------------------------------------------------------------------------
# the alarms and their topic
# ----------------------------------------------------------------------------------------------------
def _alarms(generated: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in generated.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def test_the_alarms_are_the_agreed_ones(generated: dict[str, dict[str, Any]]) -> None:
    alarms = _alarms(generated)
    assert set(alarms) == {
        "DeadLetterQueueNotEmptyAlarm",
        "IngestBacklogAlarm",
        "ErrorRateAlarm",
        "FunctionErrorsAlarm",
        "FunctionThrottlesAlarm",
    }
    dlq = alarms["DeadLetterQueueNotEmptyAlarm"]["Properties"]
    # Visible + in flight: a scan by `imgproc dlq inspect` hides messages but must not clear the alarm.
    inputs = {q["Id"]: q["MetricStat"]["Metric"] for q in dlq["Metrics"] if "MetricStat" in q}
    assert {i: (m["Namespace"], m["MetricName"]) for i, m in inputs.items()} == {
        "visible": ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        "held": ("AWS/SQS", "ApproximateNumberOfMessagesNotVisible"),
    }
    for metric in inputs.values():
        assert metric["Dimensions"] == [
            {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}
        ]
    (total,) = [q for q in dlq["Metrics"] if q.get("ReturnData")]
    assert total["Expression"] == "FILL(visible, 0) + FILL(held, 0)"
    assert (dlq["Threshold"], dlq["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    backlog = alarms["IngestBacklogAlarm"]["Properties"]
    assert backlog["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert backlog["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["IngestQueue", "QueueName"]}}
    ]
    assert backlog["Threshold"] == {"Ref": "OldestMessageAlarmSeconds"}
    throttles = alarms["FunctionThrottlesAlarm"]["Properties"]
    assert (throttles["Namespace"], throttles["MetricName"], throttles["Threshold"]) == (
        "AWS/Lambda",
        "Throttles",
        0,
    )
    assert throttles["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "ProcessorFunction"}}]


def test_the_error_rate_alarm_is_metric_math_over_all_records(generated: dict[str, dict[str, Any]]) -> None:
    properties = generated["ErrorRateAlarm"]["Properties"]
    assert properties["Threshold"] == {"Ref": "ErrorRateAlarmPercent"}
    assert properties["TreatMissingData"] == "notBreaching"
    assert not {"MetricName", "Namespace", "Statistic"} & set(properties)  # Metrics excludes them
    queries = {q["Id"]: q for q in properties["Metrics"]}
    returned = [q for q in queries.values() if q.get("ReturnData", True)]
    assert len(returned) == 1
    expression = returned[0]["Expression"]
    assert expression == "100 * FILL(failed, 0) / (FILL(processed, 0) + FILL(skipped, 0) + FILL(failed, 0))"
    inputs = {i: q["MetricStat"]["Metric"]["MetricName"] for i, q in queries.items() if "MetricStat" in q}
    assert inputs == {"failed": "RecordsFailed", "processed": "RecordsProcessed", "skipped": "RecordsSkipped"}
    for query in queries.values():
        if "MetricStat" in query:
            assert query["MetricStat"]["Stat"] == "Sum"
            assert query["MetricStat"]["Metric"]["Dimensions"] == [
                {"Name": "FunctionName", "Value": {"Ref": "ProcessorFunction"}}
            ]


def test_every_alarm_notifies_the_topic_unconditionally(
    template: dict[str, Any], generated: dict[str, dict[str, Any]]
) -> None:
    topic = generated[alarms.ALARM_TOPIC]
    assert topic["Type"] == "AWS::SNS::Topic"
    assert "Condition" not in topic
    for logical_id, alarm in _alarms(generated).items():
        assert "Condition" not in alarm, logical_id
        properties = alarm["Properties"]
        assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}], logical_id
        assert properties["OKActions"] == [{"Ref": "AlarmTopic"}], logical_id
        assert properties["ActionsEnabled"] is True
    names = [a["Properties"]["AlarmName"]["Fn::Sub"] for a in _alarms(generated).values()]
    assert len(set(names)) == len(names)
    assert all(n.startswith("${AWS::StackName}-") for n in names)
    # Only the e-mail subscription is conditional, on a non-empty AlarmEmail.
    conditional = {k for k, r in generated.items() if "Condition" in r}
    assert conditional == {cloudwatch.ALARM_EMAIL_SUBSCRIPTION}


def test_the_email_subscription_exists_only_with_an_alarm_email(
    template: dict[str, Any], generated: dict[str, dict[str, Any]]
) -> None:
    subscription = generated[cloudwatch.ALARM_EMAIL_SUBSCRIPTION]
    assert subscription["Type"] == "AWS::SNS::Subscription"
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }
    assert template["Conditions"]["HasAlarmEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }


def test_the_alarm_parameters_are_declared_and_grouped(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["ErrorRateAlarmPercent"]["Type"] == "Number"
    assert int(parameters["ErrorRateAlarmPercent"]["Default"]) == 5
    assert parameters["OldestMessageAlarmSeconds"]["Type"] == "Number"
    assert int(parameters["OldestMessageAlarmSeconds"]["Default"]) == 900
    grouped = [
        name
        for group in template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
        for name in group["Parameters"]
    ]
    assert sorted(grouped) == sorted(parameters)


def _runbook_anchors() -> set[str]:
    """GitHub's anchors for the runbook's headings."""
    headings = re.findall(r"^#+ (.+)$", RUNBOOK.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_every_alarm_says_what_to_do_first(generated: dict[str, dict[str, Any]]) -> None:
    anchors = _runbook_anchors()
    longest = {**SUBSTITUTIONS, "AWS::StackName": "x" * 73, "ProcessorFunction": "x" * 64}
    longest |= {"IngestQueue.QueueName": "x" * 80, "DeadLetterQueue.QueueName": "x" * 80}
    longest["ProcessorLogGroup"] = "x" * 100
    for logical_id, alarm in _alarms(generated).items():
        description = alarm["Properties"]["AlarmDescription"]["Fn::Sub"]
        assert IMGPROC_COMMAND.search(description), f"{logical_id} names no imgproc command"
        (anchor,) = re.findall(r"docs/runbook\.md#([\w-]+)", description)
        assert anchor in anchors, f"{logical_id}: no runbook section #{anchor}"
        assert len(_substitute(description, longest)) <= 1024, f"{logical_id}: AlarmDescription too long"


# ----------------------------------------------------------------------------------------------------
# the runbook
# ----------------------------------------------------------------------------------------------------
def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_the_runbook_has_a_section_per_alarm_with_its_queries_and_commands() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    anchors = _runbook_anchors()
    for alarm in alarms.ALARMS:
        assert alarm.name in anchors, alarm.name
    fenced = re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    blocks = {_normalised(b) for b in fenced}
    for query in (
        layout.LATEST_FAILURES_QUERY,
        layout.FAILING_KEYS_QUERY,
        layout.FAILURES_BY_CLASS_QUERY,
        layout.FUNCTION_ERRORS_QUERY,
    ):
        assert _normalised(query) in blocks, f"the runbook lacks the query {query!r}"
    for command in ("imgproc dlq inspect", "imgproc dlq replay", "imgproc backfill", "imgproc status"):
        assert command in text
    assert "--error-class" in text
    assert "update-event-source-mapping --uuid" in text
    assert "--no-enabled" in text
    assert "EventSourceMappingEnabled=false" in text


def test_the_runbook_explains_every_error_class() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    leaves = {
        cls.__name__
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.ProcessingError) and not cls.__subclasses__()
    }
    assert leaves >= {"NotAnImage", "CorruptImage", "Throttled", "UnexpectedError"}
    for name in [*leaves, "RetriesExhausted"]:
        assert f"| `{name}` |" in text, f"the runbook's error class table lacks {name}"


# ----------------------------------------------------------------------------------------------------
# CloudFormation substitutes the body for real (moto)
# ----------------------------------------------------------------------------------------------------
@pytest.fixture
def moto_session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name)
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def test_moto_deploys_the_dashboard_with_this_stacks_names(
    moto_session: boto3.Session, template_text: str
) -> None:
    s3 = moto_session.client("s3")
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key="imgproc.zip", Body=tiny_zip())
    cloudformation = moto_session.client("cloudformation")
    parameters = {
        "ArtifactBucket": "artifacts",
        "ArtifactKey": "imgproc.zip",
        "EnableCloudFront": "false",
        "EventSourceMappingEnabled": "false",
        "AlarmEmail": "oncall@example.com",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moto warns about the resource types it skips
        cloudformation.create_stack(
            StackName="obs",
            TemplateBody=template_text,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
        (stack,) = cloudformation.describe_stacks(StackName="obs")["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    found = moto_session.client("cloudwatch").get_dashboard(DashboardName=outputs["DashboardName"])
    assert found["DashboardName"] == "obs-imgproc"
    deployed = json.loads(found["DashboardBody"])
    text = json.dumps(deployed)
    assert "${" not in text.replace("${PROP('Dim.ErrorClass')}", "")
    assert outputs["FunctionName"] in text
    assert '"obs-ingest"' in text
    assert '"obs-dlq"' in text
    assert "SOURCE '/imgproc/obs/processor'" in text
    assert "${PROP('Dim.ErrorClass')}" in text  # the escaped dynamic label survives as a literal
    topics = moto_session.client("sns").list_topics()["Topics"]
    assert len(topics) == 1


def test_the_module_runs_as_a_script(tmp_path: Path, template_text: str) -> None:
    copy = tmp_path / "t.yaml"
    shutil.copyfile(cloudwatch.TEMPLATE, copy)
    assert cloudwatch.main(["--check", "--template", str(copy)]) == 0
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdout", out)
        assert cloudwatch.main([]) == 0
    assert out.getvalue() == cloudwatch.render()
