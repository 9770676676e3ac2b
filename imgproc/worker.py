"""One worker process of the local poller (``python -m imgproc.worker REPORT_FD SPEC_JSON``).

It is what a Lambda execution environment is to the event source mapping: it takes the function's
configuration once, at start-up, polls, invokes the real handler, settles the batch, and writes one
JSON line per event to the report pipe its supervisor (:mod:`imgproc.workers`) reads: ``ready`` once
it is initialised, ``batch`` after each batch, ``error`` (then exit 1) when it cannot go on.

Signals: Ctrl-C reaches the whole process group, but the supervisor decides when workers stop, so
SIGINT is ignored; SIGTERM means "stop after the batch in hand". The supervisor starts it with both
blocked, so neither can arrive before these dispositions are in place (no KeyboardInterrupt
traceback from a worker still importing). A worker whose parent is gone stops by itself.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from imgproc import poller
from observability.outcomes import Outcome
from toolkit.function import FunctionConfig

if TYPE_CHECKING:
    from processor.batch import BatchResult


def encode_spec(index: int, mapping: poller.Mapping, options: poller.WorkerOptions) -> str:
    """The command-line form of what a worker needs (read back by :func:`decode_spec`)."""
    return json.dumps(
        {
            "index": index,
            "mapping": asdict(mapping),
            "options": {**asdict(options), "log_dir": str(options.log_dir)},
        }
    )


def decode_spec(text: str) -> tuple[int, poller.Mapping, poller.WorkerOptions]:
    spec = json.loads(text)
    mapping = dict(spec["mapping"])
    mapping["function"] = FunctionConfig(**mapping["function"])
    options = {**spec["options"], "log_dir": Path(spec["options"]["log_dir"])}
    return int(spec["index"]), poller.Mapping(**mapping), poller.WorkerOptions(**options)


def outcome_counts(result: BatchResult) -> dict[str, int]:
    """The batch's records by outcome, as ``imgproc up`` counts them: settled ones only (a retry is
    counted per message, as ``retried``, from the batch's failures)."""
    counts: dict[str, int] = {}
    for record in result.records():
        if record.outcome is not Outcome.RETRY:
            counts[record.outcome.value] = counts.get(record.outcome.value, 0) + 1
    return counts


def function_error_line(error: str, stack: list[str]) -> str:
    """The log line of a failed invocation (what Lambda logs as the function's error)."""
    entry = {
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "level": "error",
        "event": "function.error",
        "error": error,
        "stack_trace": stack,
    }
    return json.dumps(entry) + "\n"


class _Stop:
    requested = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.requested = True


def main(argv: list[str]) -> int:
    stop = _Stop()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, stop)
    signal.pthread_sigmask(
        signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    )  # see imgproc.signals
    parent = os.getppid()
    with open(int(argv[0]), "w", buffering=1) as reports:

        def report(kind: str, **fields: Any) -> None:
            reports.write(json.dumps({"type": kind, **fields}) + "\n")

        try:
            index, mapping, options = decode_spec(argv[1])
            options.log_dir.mkdir(parents=True, exist_ok=True)
            sink = open(options.log_dir / f"worker-{index}.jsonl", "a", buffering=1)  # noqa: SIM115
        except Exception as exc:  # reported to the supervisor, which shows it
            report("error", error=f"{type(exc).__name__}: {exc}")
            return 1
        with sink:
            sys.stdout = sink  # the handler's JSON logs and metrics go here
            try:
                return _serve(
                    mapping, options, sink, report, lambda: stop.requested or os.getppid() != parent
                )
            except Exception as exc:  # after start-up: the supervisor replaces it
                sink.write(
                    function_error_line(f"{type(exc).__name__}: {exc}", traceback.format_exc().splitlines())
                )
                report("error", error=f"{type(exc).__name__}: {exc}")
                return 1
            finally:
                sys.stdout = sys.__stdout__


def _serve(
    mapping: poller.Mapping, options: poller.WorkerOptions, sink: TextIO, report: Any, stopping: Any
) -> int:
    import boto3  # noqa: PLC0415 - after the signal set-up: importing takes a while

    from imgproc import faults, function  # noqa: PLC0415
    from toolkit import aws  # noqa: PLC0415

    function.apply_environment(mapping.function, endpoint_url=mapping.endpoint_url, region=mapping.region)
    aws.use_local_credentials()
    sqs = boto3.client("sqs", endpoint_url=mapping.endpoint_url, region_name=mapping.region)
    pending_faults = options.fault_spec
    if pending_faults:
        faults.parse(pending_faults)  # a bad spec is a start-up error, not a function error
    report("ready")
    stack: list[str] = []
    outcomes: dict[str, int] = {}

    def invoke(event: dict[str, Any]) -> Any:
        # Faults attach to the handler's own clients, made at its cold start: a configuration the
        # function cannot start with fails here, as an invocation (a function error), not the worker.
        nonlocal pending_faults, stack, outcomes
        try:
            if pending_faults:
                faults.install(pending_faults)
                pending_faults = None
            result = function.invoke_batch(mapping.function, event)
        except Exception:
            stack = traceback.format_exc().splitlines()
            raise
        outcomes = outcome_counts(result)
        return result.response()

    while not stopping():
        messages = poller.receive_batch(sqs, mapping, options.wait_seconds)
        if not messages:
            continue
        if stopping():  # told to stop during the long poll (a redeploy): not with the old configuration
            _release(sqs, mapping, messages)
            break
        stack, outcomes = [], {}
        result = poller.run_batch(sqs, mapping, messages, invoke, retry_after=options.retry_after)
        if result.batch_error:
            sink.write(function_error_line(result.batch_error, stack))
        report(
            "batch",
            received=result.received,
            deleted=result.deleted,
            failed=result.failed,
            batch_error=result.batch_error,
            outcomes=outcomes,
        )
    return 0


def _release(sqs: Any, mapping: poller.Mapping, messages: list[dict[str, Any]]) -> None:
    """Make ``messages`` visible again at once, for a worker with the current configuration."""
    for start in range(0, len(messages), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=mapping.queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages[start : start + 10])
            ],
        )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
