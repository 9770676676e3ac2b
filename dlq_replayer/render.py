"""The human output of `imgproc dlq inspect | replay | purge`: the summaries printed without ``--json``.

What the reports hold is decided in :mod:`dlq_replayer.census` and :mod:`dlq_replayer.moves`; this
module only lays them out (tables, clipped keys and messages, ages), so the command line
(:mod:`dlq_replayer.dlq`) reads as options and exit codes. The layouts are lines and
:class:`~toolkit.terminal.Table` objects: rich draws them on a terminal, plain text elsewhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from dlq_replayer import census, follow, moves
from dlq_replayer.outcomes import Outcome
from toolkit.durations import format_age, format_duration
from toolkit.tables import clip
from toolkit.terminal import Block, Table

TOP_PREFIXES = 10  # key prefixes shown in the human output (--json has them all)


def _keys_cell(keys: Sequence[str]) -> str:
    if not keys:
        return "-"
    return clip(keys[0], 48) + (f" (+{len(keys) - 1})" if len(keys) > 1 else "")


def _by_class(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.most_common())


def render_inspect(report: census.InspectReport, visibility: int) -> list[Block]:
    depth = report.depth
    lines: list[Block] = [
        f"DLQ {report.queue}: {depth.visible} visible, {depth.in_flight} in flight at start"
    ]
    read = f"read {report.scanned}"
    if not report.filters.empty:
        read += f", {report.matched} matching {report.filters.describe()}"
    if report.stopped_at_max:
        read += " (stopped at --max)"
    if report.interrupted:
        read += " (interrupted)"
    if report.matched:
        read += f" ({report.distinct_keys} distinct key{'' if report.distinct_keys == 1 else 's'})"
    lines.append(f"{read}; released {report.released}")
    if report.matched:
        lines += _inspect_details(report)
    lines += [f"warning: {w}" for w in report.warnings(visibility)]
    return lines


def _inspect_details(report: census.InspectReport) -> list[Block]:
    lines: list[Block] = []
    for label, summary in (("oldest", report.oldest), ("newest", report.newest)):
        if summary is not None:
            when = f"{summary['sent_at'][:19]}Z  {format_age(summary['age_seconds'])} ago"
            line = f"{label}  {when}  {_keys_cell(summary['keys'])}"
            if label == "oldest" and report.expires_in_seconds is not None:
                line += f"  (SQS drops it in {format_age(report.expires_in_seconds)})"
            lines.append(line)
    prefixes = [(p or "(top level)", n) for p, n in report.by_key_prefix.most_common(TOP_PREFIXES)]
    classes = [
        [name, str(count), str(len(report.keys_by_error_class.get(name, ())))]
        for name, count in report.by_error_class.most_common()
    ]
    lines.append("")
    lines.append(Table(["error class", "messages", "keys"], classes, right=(1, 2)))
    sections = [
        ("key prefix", prefixes),
        ("age", [(label, report.by_age[label]) for label in census.AGE_LABELS if report.by_age[label]]),
        ("replay count", [(str(n), report.by_replay_count[n]) for n in sorted(report.by_replay_count)]),
    ]
    for title, rows in sections:
        lines.append("")
        lines.append(Table([title, "messages"], [[name, str(count)] for name, count in rows], right=(1,)))
        if title == "key prefix" and len(report.by_key_prefix) > TOP_PREFIXES:
            lines.append(f"... {len(report.by_key_prefix) - TOP_PREFIXES} more (--json lists them all)")
    rows = [
        [
            s["error_class"],
            _keys_cell(s["keys"]),
            str(s["replay_count"]),
            clip(s["error_message"] or "-", 60),
        ]
        for group in report.samples.values()
        for s in group
    ]
    if rows:
        lines += ["", "samples"]
        headers = ["error class", "key", "replays", "error message"]
        lines.append(Table(headers, rows, right=(2,), indent=2))
    return lines


def _listing(title: str, listing: moves.Listing) -> list[str]:
    if not listing.count:
        return []
    lines = [f"{title}:"]
    for item in listing.items:
        cells = [item["message_id"], item["error_class"], _keys_cell(item["keys"]), clip(item["reason"], 80)]
        lines.append("  " + "  ".join(cells))
    if listing.count > len(listing.items):
        lines.append(f"  ... and {listing.count - len(listing.items)} more")
    return lines


def _left_for_the_next_run(report: moves.MoveReport) -> list[str]:
    """One line whatever the reason: the operator's question is what is still there, and why."""
    why = []
    if report.arrived_during_run:
        why.append(f"{report.arrived_during_run} arrived during the run")
    if report.repeated:
        why.append(f"{report.repeated} repeat a failure this run already replayed (its replay failed again)")
    left = report.arrived_during_run + report.repeated
    return [f"left {left} message(s) on the DLQ for the next run: {'; '.join(why)}"] if left else []


def render_move(report: moves.MoveReport, visibility: int) -> list[Block]:
    verb = {"replay": "replayed", "purge": "purged"}[report.action]
    if report.action == "replay":
        head = f"replay {report.queue} -> {str(report.destination).rsplit('/', 1)[-1]}"
    else:
        head = f"purge {report.queue}, archive {report.archive or 'none'}"
    scanned = f"scanned {report.scanned}: {report.matched} matched, {report.skipped} did not (released)"
    if report.stopped_at_max:
        scanned += f"; stopped at --max {report.limit}"
    lines: list[Block] = [f"{head}; filters: {report.filters.describe()}", scanned]
    moved = f"dry run: would have {verb} {report.moved}" if report.dry_run else f"{verb} {report.moved}"
    if report.moved:
        moved += f" ({_by_class(report.moved_by_error_class)})"
    if report.refused.count:
        moved += f", refused {report.refused.count}"
    if report.capped.count:
        moved += (
            f", capped {report.capped.count} (replay-count >= {report.max_replays}; --force replays them)"
        )
    if report.archived:
        moved += f"; {report.archived} archived to {report.archive}"
    lines.append(moved)
    if report.dry_run:
        lines += _dry_run_samples(report)
    lines += _listing("refused, still on the DLQ", report.refused)
    lines += _listing("capped, still on the DLQ", report.capped)
    lines += _listing(f"{verb} but not deleted, still on the DLQ (a duplicate, harmless)", report.not_deleted)
    lines += _left_for_the_next_run(report)
    if report.interrupted:
        lines.append("interrupted: the summary covers what was done until then")
    if report.error:
        lines.append(f"stopped by an error: {report.error}")
    lines += [f"warning: {w}" for w in report.warnings(visibility)]
    return lines


def _dry_run_samples(report: moves.MoveReport) -> list[Block]:
    rows = [
        [s["message_id"], s["error_class"], _keys_cell(s["keys"]), str(s["replay_count"])]
        for s in report.samples
    ]
    lines: list[Block] = []
    if rows:
        lines.append(Table(["message id", "error class", "key", "replays"], rows, right=(3,), indent=2))
        if report.moved > len(rows):
            lines.append(f"  ... and {report.moved - len(rows)} more")
    return [*lines, "nothing was changed"]


# ---------------------------------------------------------------------------------------------------
# replay --follow

_OUTCOME_LABELS = {
    Outcome.RENDERED: "rendered",
    Outcome.FAILED_AGAIN: "failed again",
    Outcome.IGNORED: "ignored",
    Outcome.SOURCE_GONE: "source gone",
    Outcome.PENDING: "still pending",
}


def _tally_table(report: follow.FollowReport) -> Table:
    tally = report.tally()
    rows = [[label, str(tally[outcome])] for outcome, label in _OUTCOME_LABELS.items()]
    return Table(["outcome", "keys"], rows, right=(1,), indent=2)


def _clock(report: follow.FollowReport) -> str:
    return f"{format_age(report.elapsed)} of {format_duration(report.timeout)}"


def follow_line(report: follow.FollowReport) -> str:
    """The tally in one line: what a log or a pipe gets while following."""
    tally = report.tally()
    counts = ", ".join(f"{label} {tally[outcome]}" for outcome, label in _OUTCOME_LABELS.items())
    return f"follow {_clock(report)}: {counts}"


def follow_live(report: follow.FollowReport) -> list[Block]:
    """The tally redrawn in place on a terminal while following."""
    return [f"following {len(report.items)} replayed key(s): {_clock(report)}", _tally_table(report)]


def _item_name(item: follow.Item) -> str:
    return item.key if item.key is not None else f"(no key: message {min(item.failure_ids)})"


def _outcome_listing(
    title: str, items: Sequence[follow.Item], block: Callable[[list[follow.Item]], list[Block]]
) -> list[Block]:
    """``title:`` and the first :data:`follow.LISTED` items laid out by ``block``; nothing without items."""
    if not items:
        return []
    lines = [f"{title}:", *block(list(items[: follow.LISTED]))]
    if len(items) > follow.LISTED:
        lines.append(f"  ... and {len(items) - follow.LISTED} more (--json lists them all)")
    return lines


def _failed_lines(items: list[follow.Item]) -> list[Block]:
    """One line a key, not a table: a terminal narrower than key and message wraps it, never cuts it."""
    return [
        f"  {_item_name(i)}  {i.verdict.error_class or '-'}: {clip(i.verdict.error_message or '-', 100)}"
        for i in items
    ]


def _claim(item: follow.Item) -> str:
    """Why a pending key may never render: another source key holds its rendition key."""
    other = item.verdict.claimed_by
    if other is None:
        return ""
    return f"  (its rendition is claimed by {other}: a name collision, see imgproc explain)"


def render_follow(report: follow.FollowReport | None, why_not: str | None = None) -> list[Block]:
    """The follow's summary: the tally, the keys that failed again with their class, those ignored
    and those still pending."""
    if report is None:
        return [f"not followed: {why_not}"] if why_not else []
    lines: list[Block] = [
        f"follow: {len(report.items)} replayed key(s), {format_age(report.elapsed)} "
        f"(--follow-timeout {format_duration(report.timeout)}), {report.rounds} round(s)",
        _tally_table(report),
    ]
    when = "at the deadline" if report.timed_out else "when the follow stopped"
    lines += _outcome_listing(
        "failed again (back on the DLQ)", report.with_outcome(Outcome.FAILED_AGAIN), _failed_lines
    )
    lines += _outcome_listing(
        "ignored by the handler (it acknowledges such records and renders nothing)",
        report.with_outcome(Outcome.IGNORED),
        lambda items: [f"  {_item_name(i)}  ({i.verdict.ignored})" for i in items],
    )
    lines += _outcome_listing(
        f"still pending {when} (queued, in flight or being retried)",
        report.with_outcome(Outcome.PENDING),
        lambda items: [f"  {_item_name(i)}{_claim(i)}" for i in items],
    )
    if report.interrupted:
        lines.append("interrupted: the tally covers what was known until then")
    if report.error:
        lines.append(f"follow stopped by an error: {report.error}")
    return lines
