"""What is on the DLQ, in numbers: `imgproc dlq inspect`'s counts, oldest, newest and samples.

Only counters and a few samples per error class are kept, never every body, so a DLQ of many
thousands costs little memory.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dlq_replayer.scan import Depth, Filters, Scanner, rounds_until, scan_warnings
from toolkit import dead_letters
from toolkit.throughput import Progress

AGE_BUCKETS = (
    (3600, "< 1h"),
    (6 * 3600, "1h-6h"),
    (86400, "6h-1d"),
    (3 * 86400, "1d-3d"),
    (7 * 86400, "3d-7d"),
    (math.inf, ">= 7d"),
)
UNKNOWN_AGE = "unknown"
AGE_LABELS = (*(label for _, label in AGE_BUCKETS), UNKNOWN_AGE)
NO_KEY = "(no key)"


def age_bucket(age: float | None) -> str:
    if age is None:
        return UNKNOWN_AGE
    return next(label for limit, label in AGE_BUCKETS if age < limit)


def key_prefix(key: str, depth: int) -> str:
    """The first ``depth`` folders of ``key`` (``original/2026/`` for depth 2); ``""`` at the top level."""
    folders = key.split("/")[:-1][:depth]
    return "/".join(folders) + "/" if folders else ""


@dataclass
class InspectReport:
    queue: str
    url: str
    filters: Filters
    depth: Depth
    scanned: int = 0
    matched: int = 0
    by_error_class: Counter[str] = field(default_factory=Counter)
    # The same failure may sit on the DLQ more than once (at least once delivery): distinct keys say
    # how many sources are affected, beside how many messages. Keys, not bodies: small even for 100k.
    keys_by_error_class: dict[str, set[str]] = field(default_factory=dict)
    by_key_prefix: Counter[str] = field(default_factory=Counter)
    by_age: Counter[str] = field(default_factory=Counter)
    by_replay_count: Counter[int] = field(default_factory=Counter)
    oldest: dict[str, Any] | None = None  # dead_letters.summary() of the oldest matching message
    newest: dict[str, Any] | None = None
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # error class -> summaries
    released: int = 0
    release_failures: list[str] = field(default_factory=list)
    stopped_at_max: bool = False
    interrupted: bool = False

    def add(self, message: Mapping[str, Any], now: datetime, samples: int, prefix_depth: int) -> None:
        summary = dead_letters.summary(message, now)
        self.matched += 1
        self.by_error_class[summary["error_class"]] += 1
        self.keys_by_error_class.setdefault(summary["error_class"], set()).update(summary["keys"])
        self.by_key_prefix.update({key_prefix(key, prefix_depth) for key in summary["keys"]} or {NO_KEY})
        self.by_age[age_bucket(summary["age_seconds"])] += 1
        self.by_replay_count[summary["replay_count"]] += 1
        kept = self.samples.setdefault(summary["error_class"], [])
        if len(kept) < samples:
            kept.append(summary)
        sent = summary["sent_at"]
        if sent is not None:
            if self.oldest is None or sent < self.oldest["sent_at"]:
                self.oldest = summary
            if self.newest is None or sent > self.newest["sent_at"]:
                self.newest = summary

    @property
    def expires_in_seconds(self) -> float | None:
        """Time left before SQS drops the oldest message: retention counts from ``SentTimestamp``, which
        a redrive keeps, so a message that spent days on the ingest queue has that much less here."""
        if self.oldest is None or self.depth.retention_seconds is None:
            return None
        return max(0.0, self.depth.retention_seconds - self.oldest["age_seconds"])

    @property
    def distinct_keys(self) -> int:
        return len(set().union(*self.keys_by_error_class.values()))

    def warnings(self, visibility: int) -> list[str]:
        return scan_warnings(self.depth, self.release_failures, visibility)

    def to_json(self, visibility: int) -> dict[str, Any]:
        oldest = self.oldest and {**self.oldest, "expires_in_seconds": self.expires_in_seconds}
        return {
            "queue": self.queue,
            "url": self.url,
            "filters": self.filters.to_json(),
            "visible_at_start": self.depth.visible,
            "in_flight_at_start": self.depth.in_flight,
            "retention_seconds": self.depth.retention_seconds,
            "scanned": self.scanned,
            "matched": self.matched,
            "released": self.released,
            "stopped_at_max": self.stopped_at_max,
            "interrupted": self.interrupted,
            "by_error_class": dict(self.by_error_class.most_common()),
            "distinct_keys": self.distinct_keys,
            "distinct_keys_by_error_class": {
                name: len(self.keys_by_error_class.get(name, ()))
                for name, _ in self.by_error_class.most_common()
            },
            "by_key_prefix": dict(self.by_key_prefix.most_common()),
            "by_age": {label: self.by_age[label] for label in AGE_LABELS if self.by_age[label]},
            "by_replay_count": {str(n): self.by_replay_count[n] for n in sorted(self.by_replay_count)},
            "oldest": oldest,
            "newest": self.newest,
            "samples": self.samples,
            "warnings": self.warnings(visibility),
        }


def inspect(
    scanner: Scanner,
    report: InspectReport,
    *,
    limit: int | None,
    samples: int,
    prefix_depth: int,
    now: datetime,
    progress: Progress,
) -> None:
    """Fill ``report`` from the queue. Every message read stays hidden until ``scanner`` closes, so
    each is read once; the caller closes it (which releases them all), also on errors."""
    for batch in rounds_until(scanner, limit, lambda: report.matched, all_match=report.filters.empty):
        for message in batch:
            if limit is not None and report.matched >= limit:
                break
            report.scanned += 1
            progress.advance()
            if report.filters.matches(message, now):
                report.add(message, now, samples, prefix_depth)
    report.stopped_at_max = limit is not None and report.matched >= limit
