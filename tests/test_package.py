"""The Lambda zip: built from Linux wheels for the target, and runnable with nothing else on the path."""

from __future__ import annotations

import io
import json
import os
import platform
import re
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from importlib.metadata import version as metadata_version
from importlib.util import cache_from_source
from pathlib import Path

import boto3
import imagegen
import pytest
from conftest import s3_body, s3_record, sqs_event, sqs_record
from moto.server import ThreadedMotoServer
from PIL import Image

from imgproc import cli, package

pytestmark = pytest.mark.slow

LOCK_INPUT = package.PROJECT_ROOT / "requirements" / "function.in"
# The project's own top-level packages (setup.cfg's packages.find).
FIRST_PARTY = {p.name for p in package.PROJECT_ROOT.iterdir() if (p / "__init__.py").is_file()}
ELF_MACHINE = {"x86_64": 0x3E, "aarch64": 0xB7}
# This machine's platform and Python: a build the tests can run, and the one that ships bytecode.
LOCAL_PLATFORMS = (f"manylinux2014_{platform.machine()}", f"manylinux_2_28_{platform.machine()}")
LOCAL_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
# The default build (Python 3.12) cannot ship bytecode when the tests run on another Python.
RUNTIME_ELSEWHERE = not package.can_compile_for("3.12")


# -I leaves the current directory off sys.path: the package's folder is the first argument.
IMPORT_FROM_ARGV = "import sys; sys.path.insert(0, sys.argv[1]); import processor.handler"


def sources(names: list[str]) -> list[str]:
    """The entries of a zip that are not compiled bytecode (what the allow-list is about)."""
    return [name for name in names if "__pycache__/" not in name]


def elf_machine(data: bytes) -> int:
    assert data[:4] == b"\x7fELF"
    return int.from_bytes(data[18:20], "little")


def run_package(*options: str) -> subprocess.CompletedProcess[str]:
    """`imgproc package` run as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "imgproc.cli", "package", *options],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def arm64_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`imgproc package` run as an operator runs it (the default arm64 target), once per module."""
    path = tmp_path_factory.mktemp("arm64") / "function.zip"
    return path, run_package("--output", str(path))


@pytest.fixture(scope="module")
def local_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A build for this machine's platform and Python (so with bytecode), once per module."""
    path = tmp_path_factory.mktemp("local") / "function.zip"
    platforms = [arg for platform_tag in LOCAL_PLATFORMS for arg in ("--platform", platform_tag)]
    return path, run_package(*platforms, "--python-version", LOCAL_PYTHON, "--output", str(path))


@pytest.fixture(scope="module")
def local_zip(local_build: tuple[Path, subprocess.CompletedProcess[str]]) -> zipfile.ZipFile:
    path, completed = local_build
    assert completed.returncode == 0, completed.stderr
    return zipfile.ZipFile(path)


@pytest.fixture(scope="module")
def arm64_zip(arm64_build: tuple[Path, subprocess.CompletedProcess[str]]) -> zipfile.ZipFile:
    path, completed = arm64_build
    assert completed.returncode == 0, completed.stderr
    return zipfile.ZipFile(path)


def test_package_prints_its_result_and_nothing_of_pips(
    arm64_build: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    path, completed = arm64_build
    assert completed.returncode == 0, completed.stderr
    note = [f"imgproc package: {package.bytecode_note('3.12')}"] if RUNTIME_ELSEWHERE else []
    assert completed.stderr.splitlines() == [
        f"building {path} for manylinux2014_aarch64, manylinux_2_28_aarch64, Python 3.12",
        *note,
    ]
    assert completed.stdout.startswith(f"{path}: ")
    assert len(completed.stdout.splitlines()) == 1


def test_zip_holds_exactly_the_locked_distributions(arm64_zip: zipfile.ZipFile) -> None:
    locked = package.locked_versions()
    assert {"boto3", "botocore", "urllib3", "pillow", "aws-xray-sdk", "wrapt", "structlog"} <= set(locked)
    assert package.zip_distributions(arm64_zip) == locked


def test_test_venv_runs_the_locked_versions() -> None:
    """The suite's venv (Makefile, installed from the lock) holds every locked package at its version."""
    locked = package.locked_versions()
    assert locked
    installed = {name: metadata_version(name) for name in locked}
    assert installed == locked


def test_lock_is_complete_hashed_and_means_the_same_on_every_platform() -> None:
    text = package.LOCK.read_text(encoding="utf-8")
    entries = [entry for entry in text.replace("\\\n", " ").splitlines() if entry and entry[0].isalnum()]
    assert len(entries) == len(package.locked_versions())
    for entry in entries:
        assert "--hash=sha256:" in entry, entry  # pip's --require-hashes in package and the Makefile
        # `pip install --target --platform` evaluates markers for this machine, not the target's.
        assert ";" not in entry, entry
    direct = [line.split("#")[0].strip() for line in LOCK_INPUT.read_text(encoding="utf-8").splitlines()]
    names = {package.canonical_name(re.split(r"[<>=!~ \[]", line)[0]) for line in direct if line}
    assert names
    assert names <= set(package.locked_versions()), "requirements/function.in changed: run make lock"


@pytest.mark.parametrize(
    ("lock_text", "reason"),
    [
        ("not a requirement ~~\n", "Invalid requirement"),
        (None, "is missing (run `make lock`)"),
    ],
)
def test_a_failing_install_ends_in_one_line_and_exit_1(
    lock_text: str | None,
    reason: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lock = tmp_path / "function.txt"
    if lock_text is not None:
        lock.write_text(lock_text)
    monkeypatch.setattr(package, "LOCK", lock)

    assert cli.main(["package", "--output", str(tmp_path / "f.zip")]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    building, failure = err.splitlines()
    assert building.startswith("building ")
    assert failure.startswith("imgproc package: ")
    assert reason in failure
    assert not (tmp_path / "f.zip").exists()


def test_arm64_zip_holds_linux_aarch64_binaries_for_the_lambda_python(arm64_zip: zipfile.ZipFile) -> None:
    names = arm64_zip.namelist()
    imaging = [n for n in names if n.startswith("PIL/_imaging.") and n.endswith(".so")]
    assert imaging == ["PIL/_imaging.cpython-312-aarch64-linux-gnu.so"]
    assert elf_machine(arm64_zip.read(imaging[0])) == ELF_MACHINE["aarch64"]
    # libspng's binding, from a manylinux_2_28 wheel (the PNG decoder of processor/imaging/png.py)
    assert "_pyspng_c.cpython-312-aarch64-linux-gnu.so" in names
    assert elf_machine(arm64_zip.read("_pyspng_c.cpython-312-aarch64-linux-gnu.so")) == ELF_MACHINE["aarch64"]


def test_arm64_zip_holds_pillow_heif_and_the_libraries_its_wheel_bundles(arm64_zip: zipfile.ZipFile) -> None:
    """HEIC sources: pillow-heif's extension and the libheif, libde265 (decoder) and libx265 (which
    libheif links) it loads from pillow_heif.libs/, all built for aarch64."""
    names = arm64_zip.namelist()
    extension = [n for n in names if n.startswith("_pillow_heif.") and n.endswith(".so")]
    assert extension == ["_pillow_heif.cpython-312-aarch64-linux-gnu.so"]
    libraries = [n for n in names if n.startswith("pillow_heif.libs/")]
    assert {n.split("/")[1].split("-")[0] for n in libraries} == {"libheif", "libde265", "libx265"}
    for name in extension + libraries:
        assert elf_machine(arm64_zip.read(name)) == ELF_MACHINE["aarch64"], name


def test_zip_holds_only_what_the_function_needs(arm64_zip: zipfile.ZipFile) -> None:
    tops = {name.split("/")[0] for name in arm64_zip.namelist()}
    assert {"processor", "observability", "PIL", "structlog", "aws_xray_sdk", "boto3", "botocore"} <= tops
    assert "pillow_heif" in tops  # HEIC sources
    assert not tops & {"imgproc", "dlq_replayer", "backfill", "toolkit", "tests", "moto", "pytest"}
    assert not tops & {"benchmarks", "infra"}
    assert "processor/handler.py" in arm64_zip.namelist()
    assert "observability/metrics.py" in arm64_zip.namelist()
    first_party = {n for n in sources(arm64_zip.namelist()) if n.split("/")[0] in FIRST_PARTY}
    allowed = {p.relative_to(package.PROJECT_ROOT).as_posix() for p in package.function_modules().values()}
    assert first_party == allowed
    models = {
        n.split("/")[2] for n in arm64_zip.namelist() if n.startswith("botocore/data/") and n.count("/") > 2
    }
    assert models == set(package.BOTOCORE_SERVICES)


def test_the_allow_list_is_the_handler_and_what_it_imports() -> None:
    modules = package.function_modules()
    assert {"processor.handler", "processor", "observability", "observability.metrics"} <= set(modules)
    assert not [name for name in modules if name.startswith("observability.dashboards")]
    assert {name.split(".")[0] for name in modules} == {"processor", "observability"}


def test_the_function_code_imports_exactly_the_allow_list(tmp_path: Path) -> None:
    """Imported with only the function's code and the dependencies on the path (no project, no editable
    install), the handler loads every first-party module of the zip, and none from elsewhere."""
    folder = tmp_path / "function"
    copied = package.copy_function_code(folder)
    dependencies = [p for p in sys.path if p.endswith("site-packages")]
    script = (
        "import json, sys; sys.path[:0] = [sys.argv[1]]; sys.path += json.loads(sys.argv[2]); "
        "import processor.handler; "
        "print(json.dumps({n: getattr(m, '__file__', None) for n, m in sys.modules.items()}))"
    )
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, str(folder), json.dumps(dependencies)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    loaded = json.loads(completed.stdout)
    ours = {name: path for name, path in loaded.items() if name.split(".")[0] in FIRST_PARTY}
    assert sorted(ours) == sorted(copied)
    assert all(Path(path).is_relative_to(folder) for path in ours.values())


def test_zip_bytes_do_not_depend_on_file_times(arm64_zip: zipfile.ZipFile, tmp_path: Path) -> None:
    first = _extract(arm64_zip, tmp_path / "x")
    second = _extract(arm64_zip, tmp_path / "y")
    for path in second.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))
    assert (
        package.write_zip(first, tmp_path / "a.zip").sha256
        == package.write_zip(second, tmp_path / "b.zip").sha256
    )


def _extract(archive: zipfile.ZipFile, folder: Path) -> Path:
    archive.extractall(folder)
    return folder


def test_a_build_for_this_python_ships_a_pyc_beside_every_py(
    local_build: tuple[Path, subprocess.CompletedProcess[str]], local_zip: zipfile.ZipFile
) -> None:
    path, completed = local_build
    assert completed.stderr.splitlines() == [
        f"building {path} for {', '.join(LOCAL_PLATFORMS)}, Python {LOCAL_PYTHON}"
    ]
    names = local_zip.namelist()
    py = [n for n in names if n.endswith(".py")]
    assert sorted(n for n in names if n.endswith(".pyc")) == sorted(cache_from_source(n) for n in py)
    closure = [p.relative_to(package.PROJECT_ROOT).as_posix() for p in package.function_modules().values()]
    assert {cache_from_source(n) for n in closure} <= set(names)
    # unchecked hash-based (PEP 552 flags 0b01): loaded without a look at the source or its mtime
    assert {local_zip.read(cache_from_source(n))[4:8] for n in closure} == {b"\x01\x00\x00\x00"}


def test_the_unzipped_handler_is_imported_from_bytecode_compiling_nothing(
    local_zip: zipfile.ZipFile, tmp_path: Path
) -> None:
    """As in Lambda: a read-only folder, and -B (root writes to read-only folders anyway). Python's -v
    names the file each module's code object came from: the .py when it compiled it."""
    folder = _extract(local_zip, tmp_path / "task")
    before = sorted(folder.rglob("*"))
    subprocess.run(["chmod", "-R", "a-w", str(folder)], check=True)
    try:
        completed = subprocess.run(
            [sys.executable, "-I", "-S", "-B", "-v", "-c", IMPORT_FROM_ARGV, str(folder)],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(folder)], check=True)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert sorted(folder.rglob("*")) == before
    origins = [
        line.removeprefix("# code object from ").strip("'")
        for line in completed.stderr.splitlines()
        if line.startswith("# code object from ")
    ]
    ours = [origin for origin in origins if Path(origin).is_relative_to(folder)]
    assert [origin for origin in ours if not origin.endswith(".pyc")] == []
    closure = [folder / p.relative_to(package.PROJECT_ROOT) for p in package.function_modules().values()]
    assert {cache_from_source(str(p)) for p in closure} <= set(ours)
    assert len(ours) > len(closure)  # the dependencies' modules too (botocore, PIL, structlog...)


def test_the_bytecode_is_the_same_bytes_for_the_same_sources(tmp_path: Path) -> None:
    """Compiled in another folder (a build's random staging directory) and another process state."""
    compiled = []
    for name in ("a", "b"):
        package.copy_function_code(tmp_path / name)
        package.compile_bytecode(tmp_path / name)
        compiled.append(
            {p.relative_to(tmp_path / name): p.read_bytes() for p in (tmp_path / name).rglob("*.pyc")}
        )
    assert compiled[0]
    assert compiled[0] == compiled[1]


def test_no_bytecode_opts_out(tmp_path: Path) -> None:
    path = tmp_path / "function.zip"
    platforms = [arg for platform_tag in LOCAL_PLATFORMS for arg in ("--platform", platform_tag)]
    completed = run_package(
        *platforms, "--python-version", LOCAL_PYTHON, "--no-bytecode", "--output", str(path)
    )
    assert completed.returncode == 0, completed.stderr
    assert len(completed.stderr.splitlines()) == 1  # "building ...", and no note about bytecode
    assert sources(zipfile.ZipFile(path).namelist()) == zipfile.ZipFile(path).namelist()


@pytest.mark.skipif(not RUNTIME_ELSEWHERE, reason="the tests run on the runtime's Python (3.12)")
def test_a_build_for_another_python_ships_no_bytecode(arm64_zip: zipfile.ZipFile) -> None:
    """The note saying so is in test_package_prints_its_result_and_nothing_of_pips."""
    assert not [n for n in arm64_zip.namelist() if n.endswith(".pyc") or "__pycache__" in n]


@pytest.fixture
def moto_server() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_the_unzipped_function_runs_alone_against_moto(
    moto_server: str, local_zip: zipfile.ZipFile, tmp_path: Path
) -> None:
    # The same lock serves this machine's platform and Python, not only Lambda's.
    assert package.zip_distributions(local_zip) == package.locked_versions()
    folder = _extract(local_zip, tmp_path / "function")

    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1")
    s3.create_bucket(Bucket="src")
    s3.create_bucket(Bucket="dst")
    dlq_url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    s3.put_object(Bucket="src", Key="original/a.jpg", Body=imagegen.photo_jpeg(640, 480))
    event = sqs_event(sqs_record(s3_body(s3_record("original/a.jpg", bucket="src")), "m-1"))
    (tmp_path / "event.json").write_text(json.dumps(event))

    # -I: ignore PYTHON* variables and the user site; -S: no site-packages at all. Only the zip's folder.
    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); "
        "from processor.handler import lambda_handler; "
        "print(json.dumps(lambda_handler(json.load(open(sys.argv[2])), None)))"
    )
    env = {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "DEST_BUCKET": "dst",
        "DLQ_URL": dlq_url,
    }
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, str(folder), str(tmp_path / "event.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == {"batchItemFailures": []}
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="dst")["Contents"])
    assert keys == ["resized/100x100/a.jpg", "resized/300x300/a.jpg"]
    body = s3.get_object(Bucket="dst", Key="resized/300x300/a.jpg")["Body"].read()
    assert Image.open(io.BytesIO(body)).size == (300, 225)
