"""What `imgproc explain` prints: one screen per key (a rich table on a terminal, plain lines elsewhere,
see :mod:`toolkit.terminal`) and the ``--json`` document."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from explainer.handler_logs import HandlerLogs, describe_line
from explainer.probe import DlqScan
from explainer.verdict import Explanation, RenditionReport, RenditionState
from processor import markers
from processor.storage import SourceHead
from toolkit.tables import clip
from toolkit.terminal import Block

_MESSAGE_WIDTH = 70
_CATALOG_FIELDS = ("status", "source_etag", "error_class", "processed_at")


def source_json(bucket: str, key: str, head: SourceHead | None) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "key": key,
        "exists": head is not None,
        "size": None if head is None else head.size,
        "etag": None if head is None else head.etag,
        "last_modified": None
        if head is None or head.last_modified is None
        else markers.utc_timestamp(head.last_modified),
        "content_type": None if head is None else head.content_type,
    }


def rendition_json(report: RenditionReport) -> dict[str, Any]:
    return {
        "size": report.size,
        "key": report.key,
        "state": report.state.value,
        "exists": report.markers is not None,
        "markers": report.markers,
        "made_from_etag": report.made_from_etag,
        "recipe": report.recipe,
        "expected_recipe": report.expected_recipe,
        "recipe_current": report.recipe_current,
        "reason": report.reason or None,
        "leftovers": list(report.leftovers),
        "claimed_by": report.claimed_by,
    }


@dataclass(frozen=True)
class KeyReport:
    """Everything `explain` learned about one key."""

    given: str  # as the operator typed it
    explanation: Explanation
    bucket: str  # the source bucket
    dlq: DlqScan
    catalog_table: str | None
    logs: HandlerLogs

    @property
    def healthy(self) -> bool:
        return self.explanation.verdict.healthy


def to_json(report: KeyReport) -> dict[str, Any]:
    given, explanation, bucket, dlq = report.given, report.explanation, report.bucket, report.dlq
    catalog_table, logs = report.catalog_table, report.logs
    verdict = explanation.verdict
    return {
        "given": given,
        "source_key": explanation.source_key,
        "source": source_json(bucket, explanation.source_key, explanation.source),
        "renditions": [rendition_json(r) for r in explanation.renditions],
        "dead_letters": [asdict(d) for d in explanation.dead_letters],
        "dlq": dlq.to_json(),
        "catalog": {"table": catalog_table, "item": explanation.catalog} if catalog_table else None,
        "logs": logs.to_json(),
        "verdict": {
            "state": verdict.state.value,
            "healthy": verdict.healthy,
            "summary": verdict.summary,
            "fix": verdict.fix,
        },
        "notes": explanation.notes,
    }


def blocks(report: KeyReport) -> list[Block]:
    """The human screen of one key."""
    given, explanation, bucket, dlq = report.given, report.explanation, report.bucket, report.dlq
    catalog_table, logs = report.catalog_table, report.logs
    key = explanation.source_key
    out: list[Block] = [f"{key}" + (f"  (from {given})" if given != key else "")]
    out.append(_source_line(bucket, key, explanation.source))
    out.append("renditions")
    for rendition in explanation.renditions:
        out += _rendition_lines(rendition)
    out += _dead_letter_blocks(explanation, dlq)
    if catalog_table:
        out.append(f"catalog ({catalog_table}): {_catalog_text(explanation.catalog)}")
    out += _log_blocks(logs)
    out += [f"note: {note}" for note in explanation.notes]
    verdict = explanation.verdict
    line = f"verdict: {verdict.state.value}: {verdict.summary}"
    out.append(line + (f"; fix: {verdict.fix}" if verdict.fix else ""))
    return out


def _source_line(bucket: str, key: str, head: SourceHead | None) -> str:
    if head is None:
        return f"source s3://{bucket}/{key}: does not exist"
    modified = "?" if head.last_modified is None else markers.utc_timestamp(head.last_modified)
    return (
        f"source s3://{bucket}/{key}: {head.size:,} bytes, {head.content_type or 'no content type'}, "
        f"ETag {head.etag}, modified {modified}"
    )


def _rendition_lines(report: RenditionReport) -> list[str]:
    """Two lines a rendition (a table of ETags, digests and keys is wider than most terminals)."""
    head = f"  {report.size:<9} {report.state.value:<8} {report.key}"
    if report.state is RenditionState.MISSING:
        return [head]
    if report.state is RenditionState.NONE:
        return [f"{head}  (source gone)"]
    processed = (report.markers or {}).get(markers.PROCESSED_AT, "?")
    if report.reason:  # stale: what differs, and the other half is as it should be; claimed: by whom
        return [head, f"{'':<21}{report.reason}; processed {processed}"]
    recipe = f"recipe {report.recipe} (today's)" if report.recipe_current else f"recipe {report.recipe}"
    return [
        head,
        f"{'':<21}made from ETag {report.made_from_etag or 'unknown'}, {recipe}, processed {processed}",
    ]


def _dead_letter_blocks(explanation: Explanation, dlq: DlqScan) -> list[Block]:
    seen = f"read {dlq.scanned:,} message(s), released at once" + ("" if dlq.complete else ", stopped early")
    if not explanation.dead_letters:
        return [f"dead letters: none name this key ({seen})"]
    out: list[Block] = [f"dead letters: {len(explanation.dead_letters)} name this key ({seen})"]
    for letter in explanation.dead_letters:
        when, replays = letter.when or "?", letter.replay_count
        out.append(f"  {when}  {letter.error_class}  replays {replays}  message {letter.message_id}")
        out.append(f"    {clip(letter.error_message or '-', _MESSAGE_WIDTH)}")
    return out


def _catalog_text(item: Mapping[str, Any] | None) -> str:
    if item is None:
        return "no item"
    parts = [f"{name} {item[name]}" for name in _CATALOG_FIELDS if item.get(name) not in (None, "")]
    renditions = item.get("renditions")
    if isinstance(renditions, list):
        parts.append(f"{len(renditions)} rendition(s)")
    return ", ".join(parts) or "an item without the usual fields"


def _log_blocks(logs: HandlerLogs) -> list[Block]:
    if logs.origin == "query":
        title = f"handler logs: run this Logs Insights query over {logs.where} (or pass --logs):"
        return [title, *(f"  {line}" for line in (logs.query or "").splitlines())]
    where = "local run" if logs.origin == "local" else "Logs Insights"
    out: list[Block] = [
        f"handler logs ({where}, {logs.where}): last {len(logs.lines)} line(s) about this key"
    ]
    if logs.warning:
        out.append(f"  warning: {logs.warning}")
    out += [f"  {describe_line(doc)}" for doc in logs.lines]
    if logs.note:
        out.append(f"  {logs.note}")
    return out
