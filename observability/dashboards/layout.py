"""The CloudWatch dashboard, row by row (24 columns), and the Logs Insights queries of its tables and of
the runbook.

The same rows are rendered twice: into the template's dashboard body by
:mod:`observability.dashboards.cloudwatch`, and from a local run's logs by
:mod:`observability.dashboards.local_view` (``imgproc dashboard``), titles included.
"""

from __future__ import annotations

from observability import metrics
from observability.dashboards.alarms import (
    ERROR_RATE,
    ERROR_RATE_PARAMETER,
    FAILED,
    OLDEST_MESSAGE_PARAMETER,
    PROCESSED,
    SKIPPED,
    AlarmStatus,
)
from observability.dashboards.widgets import (
    DEAD_LETTER_QUEUE,
    FUNCTION,
    INGEST_QUEUE,
    PERIOD,
    Expression,
    Graph,
    LogTable,
    Raw,
    Var,
    imgproc_metric,
    lambda_metric,
    sqs_metric,
)

Widget = Graph | LogTable | AlarmStatus

# Records failed per error class: a SEARCH over the (FunctionName, ErrorClass) dimension set, so a
# class added to processor/errors.py shows up without touching the dashboard. The label is the
# class (a CloudWatch dynamic label, escaped for Fn::Sub).
_SCHEMA = ",".join([metrics.NAMESPACE, *sorted(metrics.ERROR_DIMENSIONS)])
_SEARCH_TERMS = f'MetricName="{metrics.RECORDS_FAILED}" {metrics.FUNCTION_NAME}="{FUNCTION.sub()}"'
FAILED_BY_CLASS = Expression(
    f"SEARCH('{{{_SCHEMA}}} {_SEARCH_TERMS}', 'Sum', {PERIOD})",
    "${!PROP('Dim.ErrorClass')}",
    "byclass",
)


# ----------------------------------------------------------------------------------------------------
# Logs Insights queries (the handler's JSON log lines: event, outcome, error_class, error, key, ...)
# ----------------------------------------------------------------------------------------------------
LATEST_FAILURES_QUERY = (
    "fields @timestamp, key, error_class, outcome, error, bucket, message_id"
    " | filter ispresent(error_class)"
    " | sort @timestamp desc"
    " | limit 50"
)
FAILING_KEYS_QUERY = (
    "filter ispresent(error_class) and ispresent(key)"
    " | stats count(*) as failures, latest(error) as last_error by key, error_class"
    " | sort failures desc"
    " | limit 50"
)
FAILURES_BY_CLASS_QUERY = (
    "filter ispresent(error_class) | stats count(*) as failures by error_class, outcome | sort failures desc"
)
FUNCTION_ERRORS_QUERY = (
    "fields @timestamp, @message"
    ' | filter @message like /Task timed out|errorType|Runtime\\.\\w+/ or level in ["error", "critical"]'
    " | sort @timestamp desc"
    " | limit 50"
)


# ----------------------------------------------------------------------------------------------------
# the dashboard, row by row (24 columns)
# ----------------------------------------------------------------------------------------------------
ROWS: tuple[tuple[Widget, ...], ...] = (
    (AlarmStatus("Alarms (details and first steps: docs/runbook.md)"),),
    (
        Graph(
            "Records per minute: processed, skipped, failed",
            (
                imgproc_metric(metrics.RECORDS_PROCESSED, "Sum", "processed (rendered or deleted)"),
                imgproc_metric(metrics.RECORDS_SKIPPED, "Sum", "skipped (up to date or ignored)"),
                imgproc_metric(metrics.RECORDS_FAILED, "Sum", "failed (retried or dead-lettered)"),
            ),
        ),
        Graph("Failed records per minute, by error class", (FAILED_BY_CLASS,), stacked=True),
        Graph(
            # The body is an Fn::Sub template: CloudWatch shows the threshold's value, as does the local view.
            f"Error rate (%), alarm above {Var(ERROR_RATE_PARAMETER).sub()}%",
            (FAILED, PROCESSED, SKIPPED, ERROR_RATE),
            left_label="%",
            threshold=("alarm", Raw(Var(ERROR_RATE_PARAMETER))),
        ),
    ),
    (
        Graph(
            "Ingest queue: waiting and in flight",
            (
                sqs_metric(
                    INGEST_QUEUE, "ApproximateNumberOfMessagesVisible", "Maximum", "waiting (visible)"
                ),
                sqs_metric(
                    INGEST_QUEUE,
                    "ApproximateNumberOfMessagesNotVisible",
                    "Maximum",
                    "in flight (not visible)",
                ),
            ),
        ),
        Graph(
            "Age of the oldest ingest message (s)",
            (sqs_metric(INGEST_QUEUE, "ApproximateAgeOfOldestMessage", "Maximum", "oldest message age"),),
            left_label="seconds",
            threshold=("alarm", Raw(Var(OLDEST_MESSAGE_PARAMETER))),
        ),
        Graph(
            "Dead-letter queue depth",
            (sqs_metric(DEAD_LETTER_QUEUE, "ApproximateNumberOfMessagesVisible", "Maximum", "messages"),),
        ),
    ),
    (
        LogTable(
            "Latest failures: keys and error classes (outcome retry or dead-lettered)", LATEST_FAILURES_QUERY
        ),
    ),
    (
        Graph(
            "Lambda invocations, errors, throttles",
            (
                lambda_metric("Invocations", "Sum", "invocations"),
                lambda_metric("Errors", "Sum", "errors", right_axis=True),
                lambda_metric("Throttles", "Sum", "throttles", right_axis=True),
            ),
            left_label="invocations",
            right_label="errors, throttles",
        ),
        Graph(
            "Lambda concurrent executions",
            (lambda_metric("ConcurrentExecutions", "Maximum", "concurrent executions (max)"),),
        ),
        Graph(
            "Lambda duration per batch (ms)",
            (
                lambda_metric("Duration", "p50", "p50"),
                lambda_metric("Duration", "p99", "p99"),
                lambda_metric("Duration", "Maximum", "max"),
            ),
            left_label="ms",
        ),
    ),
    (
        Graph(
            "Processing time per record (ms)",
            (
                imgproc_metric(metrics.PROCESSING_TIME, "p50", "p50"),
                imgproc_metric(metrics.PROCESSING_TIME, "p90", "p90"),
                imgproc_metric(metrics.PROCESSING_TIME, "p99", "p99"),
            ),
            left_label="ms",
        ),
        Graph(
            "Bytes per rendered source (average)",
            (
                imgproc_metric(metrics.SOURCE_BYTES, "Average", "source (downloaded)"),
                imgproc_metric(metrics.OUTPUT_BYTES, "Average", "renditions (written, all sizes)"),
            ),
            left_label="bytes",
        ),
        Graph(
            "Renditions written per minute",
            (imgproc_metric(metrics.RENDITIONS_WRITTEN, "Sum", "renditions written"),),
        ),
    ),
)
