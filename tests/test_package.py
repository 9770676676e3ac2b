"""The Lambda zip: built from Linux wheels for the target, and runnable with nothing else on the path."""

from __future__ import annotations

import io
import json
import os
import platform
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import imagegen
import pytest
from conftest import s3_body, s3_record, sqs_event, sqs_record
from moto.server import ThreadedMotoServer
from PIL import Image

from imgproc import package

ELF_MACHINE = {"x86_64": 0x3E, "aarch64": 0xB7}


def elf_machine(data: bytes) -> int:
    assert data[:4] == b"\x7fELF"
    return int.from_bytes(data[18:20], "little")


@pytest.fixture(scope="module")
def arm64_zip(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    path = tmp_path_factory.mktemp("arm64") / "function.zip"
    package.build(path, platforms=package.ARCHITECTURES["arm64"], python_version="3.12")
    return zipfile.ZipFile(path)


def test_arm64_zip_holds_linux_aarch64_binaries_for_the_lambda_python(arm64_zip: zipfile.ZipFile) -> None:
    names = arm64_zip.namelist()
    imaging = [n for n in names if n.startswith("PIL/_imaging.") and n.endswith(".so")]
    assert imaging == ["PIL/_imaging.cpython-312-aarch64-linux-gnu.so"]
    assert elf_machine(arm64_zip.read(imaging[0])) == ELF_MACHINE["aarch64"]


def test_zip_holds_only_what_the_function_needs(arm64_zip: zipfile.ZipFile) -> None:
    tops = {name.split("/")[0] for name in arm64_zip.namelist()}
    assert {"processor", "observability", "PIL", "structlog", "aws_xray_sdk", "boto3", "botocore"} <= tops
    assert not tops & {"imgproc", "dlq_replayer", "tests", "moto", "pytest", "benchmarks", "infra"}
    assert "processor/handler.py" in arm64_zip.namelist()
    assert "observability/metrics.py" in arm64_zip.namelist()
    assert not set(package.NOT_IN_FUNCTION) & set(arm64_zip.namelist())
    assert not [n for n in arm64_zip.namelist() if n.endswith(".pyc") or "__pycache__" in n]
    models = {
        n.split("/")[2] for n in arm64_zip.namelist() if n.startswith("botocore/data/") and n.count("/") > 2
    }
    assert models == set(package.BOTOCORE_SERVICES)


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


def test_the_unzipped_function_runs_alone_against_moto(moto_server: str, tmp_path: Path) -> None:
    machine = platform.machine()
    platforms = (f"manylinux2014_{machine}", f"manylinux_2_28_{machine}")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    artifact = package.build(tmp_path / "function.zip", platforms=platforms, python_version=python)
    folder = _extract(zipfile.ZipFile(artifact.path), tmp_path / "function")

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
