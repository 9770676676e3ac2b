"""Benchmark: encoder settings of processor/imaging/encode.py, time against bytes, on renditions.

The renditions (300x225 and 100x75, LANCZOS) of a 12 MP photo-like image (RGB, and RGBA with a
transparent vignette) and of a 1200x900 flat graphic (shapes and text; RGBA, and RGB on white) are
encoded with each candidate setting; the table shows the median time of ``--repeat`` encodes and the
size. The figures quoted next to the settings in encode.py come from this script.

    python benchmarks/bench_encoders.py [--repeat N]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import imagegen  # noqa: E402

SIZES = ((300, 225), (100, 75))
CANDIDATES: dict[str, list[dict[str, object]]] = {
    "JPEG": [
        {"quality": 85},
        {"quality": 85, "optimize": True},
        {"quality": 85, "optimize": True, "progressive": True},
    ],
    "PNG": [{"optimize": True}, *({"compress_level": level} for level in (9, 6, 3, 1))],
    "WEBP": [{"quality": 85, "method": method} for method in range(7)],
    "PNG (libspng)": [{"compress_level": level} for level in (9, 6, 3, 1)],
}


def sources() -> dict[str, Image.Image]:
    photo = imagegen.photo(4000, 3000, seed=4000)
    vignette = Image.radial_gradient("L").resize(photo.size).point(lambda v: max(0, 255 - 2 * v))
    photo_rgba = photo.convert("RGBA")
    photo_rgba.putalpha(vignette)
    graphic = Image.new("RGBA", (1200, 900), (0, 0, 0, 0))
    draw = ImageDraw.Draw(graphic)
    draw.ellipse((100, 100, 700, 700), fill=(200, 30, 30, 255))
    draw.rectangle((600, 300, 1100, 800), fill=(30, 60, 200, 200))
    draw.text((150, 750), "imgproc logo", fill=(10, 10, 10, 255), font=ImageFont.load_default(size=90))
    on_white = Image.new("RGBA", graphic.size, (255, 255, 255, 255))
    on_white.alpha_composite(graphic)
    return {
        "photo RGB": photo,
        "photo RGBA": photo_rgba,
        "graphic RGBA": graphic,
        "graphic RGB": on_white.convert("RGB"),
    }


def timed(image: Image.Image, fmt: str, params: dict[str, object], repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        if fmt == "PNG (libspng)":
            import numpy  # noqa: PLC0415
            import pyspng  # noqa: PLC0415

            size = len(pyspng.encode(numpy.asarray(image), **params))  # type: ignore[arg-type]
        else:
            buf = io.BytesIO()
            image.save(buf, fmt, **params)
            size = buf.tell()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=15, help="encodes per setting (default 15)")
    args = parser.parse_args(argv)
    print(f"{'source':<14} {'size':>8}  {'format':<13} {'settings':<44} {'ms':>8} {'bytes':>8}")
    for name, image in sources().items():
        for size in SIZES:
            small = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
            for fmt, candidates in CANDIDATES.items():
                if fmt == "JPEG" and small.mode == "RGBA":
                    continue
                for params in candidates:
                    ms, nbytes = timed(small, fmt, params, args.repeat)
                    label = ", ".join(f"{k}={v}" for k, v in params.items())
                    print(
                        f"{name:<14} {size[0]:>4}x{size[1]:<3}  {fmt:<5} {label:<44} {ms:>8.2f} {nbytes:>8}"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
