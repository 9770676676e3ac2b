"""`imgproc backfill` on the command line: its options, the run with Ctrl-C and exit codes, the
resume command, and the summary (human or ``--json``). What a run does: :mod:`backfill.job`.

Exit status: 0 all matching keys enqueued, 1 some entries could not be sent (or AWS failed
mid-run), 2 usage or stack errors, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import threading
from datetime import UTC, datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError

from backfill import inventory
from backfill.job import (
    DEFAULT_CONCURRENCY,
    FAILED_BATCHES_ABORT,
    MAX_CONCURRENCY,
    MAX_HEAD_THREADS,
    Backfill,
    BackfillProgress,
    Options,
    Summary,
    Target,
)
from processor import markers
from toolkit import aws
from toolkit.durations import parse_duration
from toolkit.errors import StackNotFound, UsageError, aws_message
from toolkit.function import FunctionConfigError, load_deployment
from toolkit.interrupts import CtrlCStops
from toolkit.options import add_rate, positive, whole
from toolkit.stack import Output
from toolkit.throughput import RateLimiter, rate_text

_AWS_OPTIONS = (("--stack-name", "stack_name"), ("--endpoint-url", "endpoint_url"), ("--region", "region"))
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def parse_since(raw: str, now: datetime | None = None) -> datetime:
    """``7d``, ``12h``, ``30m``, ``90s``, ``2w`` ago, or an ISO-8601 date/time (naive means UTC);
    floored to the second, since S3's ``LastModified`` has one-second precision."""
    now = now or datetime.now(UTC)
    try:
        when = now - timedelta(seconds=parse_duration(raw))
    except ValueError:
        try:
            when = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{raw!r} is neither an ISO-8601 date/time nor a duration like 7d, 12h, 30m"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).replace(microsecond=0)


def parse_suffixes(raw: str) -> tuple[str, ...]:
    suffixes = tuple(dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip()))
    if not suffixes:
        raise argparse.ArgumentTypeError("give at least one suffix, e.g. .jpg,.png")
    return suffixes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Enqueue S3-event-shaped messages for source objects that already exist, so that the\n"
        "function renders them: a streaming listing, filters, a rate limit, resumable."
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Messages look exactly like S3's ObjectCreated:Put records (one per message), with\n"
        '"imgprocBackfill": true. Keys are listed in order (or read from an S3 Inventory report\n'
        "with --from-inventory); the summary's last_key is the checkpoint: it and every key\n"
        "before it were enqueued, skipped or filtered out. Batches of 10 are sent --concurrency\n"
        "at a time. Ctrl-C stops after the batches in flight and prints the resume command.\n"
        "\n"
        "Exit status: 0 all matching keys enqueued; 1 some could not be sent (listed; resume\n"
        "from the checkpoint to retry them), or the stack, AWS or credentials failed; 2 bad\n"
        "options (or an inventory report that cannot be used); 130 interrupted."
    )
    aws.add_arguments(parser)
    parser.add_argument(
        "--prefix",
        help="only keys under PREFIX, which must lie within the function's SOURCE_PREFIX "
        "(default: SOURCE_PREFIX itself)",
    )
    parser.add_argument(
        "--since",
        type=parse_since,
        metavar="WHEN",
        help="only objects last modified at or after WHEN: an ISO-8601 date/time (UTC unless it "
        "says otherwise) or a duration ago such as 7d, 12h, 30m",
    )
    parser.add_argument(
        "--suffix",
        type=parse_suffixes,
        metavar="LIST",
        help="only keys ending in one of these comma-separated suffixes, case-insensitive (e.g. .jpg,.png)",
    )
    parser.add_argument(
        "--skip-current",
        action="store_true",
        help="HEAD each key's renditions first and enqueue only keys with a missing or stale one",
    )
    parser.add_argument("--dry-run", action="store_true", help="list, filter and check, but send nothing")
    add_rate(parser)
    parser.add_argument(
        "--max-backlog",
        type=positive(int),
        metavar="N",
        help="hold the sends back while the ingest queue has N or more messages waiting, so the "
        "backfill stays about N messages ahead of the function and fresh uploads are not queued behind "
        "it (default: no limit)",
    )
    parser.add_argument(
        "--start-after",
        metavar="KEY",
        help="resume: list only keys after KEY (the last_key a previous run printed; with "
        "--from-inventory the DATA_FILE:LINE checkpoint it printed)",
    )
    parser.add_argument(
        "--from-inventory",
        metavar="MANIFEST",
        help="read the keys from an S3 Inventory report (CSV) instead of listing the bucket: "
        "s3://BUCKET/PATH/manifest.json, or a key in the source bucket (not a local file); for buckets "
        "of millions of keys",
    )
    parser.add_argument(
        "--concurrency",
        type=whole(1, MAX_CONCURRENCY),
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"SendMessageBatch requests in flight at once, 10 keys each (default {DEFAULT_CONCURRENCY}, "
        f"at most {MAX_CONCURRENCY}); --skip-current HEADs 4N renditions at once "
        f"(at most {MAX_HEAD_THREADS})",
    )
    parser.add_argument(
        "--max-keys",
        type=positive(int),
        metavar="N",
        help="stop after N listed keys and print the resume command (a trial run, or work in slices)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        target, prefix = _resolve(args)
        manifest = _manifest(args, target)
    except (UsageError, inventory.InventoryError) as exc:
        print(f"imgproc backfill: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except (FunctionConfigError, StackNotFound) as exc:  # the stack is wrong, not the command line
        print(f"imgproc backfill: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    options = Options(
        prefix=prefix,
        start_after=args.start_after or None,
        since=args.since,
        suffixes=args.suffix or (),
        skip_current=args.skip_current,
        dry_run=args.dry_run,
        max_keys=args.max_keys,
        max_backlog=args.max_backlog,
        concurrency=args.concurrency,
        inventory=manifest,
    )
    stop = threading.Event()
    job = Backfill(
        s3=aws.client(args, "s3"),
        sqs=aws.client(args, "sqs"),
        target=target,
        options=options,
        limiter=RateLimiter(args.rate, sleep=stop.wait),  # a Ctrl-C cuts a --rate wait short
        stop=stop,
    )
    job.progress = BackfillProgress("backfill", summary=job.summary, backpressure=job.backpressure)
    with CtrlCStops(job.stop, "imgproc backfill: stopping after the batches in flight"):
        try:
            summary = job.run()
        except KeyboardInterrupt:  # a second Ctrl-C: stop at once, the checkpoint is still safe
            summary = job.summary
            summary.stopped = "interrupted"
        except (ClientError, BotoCoreError) as exc:
            summary = job.summary
            summary.stopped, summary.error = "error", aws_message(exc) or str(exc)
        except inventory.IncompleteReport as exc:  # unusable, like a report refused before the run
            summary = job.summary
            summary.stopped, summary.error = "error", str(exc)
            _report(args, target, options, summary, resumable=False)
            return EXIT_USAGE
        except inventory.InventoryError as exc:  # a data file unreadable or not as the manifest says
            summary = job.summary
            summary.stopped, summary.error = "error", str(exc)
    _report(args, target, options, summary)
    if summary.stopped == "interrupted":
        return EXIT_INTERRUPTED
    if summary.failed or summary.stopped in ("send-failures", "error"):
        return EXIT_FAILED
    return EXIT_OK


def _resolve(args: argparse.Namespace) -> tuple[Target, str]:
    """The source bucket, the queue, the function's configuration, and the prefix to list."""
    deployed = load_deployment(
        aws.client(args, "cloudformation"),
        aws.client(args, "lambda"),
        args.stack_name,
        (Output.SOURCE_BUCKET, Output.QUEUE_URL, Output.FUNCTION_NAME),
    )
    outputs, config = deployed.outputs, deployed.config
    prefix = args.prefix if args.prefix is not None else config.source_prefix
    if not prefix.startswith(config.source_prefix):
        raise UsageError(
            f"--prefix {prefix!r} is outside the function's SOURCE_PREFIX {config.source_prefix!r}: "
            "the handler would ignore every key"
        )
    target = Target(
        bucket=outputs.source_bucket, queue_url=outputs.queue_url, region=args.region, config=config
    )
    return target, prefix


def _manifest(args: argparse.Namespace, target: Target) -> inventory.Manifest | None:
    """With --from-inventory: the report's manifest, checked against the stack and the options."""
    if not args.from_inventory:
        return None
    bucket, key = inventory.parse_location(args.from_inventory, target.bucket)
    manifest = inventory.read_manifest(aws.client(args, "s3"), bucket, key)
    if manifest.source_bucket != target.bucket:
        raise UsageError(
            f"{manifest.url} lists bucket {manifest.source_bucket!r}, not the stack's source bucket "
            f"{target.bucket!r}"
        )
    needs = [("--since", args.since, "LastModifiedDate"), ("--skip-current", args.skip_current, "ETag")]
    for option, given, column in needs:
        if given and column not in manifest.columns:
            raise UsageError(f"{option} needs the inventory's {column} column, which {manifest.url} lacks")
    if args.start_after:
        inventory.parse_start(args.start_after, manifest)
    return manifest


def _sh(value: str) -> str:
    """Always single-quoted, so a key is visibly one argument whatever it holds."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def resume_command(args: argparse.Namespace, options: Options, checkpoint: str | None) -> str:
    """The command that continues this run after ``checkpoint`` with the same filters.

    A relative ``--since`` is written as the absolute time it meant, so the resumed run selects the
    same objects.
    """
    defaults = argparse.ArgumentParser(add_help=False)
    aws.add_arguments(defaults)
    default = defaults.parse_args([])
    parts = ["imgproc", "backfill"]
    if checkpoint:
        parts += ["--start-after", _sh(checkpoint)]
    for flag, name in _AWS_OPTIONS:
        value = getattr(args, name)
        if value and value != getattr(default, name):
            parts += [flag, shlex.quote(value)]
    if options.inventory is not None:
        parts += ["--from-inventory", _sh(args.from_inventory)]
    parts += _filter_args(args, options)
    if args.json:
        parts.append("--json")
    return " ".join(parts)


def _filter_args(args: argparse.Namespace, options: Options) -> list[str]:
    """The options of :func:`resume_command` that select and pace the keys."""
    parts: list[str] = []
    if args.prefix is not None:
        parts += ["--prefix", shlex.quote(args.prefix)]
    if options.since is not None:
        parts += ["--since", markers.utc_timestamp(options.since)]
    if options.suffixes:
        parts += ["--suffix", shlex.quote(",".join(options.suffixes))]
    if options.skip_current:
        parts.append("--skip-current")
    if options.dry_run:
        parts.append("--dry-run")
    if args.rate:
        parts += ["--rate", f"{args.rate:g}"]
    if options.max_backlog:
        parts += ["--max-backlog", str(options.max_backlog)]
    if options.concurrency != DEFAULT_CONCURRENCY:
        parts += ["--concurrency", str(options.concurrency)]
    return parts


def _report(
    args: argparse.Namespace, target: Target, options: Options, summary: Summary, *, resumable: bool = True
) -> None:
    """The summary on stdout; on stderr, why the run stopped and the command that resumes it (only
    the error's one line when no run can resume it: ``resumable`` False)."""
    resume = None
    if not resumable:
        print(f"imgproc backfill: {summary.error}", file=sys.stderr, flush=True)
    elif summary.stopped or summary.failed:
        resume = resume_command(args, options, summary.checkpoint)
        if summary.stopped == "interrupted":
            hint = "interrupted"
        elif summary.stopped == "max-keys":
            hint = f"stopped after {summary.listed:,} keys (--max-keys)"
        elif summary.stopped == "error":
            hint = f"stopped by an error ({summary.error})"
        else:
            hint = f"{summary.failed:,} key(s) not enqueued"
            if summary.stopped == "send-failures":
                hint += f"; stopped after {FAILED_BATCHES_ABORT} batches in a row were refused"
        print(f"{hint}; resume with: {resume}", file=sys.stderr, flush=True)
    if args.json:
        doc = {
            "stack": args.stack_name,
            "bucket": target.bucket,
            "prefix": options.prefix,
            "queue_url": target.queue_url,
            "start_after": options.start_after,
            "since": None if options.since is None else markers.utc_timestamp(options.since),
            "suffixes": list(options.suffixes),
            "skip_current": options.skip_current,
            "dry_run": options.dry_run,
            "rate": args.rate,
            "max_keys": options.max_keys,
            "max_backlog": options.max_backlog,
            "concurrency": options.concurrency,
            "inventory": None if options.inventory is None else options.inventory.url,
            "listed": summary.listed,
            "filtered": summary.filtered,
            "current": summary.current,
            "enqueued": summary.enqueued,
            "failed": summary.failed,
            "failures": summary.failures,
            "last_key": summary.last_key,
            "checkpoint": summary.checkpoint,
            "complete": summary.complete,
            "stopped": summary.stopped,
            "error": summary.error,
            "elapsed_seconds": summary.elapsed_seconds,
            "held_back_seconds": summary.held_back_seconds,
            "resume": resume,
        }
        print(json.dumps(doc, ensure_ascii=False), flush=True)
        return
    print(render(target, options, summary), flush=True)


_STATES = {
    "interrupted": "interrupted",
    "max-keys": "stopped at --max-keys",
    "send-failures": "stopped: SQS refused every entry",
    "error": "stopped by an error",
}


def render(target: Target, options: Options, summary: Summary) -> str:
    """The human summary."""
    queue = target.queue_url.rstrip("/").rsplit("/", 1)[-1]
    state = "complete" if summary.complete else _STATES.get(summary.stopped or "", "incomplete")
    source = f"s3://{target.bucket}/{options.prefix}"
    if options.inventory is not None:
        source += f" (inventory {options.inventory.url})"
    title = f"backfill {source} -> {queue}: {state}"
    if options.dry_run:
        title += " (dry run: nothing sent)"
    after = f" after {options.start_after}" if options.start_after else ""
    took = f"{summary.elapsed_seconds:.1f}s{rate_text(summary.listed, summary.elapsed_seconds)}"
    rows = [
        ("listed", summary.listed, f"keys{after} in {took}"),
        ("filtered", summary.filtered, "not matching --since / --suffix, or ignored by the handler"),
    ]
    if options.skip_current:
        rows.append(("current", summary.current, "every rendition up to date: skipped"))
    rows.append(("enqueued", summary.enqueued, "would be enqueued" if options.dry_run else ""))
    rows.append(("failed", summary.failed, "not enqueued, listed below" if summary.failed else ""))
    width = max(len(f"{count:,}") for _, count, _ in rows)
    lines = [title]
    lines += [f"  {name:<9}{count:>{width},}  {note}".rstrip() for name, count, note in rows]
    if options.max_backlog:
        held = summary.held_back_seconds
        lines.append(f"  held back {held:.1f}s in all (--max-backlog {options.max_backlog:,})")
    lines.append(f"  last key {summary.last_key or '(none)'}")
    if options.inventory is not None:
        lines.append(f"  checkpoint {summary.checkpoint or '(start)'}")
    for failure in summary.failures:
        lines.append(f"  failed: {failure['key']}: {failure['error']}")
    if summary.failed > len(summary.failures):
        lines.append(f"  … and {summary.failed - len(summary.failures):,} more")
    return "\n".join(lines)
