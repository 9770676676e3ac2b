"""The on-call view of a local run: every widget of the CloudWatch dashboard
(:data:`observability.dashboards.layout.ROWS`) computed from what the local runtime captured. Pure: no
I/O, no plotting (``imgproc dashboard`` draws what :func:`build_view` returns).

In AWS, CloudWatch graphs the handler's EMF documents; here the same documents, read back by
:mod:`observability.dashboards.local_logs`, give the same widgets:

- every ``ImageProcessor`` metric of a widget, with the widget's statistic (``Sum``, ``Average``,
  ``Maximum``, ``Minimum``, ``SampleCount``, ``pNN``) per time bucket, for the widget's dimension set
  (``FunctionName``; ``FunctionName`` + ``ErrorClass`` for the failed-by-class search);
- the error rate, as the dashboard's expression computes it;
- the latest failures from the log lines, as the Logs Insights widget lists them;
- the SQS widgets from a snapshot of the queues (the embedded AWS keeps no metric history), and the
  Lambda widgets from the log lines where they can be (invocations), marked unavailable otherwise;
- the alarms' states, where the local data allow.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from observability import metrics
from observability.dashboards import alarms, layout
from observability.dashboards.alarms import Alarm
from observability.dashboards.local_logs import Failure, WorkerLogs, latest_failures
from observability.dashboards.local_metrics import Window, error_rate, failed_by_class, metric_series, totals
from observability.dashboards.local_panels import (
    ALARM,
    NO_DATA,
    OK,
    QUEUES_UNAVAILABLE,
    UNAVAILABLE,
    AlarmPanel,
    AlarmTile,
    GraphPanel,
    Line,
    Panel,
    QueueSnapshot,
    Stat,
    TablePanel,
    View,
)
from observability.dashboards.widgets import DEAD_LETTER_QUEUE, Expression, Graph, LogTable, Metric, Var

_AGE_METRICS = frozenset({"ApproximateAgeOfOldestMessage"})
_LAMBDA_FROM_LOGS = "Invocations"  # the one AWS/Lambda metric the log lines give (batch.done lines)


def build_view(
    logs: WorkerLogs,
    window: Window,
    *,
    function_name: str | None,
    queues: QueueSnapshot | None,
    queues_unavailable: str = QUEUES_UNAVAILABLE,
    parameters: Mapping[str, str] | None = None,
    now_ms: int | None = None,
    format_age: Callable[[float | None], str] = lambda s: "unknown" if s is None else f"{s:.0f} s",
) -> View:
    """Every widget of :data:`~observability.dashboards.layout.ROWS`, computed from ``logs`` (restricted to
    ``function_name`` unless None) and ``queues``; ``parameters`` are the stack's (alarm thresholds).
    ``format_age`` writes a queue age (``imgproc status`` passes its own, so both read alike)."""
    logs = logs.only(function_name)
    parameters = parameters or {}
    now_ms = window.end_ms if now_ms is None else now_ms
    failures = latest_failures(f for f in logs.failures if window.contains(f.timestamp_ms))
    context = _Context(
        logs, window, function_name, queues, queues_unavailable, parameters, now_ms, format_age
    )
    rows: list[list[Panel]] = []
    for row in layout.ROWS:
        panels: list[Panel] = []
        for widget in row:
            if isinstance(widget, Graph):
                panels.append(context.graph(widget))
            elif isinstance(widget, LogTable):
                panels.append(_failures_table(widget, failures))
            else:
                panels.append(AlarmPanel(widget.title, widget.width, widget.height, context.alarms()))
        rows.append(panels)
    return View(rows, window, totals(logs, window), failures, function_name, queues)


def _failures_table(widget: LogTable, failures: list[Failure]) -> TablePanel:
    rows = [
        [f.timestamp[:19].replace("T", " "), f.key or "-", f.error_class, f.outcome, f.error or ""]
        for f in failures
    ]
    notes = [] if failures else ["no failures in this window"]
    columns = ["time (UTC)", "key", "error class", "outcome", "error"]
    return TablePanel(widget.title, widget.width, widget.height, columns, rows, failures, notes)


@dataclass
class _Context:
    logs: WorkerLogs
    window: Window
    function_name: str | None
    queues: QueueSnapshot | None
    queues_unavailable: str
    parameters: Mapping[str, str]
    now_ms: int
    format_age: Callable[[float | None], str]

    def title(self, text: str) -> str:
        """A widget title with the ``${Parameter}`` references that ``Fn::Sub`` resolves in CloudWatch
        replaced by the stack's values (left as written when unknown)."""
        return re.sub(r"\$\{([A-Za-z0-9]+)\}", lambda m: self.parameters.get(m.group(1), m.group(0)), text)

    def graph(self, widget: Graph) -> GraphPanel:
        panel = GraphPanel(
            self.title(widget.title),
            widget.width,
            widget.height,
            stacked=widget.stacked,
            left_label=widget.left_label or "",
            right_label=widget.right_label or "",
        )
        if widget.threshold is not None:
            label, raw = widget.threshold
            value = self.threshold(raw.var)
            if value is not None:
                panel.threshold = (f"{label}: {value:g} {widget.left_label or ''}".rstrip(), value)
        inputs = {m.id: m for m in widget.metrics if isinstance(m, Metric) and m.id}
        for item in widget.metrics:
            if isinstance(item, Expression):
                self.expression(panel, item, inputs)
            elif item.visible:
                self.metric(panel, item)
        if not panel.left_label:
            panel.left_label = self.unit_label(widget)
        return panel

    def unit_label(self, widget: Graph) -> str:
        first = widget.metrics[0]
        if isinstance(first, Expression) or first.namespace != metrics.NAMESPACE:
            return f"records per {self.window.bucket_label}" if first is layout.FAILED_BY_CLASS else ""
        unit = metrics.UNITS[first.name]
        if unit == "Count":
            noun = "renditions" if first.name == metrics.RENDITIONS_WRITTEN else "records"
            return f"{noun} per {self.window.bucket_label}"
        return {"Milliseconds": "ms", "Bytes": "bytes"}.get(unit, unit)

    def metric(self, panel: GraphPanel, metric: Metric) -> None:
        label = metric.label or metric.name
        if metric.namespace == metrics.NAMESPACE:
            dims = {name: self.function_name for name, _ in metric.dimensions}
            series = metric_series(self.logs.documents, metric.name, metric.stat, self.window, dims)
            panel.lines.append(Line(label, series, metric.right_axis))
            panel.bytes_axis = panel.bytes_axis or metrics.UNITS[metric.name] == "Bytes"
        elif metric.namespace == "AWS/SQS":
            self.queue_stat(panel, label, [metric])
        elif metric.namespace == "AWS/Lambda" and metric.name == _LAMBDA_FROM_LOGS:
            counts: Counter[int] = Counter(
                self.window.bucket(i.timestamp_ms)
                for i in self.logs.invocations
                if self.window.contains(i.timestamp_ms)
            )
            panel.lines.append(Line(f"{label} (batch.done log lines)", dict(sorted(counts.items()))))
        else:
            panel.missing.append(label)

    def queue_stat(self, panel: GraphPanel, label: str, sqs_metrics: Sequence[Metric]) -> None:
        """A queue widget's series as its current value (no history on the embedded AWS)."""
        if self.queues is None:
            if self.queues_unavailable not in panel.notes:
                panel.notes.append(self.queues_unavailable)
            return
        value = self.queue_value(sqs_metrics)
        if any(m.name in _AGE_METRICS for m in sqs_metrics):
            text = self.format_age(value)
            if value is None:
                panel.notes.append("the embedded AWS keeps no SQS metrics (ApproximateAgeOfOldestMessage)")
        else:
            text = "unknown" if value is None else f"{value:.0f}"
        panel.stats.append(Stat(f"{label}, now", text))
        dead_letter = any(_queue(m) == DEAD_LETTER_QUEUE.name for m in sqs_metrics)
        oldest = Stat("oldest message, now", self.format_age(self.queues.dlq_oldest_age_seconds))
        if dead_letter and oldest not in panel.stats:
            panel.stats.append(oldest)

    def queue_value(self, sqs_metrics: Sequence[Metric]) -> float | None:
        """The sum of the metrics' current values; None when one is unknown."""
        assert self.queues is not None
        values = [self.queues.value(_queue(m), m.name) for m in sqs_metrics]
        return None if any(v is None for v in values) else float(sum(v for v in values if v is not None))

    def expression(self, panel: GraphPanel, expression: Expression, inputs: Mapping[str, Metric]) -> None:
        if expression is layout.FAILED_BY_CLASS:
            for error_class, series in failed_by_class(
                self.logs.documents, self.window, self.function_name
            ).items():
                panel.lines.append(Line(error_class, series))
            if not panel.lines:
                panel.notes.append("no failed records in this window")
        elif expression is alarms.ERROR_RATE:
            panel.lines.append(
                Line(expression.label, error_rate(self.logs.documents, self.window, self.function_name))
            )
        elif (sqs_metrics := _sqs_sum(expression, inputs.values())) is not None:
            self.queue_stat(panel, expression.label, sqs_metrics)
        else:
            panel.notes.append(f"{expression.label}: expression not computed locally")

    def threshold(self, var: Var) -> float | None:
        try:
            return float(self.parameters[var.name])
        except (KeyError, ValueError):
            return None

    def alarms(self) -> list[AlarmTile]:
        return [self.alarm(alarm) for alarm in alarms.ALARMS]

    def alarm(self, alarm: Alarm) -> AlarmTile:
        threshold = (
            self.threshold(alarm.threshold) if isinstance(alarm.threshold, Var) else float(alarm.threshold)
        )
        if threshold is None:
            return AlarmTile(alarm.name, NO_DATA, "threshold parameter unknown")
        if alarm.math is not None and alarm.math[0] is alarms.ERROR_RATE:
            return self.error_rate_alarm(alarm, threshold)
        if alarm.metric is not None:
            sqs_metrics = [alarm.metric] if alarm.metric.namespace == "AWS/SQS" else None
        else:
            assert alarm.math is not None
            sqs_metrics = _sqs_sum(alarm.math[0], alarm.math[1])
        if sqs_metrics is None:
            return AlarmTile(alarm.name, UNAVAILABLE, "not recorded by the local runtime")
        if self.queues is None:
            return AlarmTile(alarm.name, NO_DATA, QUEUES_UNAVAILABLE)
        value = self.queue_value(sqs_metrics)
        age = any(m.name in _AGE_METRICS for m in sqs_metrics)
        if value is None:
            return AlarmTile(alarm.name, NO_DATA, "the embedded AWS keeps no SQS metrics")
        shown, limit = (
            (self.format_age(value), self.format_age(threshold))
            if age
            else (f"{value:.0f}", f"{threshold:g}")
        )
        state = ALARM if _breaches(value, threshold, alarm.comparison) else OK
        return AlarmTile(alarm.name, state, f"now {shown} (alarm above {limit})")

    def error_rate_alarm(self, alarm: Alarm, threshold: float) -> AlarmTile:
        periods = Window(
            self.now_ms - alarm.period * 1000 * alarm.evaluation_periods, self.now_ms, alarm.period * 1000
        )
        rate = error_rate(self.logs.documents, periods, self.function_name)
        # The evaluation_periods periods ending with the current one; missing data is not breaching.
        last = periods.bucket(self.now_ms)
        evaluated = [last - i * periods.bucket_ms for i in range(alarm.evaluation_periods)]
        breaching = sum(1 for b in evaluated if b in rate and _breaches(rate[b], threshold, alarm.comparison))
        needed = alarm.datapoints_to_alarm or alarm.evaluation_periods
        worst = max((rate[b] for b in evaluated if b in rate), default=None)
        detail = (
            f"{breaching} of {alarm.evaluation_periods} {alarm.period // 60}-min periods above {threshold:g}%"
            + ("" if worst is None else f" (max {worst:.1f}%)")
        )
        return AlarmTile(alarm.name, ALARM if breaching >= needed else OK, detail)


def _queue(metric: Metric) -> str:
    return dict(metric.dimensions)["QueueName"].name


_SUM_TERM = re.compile(r"\s*(?:FILL\(\s*(\w+)\s*,\s*0\s*\)|(\w+))\s*")


def _sqs_sum(expression: Expression, inputs: Iterable[Metric]) -> list[Metric] | None:
    """The SQS metrics an expression adds up (``FILL(a, 0) + FILL(b, 0)``); None for any other one."""
    by_id = {m.id: m for m in inputs}
    found = []
    for term in expression.expression.split("+"):
        match = _SUM_TERM.fullmatch(term)
        metric = by_id.get(match.group(1) or match.group(2)) if match else None
        if metric is None or metric.namespace != "AWS/SQS":
            return None
        found.append(metric)
    return found


def _breaches(value: float, threshold: float, comparison: str) -> bool:
    return {
        "GreaterThanThreshold": value > threshold,
        "GreaterThanOrEqualToThreshold": value >= threshold,
        "LessThanThreshold": value < threshold,
        "LessThanOrEqualToThreshold": value <= threshold,
    }.get(comparison, False)
