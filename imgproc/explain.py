"""`imgproc explain KEY...`: why is this key's thumbnail missing or old, and which command fixes it?

For each key (a source key, an ``s3://`` URL, or a rendition key mapped back to its source): the
source's HEAD, each configured rendition (current / stale / missing / orphaned / claimed, with its markers and
the recipe digest against today's configuration), the DLQ messages naming the key (read without
consuming: released at once), the catalog item when ``CATALOG_TABLE`` is set, the handler's last log
lines (a local run's files on the embedded AWS; in AWS the Logs Insights query, run with ``--logs``),
and one verdict line with the fix. The work is in :mod:`explainer`; this module is the command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from explainer import handler_logs, keys, probe, render, verdict
from explainer.handler_logs import HandlerLogs
from explainer.render import KeyReport
from imgproc import local
from processor.storage import SourceHead
from toolkit import aws
from toolkit.durations import duration
from toolkit.function import Deployment, FunctionConfigError, load_deployment
from toolkit.renditions import observe_renditions
from toolkit.stack import Output
from toolkit.terminal import Block, show

EXIT_HEALTHY, EXIT_UNHEALTHY = 0, 1
DEFAULT_SINCE = "1d"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Why is this key's rendition missing or old? The source's HEAD, every configured rendition\n"
        "(current / stale / missing / orphaned / claimed by another source key with the same rendition\n"
        "key), the DLQ messages naming the key (read, not consumed), the catalog item, the handler's\n"
        "last log lines, and one verdict line with the command that fixes it."
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "KEY: a source key (original/a b.jpg), an s3://BUCKET/KEY URL of the source or destination\n"
        "bucket, or a rendition key (resized/300x300/a b.jpg), taken as S3 stores it (not URL-encoded).\n"
        "Log lines: on the embedded AWS (a loopback --endpoint-url) from the local run's files under\n"
        "--state-dir; against AWS the Logs Insights query is printed, and run with --logs.\n"
        "\n"
        "Exit status: 0 every key healthy (its renditions current); 1 a key is not (or the stack,\n"
        "AWS or credentials failed); 2 bad options or a KEY that is neither a source nor a rendition\n"
        "key; 130 interrupted."
    )
    aws.add_arguments(parser)
    parser.add_argument("keys", nargs="+", metavar="KEY", help="the key(s) to explain")
    parser.add_argument(
        "--logs",
        action="store_true",
        help="against AWS: run the Logs Insights query over the function's log group (costs a query)",
    )
    parser.add_argument(
        "--since",
        type=duration,
        default=duration(DEFAULT_SINCE),
        metavar="AGE",
        help=f"the Logs Insights window: the last AGE (30m, 12h, 7d; default {DEFAULT_SINCE})",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=local.STATE_DIR,
        help=f"the local run's state directory, as given to `imgproc up` (default {local.STATE_DIR})",
    )


def target_and_keys(
    args: argparse.Namespace, required: Output
) -> tuple[Deployment, list[keys.KeyInput]] | None:
    """The stack and function behind ``args`` and the keys it names (:class:`UsageError` for a key
    that names no source); None, said on stderr, when the function's configuration does not parse."""
    try:
        target = load_deployment(
            aws.client(args, "cloudformation"),
            aws.client(args, "lambda"),
            args.stack_name,
            (Output.SOURCE_BUCKET, Output.DESTINATION_BUCKET, Output.FUNCTION_NAME, required),
        )
    except FunctionConfigError as exc:
        print(f"imgproc {args.command_name}: {exc}", file=sys.stderr, flush=True)
        return None
    inputs = [
        keys.parse(text, target.config, source_bucket=target.source_bucket, dest_bucket=target.dest_bucket)
        for text in dict.fromkeys(args.keys)
    ]
    return target, inputs


def run(args: argparse.Namespace) -> int:
    resolved = target_and_keys(args, Output.DLQ_URL)
    if resolved is None:
        return EXIT_UNHEALTHY
    target, inputs = resolved
    s3, sqs = aws.client(args, "s3"), aws.client(args, "sqs")
    sources = [probe.pick_source(s3, target.source_bucket, given) for given in inputs]
    dlq = probe.scan_dead_letters(sqs, target.outputs.dlq_url, [key for key, _ in sources])
    table = target.config.catalog_table
    dynamodb = aws.client(args, "dynamodb") if table else None
    fixes = verdict.Fixes(("--stack-name", args.stack_name) if args.stack_name != aws.DEFAULT_STACK else ())
    reports = []
    for given, (key, head) in zip(inputs, sources, strict=True):
        explanation = verdict.classify(
            key,
            head,
            list(observe_renditions(s3, target.dest_bucket, target.config, key)),
            dlq.by_key.get(key, []),
            probe.catalog_item(dynamodb, table, key) if dynamodb and table else None,
            source_bucket=target.source_bucket,
            delete_on_remove=target.config.delete_on_remove,
            fixes=fixes,
        )
        logs = _logs(args, target, key, head)
        reports.append(KeyReport(given.given, explanation, target.source_bucket, dlq, table, logs))
    for warning in dlq.warnings:
        print(f"imgproc explain: {warning}", file=sys.stderr, flush=True)
    _print(args, reports)
    return EXIT_HEALTHY if all(report.healthy for report in reports) else EXIT_UNHEALTHY


def _logs(args: argparse.Namespace, target: Deployment, key: str, head: SourceHead | None) -> HandlerLogs:
    if aws.is_local_endpoint(args.endpoint_url):
        modified = None if head is None else head.last_modified
        return handler_logs.local_lines(args.state_dir / "logs", key, source_modified=modified)
    query = handler_logs.insights_query(key)
    group = target.function.log_group
    if not args.logs:
        return HandlerLogs("query", where=group, query=query)
    end = datetime.now(UTC)
    return handler_logs.run_insights(
        aws.client(args, "logs"), group, query, end - timedelta(seconds=args.since), end
    )


def _print(args: argparse.Namespace, reports: list[KeyReport]) -> None:
    if args.json:
        doc = {
            "stack": args.stack_name,
            "healthy": all(report.healthy for report in reports),
            "keys": [render.to_json(report) for report in reports],
        }
        print(json.dumps(doc, ensure_ascii=False), flush=True)
        return
    screen: list[Block] = []
    for i, report in enumerate(reports):
        screen += ([""] if i else []) + render.blocks(report)
    show(screen, sys.stdout)
