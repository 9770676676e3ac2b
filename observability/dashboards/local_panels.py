"""What the local view hands to the drawing: one panel per widget of the CloudWatch dashboard (a graph,
the failures table, the alarm tiles), and the queue numbers shown where CloudWatch would graph them.
Plain data, no computation."""

from __future__ import annotations

from dataclasses import dataclass, field

from observability.dashboards.local_logs import Failure
from observability.dashboards.local_metrics import Series, Totals, Window
from observability.dashboards.widgets import DEAD_LETTER_QUEUE, INGEST_QUEUE

QUEUES_UNAVAILABLE = "queues: unavailable"  # the note queue panels carry without a queue snapshot

# States of an alarm tile.
ALARM, OK, NO_DATA, UNAVAILABLE = "ALARM", "OK", "NO DATA", "N/A LOCALLY"

# Queue numbers the SQS widgets show, by (queue, metric) of the widget definitions.
_SQS_FIELDS: dict[tuple[str, str], str] = {
    (INGEST_QUEUE.name, "ApproximateNumberOfMessagesVisible"): "ingest_visible",
    (INGEST_QUEUE.name, "ApproximateNumberOfMessagesNotVisible"): "ingest_in_flight",
    (INGEST_QUEUE.name, "ApproximateAgeOfOldestMessage"): "ingest_oldest_age_seconds",
    (DEAD_LETTER_QUEUE.name, "ApproximateNumberOfMessagesVisible"): "dlq_visible",
    (DEAD_LETTER_QUEUE.name, "ApproximateNumberOfMessagesNotVisible"): "dlq_in_flight",
}


@dataclass(frozen=True)
class QueueSnapshot:
    """The queues now (``imgproc status``'s numbers); ages None when unknown."""

    ingest_visible: int
    ingest_in_flight: int
    ingest_oldest_age_seconds: float | None
    dlq_visible: int
    dlq_in_flight: int
    dlq_oldest_age_seconds: float | None

    def value(self, queue: str, metric_name: str) -> float | None:
        attribute = _SQS_FIELDS.get((queue, metric_name))
        return None if attribute is None else getattr(self, attribute)


@dataclass(frozen=True)
class Line:
    label: str
    points: Series
    right_axis: bool = False


@dataclass(frozen=True)
class Stat:
    """A current value shown as a number (queues: no history locally)."""

    label: str
    value: str


@dataclass
class GraphPanel:
    title: str
    width: int
    height: int
    lines: list[Line] = field(default_factory=list)
    stats: list[Stat] = field(default_factory=list)  # shown instead of a graph when there are no lines
    stacked: bool = False
    left_label: str = ""
    right_label: str = ""
    threshold: tuple[str, float] | None = None
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # series the local runtime does not record
    bytes_axis: bool = False


@dataclass
class TablePanel:
    title: str
    width: int
    height: int
    columns: list[str]
    rows: list[list[str]]
    failures: list[Failure]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AlarmTile:
    name: str
    state: str  # ALARM, OK, NO DATA, N/A LOCALLY
    detail: str


@dataclass
class AlarmPanel:
    title: str
    width: int
    height: int
    alarms: list[AlarmTile]


Panel = GraphPanel | TablePanel | AlarmPanel


@dataclass
class View:
    rows: list[list[Panel]]
    window: Window
    totals: Totals
    failures: list[Failure]  # the latest, newest first
    function_name: str | None
    queues: QueueSnapshot | None
