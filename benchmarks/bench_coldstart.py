"""Benchmark: the handler's import time from the unzipped Lambda package, as Lambda's init pays it.

Builds the package for this machine's platform and Python (``imgproc package``'s builder: the same
allow-listed modules and locked wheels, only the platform tags differ from the arm64 build), unzips
it into a temporary directory and runs ``python -S -X importtime -c "import processor.handler"``
with that directory as the only path besides the standard library (no site-packages), twice over:
- as shipped, writing nothing (``PYTHONDONTWRITEBYTECODE``): Lambda's ``/var/task`` is read-only,
  so this is what a cold start there pays: it compiles every module unless the zip ships its
  ``.pyc`` (``imgproc package`` does when built on the runtime's Python; ``--no-bytecode`` not);
- with bytecode cached (a first run wrote ``__pycache__`` where the zip had none): the import
  proper, the 300 ms target.
Also times the first invocation's set-up (``handler.runtime()``: configuration, logging, the
clients), which a cold start adds before its first record. Prints medians, and the top imports by
cumulative time of the median cached run.

    python benchmarks/bench_coldstart.py [--runs 7] [--top 15] [--zip this.zip] [--baseline-zip main.zip]
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
from dataclasses import dataclass, field
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
    target.mkdir(parents=True, exist_ok=True)
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


@dataclass
class Figures:
    """One package's measurements, each a list over the runs."""

    from_source: list[float] = field(default_factory=list)  # import wall ms, as shipped, nothing written
    cached: list[list[tuple[int, int, str]]] = field(default_factory=list)  # -X importtime rows
    cpu: list[float] = field(default_factory=list)  # import CPU ms, bytecode cached
    setup: list[float] = field(default_factory=list)  # runtime() wall ms

    def rows(self) -> dict[str, float]:
        return {
            "import as shipped, nothing written (what Lambda runs), wall ms": statistics.median(
                self.from_source
            ),
            "import, bytecode cached, wall ms": statistics.median(_total_ms(r) for r in self.cached),
            "import, bytecode cached, CPU ms (user+sys)": statistics.median(self.cpu),
            "first invocation's runtime() (config, logging, clients), wall ms": statistics.median(self.setup),
        }

    def median_run(self) -> list[tuple[int, int, str]]:
        totals = [_total_ms(run) for run in self.cached]
        return self.cached[totals.index(sorted(totals)[len(totals) // 2])]


def measure(roots: list[Path], runs: int) -> list[Figures]:
    """Every figure of every package, the packages taking turns run by run: the machine's load drifts
    alike for all of them."""
    figures = [Figures() for _ in roots]
    for _ in range(runs):
        for root, fig in zip(roots, figures, strict=True):
            fig.from_source.append(_total_ms(importtime(root, bytecode=False)))
    for root in roots:
        importtime(root, bytecode=True)  # writes __pycache__
    for _ in range(runs):
        for root, fig in zip(roots, figures, strict=True):
            fig.cached.append(importtime(root, bytecode=True))
            fig.cpu.append(cpu_ms(root, "import processor.handler") - cpu_ms(root, "pass"))
            fig.setup.append(runtime_ms(root)[1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="interpreters to time (default 7)")
    parser.add_argument("--top", type=int, default=15, help="imports to list (default 15)")
    parser.add_argument(
        "--zip", type=Path, help="an already built zip for this platform (default: build one)"
    )
    parser.add_argument(
        "--baseline-zip", type=Path, help="another build (say main's) to measure in the same run, for ratios"
    )
    args = parser.parse_args()
    if args.runs < 1 or args.top < 1:
        parser.error("--runs and --top must be >= 1")

    with tempfile.TemporaryDirectory(prefix="imgproc-coldstart-") as tmp:
        if args.zip is None:
            print(f"building the package for {', '.join(local_platforms())}", file=sys.stderr)
        roots = [build_and_unzip(Path(tmp) / "this", args.zip)]
        if args.baseline_zip is not None:
            roots.append(build_and_unzip(Path(tmp) / "baseline", args.baseline_zip))
        figures = measure(roots, args.runs)

    this = figures[0]
    import_cpu = statistics.median(this.cpu)
    verdict = "pass" if import_cpu < TARGET_MS else "FAIL"
    print(f"import processor.handler from the unzipped package, python -S, median of {args.runs}\n")
    if len(figures) == 2:
        baseline = figures[1].rows()
        print("| figure | baseline | this tree | ratio |")
        print("| --- | --- | --- | --- |")
        for name, value in this.rows().items():
            print(f"| {name} | {baseline[name]:.1f} | {value:.1f} | {value / baseline[name]:.2f} |")
    else:
        print("| figure | this tree |")
        print("| --- | --- |")
        for name, value in this.rows().items():
            print(f"| {name} | {value:.1f} |")
    print(
        f"\ntarget: import CPU < {TARGET_MS:.0f} ms: {verdict} (CPU, not wall: the wall times grow with the "
        "load of the machine's other processes)\n"
    )
    print(f"| module (top {args.top} by cumulative time, this tree) | cumulative ms | self ms |")
    print("| --- | --- | --- |")
    for self_us, cumulative_us, name in sorted(this.median_run(), key=lambda r: -r[1])[: args.top]:
        print(f"| `{name.strip()}` | {cumulative_us / 1000:.1f} | {self_us / 1000:.1f} |")
    return 0 if verdict == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
