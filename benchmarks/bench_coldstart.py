"""Benchmark: the handler's import time from the unzipped Lambda package, as Lambda's init pays it.

Builds the package for this machine's platform and Python (``imgproc package``'s builder: the same
allow-listed modules and locked wheels, only the platform tags differ from the arm64 build), unzips
it into a temporary directory and runs ``python -S -X importtime -c "import processor.handler"``
with that directory as the only path besides the standard library (no site-packages), twice over:
- without bytecode: the zip ships no ``.pyc`` and Lambda's ``/var/task`` is read-only, so this is
  what a cold start there compiles and imports;
- with bytecode cached (a first run wrote ``__pycache__``): the import proper, the 300 ms target.
Also times the first invocation's set-up (``handler.runtime()``: configuration, logging, the
clients), which a cold start adds before its first record. Prints medians, and the top imports by
cumulative time of the median cached run.

    python benchmarks/bench_coldstart.py [--runs 7] [--top 15] [--zip existing.zip]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from imgproc import package  # noqa: E402

TARGET_MS = 300.0

# The first invocation's set-up, after the import: what the cold start adds before the first record.
RUNTIME = """
import time
started = time.perf_counter()
import processor.handler as h
imported = time.perf_counter()
h.runtime()
print((imported - started) * 1000, (time.perf_counter() - imported) * 1000)
"""


def local_platforms() -> tuple[str, ...]:
    machine = {"aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "x86_64")
    return package.ARCHITECTURES[machine]


def build_and_unzip(target: Path, zip_path: Path | None) -> Path:
    if zip_path is None:
        zip_path = target / "imgproc-lambda.zip"
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        package.build(zip_path, platforms=local_platforms(), python_version=version)
    root = target / "task"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(root)
    return root


def _env(root: Path) -> dict[str, str]:
    return {
        "PYTHONPATH": str(root),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LAMBDA_TASK_ROOT": str(root),  # as in Lambda (tracing decides at runtime(), not at import)
        "AWS_LAMBDA_FUNCTION_NAME": "imgproc-bench",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",  # fake: nothing is called
        "AWS_SECRET_ACCESS_KEY": "testing",
        "DEST_BUCKET": "bench-dest",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }


def cpu_ms(root: Path, code: str) -> float:
    """User + system CPU time of an interpreter running ``code`` (cached bytecode): unlike the wall
    times of ``-X importtime``, it does not grow when other processes share the cores."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-S", "-c", code], env=_env(root), check=True, cwd=root)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000


def importtime(root: Path, *, bytecode: bool) -> list[tuple[int, int, str]]:
    """``(self µs, cumulative µs, module)`` per line of one ``-X importtime`` run."""
    env = _env(root) if bytecode else {**_env(root), "PYTHONDONTWRITEBYTECODE": "1"}
    completed = subprocess.run(
        [sys.executable, "-S", "-X", "importtime", "-c", "import processor.handler"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    )
    rows = []
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|")
        rows.append((int(self_us), int(cumulative_us), name.rstrip()))
    return rows


def _total_ms(run: list[tuple[int, int, str]]) -> float:
    return sum(self_us for self_us, _, _ in run) / 1000


def runtime_ms(root: Path) -> tuple[float, float]:
    completed = subprocess.run(
        [sys.executable, "-S", "-c", RUNTIME],
        env=_env(root),
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    )
    imported, setup = completed.stdout.split()
    return float(imported), float(setup)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="interpreters to time (default 7)")
    parser.add_argument("--top", type=int, default=15, help="imports to list (default 15)")
    parser.add_argument(
        "--zip", type=Path, help="an already built zip for this platform (default: build one)"
    )
    args = parser.parse_args()
    if args.runs < 1 or args.top < 1:
        parser.error("--runs and --top must be >= 1")

    with tempfile.TemporaryDirectory(prefix="imgproc-coldstart-") as tmp:
        print(f"building the package for {', '.join(local_platforms())}", file=sys.stderr)
        root = build_and_unzip(Path(tmp), args.zip)
        source_runs = [importtime(root, bytecode=False) for _ in range(args.runs)]
        importtime(root, bytecode=True)  # writes __pycache__
        runs = [importtime(root, bytecode=True) for _ in range(args.runs)]
        setups = [runtime_ms(root) for _ in range(args.runs)]
        cpu = [cpu_ms(root, "import processor.handler") - cpu_ms(root, "pass") for _ in range(args.runs)]

    totals = [_total_ms(run) for run in runs]
    median_run = runs[totals.index(sorted(totals)[len(totals) // 2])]
    total = statistics.median(totals)
    from_source = statistics.median(_total_ms(run) for run in source_runs)
    setup = statistics.median(s for _, s in setups)
    import_cpu = statistics.median(cpu)
    verdict = "pass" if import_cpu < TARGET_MS else "FAIL"
    print(f"import processor.handler from the unzipped package, python -S, median of {args.runs}")
    print(f"without bytecode (what Lambda runs: no .pyc in the zip): {from_source:.1f} ms")
    print(f"with bytecode cached: {total:.1f} ms wall")
    print(
        f"with bytecode cached, CPU time (user+sys, minus an empty interpreter's): {import_cpu:.1f} ms "
        f"(target < {TARGET_MS:.0f} ms: {verdict}; the wall times above grow with the machine's load)"
    )
    print(f"first invocation's set-up (handler.runtime(): config, logging, clients): {setup:.1f} ms\n")
    print(f"| module (top {args.top} by cumulative time) | cumulative ms | self ms |")
    print("| --- | --- | --- |")
    for self_us, cumulative_us, name in sorted(median_run, key=lambda r: -r[1])[: args.top]:
        print(f"| `{name.strip()}` | {cumulative_us / 1000:.1f} | {self_us / 1000:.1f} |")
    return 0 if verdict == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
