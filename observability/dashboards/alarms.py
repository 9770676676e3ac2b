"""The alarms, defined once: what each watches, when it fires, and what its notification tells the
on-call to do first (an ``imgproc`` command and the runbook section of the same name).

The alarms and the dashboard graphs share their metrics and expressions (:data:`ERROR_RATE`,
:data:`DLQ_DEPTH`); :class:`AlarmStatus` is the dashboard widget that lists them.
:mod:`observability.dashboards.cloudwatch` writes :meth:`Alarm.resource` into the template.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from observability import metrics
from observability.dashboards.widgets import (
    DEAD_LETTER_QUEUE,
    INGEST_QUEUE,
    PERIOD,
    REGION,
    STACK,
    Expression,
    Metric,
    Var,
    imgproc_metric,
    lambda_metric,
    sqs_metric,
)

RUNBOOK = "docs/runbook.md"
ALARM_TOPIC = "AlarmTopic"  # logical id of the topic every alarm notifies

# Parameters the alarms read (declared by hand in the template's Parameters).
ERROR_RATE_PARAMETER = "ErrorRateAlarmPercent"
OLDEST_MESSAGE_PARAMETER = "OldestMessageAlarmSeconds"

# Messages on the DLQ, whether visible or held by an operator's scan.
DLQ_DEPTH_INPUTS = (
    sqs_metric(
        DEAD_LETTER_QUEUE, "ApproximateNumberOfMessagesVisible", "Maximum", id="visible", visible=False
    ),
    sqs_metric(
        DEAD_LETTER_QUEUE, "ApproximateNumberOfMessagesNotVisible", "Maximum", id="held", visible=False
    ),
)
DLQ_DEPTH = Expression("FILL(visible, 0) + FILL(held, 0)", "messages on the DLQ", "dlqdepth")

# Error rate in percent of all records, shared by the widget and the alarm.
FAILED = imgproc_metric(metrics.RECORDS_FAILED, "Sum", "failed", id="failed", visible=False)
PROCESSED = imgproc_metric(metrics.RECORDS_PROCESSED, "Sum", "processed", id="processed", visible=False)
SKIPPED = imgproc_metric(metrics.RECORDS_SKIPPED, "Sum", "skipped", id="skipped", visible=False)
ERROR_RATE = Expression(
    "100 * FILL(failed, 0) / (FILL(processed, 0) + FILL(skipped, 0) + FILL(failed, 0))",
    "failed records (% of all records)",
    "rate",
)


@dataclass(frozen=True)
class Alarm:
    logical_id: str
    name: str  # AlarmName is <stack>-<name>: readable in notifications, known without a reference
    runbook_anchor: str
    description: str  # an Fn::Sub template; must name an imgproc command and the runbook
    threshold: float | Var
    metric: Metric | None = None  # a single metric, or:
    math: tuple[Expression, tuple[Metric, ...]] | None = None  # an expression over metrics
    period: int = PERIOD
    evaluation_periods: int = 1
    datapoints_to_alarm: int | None = None
    comparison: str = "GreaterThanThreshold"
    treat_missing_data: str = "notBreaching"

    def alarm_name_sub(self) -> str:
        return f"{STACK.sub()}-{self.name}"

    def arn_sub(self) -> str:
        account = "${AWS::AccountId}"
        return f"arn:${{AWS::Partition}}:cloudwatch:{REGION.sub()}:{account}:alarm:{self.alarm_name_sub()}"

    def resource(self) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "AlarmName": {"Fn::Sub": self.alarm_name_sub()},
            "AlarmDescription": {"Fn::Sub": f"{self.description} Runbook: {RUNBOOK}#{self.runbook_anchor}"},
            "ActionsEnabled": True,
            "AlarmActions": [{"Ref": ALARM_TOPIC}],
            "OKActions": [{"Ref": ALARM_TOPIC}],
        }
        if self.metric is not None:
            properties |= {
                "Namespace": self.metric.namespace,
                "MetricName": self.metric.name,
                "Dimensions": [{"Name": n, "Value": v.intrinsic()} for n, v in self.metric.dimensions],
                "Statistic": self.metric.stat,
                "Period": self.period,
            }
        elif self.math is not None:
            expression, inputs = self.math
            properties["Metrics"] = [
                *(m.as_alarm_query(self.period) for m in inputs),
                {
                    "Id": expression.id,
                    "Expression": expression.expression,
                    "Label": expression.label,
                    "ReturnData": True,  # the value the alarm watches
                },
            ]
        properties |= {
            "EvaluationPeriods": self.evaluation_periods,
            **({"DatapointsToAlarm": self.datapoints_to_alarm} if self.datapoints_to_alarm else {}),
            "Threshold": self.threshold.intrinsic() if isinstance(self.threshold, Var) else self.threshold,
            "ComparisonOperator": self.comparison,
            "TreatMissingData": self.treat_missing_data,
        }
        return {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}


_STATUS = "`imgproc status --stack-name ${AWS::StackName}`"
_INSPECT = "`imgproc dlq inspect --stack-name ${AWS::StackName}`"
_REPLAY = "`imgproc dlq replay --stack-name ${AWS::StackName} --error-class CLASS`"
_PAUSE = "`imgproc deploy --stack-name ${AWS::StackName} -p EventSourceMappingEnabled=false`"

ALARMS: tuple[Alarm, ...] = (
    Alarm(
        logical_id="DeadLetterQueueNotEmptyAlarm",
        name="dlq-not-empty",
        runbook_anchor="dlq-not-empty",
        description=(
            "imgproc ${AWS::StackName}: the dead-letter queue ${DeadLetterQueue.QueueName} holds messages:"
            " images that failed permanently (not an image, corrupt, too large, unsupported, bad event) or"
            f" that exhausted their retries. First run {_INSPECT} (counts by error class, sample keys)."
            " Bad uploads: fix or remove the sources. After a fix or an outage: "
            f"{_REPLAY}."
        ),
        # Visible + in flight: `imgproc dlq inspect` hides the messages it reads for a while, which
        # must not flip the alarm to OK and back.
        math=(DLQ_DEPTH, DLQ_DEPTH_INPUTS),
        threshold=0,
    ),
    Alarm(
        logical_id="IngestBacklogAlarm",
        name="ingest-oldest-message",
        runbook_anchor="ingest-oldest-message",
        description=(
            "imgproc ${AWS::StackName}: the oldest message on the ingest queue ${IngestQueue.QueueName} is"
            " older than ${OldestMessageAlarmSeconds} s: uploads are not being processed in time. First run"
            f" {_STATUS} (backlog, in flight, DLQ, recent failures), then look at the dashboard"
            " ${AWS::StackName}-imgproc: Lambda errors and throttles, and whether the event source mapping"
            " is enabled (a paused mapping raises this alarm)."
        ),
        metric=sqs_metric(INGEST_QUEUE, "ApproximateAgeOfOldestMessage", "Maximum"),
        threshold=Var(OLDEST_MESSAGE_PARAMETER),
        evaluation_periods=3,
        datapoints_to_alarm=3,
    ),
    Alarm(
        logical_id="ErrorRateAlarm",
        name="error-rate",
        runbook_anchor="error-rate",
        description=(
            "imgproc ${AWS::StackName}: more than ${ErrorRateAlarmPercent}% of the records of"
            " ${ProcessorFunction} failed (RecordsFailed / all records) in 2 of the last 3 five-minute"
            " periods. First look at the dashboard ${AWS::StackName}-imgproc (failed records by error class,"
            f" latest failures with their keys) or run {_STATUS}. Permanent classes go to the DLQ:"
            f" {_INSPECT}. If a deploy caused it, pause processing with {_PAUSE} and roll back."
        ),
        math=(ERROR_RATE, (FAILED, PROCESSED, SKIPPED)),
        threshold=Var(ERROR_RATE_PARAMETER),
        period=300,
        evaluation_periods=3,
        datapoints_to_alarm=2,
    ),
    Alarm(
        logical_id="FunctionErrorsAlarm",
        name="function-errors",
        runbook_anchor="function-errors",
        description=(
            "imgproc ${AWS::StackName}: invocations of ${ProcessorFunction} failed as a whole (crash,"
            " timeout, out of memory, bad configuration at cold start): every message of those batches is"
            " retried and may end on the DLQ. First run the function-errors Logs Insights query of the"
            f" runbook on ${{ProcessorLogGroup}} and {_STATUS}. If a deploy caused it, pause processing with"
            f" {_PAUSE} and roll back."
        ),
        metric=lambda_metric("Errors", "Sum"),
        threshold=0,
        period=300,
    ),
    Alarm(
        logical_id="FunctionThrottlesAlarm",
        name="function-throttles",
        runbook_anchor="function-throttles",
        description=(
            "imgproc ${AWS::StackName}: Lambda throttled invocations of ${ProcessorFunction}: its reserved"
            " concurrency is below the event source mapping's MaximumConcurrency, or the account's"
            f" concurrency is used up. Nothing is lost but the backlog grows. First run {_STATUS}; then"
            " compare the ReservedConcurrency and MaximumConcurrency parameters and fix them with"
            " `imgproc deploy --stack-name ${AWS::StackName} -p ReservedConcurrency=N`."
        ),
        metric=lambda_metric("Throttles", "Sum"),
        threshold=0,
        period=300,
    ),
)


@dataclass(frozen=True)
class AlarmStatus:
    """The dashboard widget that lists every alarm of :data:`ALARMS`, the latest change first."""

    title: str
    width: int = 24
    height: int = 3

    def properties(self) -> dict[str, Any]:
        return {
            "type": "alarm",
            "properties": {
                "title": self.title,
                "alarms": [alarm.arn_sub() for alarm in ALARMS],
                "sortBy": "stateUpdatedTimestamp",
            },
        }
