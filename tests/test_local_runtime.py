"""`imgproc up` for a careless user: options checked first, ports in use, Ctrl-C at any moment,
nothing left running, functions that cannot start, redeploys, counters that never go stale."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imagegen
import pytest
from conftest import eventually, local_runtime

from imgproc import cli, counters, local, local_stack, poller, workers
from toolkit.function import FunctionConfig

BIN = Path(sys.executable).parent


# --- options -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["up", "demo"])
@pytest.mark.parametrize(
    ("option", "error"),
    [
        (["--inject-faults", "bogus"], "fault rule 'bogus' is not OPERATION"),
        (["--inject-faults", "s3.*=1.5"], "probability must be in (0, 1]"),
        (["--inject-faults", "s3.GetObject=abc"], "'abc' is not N, * or a probability"),
        (["--inject-faults", "s3.GetObjekt=1"], "matches no operation of s3 or sqs"),
        (["--workers", "0"], "must be a positive number"),
        (["--retry-after", "-5"], "must be 0 or more"),
        (["--port", "70000"], "70000 is not a port number"),
    ],
)
def test_bad_option_values_are_usage_errors(
    command: str, option: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, *option])
    assert exit_.value.code == 2
    assert error in capsys.readouterr().err.splitlines()[-1]


def run_up(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`imgproc up` in a session of its own (its process group id is its pid)."""
    return subprocess.run(
        [str(BIN / "imgproc"), "up", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        start_new_session=True,
    )


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_bad_parameter_is_refused_before_anything_starts(tmp_path: Path) -> None:
    result = run_up("-p", "Sizes", "--port", "0", "--state-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["imgproc up: -p 'Sizes' is not KEY=VALUE"]
    assert not (tmp_path / "logs" / "moto.log").exists()


def test_a_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = subprocess.Popen(
            [str(BIN / "imgproc"), "up", "--port", str(port), "--state-dir", str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        _, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert err.splitlines() == [
        f"imgproc up: port {port} is in use (another `imgproc up`?); choose another with --port, "
        "or --port 0 for any free one"
    ]
    assert not group_alive(process.pid)


# --- Ctrl-C and stop -----------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize(
    "when",
    [
        "embedded AWS listening on",  # the stack is being deployed
        "applied SourceBucket.NotificationConfiguration",  # the workers are being started
    ],
)
def test_ctrl_c_while_starting_stops_everything_without_a_traceback(tmp_path: Path, when: str) -> None:
    process = subprocess.Popen(
        [str(BIN / "imgproc"), "up", "--port", "0", "--state-dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stderr is not None
        lines = []
        for line in process.stderr:
            lines.append(line)
            if when in line:
                break
        os.killpg(process.pid, signal.SIGINT)  # as a terminal does: the whole group
        lines += process.stderr.readlines()
        assert process.wait(timeout=60) == 130
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    err = "".join(lines)
    assert "Traceback" not in err
    assert "leaked semaphore" not in err
    assert "imgproc up: interrupted while starting; stopping what was started" in err
    assert not group_alive(process.pid)


@pytest.mark.e2e
def test_up_stops_on_ctrl_c_reaps_everything_and_its_counters_are_never_stale(tmp_path: Path) -> None:
    """stderr is a pipe here, not a terminal: each change of the counters is printed while it runs.
    With --json, stdout says where everything is, in one line, once it runs."""
    process = subprocess.Popen(
        [str(BIN / "imgproc"), "up", "--json", "--port", "0", "--workers", "2", "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stderr is not None
        assert process.stdout is not None
        running = json.loads(process.stdout.readline())
        assert set(running) == {"endpoint_url", "region", "stack_name", "outputs", "log_dir"}
        for line in process.stderr:
            if line.startswith("received 0 |"):
                break
        import boto3

        s3 = boto3.client("s3", endpoint_url=running["endpoint_url"], region_name=running["region"])
        source = running["outputs"]["SourceBucketName"]
        for i in range(3):
            s3.put_object(Bucket=source, Key=f"original/stale-{i}.jpg", Body=imagegen.photo_jpeg(64, 48))
        for line in process.stderr:  # printed while running, with no further change to push it out
            if " rendered 3 " in line:
                break
        os.killpg(process.pid, signal.SIGINT)
        rest = process.stderr.read()
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert not group_alive(process.pid)  # every worker reaped before up returned
    assert "Traceback" not in rest
    assert "leaked semaphore" not in rest
    assert "stopped. received " in rest


# --- pure parts ------------------------------------------------------------------------------------


def test_the_counter_line_prints_every_change_rate_limited_and_never_ends_stale() -> None:
    now = [0.0]
    printer = counters.LinePrinter(2.0, clock=lambda: now[0])
    assert printer.due("a")
    assert not printer.due("a")  # no change
    now[0] = 1.0
    assert not printer.due("b")  # a change within the interval waits
    assert printer.pending("b")
    now[0] = 2.5
    assert printer.due("b")  # and is printed once the interval is over, without a further change
    assert not printer.pending("b")


def test_the_restart_delay_grows_then_gives_up() -> None:
    policy = workers.RestartPolicy(first_delay=1.0, max_delay=4.0, give_up_after=5)
    assert [policy.delay(n) for n in range(6)] == [0.0, 1.0, 2.0, 4.0, 4.0, None]


FUNCTION = FunctionConfig(
    name="fn", arn="arn", timeout_seconds=30, memory_mb=128, environment={"SIZES": "1x1"}
)


def mapping(**changes: Any) -> poller.Mapping:
    values: dict[str, Any] = {
        "endpoint_url": "http://127.0.0.1:9",
        "region": "us-east-1",
        "queue_url": "q",
        "queue_arn": "arn",
        "batch_size": 10,
        "window_seconds": 0.0,
        "function": FUNCTION,
        **changes,
    }
    return poller.Mapping(**values)


def test_a_configuration_change_is_described() -> None:
    changed = FunctionConfig(**{**FUNCTION.__dict__, "environment": {"SIZES": "2x2", "FIT": "cover"}})
    assert workers.describe_change(mapping(), mapping(function=changed, batch_size=5)) == [
        "FIT: (unset) -> cover",
        "SIZES: 1x1 -> 2x2",
        "batch size: 10 -> 5",
    ]
    assert workers.describe_change(mapping(), mapping()) == []


@pytest.mark.slow
def test_a_worker_that_cannot_start_is_retried_then_given_up_with_the_reason(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    (log_dir / "worker-0.jsonl").mkdir(parents=True)  # the worker cannot open its log: a start-up error
    pool = workers.Poller(
        mapping(),
        poller.WorkerOptions(log_dir=log_dir),
        1,
        policy=workers.RestartPolicy(first_delay=0.1, max_delay=0.2, give_up_after=3),
    )
    pool.start()
    try:
        failure = eventually(lambda: pool.failure, timeout=30)
        pids = pool.pids
    finally:
        pool.stop()
    assert failure.startswith("worker 0 could not start (3 attempts in a row): it exited with status 1 ")
    assert "IsADirectoryError" in failure
    notices = pool.drain_notices()
    assert len(notices) == 2
    assert all("could not start" in n and "trying again in" in n for n in notices)
    assert pids == []  # not restarted after giving up


# --- a running runtime: function errors and redeploys ---------------------------------------------


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local.LocalRuntime]:
    log_dir = tmp_path_factory.mktemp("state") / "logs"
    options = poller.WorkerOptions(log_dir=log_dir, retry_after=1)
    with local_runtime(workers=1, options=options) as rt:
        yield rt


def upload(rt: local.LocalRuntime, key: str) -> None:
    rt.client("s3").put_object(
        Bucket=rt.outputs["SourceBucketName"], Key=key, Body=imagegen.photo_jpeg(320, 240)
    )


def dest_has(rt: local.LocalRuntime, key: str) -> bool:
    s3 = rt.client("s3")
    with contextlib.suppress(s3.exceptions.ClientError):
        s3.head_object(Bucket=rt.outputs["DestinationBucketName"], Key=key)
        return True
    return False


@pytest.mark.e2e
def test_a_redeploy_reaches_the_running_workers(runtime: local.LocalRuntime) -> None:
    runtime.take_notices()
    local_stack.deploy_local(
        runtime.endpoint_url,
        region=runtime.region,
        stack_name="imgproc",
        overrides={"Sizes": "50x50,300x300"},
        progress=lambda line: None,
    )
    notices = eventually(
        lambda: [n for n in runtime.take_notices() if "configuration changed" in n], timeout=20
    )
    assert "SIZES: 100x100,300x300 -> 50x50,300x300" in notices[0]

    upload(runtime, "original/redeploy/a.jpg")

    eventually(lambda: dest_has(runtime, "resized/50x50/redeploy/a.jpg"))
    assert not dest_has(runtime, "resized/100x100/redeploy/a.jpg")


@pytest.mark.e2e
def test_a_function_that_cannot_start_is_loud(runtime: local.LocalRuntime) -> None:
    lam = runtime.client("lambda")
    name = runtime.outputs["FunctionName"]
    environment = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    runtime.take_notices()
    lam.update_function_configuration(
        FunctionName=name, Environment={"Variables": {**environment, "SIZES": "abc"}}
    )
    eventually(lambda: any("configuration changed" in n for n in runtime.take_notices()), timeout=20)
    before = runtime.totals["function errors"]
    shown: list[str] = []
    try:
        upload(runtime, "original/broken/a.jpg")
        upload(runtime, "original/broken/b.jpg")

        def errors() -> bool:
            shown.extend(n for n in runtime.take_notices() if n.startswith("function error"))
            return runtime.totals["function errors"] - before >= 3

        eventually(errors, timeout=30)
    finally:
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": environment})
    assert len(shown) == 1  # once per distinct error, not once per batch
    assert "ConfigError" in shown[0]
    assert "SIZES" in shown[0]
    logged = [
        json.loads(line)
        for path in runtime._options.log_dir.glob("worker-*.jsonl")
        for line in path.read_text().splitlines()
        if '"function.error"' in line
    ]
    assert logged
    assert "SIZES" in logged[-1]["error"]
    assert any("ConfigError" in line for line in logged[-1]["stack_trace"])
