"""The AWS reads behind `imgproc explain` and `imgproc enqueue`: every function takes the clients it uses.

What is read here: the source's HEAD (the first of a typed key's candidate source keys that exists),
the DLQ (read without consuming), the catalog item. The stack and the deployed function's
configuration (:func:`toolkit.function.load_deployment`) and the renditions' HEADs
(:func:`toolkit.renditions.observe_renditions`) are read as every operator command reads them.
Nothing here decides anything: :mod:`explainer.verdict` does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dlq_replayer.scan import PEEK_VISIBILITY, Scanner, queue_depth, scan_warnings
from explainer.keys import KeyInput
from processor import catalog, storage
from processor.storage import SourceHead
from toolkit import dead_letters
from toolkit.dead_letters import DeadLetter
from toolkit.interrupts import CtrlCStops

MAX_DLQ_SCAN = 10_000  # messages read at most: a DLQ deeper than that is sampled, and the output says so


def pick_source(s3: Any, bucket: str, given: KeyInput) -> tuple[str, SourceHead | None]:
    """The first of ``given``'s candidate source keys that exists, with its HEAD; else the first one."""
    for key in given.candidates:
        head = storage.head_source(s3, bucket, key)
        if head is not None:
            return key, head
    return given.source_key, None


@dataclass
class DlqScan:
    """The dead letters naming each key asked about, and how much of the DLQ was seen."""

    by_key: dict[str, list[DeadLetter]] = field(default_factory=dict)
    scanned: int = 0
    depth: int = 0  # visible messages when the scan started
    complete: bool = True  # False: stopped at MAX_DLQ_SCAN
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"scanned": self.scanned, "depth": self.depth, "complete": self.complete}


def scan_dead_letters(sqs: Any, dlq_url: str, keys: Iterable[str], *, limit: int = MAX_DLQ_SCAN) -> DlqScan:
    """The DLQ messages naming any of ``keys``, read without consuming any message.

    Each receive hides its messages for :data:`~dlq_replayer.scan.PEEK_VISIBILITY` seconds and every
    one is made visible again at once (``ChangeMessageVisibility`` 0); SQS then hands some out again,
    and those repeats are held by the scanner until the scan ends (that is how a scan of a queue ends
    at all, see :class:`dlq_replayer.scan.Scanner`) and released then, also on errors and Ctrl-C.
    """
    wanted = set(keys)
    depth = queue_depth(sqs, dlq_url)
    result = DlqScan(by_key={key: [] for key in wanted}, depth=depth.visible)
    stop = threading.Event()
    scanner = Scanner(sqs, dlq_url, visibility=PEEK_VISIBILITY, stop=stop)
    # Ctrl-C stops between receives, never inside one (the messages it hid could not be released):
    # the scan raises KeyboardInterrupt at that safe point, and ``close`` releases every message.
    with CtrlCStops(stop, "imgproc explain: stopping after the receive in flight"):
        try:
            for batch in scanner.rounds():
                result.scanned += len(batch)
                for message in batch:
                    summary = dead_letters.summary(message)
                    for key in dict.fromkeys(summary["keys"]):
                        if key in wanted:
                            result.by_key[key].append(DeadLetter.from_summary(summary))
                scanner.release(batch)
                if result.scanned >= limit:
                    result.complete = False
                    break
        finally:
            scanner.close()
    result.warnings = scan_warnings(depth, scanner.release_failures, PEEK_VISIBILITY)
    if not result.complete:
        result.warnings.append(f"read the first {result.scanned:,} of ~{depth.visible:,} DLQ messages only")
    return result


def catalog_item(dynamodb: Any, table: str, key: str) -> dict[str, Any] | None:
    """The catalog item of ``key`` as plain JSON values (DynamoDB numbers as int or float), or None."""
    return catalog.get(dynamodb, table, key)  # decoded already: numbers as int
