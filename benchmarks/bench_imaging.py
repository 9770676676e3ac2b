"""Benchmark: processor.imaging.render against the AWS Lambda tutorial's resize loop.

For each generated source (photo-like JPEGs of 1, 12 and 24 MP, the 24 MP one with an EXIF
orientation tag, and a 12 MP RGBA PNG) it times, from encoded bytes to encoded outputs, the default
renditions (contain 300x300 and 100x100, quality 85, format auto):

* baseline - what the tutorial does, once per size: ``Image.open(BytesIO(data))``,
  ``ImageOps.exif_transpose``, ``thumbnail(size)``, ``save`` (JPEG q85; a PNG source is saved as PNG,
  as the tutorial keeps the source's format);
* ours - one ``render(data, specs)`` call.

and prints a table of medians and their ratio (baseline / ours), after checking that our outputs
have the right size, orientation (coloured corner markers) and transparency.

It also times *decode only*: decoding the source (a JPEG at the smallest DCT scale, 1/8), nothing else.
``baseline / decode`` bounds the ratio any renderer can reach: JPEG's Huffman decoding has to read
every bit of the file whatever the scale, so the more bits per pixel a photo has, the lower the bound
(``--sweep`` shows it for the 12 MP JPEG at five grain levels).

Each image is measured in a fresh interpreter (``--in-process`` for profiling), the methods
alternating. The baseline allocates tens of MB per size, and how much of that pays for page faults
depends on the allocator's history in the process (we saw the same 12 MP baseline take ~130 or ~190
ms depending on what ran before it); a fresh process per image gives the repeatable, lower
(conservative) baseline. Ours allocates little and does not vary.

    python benchmarks/bench_imaging.py [--repeat N] [--noise SIGMA] [--source-quality Q] [--sweep]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import imagegen  # noqa: E402

from processor.imaging import Rendered, render  # noqa: E402
from processor.spec import Fit, OutputFormat, RenditionSpec, Size  # noqa: E402

SIZES = ((300, 300), (100, 100))
QUALITY = 85
SPECS = [RenditionSpec(Size(w, h), Fit.CONTAIN, None, QUALITY) for w, h in SIZES]
MAX_PIXELS = 100_000_000
DEFAULT_NOISE = 6.0
MARKER = 0.08  # corner markers: squares of this fraction of the short side
TOP_LEFT, BOTTOM_RIGHT = imagegen.RED, imagegen.BLUE


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    displayed: tuple[int, int]  # size as a viewer shows it (after EXIF orientation)
    transparent: bool


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def with_markers(image: Image.Image) -> Image.Image:
    """Paint a red square into the top-left corner and a blue one into the bottom-right."""
    marked = image.copy()
    w, h = marked.size
    side = max(1, round(min(w, h) * MARKER))
    fill = (lambda c: (*c, 255)) if marked.mode == "RGBA" else (lambda c: c)
    marked.paste(fill(TOP_LEFT), (0, 0, side, side))
    marked.paste(fill(BOTTOM_RIGHT), (w - side, h - side, w, h))
    return marked


def photo_case(name: str, width: int, height: int, args: argparse.Namespace, orientation: int = 1) -> Case:
    displayed = with_markers(imagegen.photo(width, height, noise=args.noise, seed=width))
    stored = imagegen.stored_for_orientation(displayed, orientation)
    params: dict[str, object] = {"quality": args.source_quality}
    if orientation != 1:
        params["exif"] = imagegen.exif_bytes(orientation=orientation)
    return Case(name, imagegen.encode(stored, "JPEG", **params), (width, height), False)


def rgba_case(name: str, width: int, height: int, args: argparse.Namespace) -> Case:
    image = imagegen.photo(width, height, noise=args.noise, seed=width).convert("RGBA")
    # Opaque centre, fully transparent corners; markers just inside the transparent corners would
    # be invisible, so this one is checked for transparency rather than orientation.
    image.putalpha(Image.radial_gradient("L").resize((width, height)).point(lambda v: max(0, 255 - 2 * v)))
    return Case(name, imagegen.encode(image, "PNG", compress_level=6), (width, height), True)


def baseline(data: bytes) -> list[bytes]:
    """The AWS Lambda tutorial's loop: a fresh decode per size."""
    outputs = []
    for size in SIZES:
        image = Image.open(io.BytesIO(data))
        fmt = image.format
        image = ImageOps.exif_transpose(image)
        image.thumbnail(size)
        buf = io.BytesIO()
        if fmt == "PNG":
            image.save(buf, "PNG")
        else:
            image.save(buf, "JPEG", quality=QUALITY)
        outputs.append(buf.getvalue())
    return outputs


def ours(data: bytes) -> list[Rendered]:
    return render(data, SPECS, max_pixels=MAX_PIXELS)


def decode_only(data: bytes) -> None:
    """The least any renderer has to do: decode the source, a JPEG at libjpeg's smallest DCT scale
    (1/8, which still entropy-decodes every bit). ``baseline / decode_only`` bounds the ratio."""
    image = Image.open(io.BytesIO(data))
    if image.format == "JPEG":
        w, h = image.size
        image.draft(image.mode, (math.ceil(w / 8), math.ceil(h / 8)))
    image.load()


def timed(data: bytes, repeat: int) -> tuple[float, float, float]:
    """Median milliseconds of baseline, ours and decode_only; runs alternate, after a warm-up."""
    functions = (baseline, ours, decode_only)
    samples: list[list[float]] = [[] for _ in functions]
    for fn in functions:
        fn(data)
    for _ in range(repeat):
        for fn, times in zip(functions, samples, strict=True):
            start = time.perf_counter()
            fn(data)
            times.append(time.perf_counter() - start)
    base_ms, ours_ms, decode_ms = (statistics.median(times) * 1000 for times in samples)
    return base_ms, ours_ms, decode_ms


def check(case: Case, outputs: list[Rendered]) -> list[str]:
    """What is wrong with our outputs for ``case`` (empty when all is right)."""
    problems = []
    for spec, out in zip(SPECS, outputs, strict=True):
        image = Image.open(io.BytesIO(out.data))
        box_w, box_h = spec.size.width, spec.size.height
        w, h = case.displayed
        scale = min(box_w / w, box_h / h, 1)
        expected = (round(w * scale), round(h * scale))
        label = f"{case.name} {spec.size}"
        if image.size != expected:
            problems.append(f"{label}: size {image.size}, expected {expected}")
        if case.transparent:
            if out.format is not OutputFormat.PNG or image.mode != "RGBA":
                problems.append(f"{label}: {out.format.value} {image.mode}, expected png RGBA")
            elif (
                image.getpixel((0, 0))[3] != 0
                or image.getpixel((image.width // 2, image.height // 2))[3] < 250
            ):
                problems.append(f"{label}: alpha not kept (corner transparent, centre opaque)")
            continue
        if out.format is not OutputFormat.JPEG or image.mode != "RGB":
            problems.append(f"{label}: {out.format.value} {image.mode}, expected jpeg RGB")
        rgb = image.convert("RGB")
        inset = max(0, round(min(image.size) * MARKER / 3))
        corners = {
            "top-left": (rgb.getpixel((inset, inset)), TOP_LEFT),
            "bottom-right": (rgb.getpixel((image.width - 1 - inset, image.height - 1 - inset)), BOTTOM_RIGHT),
        }
        for where, (got, want) in corners.items():
            if max(abs(a - b) for a, b in zip(got, want, strict=True)) > 60:
                problems.append(f"{label}: {where} is {got}, expected about {want} (orientation)")
    return problems


def table(rows: list[list]) -> None:
    widths = (32, 18, 11, 8, 6, 10, 9)
    header = ("image", "source", "baseline ms", "ours ms", "ratio", "decode ms", "max ratio")
    body = [
        (n, src, f"{b:.1f}", f"{o:.1f}", f"{b / o:.1f}x", f"{d:.1f}", f"{b / d:.1f}x")
        for n, src, b, o, d in rows
    ]
    for cells in [header, tuple("-" * w for w in widths), *body]:
        aligned = (
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        print("  ".join(aligned))


CASES: dict[str, Callable[[argparse.Namespace], Case]] = {
    "1mp": lambda a: photo_case("1 MP JPEG", 1152, 864, a),
    "12mp": lambda a: photo_case("12 MP JPEG", 4000, 3000, a),
    "24mp": lambda a: photo_case("24 MP JPEG (EXIF orientation 6)", 6000, 4000, a, orientation=6),
    "12mp-rgba": lambda a: rgba_case("12 MP RGBA PNG", 4000, 3000, a),
}
SWEEP_NOISE = (0.0, 2.0, 4.0, 6.0, 8.0)


def run_case(key: str, args: argparse.Namespace) -> dict[str, object]:
    """Generate, check and time one case in this process."""
    start = time.perf_counter()
    case = CASES[key](args)
    if key == "12mp" and args.noise != DEFAULT_NOISE:
        case = Case(f"{case.name}, noise {args.noise:g}", case.data, case.displayed, case.transparent)
    progress(f"{case.name}: generated {len(case.data) / 1e6:.1f} MB in {time.perf_counter() - start:.1f} s")
    problems = check(case, ours(case.data))
    progress(f"{case.name}: timing baseline, ours and decode-only, {args.repeat} runs each")
    base_ms, ours_ms, decode_ms = timed(case.data, args.repeat)
    progress(f"{case.name}: baseline {base_ms:.1f} ms, ours {ours_ms:.1f} ms, ratio {base_ms / ours_ms:.1f}x")
    pixels = case.displayed[0] * case.displayed[1]
    source = f"{len(case.data) / 1e6:.1f} MB, {len(case.data) * 8 / pixels:.1f} bpp"
    return {"row": [case.name, source, base_ms, ours_ms, decode_ms], "problems": problems}


def run_case_in_child(key: str, args: argparse.Namespace, noise: float) -> dict[str, object]:
    """:func:`run_case` in a fresh interpreter (progress goes through to our stderr)."""
    command = [sys.executable, __file__, "--case", key, "--repeat", str(args.repeat), "--noise", str(noise)]
    command += ["--source-quality", str(args.source_quality)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per image and method (default 5)")
    parser.add_argument(
        "--noise",
        type=float,
        default=DEFAULT_NOISE,
        help=f"grain std. dev. of the photos, in 8-bit levels (default {DEFAULT_NOISE:g})",
    )
    parser.add_argument(
        "--source-quality", type=int, default=90, help="JPEG quality of the generated sources (default 90)"
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="also time the 12 MP JPEG at other grain levels: the ratio falls as bits per pixel rise",
    )
    parser.add_argument(
        "--in-process", action="store_true", help="measure everything in this process (for profiling)"
    )
    parser.add_argument("--case", choices=sorted(CASES), help=argparse.SUPPRESS)  # a child's one case
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.case:
        print(json.dumps(run_case(args.case, args)))
        return 0

    def run(key: str, noise: float) -> dict[str, object]:
        if args.in_process:
            return run_case(key, argparse.Namespace(**{**vars(args), "noise": noise}))
        return run_case_in_child(key, args, noise)

    results = [run(key, args.noise) for key in CASES]
    sweep = [run("12mp", noise) for noise in SWEEP_NOISE] if args.sweep else []

    print(f"renditions: contain {', '.join(f'{w}x{h}' for w, h in SIZES)}, quality {QUALITY}, format auto")
    print(f"median of {args.repeat} runs; sources: noise {args.noise:g}, JPEG quality {args.source_quality}")
    print("decode ms: decoding alone (a JPEG at 1/8, the least any decoder does); max ratio: baseline/decode")
    print()
    table([r["row"] for r in results])  # type: ignore[misc]
    if sweep:
        print()
        print("12 MP JPEG by grain level (bits per pixel):")
        table([r["row"] for r in sweep])  # type: ignore[misc]
    print()
    failures = [p for r in results + sweep for p in r["problems"]]  # type: ignore[attr-defined]
    if failures:
        print("output checks FAILED:")
        for problem in failures:
            print(f"  {problem}")
        return 1
    print("output checks passed: sizes, orientation markers (JPEG sources), transparency (PNG source)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
