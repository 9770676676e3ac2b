"""A poller that behaves like Lambda's SQS event source mapping, for the embedded AWS.

Each worker process long-polls the ingest queue, fills a batch up to the mapping's batch size within
its batching window, invokes ``processor.handler.lambda_handler`` with the exact event Lambda builds
and a context counting down from the function's timeout, then deletes every message that is not in
``batchItemFailures``. Failed messages are left alone: they come back after the visibility timeout,
and SQS's redrive moves them to the DLQ after ``maxReceiveCount``. A handler exception, a response
naming an unknown message, or a run past the timeout fails the whole batch, as in Lambda. A worker
process that dies (killed, out of memory, a crash in a native library) is replaced, as Lambda replaces
an execution environment whose runtime exited: the batch it held comes back after the visibility
timeout, and polling goes on at full strength meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import boto3

from imgproc import aws, faults, function

_RECORD_EVENTS = {  # handler log event -> counter
    "record.rendered": "rendered",
    "record.skipped": "skipped",
    "record.deleted": "deleted",
    "record.ignored": "ignored",
    "record.dead_lettered": "dead-lettered",
}


@dataclass(frozen=True)
class Mapping:
    """What the poller needs to know of the deployed function and its event source mapping."""

    endpoint_url: str
    region: str
    queue_url: str
    queue_arn: str
    batch_size: int
    window_seconds: float
    function: function.FunctionConfig


def load_mapping(endpoint_url: str, region: str, outputs: dict[str, str]) -> Mapping:
    """Read the mapping and the function configuration from the deployed stack."""
    lam = boto3.client("lambda", endpoint_url=endpoint_url, region_name=region)
    fn = function.load_function(lam, outputs["FunctionName"])
    mappings = lam.list_event_source_mappings(FunctionName=outputs["FunctionName"])["EventSourceMappings"]
    mapping = next(m for m in mappings if m["EventSourceArn"] == outputs["QueueArn"])
    return Mapping(
        endpoint_url=endpoint_url,
        region=region,
        queue_url=outputs["QueueUrl"],
        queue_arn=outputs["QueueArn"],
        batch_size=int(mapping.get("BatchSize", 10)),
        window_seconds=float(mapping.get("MaximumBatchingWindowInSeconds", 0)),
        function=fn,
    )


def lambda_event(messages: Iterable[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping passes to the function for ``messages``."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    name: _lambda_attribute(value) for name, value in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),  # noqa: S324
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def _lambda_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """SQS API attribute shape → Lambda event shape (camelCase keys, list fields present)."""
    converted: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = value["BinaryValue"]
    return converted


def settle(messages: list[dict[str, Any]], response: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Which messages to delete, and which failed, given the handler's response.

    As Lambda: an empty or absent ``batchItemFailures`` means all succeeded; a malformed response or
    an identifier that is not in the batch fails the whole batch.
    """
    ids = [m["MessageId"] for m in messages]
    if response is None:  # a null response reports no failures
        return list(messages), []
    try:
        failed = {str(item["itemIdentifier"]) for item in response.get("batchItemFailures") or []}
    except (AttributeError, KeyError, TypeError):
        return [], ids
    if not failed <= set(ids):
        return [], ids
    return [m for m in messages if m["MessageId"] not in failed], [i for i in ids if i in failed]


@dataclass
class BatchReport:
    received: int = 0
    deleted: int = 0
    failed: int = 0
    batch_error: str | None = None
    outcomes: dict[str, int] = field(default_factory=dict)


def receive_batch(sqs: Any, mapping: Mapping, wait_seconds: int) -> list[dict[str, Any]]:
    """Long-poll up to the batch size, collecting for at most the batching window."""
    deadline = time.monotonic() + mapping.window_seconds
    messages: list[dict[str, Any]] = []
    while len(messages) < mapping.batch_size:
        got = sqs.receive_message(
            QueueUrl=mapping.queue_url,
            MaxNumberOfMessages=min(10, mapping.batch_size - len(messages)),
            WaitTimeSeconds=0 if messages else wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        messages.extend(got)
        if not messages or not got or time.monotonic() >= deadline:
            break
    return messages


def run_batch(
    sqs: Any,
    mapping: Mapping,
    messages: list[dict[str, Any]],
    invoke: Callable[[dict[str, Any]], Any],
    *,
    retry_after: int | None = None,
) -> BatchReport:
    """Invoke the handler on ``messages`` and settle them with SQS, as the event source mapping does."""
    report = BatchReport(received=len(messages))
    started = time.monotonic()
    try:
        response = invoke(lambda_event(messages, mapping.queue_arn, mapping.region))
    except Exception as exc:
        response, report.batch_error = None, f"{type(exc).__name__}: {exc}"
    if report.batch_error is None and time.monotonic() - started > mapping.function.timeout_seconds:
        report.batch_error = f"Task timed out after {mapping.function.timeout_seconds} seconds"
    if report.batch_error is not None:
        done, failed = [], [m["MessageId"] for m in messages]
    else:
        done, failed = settle(messages, response)
    for start in range(0, len(done), 10):
        chunk = done[start : start + 10]
        result = sqs.delete_message_batch(
            QueueUrl=mapping.queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
        )
        report.deleted += len(result.get("Successful", []))
    report.failed = len(failed)
    if retry_after is not None and failed:
        # Local convenience (off by default): bring failures back sooner than the visibility timeout.
        handles = {m["MessageId"]: m["ReceiptHandle"] for m in messages}
        for message_id in failed:
            sqs.change_message_visibility(
                QueueUrl=mapping.queue_url, ReceiptHandle=handles[message_id], VisibilityTimeout=retry_after
            )
    return report


class _LogTap:
    """Stands in for stdout in a worker: keeps the handler's log lines in a file and counts outcomes."""

    def __init__(self, sink: TextIO) -> None:
        self._sink = sink
        self._pending = ""
        self.outcomes: dict[str, int] = {}

    def write(self, text: str) -> int:
        self._sink.write(text)
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._count(line)
        return len(text)

    def flush(self) -> None:
        self._sink.flush()

    def take(self) -> dict[str, int]:
        outcomes, self.outcomes = self.outcomes, {}
        return outcomes

    def _count(self, line: str) -> None:
        if not line.startswith("{"):
            return
        try:
            event = json.loads(line).get("event")
        except ValueError:
            return
        name = _RECORD_EVENTS.get(event)
        if name:
            self.outcomes[name] = self.outcomes.get(name, 0) + 1


SUPERVISE_INTERVAL = 0.5  # seconds between checks for a dead worker


@dataclass(frozen=True)
class WorkerOptions:
    log_dir: Path
    retry_after: int | None = None
    fault_spec: str | None = None
    wait_seconds: int = 1  # short long-polls so that a stop request is noticed within a second


def worker_main(index: int, mapping: Mapping, options: WorkerOptions, stop: Any, stats: Any) -> None:
    """Entry point of a worker process: poll, invoke, settle, report counters until ``stop`` is set.

    SIGINT is ignored here: Ctrl-C reaches the whole process group, and the parent decides when
    workers stop, after their in-flight batch.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    options.log_dir.mkdir(parents=True, exist_ok=True)
    with open(options.log_dir / f"worker-{index}.jsonl", "a", buffering=1) as sink:
        tap = _LogTap(sink)
        sys.stdout = tap  # type: ignore[assignment] - the handler's JSON logs and metrics go here
        try:
            _poll_until_stopped(mapping, options, stop, stats, tap)
        finally:
            sys.stdout = sys.__stdout__


def _poll_until_stopped(
    mapping: Mapping, options: WorkerOptions, stop: Any, stats: Any, tap: _LogTap
) -> None:
    function.apply_environment(mapping.function, endpoint_url=mapping.endpoint_url, region=mapping.region)
    aws.use_local_credentials()
    if options.fault_spec:
        faults.install(options.fault_spec)
    sqs = boto3.client("sqs", endpoint_url=mapping.endpoint_url, region_name=mapping.region)
    while not stop.is_set():
        messages = receive_batch(sqs, mapping, options.wait_seconds)
        if not messages:
            continue
        report = run_batch(
            sqs,
            mapping,
            messages,
            lambda event: function.invoke(mapping.function, event),
            retry_after=options.retry_after,
        )
        report.outcomes = tap.take()
        stats.put(report)


class Poller:
    """``workers`` processes running :func:`worker_main`, each replaced if it dies; :meth:`stop` lets
    in-flight batches finish.

    ``on_restart(index, exitcode)`` is called (from the supervising thread) when worker ``index``
    died with ``exitcode`` (negative: killed by that signal) and a new one was started in its place.
    """

    def __init__(
        self,
        mapping: Mapping,
        options: WorkerOptions,
        workers: int = 2,
        *,
        on_restart: Callable[[int, int], None] | None = None,
    ) -> None:
        self._context = multiprocessing.get_context("spawn")  # no inherited threads, sockets or moto state
        self._mapping, self._options = mapping, options
        self._stop = self._context.Event()
        self.stats = self._context.Queue()
        self._processes = [self._process(i) for i in range(workers)]
        self._lock = threading.Lock()
        self._on_restart = on_restart
        self._supervisor = threading.Thread(target=self._supervise, name="poller-supervisor", daemon=True)

    def _process(self, index: int) -> Any:
        return self._context.Process(
            target=worker_main,
            args=(index, self._mapping, self._options, self._stop, self.stats),
            name=f"imgproc-worker-{index}",
            daemon=True,
        )

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self._processes if p.pid is not None]

    def start(self) -> None:
        for process in self._processes:
            process.start()
        self._supervisor.start()

    def _supervise(self) -> None:
        while not self._stop.wait(SUPERVISE_INTERVAL):
            with self._lock:
                if self._stop.is_set():
                    return
                for index, process in enumerate(self._processes):
                    if process.exitcode is None:
                        continue
                    replacement = self._process(index)
                    replacement.start()
                    self._processes[index] = replacement
                    if self._on_restart:
                        self._on_restart(index, process.exitcode)

    def stop(self, timeout: float = 120.0) -> None:
        """Ask workers to stop after their current batch; wait; terminate any that do not."""
        self._stop.set()
        if self._supervisor.is_alive():
            self._supervisor.join()
        deadline = time.monotonic() + timeout
        started = [process for process in self._processes if process.pid is not None]
        for process in started:
            process.join(max(0.1, deadline - time.monotonic()))
        for process in started:
            if process.is_alive():
                process.terminate()
                process.join(5)

    def drain_stats(self) -> list[BatchReport]:
        reports = []
        while True:
            try:
                reports.append(self.stats.get_nowait())
            except Exception:
                return reports
