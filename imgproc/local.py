"""`imgproc up`: the whole pipeline on this machine, no AWS account, no docker (`imgproc demo` runs on it).

The embedded AWS (moto's server on 127.0.0.1), the real template deployed into it, and a poller that
behaves like Lambda's SQS event source mapping running the real handler in worker processes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3

from imgproc import deploy, embedded, faults, local_stack, poller
from imgproc import workers as workers_
from imgproc.counters import COUNTERS, counters_line, serve_until_interrupted
from toolkit import aws
from toolkit.options import positive
from toolkit.stack import StackOutputs

STATE_DIR = Path(".imgproc")


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class LocalRuntime:
    """Embedded AWS + deployed stack + poller, started together and stopped in reverse order."""

    def __init__(
        self,
        *,
        port: int,
        workers: int,
        stack_name: str,
        region: str,
        overrides: dict[str, str],
        options: poller.WorkerOptions,
        restart_policy: workers_.RestartPolicy | None = None,
    ) -> None:
        self._aws = embedded.EmbeddedAws(port=port, log_file=options.log_dir / "moto.log")
        self._workers, self._stack_name, self.region = workers, stack_name, region
        self._overrides, self._options, self._policy = overrides, options, restart_policy
        self._poller: workers_.Poller | None = None
        self._errors_seen: set[str] = set()
        self._notices: list[str] = []
        self.outputs: dict[str, str] = {}
        self.endpoint_url = ""
        self.totals = dict.fromkeys(COUNTERS, 0)

    @property
    def stack(self) -> StackOutputs:
        """The deployed stack's outputs, typed."""
        return StackOutputs(self._stack_name, self.outputs)

    def start(self) -> LocalRuntime:
        aws.use_local_credentials()
        warnings.filterwarnings("ignore", module=r"moto(\.|$)")  # "no CloudFormation support for ..."
        self.endpoint_url = self._aws.start()
        progress(f"embedded AWS listening on {self.endpoint_url}")
        self.outputs = local_stack.deploy_local(
            self.endpoint_url,
            region=self.region,
            stack_name=self._stack_name,
            overrides=self._overrides,
            progress=progress,
        )
        lam = self.client("lambda")
        mapping = poller.load_mapping(self.endpoint_url, self.region, self.outputs, lam)
        self._poller = workers_.Poller(
            mapping,
            self._options,
            self._workers,
            watch=lambda: poller.load_mapping(self.endpoint_url, self.region, self.outputs, lam),
            policy=self._policy,
        )
        self._poller.start()
        return self

    @property
    def stack_name(self) -> str:
        return self._stack_name

    @property
    def worker_pids(self) -> list[int]:
        return self._poller.pids if self._poller else []

    @property
    def failure(self) -> str | None:
        """Why the poller gave up (a function whose workers cannot start), or None."""
        return self._poller.failure if self._poller else None

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.region)

    def update_totals(self) -> bool:
        """Fold the workers' batch reports into :attr:`totals`; True when anything changed.

        A batch the function failed (an exception, its cold start included, or a timeout) counts as a
        function error; each distinct error becomes one notice (:meth:`take_notices`).
        """
        if self._poller is None:
            return False
        reports = self._poller.drain_stats()
        self._notices.extend(self._poller.drain_notices())
        for report in reports:
            self.totals["received"] += report.received
            self.totals["retried"] += report.failed
            for name, count in report.outcomes.items():
                self.totals[name] = self.totals.get(name, 0) + count
            if report.batch_error:
                self.totals["function errors"] += 1
                if report.batch_error not in self._errors_seen:
                    self._errors_seen.add(report.batch_error)
                    self._notices.append(
                        f"function error: {report.batch_error} (the batch is retried; each new error is "
                        f"shown once, all of them are in {self._options.log_dir}/worker-N.jsonl)"
                    )
        return bool(reports)

    def take_notices(self) -> list[str]:
        """Lines for the operator since the last call: worker restarts, configuration changes, errors."""
        self.update_totals()
        notices, self._notices = self._notices, []
        return notices

    def stop(self) -> None:
        """Stop the workers (after their batch in hand), then the embedded AWS; leaves no process."""
        try:
            if self._poller is not None:
                try:
                    self._poller.stop()
                finally:
                    self.update_totals()
                    self._poller = None
        finally:
            self._aws.stop()

    def __enter__(self) -> LocalRuntime:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP end the run like Ctrl-C does: drain, then stop. SIGINT is handled here too:
    a shell script that starts `imgproc up &` hands it SIGINT ignored, and `kill -INT` must still stop it."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, interrupt) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def running_doc(runtime: LocalRuntime, log_dir: Path) -> dict[str, Any]:
    """What another program needs to use the running pipeline (`imgproc up --json`)."""
    return {
        "endpoint_url": runtime.endpoint_url,
        "region": runtime.region,
        "stack_name": runtime.stack_name,
        "outputs": dict(runtime.outputs),
        "log_dir": str(log_dir),
    }


def print_banner(runtime: LocalRuntime, log_dir: Path) -> None:
    endpoint, out = runtime.endpoint_url, runtime.stack
    source, dest = out.source_bucket, out.destination_bucket
    print(
        f"""
imgproc is running on the embedded AWS. In another shell:

  export AWS_ENDPOINT_URL={endpoint}
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION={runtime.region}

  source bucket       {source}
  destination bucket  {dest}
  ingest queue        {out.queue_url}
  dead-letter queue   {out.dlq_url}

  aws --endpoint-url {endpoint} s3 cp photo.jpg s3://{source}/original/photo.jpg
  aws --endpoint-url {endpoint} s3 ls --recursive s3://{dest}/
  imgproc status            # queue depths and recent failures

Logs: {log_dir}/ (handler: worker-N.jsonl, embedded AWS requests: moto.log). Ctrl-C to stop.
""",
        flush=True,
    )


def port_number(raw: str) -> int:
    """An argparse ``type=``: a TCP port, 0 meaning any free one."""
    try:
        port = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


def seconds_or_zero(raw: str) -> int:
    """An argparse ``type=``: whole seconds, 0 or more."""
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def fault_spec(raw: str) -> str:
    """An argparse ``type=``: a fault spec that parses (:func:`imgproc.faults.parse`)."""
    try:
        faults.parse(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return raw


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port",
        type=port_number,
        default=None,
        help=f"port of the embedded AWS (default {embedded.DEFAULT_PORT}, a free one if taken; 0: any free)",
    )
    parser.add_argument(
        "--workers", type=positive(int), default=2, help="poller worker processes (default 2)"
    )
    parser.add_argument("--stack-name", default="imgproc", help="stack to deploy (default imgproc)")
    parser.add_argument(
        "--region", default="us-east-1", help="region of the embedded AWS (default us-east-1)"
    )
    deploy.add_parameter_argument(parser)
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR, help="where logs go (default .imgproc)")
    parser.add_argument(
        "--retry-after",
        type=seconds_or_zero,
        default=None,
        metavar="SECONDS",
        help="make failed messages visible again after SECONDS instead of the queue's visibility "
        "timeout (a local shortcut; Lambda does not do this)",
    )
    parser.add_argument(
        "--inject-faults",
        metavar="SPEC",
        type=fault_spec,
        help="make the handler's AWS calls fail on purpose, e.g. 's3.GetObject@flaky=1,s3.*=0.05' "
        "(see imgproc/faults.py)",
    )


class UsageError(ValueError):
    """An option value that cannot work (exit 2), found before anything starts."""


def runtime_from_args(args: argparse.Namespace, defaults: dict[str, str] | None = None) -> LocalRuntime:
    """The runtime the arguments describe; ``defaults`` are template parameters that ``-p`` overrides.

    Everything that can be checked without starting anything is checked here: :class:`UsageError`
    for a bad option value, OSError for a state directory where logs cannot be written.
    """
    try:
        overrides = {**(defaults or {}), **deploy.parse_parameters(args.parameter)}
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    port = args.port
    if port is None:
        port = embedded.DEFAULT_PORT if embedded.port_is_free(embedded.DEFAULT_PORT) else 0
    log_dir = args.state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    return LocalRuntime(
        port=port,
        workers=args.workers,
        stack_name=args.stack_name,
        region=args.region,
        overrides=overrides,
        options=poller.WorkerOptions(
            log_dir=log_dir, retry_after=args.retry_after, fault_spec=args.inject_faults
        ),
    )


def run_local(
    args: argparse.Namespace,
    body: Callable[[LocalRuntime], int],
    defaults: dict[str, str] | None = None,
    *,
    totals: bool = False,
) -> int:
    """Check the options, start, run ``body``, stop: the frame shared by `up` and `demo` (``totals``:
    print the final counters once stopped).

    Exit status: ``body``'s; 2 for a bad option value, 1 when something cannot start, 130 when
    interrupted (Ctrl-C, SIGTERM, SIGHUP) while starting. Whatever happens, everything started so far
    is stopped and every worker process reaped before this returns; errors are one line.
    """
    name = f"imgproc {args.command}" if getattr(args, "command", None) else "imgproc"
    try:
        runtime = runtime_from_args(args, defaults)
    except UsageError as exc:
        progress(f"{name}: {exc}")
        return 2
    except OSError as exc:
        progress(f"{name}: cannot write logs under {args.state_dir}: {exc.strerror or exc}")
        return 1
    status, started = 1, False
    with _stop_on_signals():
        try:
            try:
                runtime.start()
                started = True
            except KeyboardInterrupt:
                progress(f"{name}: interrupted while starting; stopping what was started")
                status = 130
            except (ValueError, OSError, deploy.DeployError) as exc:
                progress(f"{name}: {exc}")
            else:
                status = body(runtime)
        except KeyboardInterrupt:
            progress(f"{name}: interrupted; stopping")
            status = 130
        finally:
            try:
                runtime.stop()
            except KeyboardInterrupt:
                progress(f"{name}: stopped without waiting for in-flight batches (they come back later)")
                status = 130
    if started and totals:
        progress(f"stopped. {counters_line(runtime.totals)}")
    return status


def run_up(args: argparse.Namespace) -> int:
    def body(runtime: LocalRuntime) -> int:
        def announce() -> None:
            if args.json:
                print(json.dumps(running_doc(runtime, args.state_dir / "logs")), flush=True)
            else:
                print_banner(runtime, args.state_dir / "logs")

        if not serve_until_interrupted(runtime, announce=announce):
            progress(f"imgproc up: {runtime.failure}")
            return 1
        return 0

    return run_local(args, body, totals=True)


def add_up_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument(
        "--json",
        action="store_true",
        help="once running, print the endpoint, region, stack outputs and log folder as one JSON line on "
        "stdout (for scripts) instead of the banner",
    )
    parser.epilog = (
        "Runs until Ctrl-C, SIGTERM or SIGHUP, then lets in-flight batches finish and stops every worker. "
        "Exit status: 0 stopped that way after it ran; 1 something could not start (a port given with "
        "--port in use, a deploy that failed) or the workers could not start; 2 bad options; 130 "
        "interrupted while starting (everything started so far is stopped)."
    )
