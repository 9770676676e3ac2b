"""`imgproc demo`: `imgproc up`, sample uploads, a wait, and what came out, as text or ``--json``.

The samples (:mod:`imgproc.samples`) cover a landscape and a portrait photo, an EXIF-rotated one, a
transparent PNG and a corrupt file: every rendition must appear with the current ETag in its marker,
and the corrupt file must be on the DLQ with its class. The exit status says whether all of it did.
What is checked is gathered first into a :class:`DemoReport`; printing it is separate, so that the
text and the JSON always say the same thing.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from PIL import Image

from imgproc import local, samples
from imgproc.counters import counters_line, serve_until_interrupted
from processor import catalog, markers, storage
from processor.config import Config
from processor.renditions import plan_renditions
from toolkit import dead_letters, queues
from toolkit.function import load_function
from toolkit.options import positive

# `imgproc demo --with-extras`: the optional features on (-p overrides still win).
EXTRAS_PARAMETERS = {
    "EnableCatalog": "true",
    "EnableNotifications": "true",
    "WatermarkText": "(c) imgproc demo",
}


@dataclass
class Rendition:
    source_key: str
    key: str
    width: int | None = None  # None: missing
    height: int | None = None
    bytes: int = 0


@dataclass
class DemoReport:
    """What the demo found; ``ok`` when everything expected is there."""

    endpoint_url: str
    outputs: dict[str, str]
    renditions: list[Rendition] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)  # keys, error_class, error_message
    watermark: str | None = None
    catalog_table: str | None = None
    notify_topic_arn: str | None = None
    catalog: list[dict[str, Any]] | None = None  # None: the catalog is off
    notifications: list[dict[str, Any]] | None = None  # None: notifications are off
    counters: dict[str, int] = field(default_factory=dict)
    with_extras: bool = False
    ok: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def expected_renditions(config: Config, key: str) -> list[str]:
    """The rendition keys of ``key`` (the first candidate: demo samples name web formats)."""
    return [plan.candidates[0].key for plan in plan_renditions(config, key)]


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    local.progress(f"timed out after {timeout:.0f} s waiting for {what}")
    return False


def demonstrate(runtime: local.LocalRuntime, *, timeout: float, with_extras: bool = False) -> DemoReport:
    """Upload the samples, wait for their renditions and the DLQ entry, and report what came out.

    ``with_extras``: also the watermark settings, the catalog items and the notifications (an SQS
    queue is subscribed to the topic before anything is uploaded).
    """
    s3, sqs = runtime.client("s3"), runtime.client("sqs")
    out = runtime.stack
    config = Config.from_env(load_function(runtime.client("lambda"), out.function_name).environment)
    report = DemoReport(runtime.endpoint_url, dict(out.values), with_extras=with_extras)
    inbox = _subscribe_inbox(runtime, config) if with_extras else None
    uploads: dict[str, tuple[samples.Sample, str]] = {}
    for sample in samples.demo_samples():
        key = f"{config.source_prefix}demo/{sample.name}"
        etag = markers.strip_quotes(
            s3.put_object(Bucket=out.source_bucket, Key=key, Body=sample.data)["ETag"]
        )
        uploads[key] = (sample, etag)
        local.progress(f"uploaded s3://{out.source_bucket}/{key} ({len(sample.data):,} bytes)")
    expected = {
        key: expected_renditions(config, key)
        for key, (sample, _) in uploads.items()
        if not sample.error_class
    }

    def current(key: str, etag: str) -> bool:
        metadata = storage.head_metadata(s3, out.destination_bucket, key) or {}
        return metadata.get(markers.SOURCE_ETAG) == etag

    def rendered() -> bool:
        return all(current(r, uploads[key][1]) for key, keys in expected.items() for r in keys)

    def dead_lettered() -> bool:
        dead = sum(1 for sample, _ in uploads.values() if sample.error_class)
        return queues.visible_messages(sqs, out.dlq_url) >= dead

    report.ok = wait_for(rendered, timeout, "renditions") & wait_for(dead_lettered, timeout, "the DLQ entry")
    for key, keys in expected.items():
        for rendition in keys:
            found = storage.get_rendition(s3, out.destination_bucket, rendition)
            if found is None:
                report.renditions.append(Rendition(key, rendition))
                report.ok = False
                continue
            width, height = Image.open(io.BytesIO(found)).size
            report.renditions.append(Rendition(key, rendition, width, height, len(found)))
    report.ok &= _dead_letters(report, sqs, out.dlq_url, uploads)
    if with_extras:
        report.ok &= _extras(report, runtime, config, inbox=inbox, uploads=uploads, timeout=timeout)
    runtime.update_totals()
    report.counters = dict(runtime.totals)
    return report


def _dead_letters(
    report: DemoReport, sqs: Any, dlq_url: str, uploads: dict[str, tuple[samples.Sample, str]]
) -> bool:
    """The DLQ entries (read without consuming them); True when each poison sample has its class."""
    found = {}
    for message in dead_letters.peek(sqs, dlq_url):
        keys, error_class = dead_letters.source_keys(message["Body"]), dead_letters.error_class(message)
        found.update(dict.fromkeys(keys, error_class))
        reason = dead_letters.attribute(message, dead_letters.ERROR_MESSAGE) or ""
        report.dead_letters.append({"keys": keys, "error_class": error_class, "error_message": reason})
    return all(
        found.get(key) == sample.error_class for key, (sample, _) in uploads.items() if sample.error_class
    )


def _subscribe_inbox(runtime: local.LocalRuntime, config: Config) -> str | None:
    """An SQS queue subscribed to the notification topic (raw delivery, attributes kept); its URL."""
    if not config.notify_topic_arn:
        local.progress("demo: the stack has no notification topic (EnableNotifications=false)")
        return None
    sqs = runtime.client("sqs")
    url = sqs.create_queue(QueueName="imgproc-demo-notifications")["QueueUrl"]
    arn = queues.queue_arn(sqs, url)
    runtime.client("sns").subscribe(
        TopicArn=config.notify_topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    local.progress(f"subscribed {url} to {config.notify_topic_arn}")
    return url


def _extras(
    report: DemoReport,
    runtime: local.LocalRuntime,
    config: Config,
    *,
    inbox: str | None,
    uploads: dict[str, tuple[samples.Sample, str]],
    timeout: float,
) -> bool:
    """The watermark settings, the catalog items and the notifications; True when there is one item
    and one notification per upload."""
    mark = config.watermark
    report.watermark = (
        f"{mark.text!r} {mark.position.value}, opacity {mark.opacity}, on renditions whose shorter side "
        f"is >= {mark.min_size} px"
        if mark
        else None
    )
    report.catalog_table, report.notify_topic_arn = config.catalog_table, config.notify_topic_arn
    ok = True
    if config.catalog_table:
        table, dynamodb = config.catalog_table, runtime.client("dynamodb")

        def items() -> dict[str, dict[str, Any]]:
            found = {}
            for key in uploads:
                item = catalog.get(dynamodb, table, key)
                if item is not None and item.get("source_etag") == uploads[key][1]:
                    found[key] = item
            return found

        ok &= wait_for(lambda: len(items()) == len(uploads), timeout, "the catalog items")
        report.catalog = [item for _, item in sorted(items().items())]
    if inbox is not None:
        sqs = runtime.client("sqs")
        received: dict[str, dict[str, Any]] = {}

        def notifications() -> bool:
            for message in sqs.receive_message(
                QueueUrl=inbox, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", []):
                received[message["MessageId"]] = message
                sqs.delete_message(QueueUrl=inbox, ReceiptHandle=message["ReceiptHandle"])
            keys = {json.loads(m["Body"]).get("source_key") for m in received.values()}
            return keys >= set(uploads)

        ok &= wait_for(notifications, timeout, "the notifications")
        report.notifications = sorted(
            (
                {
                    "body": json.loads(m["Body"]),
                    "attributes": {
                        k: v.get("StringValue", "") for k, v in m.get("MessageAttributes", {}).items()
                    },
                }
                for m in received.values()
            ),
            key=lambda n: str(n["body"].get("source_key", "")),
        )
    return ok


# ---------------------------------------------------------------------------------------------------
# text


def render(report: DemoReport) -> str:
    lines = [f"\n{'source':34} {'rendition':44} {'size':>9} {'bytes':>8}"]
    for r in report.renditions:
        if r.width is None:
            lines.append(f"{r.source_key:34} {r.key:44} {'missing':>9}")
        else:
            lines.append(f"{r.source_key:34} {r.key:44} {f'{r.width}x{r.height}':>9} {r.bytes:>8,}")
    lines.append("\ndead-letter queue:")
    for d in report.dead_letters:
        lines.append(f"  {', '.join(d['keys']) or '?':34} {d['error_class']:16} {d['error_message']}")
    if report.with_extras:
        lines += _render_extras(report)
    lines.append(f"\n{counters_line(report.counters)}")
    what = (
        "all renditions, the DLQ entry, catalog items and notifications"
        if report.with_extras
        else "all renditions and the DLQ entry"
    )
    lines.append(f"demo: {what} are there" if report.ok else "demo: something is missing (see above)")
    return "\n".join(lines)


def _render_extras(report: DemoReport) -> list[str]:
    lines = [f"\nwatermark: {report.watermark or 'none'}"]
    if report.catalog is None:
        lines.append("\ncatalog: off (EnableCatalog=false)")
    else:
        lines.append(f"\ncatalog (DynamoDB table {report.catalog_table}):")
        for item in report.catalog:
            what = (
                f"{item['source_format']} {item['source_width']}x{item['source_height']}"
                if "source_format" in item
                else item.get("error_class", "")
            )
            size = f"{item['source_size']:,} bytes"
            lines.append(
                f"  {item['source_key']:34} {item['status']:14} {what:16} {size:>15}  {item['processed_at']}"
            )
            for r in item["renditions"]:
                dimensions = f"{r['width']}x{r['height']}"
                lines.append(f"      {r['key']:42} {dimensions:>9} {r['bytes']:>8,}")
    if report.notifications is None:
        lines.append("\nnotifications: off (EnableNotifications=false)")
    else:
        lines.append(f"\nnotifications (SNS topic {report.notify_topic_arn}, via SQS):")
        lines.append(f"  {'source':34} {'attributes':44} message")
        for n in report.notifications:
            body = n["body"]
            attrs = " ".join(f"{k}={v}" for k, v in sorted(n["attributes"].items()))
            detail = (
                f"{len(body['renditions'])} renditions"
                if body.get("outcome") == "rendered"
                else body.get("error_message", "")[:60]
            )
            lines.append(f"  {body.get('source_key', '?'):34} {attrs:44} {detail}")
    return lines


# ---------------------------------------------------------------------------------------------------
# command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    local.add_common_arguments(parser)
    parser.add_argument(
        "--timeout", type=positive(float), default=120, help="seconds to wait for results (default 120)"
    )
    parser.add_argument("--keep", action="store_true", help="keep running after the demo, like `imgproc up`")
    parser.add_argument(
        "--with-extras",
        action="store_true",
        help="also enable the DynamoDB catalog, the SNS notifications and a watermark "
        f"({', '.join(f'{k}={v}' for k, v in EXTRAS_PARAMETERS.items())}; -p overrides them), "
        "and show the catalog items and the notifications",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document on stdout")
    parser.epilog = (
        "Exit status: 0 when every rendition and the DLQ entry (with --with-extras: the catalog items and "
        "the notifications) are there; 1 when something is missing or cannot start; 2 for bad options; "
        "130 when interrupted."
    )


def run(args: argparse.Namespace) -> int:
    with_extras = getattr(args, "with_extras", False)

    def body(runtime: local.LocalRuntime) -> int:
        report = demonstrate(runtime, timeout=args.timeout, with_extras=with_extras)
        print(json.dumps(report.to_json()) if args.json else render(report), flush=True)
        if args.keep:

            def announce() -> None:
                if not args.json:
                    local.print_banner(runtime, args.state_dir / "logs")

            if not serve_until_interrupted(runtime, announce=announce):
                local.progress(f"imgproc demo: {runtime.failure}")
                return 1
        return 0 if report.ok else 1

    return local.run_local(args, body, EXTRAS_PARAMETERS if with_extras else None)
