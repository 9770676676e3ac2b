"""`imgproc package`: build the Lambda zip for Linux and the chosen architecture.

The zip holds the function's own packages (``processor``, ``observability``) and its dependencies as
manylinux wheels for the target CPU and Python (never this machine's), pinned to the versions
installed here, which are the versions the tests ran against.  botocore is cut down to the service
models the function calls: its full model set is most of the zip's weight.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FUNCTION_PACKAGES = ("processor", "observability")
# Operators' side of observability/: the dashboard definitions (they need PyYAML) and the local view.
NOT_IN_FUNCTION = ("observability/dashboard.py", "observability/local_dashboard.py")
# Runtime dependencies of the function (boto3 is pinned rather than taken from the Lambda runtime,
# so the function runs the SDK it was tested with).
REQUIREMENTS = ("boto3", "Pillow", "aws-xray-sdk", "structlog")
# botocore service models the function may call; everything else under botocore/data is dropped.
BOTOCORE_SERVICES = ("s3", "sqs", "sns", "dynamodb", "sts", "xray")
ARCHITECTURES = {
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
}
_DROP_DIRS = {"__pycache__", "tests", "bin"}
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # zip entries are timestamped alike: same inputs, same bytes


@dataclass(frozen=True)
class Artifact:
    path: Path
    size: int
    sha256: str
    files: int


def pinned_requirements() -> list[str]:
    """The runtime requirements at the versions installed here (unpinned if not installed)."""
    pins = []
    for name in REQUIREMENTS:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pins.append(name)
    return pins


def install_dependencies(target: Path, *, platforms: tuple[str, ...], python_version: str) -> None:
    """pip-install the pinned requirements as binary wheels for ``platforms`` into ``target``."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
        *(arg for platform in platforms for arg in ("--platform", platform)),
        *pinned_requirements(),
    ]
    subprocess.run(command, check=True, env={**os.environ, "PIP_NO_INPUT": "1"})


def prune(root: Path) -> None:
    """Drop what the function never loads: caches, tests, scripts, stubs, unused botocore models."""
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_dir() and path.name in _DROP_DIRS:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix in {".pyc", ".pyi"}:
            path.unlink()
    data = root / "botocore" / "data"
    if data.is_dir():
        for entry in data.iterdir():
            if entry.is_dir() and entry.name not in BOTOCORE_SERVICES:
                shutil.rmtree(entry)


def copy_function_code(target: Path) -> None:
    for package in FUNCTION_PACKAGES:
        shutil.copytree(
            PROJECT_ROOT / package,
            target / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    for relative in NOT_IN_FUNCTION:
        (target / relative).unlink()


def write_zip(source: Path, output: Path) -> Artifact:
    """A deterministic zip of ``source`` (sorted entries, fixed timestamps, fixed permissions)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in source.rglob("*") if p.is_file())
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    return Artifact(path=output, size=output.stat().st_size, sha256=digest, files=len(files))


def build(output: Path, *, platforms: tuple[str, ...], python_version: str) -> Artifact:
    with tempfile.TemporaryDirectory(prefix="imgproc-package-") as tmp:
        staging = Path(tmp)
        install_dependencies(staging, platforms=platforms, python_version=python_version)
        prune(staging)
        copy_function_code(staging)
        return write_zip(staging, output)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="arm64", help="Lambda architecture")
    parser.add_argument("--python-version", default="3.12", help="Lambda runtime's Python (default 3.12)")
    parser.add_argument(
        "--platform",
        action="append",
        help="pip platform tag(s) to build for, overriding --arch (e.g. for a local test build)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("dist/imgproc-lambda.zip"),
        help="zip to write (default dist/imgproc-lambda.zip)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    platforms = tuple(args.platform) if args.platform else ARCHITECTURES[args.arch]
    print(f"building {args.output} for {', '.join(platforms)}, Python {args.python_version}", file=sys.stderr)
    artifact = build(args.output, platforms=platforms, python_version=args.python_version)
    if args.json:
        print(json.dumps({"path": str(artifact.path), "bytes": artifact.size, "sha256": artifact.sha256}))
    else:
        print(
            f"{artifact.path}: {artifact.size / 1_048_576:.1f} MiB, {artifact.files} files, "
            f"sha256 {artifact.sha256[:16]}"
        )
    return 0
