"""The vocabulary of a CloudWatch dashboard, as plain Python data: references into the stack, metrics,
metric math, and the graph and Logs Insights widgets that show them.

:mod:`observability.dashboards.layout` arranges these into the dashboard and
:mod:`observability.dashboards.alarms` builds the alarms from the same metrics, so a widget and the
alarm that watches it cannot disagree. Each type renders itself twice: as JSON for the dashboard body
(``properties``, ``as_widget_row``) and as CloudFormation properties for an alarm (``as_alarm_query``,
``intrinsic``); the local view (:mod:`observability.dashboards.local_view`) reads the same objects to
compute what each widget would show.

Metric names and dimensions of the namespace ``ImageProcessor`` come from
:mod:`observability.metrics`, which emits them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from observability import metrics

PERIOD = 60  # seconds; Lambda, SQS and EMF metrics all have one-minute resolution


# ----------------------------------------------------------------------------------------------------
# references into the stack
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Var:
    """A value of this stack: ``Ref`` of a resource or parameter, or ``GetAtt`` with a dot."""

    name: str  # "ProcessorFunction", "IngestQueue.QueueName", "AWS::Region"

    def sub(self) -> str:
        """As written inside an ``Fn::Sub`` string."""
        return "${" + self.name + "}"

    def intrinsic(self) -> dict[str, Any]:
        """As a CloudFormation property value."""
        if "." in self.name:
            return {"Fn::GetAtt": self.name.split(".", 1)}
        return {"Ref": self.name}


FUNCTION = Var("ProcessorFunction")
INGEST_QUEUE = Var("IngestQueue.QueueName")
DEAD_LETTER_QUEUE = Var("DeadLetterQueue.QueueName")
LOG_GROUP = Var("ProcessorLogGroup")
REGION = Var("AWS::Region")
STACK = Var("AWS::StackName")


@dataclass(frozen=True)
class Raw:
    """A JSON number known only at deploy time, e.g. a Number parameter: ``"value": ${Param}``."""

    var: Var


# ----------------------------------------------------------------------------------------------------
# metrics and widgets
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, Var], ...]
    stat: str
    label: str | None = None
    id: str | None = None
    visible: bool = True
    right_axis: bool = False

    def as_widget_row(self) -> list[Any]:
        row: list[Any] = [self.namespace, self.name]
        for dimension, value in self.dimensions:
            row += [dimension, value.sub()]
        options: dict[str, Any] = {"stat": self.stat}
        if self.label:
            options["label"] = self.label
        if self.id:
            options["id"] = self.id
        if not self.visible:
            options["visible"] = False
        if self.right_axis:
            options["yAxis"] = "right"
        return [*row, options]

    def as_alarm_query(self, period: int) -> dict[str, Any]:
        """A ``MetricDataQuery`` of an alarm (``id`` required)."""
        return {
            "Id": self.id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.name,
                    "Dimensions": [{"Name": n, "Value": v.intrinsic()} for n, v in self.dimensions],
                },
                "Period": period,
                "Stat": self.stat,
            },
            "ReturnData": False,
        }


@dataclass(frozen=True)
class Expression:
    """Metric math over other metrics of the same widget (by ``id``), or a ``SEARCH``."""

    expression: str
    label: str
    id: str

    def as_widget_row(self) -> list[Any]:
        return [{"expression": self.expression, "label": self.label, "id": self.id}]


def imgproc_metric(name: str, stat: str, label: str | None = None, **options: Any) -> Metric:
    """A metric of observability.metrics, with the dimension set it is emitted with."""
    return Metric(metrics.NAMESPACE, name, ((metrics.FUNCTION_NAME, FUNCTION),), stat, label, **options)


def lambda_metric(name: str, stat: str, label: str | None = None, **options: Any) -> Metric:
    return Metric("AWS/Lambda", name, (("FunctionName", FUNCTION),), stat, label, **options)


def sqs_metric(queue: Var, name: str, stat: str, label: str | None = None, **options: Any) -> Metric:
    return Metric("AWS/SQS", name, (("QueueName", queue),), stat, label, **options)


@dataclass(frozen=True)
class Graph:
    """A metric widget (line graph)."""

    title: str
    metrics: tuple[Metric | Expression, ...]
    width: int = 8
    height: int = 6
    stacked: bool = False
    left_label: str | None = None
    right_label: str | None = None
    threshold: tuple[str, Raw] | None = None  # a horizontal line: (label, value)

    def properties(self) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "title": self.title,
            **({"stacked": True} if self.stacked else {}),  # default view: timeSeries, unstacked
            "region": REGION.sub(),
            "period": PERIOD,
            "metrics": [m.as_widget_row() for m in self.metrics],
        }
        axes: dict[str, Any] = {"left": {"min": 0, **({"label": self.left_label} if self.left_label else {})}}
        if self.right_label:
            axes["right"] = {"min": 0, "label": self.right_label}
        properties["yAxis"] = axes
        if self.threshold:
            label, value = self.threshold
            properties["annotations"] = {"horizontal": [{"label": label, "value": value}]}
        return {"type": "metric", "properties": properties}


@dataclass(frozen=True)
class LogTable:
    """A Logs Insights widget over the function's log group."""

    title: str
    query: str  # without the SOURCE clause
    width: int = 24
    height: int = 7

    def properties(self) -> dict[str, Any]:
        return {
            "type": "log",
            "properties": {
                "title": self.title,
                "view": "table",
                "region": REGION.sub(),
                "query": f"SOURCE '{LOG_GROUP.sub()}' | {self.query}",
            },
        }
