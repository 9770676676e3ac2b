"""Benchmark: processor.imaging against libvips (what sharp and most image services run on), same run.

For each generated source (photo-like JPEGs of 1, 12 and 24 MP, a 12 MP JPEG with EXIF orientation 6,
a 12 MP RGBA PNG, a 12 MP 16-bit greyscale PNG and a palette GIF) and each output format (JPEG, PNG,
WebP), it times from encoded bytes to encoded outputs the default renditions (contain 300x300 and
100x100, quality 85):

* project - one ``processor.imaging.render(data, specs)`` call;
* libvips - what a careful libvips user writes: ``thumbnail_buffer`` to the largest size (decode once,
  with shrink-on-load for JPEG, EXIF auto-rotation), the smaller sizes by ``thumbnail_image`` of that
  result, alpha flattened onto white for JPEG, 8-bit sRGB, saved without metadata with the project's
  encoder settings as far as libvips has them (JPEG Q85 with optimised Huffman tables, PNG zlib level 6
  with adaptive filtering like Pillow's, so that the files are as large: libvips' default, no filter,
  writes 40% larger PNGs; WebP Q85 effort 4).

The two alternate within one process (a warm-up of each first) and the table shows their median CPU
times over ``--repeat`` runs and the ratio project / libvips (below 1: the project is faster), then
the ratio of the median wall times. The targets of issue 15 are every JPEG source <= 0.8 and every
PNG source <= 1.0.

Peak RSS per source: each method renders the source to all three formats once in a fresh interpreter
that reads the bytes from a file, and reports its ``VmHWM`` from /proc/self/status (the whole
process: interpreter, imports, the source's bytes; a bare interpreter with the imports is shown as
"idle"). ``--no-rss`` skips it.

    python benchmarks/bench_vips.py [--repeat N] [--only NAME ...] [--no-rss]

Needs the ``bench`` extra (``pip install -e '.[bench]'``: pyvips and its binary libvips).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import imagegen  # noqa: E402

from processor.imaging import render  # noqa: E402
from processor.spec import Fit, OutputFormat, RenditionSpec, Size  # noqa: E402

SIZES = ((300, 300), (100, 100))  # the default SIZES, largest first
QUALITY = 85
MAX_PIXELS = 100_000_000
FORMATS = (OutputFormat.JPEG, OutputFormat.PNG, OutputFormat.WEBP)
TARGETS = {"JPEG": 0.8, "PNG": 1.0}  # the source's format: the ratio every row must stay under


@dataclass(frozen=True)
class Source:
    name: str
    kind: str  # the source's format, for the targets
    make: Callable[[], bytes]


def _photo(width: int, height: int) -> Image.Image:
    return imagegen.photo(width, height, seed=width)


def _jpeg(width: int, height: int, orientation: int = 1) -> bytes:
    image = _photo(width, height)
    if orientation != 1:
        image = imagegen.stored_for_orientation(image, orientation)
        return imagegen.encode(image, "JPEG", quality=90, exif=imagegen.exif_bytes(orientation=orientation))
    return imagegen.encode(image, "JPEG", quality=90)


def _rgba_png() -> bytes:
    return imagegen.photo_png_rgba(4000, 3000, seed=4000, compress_level=6)


def _grey16_png() -> bytes:
    grey = _photo(4000, 3000).convert("L")
    wide = Image.frombytes("I;16", grey.size, bytes(b for v in grey.tobytes() for b in (v, v)))
    return imagegen.encode(wide, "PNG")


def _palette_gif() -> bytes:
    return imagegen.encode(_photo(2000, 1500).quantize(256), "GIF")


SOURCES = (
    Source("1 MP JPEG", "JPEG", lambda: _jpeg(1152, 864)),
    Source("12 MP JPEG", "JPEG", lambda: _jpeg(4000, 3000)),
    Source("24 MP JPEG", "JPEG", lambda: _jpeg(6000, 4000)),
    Source("12 MP JPEG, EXIF orientation 6", "JPEG", lambda: _jpeg(4000, 3000, orientation=6)),
    Source("12 MP RGBA PNG", "PNG", _rgba_png),
    Source("12 MP 16-bit grey PNG", "PNG", _grey16_png),
    Source("3 MP palette GIF", "GIF", _palette_gif),
)


def project(data: bytes, fmt: OutputFormat) -> list[bytes]:
    specs = [RenditionSpec(Size(w, h), Fit.CONTAIN, fmt, QUALITY) for w, h in SIZES]
    return [r.data for r in render(data, specs, max_pixels=MAX_PIXELS)]


def libvips(data: bytes, fmt: OutputFormat) -> list[bytes]:
    import pyvips  # noqa: PLC0415  (the bench extra; imported where used so --help works without it)

    (width, height), *smaller = SIZES
    first = pyvips.Image.thumbnail_buffer(data, width, height=height, size="down").copy_memory()
    images = [first, *(first.thumbnail_image(w, height=h, size="down") for w, h in smaller)]
    return [_vips_save(image, fmt) for image in images]


def _vips_save(image: object, fmt: OutputFormat) -> bytes:
    if image.interpretation not in ("srgb", "b-w") or image.format != "uchar":  # type: ignore[attr-defined]
        image = image.colourspace("srgb")  # type: ignore[attr-defined]
    if fmt is OutputFormat.JPEG:
        if image.hasalpha():  # type: ignore[attr-defined]
            image = image.flatten(background=255)  # type: ignore[attr-defined]
        return image.jpegsave_buffer(Q=QUALITY, optimize_coding=True, keep="none")  # type: ignore[attr-defined]
    if fmt is OutputFormat.PNG:
        return image.pngsave_buffer(compression=6, filter="all", keep="none")  # type: ignore[attr-defined]
    return image.webpsave_buffer(Q=QUALITY, effort=4, keep="none")  # type: ignore[attr-defined]


METHODS: dict[str, Callable[[bytes, OutputFormat], list[bytes]]] = {"project": project, "libvips": libvips}


def check(source: Source, fmt: OutputFormat, outputs: dict[str, list[bytes]]) -> list[str]:
    """The two methods' outputs have the same sizes and the format asked for."""
    problems = []
    sizes = {}
    for method, datas in outputs.items():
        images = [Image.open(io.BytesIO(d)) for d in datas]
        if any(im.format != fmt.value.upper() for im in images):
            problems.append(f"{source.name} -> {fmt.value}: {method} wrote {[im.format for im in images]}")
        sizes[method] = [im.size for im in images]
    if sizes["project"] != sizes["libvips"]:
        problems.append(f"{source.name} -> {fmt.value}: sizes {sizes}")
    return problems


def timed(data: bytes, fmt: OutputFormat, repeat: int) -> dict[str, tuple[float, float]]:
    """Median (CPU ms, wall ms) per method; the methods alternate, after one warm-up run each.

    CPU time (``time.process_time``: every thread of the process) is the main figure: on a machine
    shared with other work, wall time measures the scheduler as much as the code, and Lambda gives a
    function of up to 1,769 MB less than one vCPU, so libvips' worker threads buy no wall time there.
    """
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in METHODS}
    for _ in range(repeat):
        for name, fn in METHODS.items():
            cpu, wall = time.process_time(), time.perf_counter()
            fn(data, fmt)
            samples[name].append((time.process_time() - cpu, time.perf_counter() - wall))
    return {
        name: (statistics.median(c for c, _ in runs) * 1000, statistics.median(w for _, w in runs) * 1000)
        for name, runs in samples.items()
    }


def peak_rss_mb(path: Path | None, method: str) -> float:
    """Peak RSS (MB) of a fresh interpreter rendering the file to every format once (None: idle)."""
    command = [sys.executable, __file__, "--rss-child", method, str(path or "")]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return float(done.stdout)


def rss_child(method: str, path: str) -> None:
    if method == "libvips":
        import pyvips  # noqa: F401, PLC0415  (loaded for the idle figure too)
    if path:
        data = Path(path).read_bytes()
        for fmt in FORMATS:
            METHODS[method](data, fmt)
    # VmHWM, not getrusage's ru_maxrss: a forked child's ru_maxrss starts at its parent's.
    status = Path("/proc/self/status").read_text(encoding="ascii")
    print(int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per row and method (default 7)")
    parser.add_argument("--only", nargs="*", help="sources whose name contains one of these words")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses")
    parser.add_argument("--rss-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        rss_child(*args.rss_child)
        return 0
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    try:
        import pyvips  # noqa: PLC0415
    except ImportError:
        print("bench_vips: needs pyvips (pip install -e '.[bench]')", file=sys.stderr)
        return 2
    sources = [s for s in SOURCES if not args.only or any(w.lower() in s.name.lower() for w in args.only)]
    rows, rss, problems = [], {}, []
    with tempfile.TemporaryDirectory(prefix="bench-vips-") as tmp:
        for source in sources:
            start = time.perf_counter()
            data = source.make()
            print(
                f"{source.name}: {len(data) / 1e6:.1f} MB in {time.perf_counter() - start:.1f} s",
                file=sys.stderr,
            )
            for fmt in FORMATS:
                outputs = {name: fn(data, fmt) for name, fn in METHODS.items()}  # the warm-up
                problems += check(source, fmt, outputs)
                ms = timed(data, fmt, args.repeat)
                rows.append((source, fmt, ms["project"], ms["libvips"]))
                print(f"  -> {fmt.value}: {ms}", file=sys.stderr)
            if not args.no_rss:
                path = Path(tmp) / "source"
                path.write_bytes(data)
                rss[source.name] = {m: peak_rss_mb(path, m) for m in METHODS}
        idle = {m: peak_rss_mb(None, m) for m in METHODS} if not args.no_rss else {}

    print(
        f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)} "
        f"(concurrency {os.environ.get('VIPS_CONCURRENCY', 'default')}), Pillow {Image.__version__}; "
        f"renditions contain {', '.join(f'{w}x{h}' for w, h in SIZES)}, quality {QUALITY}; "
        f"median CPU ms of {args.repeat} alternating runs, "
        "ratio = project / libvips (wall: the same for wall time)"
    )
    print()
    print(f"{'input -> output':<44} {'project ms':>10} {'libvips ms':>10} {'ratio':>6} {'wall':>6}  target")
    print(f"{'-' * 44} {'-' * 10} {'-' * 10} {'-' * 6} {'-' * 6}  ------")
    misses = 0
    for source, fmt, (ours, ours_wall), (theirs, theirs_wall) in rows:
        ratio = ours / theirs
        target = TARGETS.get(source.kind)
        verdict = "" if target is None else (f"<= {target}" + ("" if ratio <= target else "  MISSED"))
        misses += target is not None and ratio > target
        label = f"{source.name} -> {fmt.value.upper()}"
        wall = ours_wall / theirs_wall
        print(f"{label:<44} {ours:>10.1f} {theirs:>10.1f} {ratio:>6.2f} {wall:>6.2f}  {verdict}")
    if rss:
        print()
        print("peak RSS of a fresh process rendering the source to all three formats (VmHWM, MB)")
        print(f"{'input':<44} {'project':>10} {'libvips':>10}")
        print(
            f"{'(idle: interpreter and imports only)':<44} {idle['project']:>10.0f} {idle['libvips']:>10.0f}"
        )
        for name, by_method in rss.items():
            print(f"{name:<44} {by_method['project']:>10.0f} {by_method['libvips']:>10.0f}")
    print()
    for problem in problems:
        print(f"output check FAILED: {problem}")
    print(f"{misses} row(s) over target" if misses else "every row within its target")
    return 1 if problems or misses else 0


if __name__ == "__main__":
    sys.exit(main())
