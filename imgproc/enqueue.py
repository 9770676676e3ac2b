"""`imgproc enqueue KEY...`: put one synthetic S3 event per key on the ingest queue, so that the handler
reconciles those keys again (the fix `imgproc explain` proposes for missing, stale or orphaned
renditions). The messages are the backfill's (:mod:`explainer.enqueue`)."""

from __future__ import annotations

import argparse
import json
import sys

from explainer import probe
from explainer.enqueue import Item, enqueue
from imgproc.explain import target_and_keys
from toolkit import aws
from toolkit.stack import Output

EXIT_OK, EXIT_FAILED = 0, 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Put one synthetic S3 event per key on the ingest queue (the message imgproc backfill sends),\n"
        "so that the function reconciles each key again: renders what is missing or stale, deletes\n"
        "the renditions of a source that is gone."
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "KEY: a source key, an s3://BUCKET/KEY URL, or a rendition key (mapped to its source), as\n"
        "S3 stores it (not URL-encoded).\n"
        "\n"
        "Exit status: 0 every key enqueued; 1 some could not be (listed), or the stack, AWS or\n"
        "credentials failed; 2 bad options or a KEY that is neither a source nor a rendition key;\n"
        "130 interrupted."
    )
    aws.add_arguments(parser)
    parser.add_argument("keys", nargs="+", metavar="KEY", help="the key(s) to enqueue")


def run(args: argparse.Namespace) -> int:
    resolved = target_and_keys(args, Output.QUEUE_URL)
    if resolved is None:
        return EXIT_FAILED
    target, inputs = resolved
    s3 = aws.client(args, "s3")
    items = list(
        {
            key: Item(key, head)
            for key, head in (probe.pick_source(s3, target.source_bucket, i) for i in inputs)
        }.values()
    )
    queue_url = target.outputs.queue_url
    result = enqueue(
        aws.client(args, "sqs"), queue_url, items, bucket=target.source_bucket, region=args.region
    )
    if args.json:
        doc = {
            "stack": args.stack_name,
            "queue_url": queue_url,
            "enqueued": [
                {"key": i.key, "source_exists": i.source is not None, "etag": i.source and i.source.etag}
                for i in result.enqueued
            ],
            "failed": [{"key": i.key, "error": reason} for i, reason in result.failed],
        }
        print(json.dumps(doc, ensure_ascii=False), flush=True)
    else:
        queue = target.outputs.queue_name
        print(f"enqueued {len(result.enqueued)} of {len(items)} key(s) on {queue}", flush=True)
        for item in result.enqueued:
            what = f"ETag {item.source.etag}" if item.source else "no source: its renditions will be deleted"
            print(f"  {item.key} ({what})", flush=True)
        for item, reason in result.failed:
            print(f"imgproc enqueue: {item.key}: not enqueued: {reason}", file=sys.stderr, flush=True)
    return EXIT_FAILED if result.failed else EXIT_OK
