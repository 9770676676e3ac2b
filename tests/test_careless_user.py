"""Every command survives a careless user: bad option values, a dead endpoint, no credentials, a
missing stack. Each ends with its documented exit status and exactly one line on stderr, never a
traceback (issue 13).

The commands run in-process through ``imgproc.cli.main`` (what the entry point calls); a few run as
real subprocesses of the installed ``imgproc`` script, so the exit status is the process's. The
"missing stack" cases talk to one embedded AWS (moto's server) started for the module.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.httpsession
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from botocore.retries import standard

from imgproc import boundary, cli, embedded, entry, local_stack

EVENT = str(Path(__file__).resolve().parent.parent / "events" / "s3-put.json")
ENTRY_POINT = Path(sys.executable).parent / "imgproc"
# Not this machine, so no local credentials are injected; `.invalid` never resolves, and the guard in
# `no_credentials` makes sure no request leaves anyway (credentials fail before any is sent).
NON_LOCAL = "http://aws.invalid:9"

# moto's CloudFormation skips the template's policies (imgproc.local_stack applies them).
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def live() -> Iterator[str]:
    """The embedded AWS, with a stack ``careless`` deployed as `imgproc up` does."""
    with embedded.EmbeddedAws(port=0) as server:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        local_stack.deploy_local(
            server.endpoint_url, region="us-east-1", stack_name="careless", overrides={}, progress=print
        )
        yield server.endpoint_url


@pytest.fixture
def dead(monkeypatch: pytest.MonkeyPatch) -> str:
    """An endpoint where nothing listens. botocore still makes every attempt the CLI's retry policy
    allows, without its random backoff (half a second a command, spent sleeping)."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
    return f"http://127.0.0.1:{closed_port()}"


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no 1 s wait for an instance role
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it caches the credentials it resolved

    def refuse_to_send(self: object, request: Any) -> None:
        raise AssertionError(f"a request was about to leave this machine: {request.url}")

    monkeypatch.setattr(botocore.httpsession.URLLib3Session, "send", refuse_to_send)


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    """``imgproc ARGV`` in-process: (exit status, stdout, stderr); argparse's exit counts as a status."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line(err: str, starts: str, contains: str = "") -> None:
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert err.endswith("\n"), err
    assert err.startswith(starts), err
    assert contains in err, err


# --- bad option values: exit 2, the subcommand's name, before anything starts --------------------

BAD_OPTIONS = [
    (["status", "--watch", "-1"], "imgproc status: argument --watch: must be a positive number"),
    (["status", "--bogus"], "imgproc status: unrecognized arguments: --bogus (see 'imgproc status --help')"),
    (["dlq", "inspect", "--samples", "x"], "imgproc dlq inspect: argument --samples"),
    (["dlq", "replay", "--rate", "0"], "imgproc dlq replay: argument --rate: must be a positive number"),
    (["dlq", "replay", "--older-than", "1h", "--newer-than", "1m"], "imgproc dlq replay: --older-than 1h"),
    (
        ["dlq", "replay", "--follow", "--follow-timeout", "0s"],
        "imgproc dlq replay: argument --follow-timeout: must be longer than 0s",
    ),
    (
        ["dlq", "replay", "--follow", "--follow-timeout", "300"],
        "imgproc dlq replay: argument --follow-timeout: '300' is not a duration such as 30s",
    ),
    (
        ["dlq", "replay", "--follow", "--follow-timeout", "soon"],
        "imgproc dlq replay: argument --follow-timeout: 'soon' is not a duration such as 30s",
    ),
    (
        ["dlq", "replay", "--follow", "--follow-timeout", "2d"],
        "imgproc dlq replay: argument --follow-timeout: at most 12h",
    ),
    (
        ["dlq", "replay", "--follow", "--follow-timeout", "-5m"],
        "imgproc dlq replay: argument --follow-timeout: expected one argument",
    ),
    (["dlq", "replay", "--follow", "--follow-timeout"], "imgproc dlq replay: argument --follow-timeout"),
    (["dlq", "replay", "--follow-timeout", "5m"], "imgproc dlq replay: --follow-timeout needs --follow"),
    (["dlq", "replay", "--follow", "--dry-run"], "imgproc dlq replay: --follow follows a real replay"),
    (["dlq", "purge", "--archive", "a.jsonl", "--no-archive"], "imgproc dlq purge: argument --no-archive"),
    (["dlq", "purge", "--visibility", "-5"], "imgproc dlq purge: argument --visibility"),
    (["dlq", "--bogus"], "imgproc dlq: unrecognized arguments: --bogus"),
    (["dlq", "purge", "--key"], "imgproc dlq purge: argument --key: expected one argument"),
    (
        ["dlq", "replay", "--native", "--key", "original/a.jpg"],
        "imgproc dlq replay: --native moves the whole queue: it cannot be combined with filters",
    ),
    (["backfill", "--since", "last tuesday"], "imgproc backfill: argument --since"),
    (["backfill", "--max-keys", "0"], "imgproc backfill: argument --max-keys: must be a positive number"),
    (["backfill", "--concurrency", "0"], "imgproc backfill: argument --concurrency: must be at least 1"),
    (["backfill", "--concurrency", "500"], "imgproc backfill: argument --concurrency: at most 32"),
    (
        ["backfill", "--concurrency", "many"],
        "imgproc backfill: argument --concurrency: 'many' is not a whole",
    ),
    (
        ["explain"],
        "imgproc explain: the following arguments are required: KEY (see 'imgproc explain --help')",
    ),
    (["explain", "original/a.jpg", "--since", "forever"], "imgproc explain: argument --since"),
    (
        ["enqueue"],
        "imgproc enqueue: the following arguments are required: KEY (see 'imgproc enqueue --help')",
    ),
    (["enqueue", "original/a.jpg", "--bogus"], "imgproc enqueue: unrecognized arguments: --bogus"),
    (["invoke", EVENT, "--env", "LOG_LEVEL"], "imgproc invoke: --env 'LOG_LEVEL' is not KEY=VALUE"),
    (["invoke", "/nonexistent/event.json"], "imgproc invoke: cannot read /nonexistent/event.json"),
    (["deploy", "-p", "Sizes=abc"], "imgproc deploy: Sizes='abc' does not match"),
    (["deploy", "--arch", "sparc"], "imgproc deploy: argument --arch: invalid choice: 'sparc'"),
    (["deploy", "--zip", "/nonexistent.zip"], "imgproc deploy: cannot read --zip /nonexistent.zip"),
    (["package", "--arch", "sparc"], "imgproc package: argument --arch: invalid choice: 'sparc'"),
    (["dashboard", "--output", "board.gif"], "imgproc dashboard: argument --output: 'board.gif'"),
    (["dashboard", "--window", "forever"], "imgproc dashboard: argument --window"),
    (["up", "--port", "http"], "imgproc up: argument --port: 'http' is not a port number"),
    (["up", "-p", "Quality=101"], "imgproc up: Quality='101' is above the maximum 100"),
    (["demo", "-p", "Colour=blue"], "imgproc demo: unknown parameter(s) Colour"),
    (["nonsense"], "imgproc: argument COMMAND: invalid choice: 'nonsense'"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_bad_option_values_exit_2_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, argv)
    assert code == 2
    assert out == ""
    assert_one_line(err, message)


# --- a dead endpoint: exit 1, fast -------------------------------------------------------------------

AWS_COMMANDS = [
    ["status"],
    ["dlq", "inspect"],
    ["dlq", "replay"],
    ["dlq", "replay", "--follow"],
    ["dlq", "purge", "--yes"],
    ["backfill"],
    ["explain", "original/a b+é.jpg"],
    ["enqueue", "original/a b+é.jpg"],
    ["invoke", EVENT],
    ["deploy", "--zip", EVENT],  # any bytes do: the endpoint is never reached
]
IDS = [" ".join(a[:2]) for a in AWS_COMMANDS]


@pytest.mark.parametrize("argv", AWS_COMMANDS, ids=IDS)
def test_a_dead_endpoint_exits_1_in_one_line(
    argv: list[str], dead: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, [*argv, "--endpoint-url", dead])
    assert code == 1
    assert out == ""
    assert f"cannot reach {dead}" in err  # every command says it the same way (toolkit.errors.aws_message)
    command = " ".join(a for a in argv[:2] if not a.startswith("-") and "/" not in a)  # no file or key
    assert_one_line(err, f"imgproc {command}: ")


def test_the_dashboard_is_drawn_without_the_endpoint_and_says_so(
    dead: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "logs").mkdir()
    output = tmp_path / "board.png"
    code, out, err = run(
        capsys, ["dashboard", "--state-dir", str(tmp_path), "--output", str(output), "--endpoint-url", dead]
    )
    assert code == 0
    assert output.stat().st_size > 0
    assert out.startswith(f"wrote {output}")
    assert_one_line(err, f"imgproc dashboard: queues unavailable: endpoint {dead} unreachable")


def test_the_dashboard_without_a_local_run_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, ["dashboard", "--state-dir", str(tmp_path / "none")])
    assert code == 1
    assert_one_line(err, "imgproc dashboard: no local run here")


# --- no credentials (against a non-local endpoint: the embedded AWS's are not injected) ---------------


@pytest.mark.parametrize("argv", AWS_COMMANDS, ids=IDS)
def test_missing_credentials_exit_1_in_one_line(
    argv: list[str], no_credentials: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, [*argv, "--endpoint-url", NON_LOCAL])
    assert code == 1
    assert out == ""
    assert "no AWS credentials found: set AWS_PROFILE" in err
    assert_one_line(err, "imgproc ")


# --- a missing stack: exit 1 everywhere (the environment is wrong, not the usage) ----------------------

STACK_COMMANDS = [argv for argv in AWS_COMMANDS if argv[0] != "deploy"]  # deploy creates it


@pytest.mark.parametrize("argv", STACK_COMMANDS, ids=IDS[: len(STACK_COMMANDS)])
def test_a_missing_stack_exits_1_in_one_line(
    argv: list[str], live: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, [*argv, "--endpoint-url", live, "--stack-name", "nope"])
    assert code == 1
    assert out == ""
    assert_one_line(err, "imgproc ", "stack 'nope' not found; deploy it with `imgproc deploy`")


def test_the_stack_is_there_for_the_other_commands(live: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The missing-stack cases fail for the name alone: the same commands work on the real stack."""
    code, out, err = run(capsys, ["status", "--endpoint-url", live, "--stack-name", "careless"])
    assert (code, err) == (0, "")
    assert out.startswith("stack careless")


def test_native_replay_on_the_embedded_aws_says_why_in_one_clean_line(
    live: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, ["dlq", "replay", "--native", "--endpoint-url", live, "--stack-name", "careless"]
    )
    assert code == 2
    assert out == ""
    assert_one_line(err, "imgproc dlq replay: native move not supported by this endpoint (")
    assert "<" not in err  # moto's HTML error page is reduced to its title
    assert err.endswith("run without --native to replay message by message\n")


def test_backfill_from_an_inventory_it_cannot_use_says_why_in_one_line(
    live: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A report that is not there, not CSV (S3 Inventory also writes ORC and Parquet) or not an
    inventory: exit 2, nothing sent."""
    s3 = boto3.client("s3", endpoint_url=live, region_name="us-east-1")
    s3.create_bucket(Bucket="careless-inventory")
    for fmt in ("ORC", "Parquet"):  # refused for their format, before anything else is looked at
        manifest = {"sourceBucket": "any", "fileFormat": fmt, "fileSchema": "Bucket, Key, Size", "files": []}
        s3.put_object(Bucket="careless-inventory", Key=f"{fmt}/manifest.json", Body=json.dumps(manifest))
    s3.put_object(Bucket="careless-inventory", Key="html/manifest.json", Body=b"<html>moved</html>")
    cases = [
        ("ORC/manifest.json", "is an inventory in ORC format: only CSV inventories can be read"),
        ("Parquet/manifest.json", "is an inventory in Parquet format: only CSV inventories can be read"),
        ("html/manifest.json", "is not an S3 Inventory manifest (manifest.json)"),
        ("nowhere/manifest.json", "no inventory manifest at s3://careless-inventory/nowhere/manifest.json"),
    ]
    for key, message in cases:
        argv = ["backfill", "--endpoint-url", live, "--stack-name", "careless"]
        code, out, err = run(capsys, [*argv, "--from-inventory", f"s3://careless-inventory/{key}"])
        assert (code, out) == (2, "")
        assert_one_line(err, "imgproc backfill: ", message)


# --- the boundary itself --------------------------------------------------------------------------------


def test_ctrl_c_exits_130_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    help_line, add_arguments, _ = cli.COMMANDS["invoke"]
    monkeypatch.setitem(cli.COMMANDS, "invoke", (help_line, add_arguments, interrupted))
    code, _, err = run(capsys, ["invoke", EVENT])
    assert code == 130
    assert err == "imgproc invoke: interrupted\n"


def test_a_closed_stdout_ends_the_command_without_a_word(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def piped_into_head(args: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    help_line, add_arguments, _ = cli.COMMANDS["invoke"]
    monkeypatch.setitem(cli.COMMANDS, "invoke", (help_line, add_arguments, piped_into_head))
    assert run(capsys, ["invoke", EVENT]) == (141, "", "")


def test_an_unexpected_error_is_one_line_unless_debugging(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: object) -> int:
        raise TypeError("'NoneType' object is not subscriptable")

    help_line, add_arguments, _ = cli.COMMANDS["invoke"]
    monkeypatch.setitem(cli.COMMANDS, "invoke", (help_line, add_arguments, broken))
    code, _, err = run(capsys, ["invoke", EVENT])
    assert code == 1
    assert_one_line(err, "imgproc invoke: unexpected TypeError: 'NoneType' object is not subscriptable")
    assert "IMGPROC_DEBUG=1" in err

    monkeypatch.setenv("IMGPROC_DEBUG", "1")
    with pytest.raises(TypeError):
        cli.main(["invoke", EVENT])


@pytest.mark.parametrize(
    ("error", "message", "code"),
    [
        (NoCredentialsError(), "no AWS credentials found", 1),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1/"), "cannot reach http://127.0.0.1:1/", 1),
        (
            ClientError(
                {
                    "Error": {
                        "Code": "500",
                        "Message": "<!doctype html>\n<html><title>500 Internal Server Error</title>"
                        "<h1>Internal Server Error</h1><p>The server encountered an error</p></html>",
                    }
                },
                "StartMessageMoveTask",
            ),
            "AWS refused (StartMessageMoveTask): 500: 500 Internal Server Error",
            1,
        ),
        (
            subprocess.CalledProcessError(
                1, ["/venv/bin/python", "-m", "pip", "install", "--quiet", "boto3"]
            ),
            "`python -m pip install …` failed with exit status 1 (its output is above)",
            1,
        ),
        (boundary.UsageError("-p 'x' is not KEY=VALUE"), "-p 'x' is not KEY=VALUE", 2),
        (FileNotFoundError(2, "No such file or directory", "dist/x.zip"), "dist/x.zip: No such file", 1),
    ],
)
def test_describe_gives_one_clean_line_and_the_documented_status(
    error: BaseException, message: str, code: int
) -> None:
    text, status_code = boundary.describe(error)
    assert text.startswith(message)
    assert "\n" not in text
    assert status_code == code


# --- through the real entry point -------------------------------------------------------------------


def imgproc(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENTRY_POINT), *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env or dict(os.environ),
    )


@pytest.mark.slow
def test_the_entry_point_exits_with_the_documented_statuses(live: str, dead: str, tmp_path: Path) -> None:
    result = imgproc("status", "--bogus")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "imgproc status: unrecognized arguments: --bogus (see 'imgproc status --help')\n"

    result = imgproc("invoke", EVENT, "--endpoint-url", live, "--stack-name", "nope")
    assert result.returncode == 1
    assert result.stderr == "imgproc invoke: stack 'nope' not found; deploy it with `imgproc deploy`\n"

    result = imgproc("backfill", "--endpoint-url", dead)
    assert result.returncode == 1
    assert_one_line(result.stderr, "imgproc backfill: cannot reach ")

    bare = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    bare |= {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = imgproc("dlq", "inspect", "--endpoint-url", NON_LOCAL, env=bare)
    assert result.returncode == 1
    assert "credentials" in result.stderr
    assert_one_line(result.stderr, "imgproc dlq inspect: ")


@pytest.mark.slow
@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
def test_a_closed_stdout_ends_the_command_silently_with_141(live: str, buffered: bool) -> None:
    """`imgproc backfill --dry-run | head -1`, the reader gone before the output is written: no
    message (not even Python's "Exception ignored ... BrokenPipeError" at exit), the status a shell
    gives a writer that SIGPIPE killed."""
    read, write = os.pipe()
    os.close(read)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"} | (
        {} if buffered else {"PYTHONUNBUFFERED": "1"}
    )
    try:
        result = subprocess.run(
            [str(ENTRY_POINT), "backfill", "--dry-run", "--endpoint-url", live, "--stack-name", "careless"],
            check=False,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env=env,
        )
    finally:
        os.close(write)
    assert (result.returncode, result.stderr) == (entry.EXIT_BROKEN_PIPE, "")


@pytest.mark.slow
def test_a_failing_pip_in_package_ends_in_one_line_of_ours(tmp_path: Path) -> None:
    """pip's output is kept out; its reason is in our one line (which requirement failed), no traceback."""
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""}  # nothing to install from: pip fails
    result = imgproc("package", "--output", str(tmp_path / "f.zip"), env=env)
    assert result.returncode == 1
    progress, error = result.stderr.splitlines()  # what it was doing, then why it stopped
    assert progress.startswith("building ")
    assert_one_line(error + "\n", "imgproc package: pip could not install ", "Could not find a version")
    assert not (tmp_path / "f.zip").exists()


HELP = [[name] for name in cli.COMMANDS if name != "dlq"] + [
    ["dlq", a] for a in ("inspect", "replay", "purge")
]


@pytest.mark.parametrize("argv", HELP, ids=[" ".join(a) for a in HELP])
def test_every_command_documents_its_exit_statuses(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, [*argv, "--help"])
    assert code == 0
    text = " ".join(out.split())
    assert "Exit status: 0" in text
    assert " 1 " in text.split("Exit status:")[1]
