"""Encode one finished rendition, without any metadata, with settings chosen by measurement."""

from __future__ import annotations

import io

from PIL import Image

from processor.imaging.identify import DECODE_FORMATS
from processor.spec import OutputFormat

# Encoder settings, chosen by measurement (Pillow 13, this machine; median of 15 encodes of the
# renditions of a 12 MP photo-like source and of a 1200x900 flat graphic, RGB and RGBA:
# `python benchmarks/bench_encoders.py`):
# - JPEG q85: optimize (Huffman tables for the image) costs 0.4 ms at 300x225 for 3.4% fewer bytes
#   (0.59 vs 0.20 ms, 21,776 vs 22,536 B). Progressive costs 0.8 ms more and saves 3.6% (1.42 ms,
#   20,989 B) from ~15,000 pixels up; below, it is larger (100x75: 2,575 vs 2,384 B), hence the threshold.
#   Chroma subsampling stays Pillow's 4:2:0 at every quality we are given.
# - PNG: zlib level 6 (zlib's default), without optimize. optimize=True (level 9 and a second pass)
#   saved 1.3% on photos (300x225 RGB: 135,058 vs 136,815 B) and 3-4% on flat graphics (300x225 RGBA:
#   9,769 vs 10,152 B) for 1.2x (photo RGB: 11.5 vs 9.5 ms) to 8x the time (graphic RGBA: 29.5 vs
#   3.6 ms; photo RGBA: 16.0 vs 7.5 ms). Levels below 6 are 8-17% larger for 1-2 ms less.
# - WebP: method 3. On RGB it is as fast as 4 and as small (photo 300x225: 7.65 vs 7.68 ms, 23,184 vs
#   23,274 B); on RGBA it is 1.6x faster for 2.8% more bytes (11.8 vs 19.4 ms, 14,144 vs 13,764 B).
#   Methods 0-2 are 2-3x faster and 7-30% larger; 5 and 6 cost 4x and 50x on RGBA for 2-5%.
# - AVIF: speed 6 (libavif's default); 7 is 1.7x faster but ~10% larger, 4 is 3x slower for <1%.
_JPEG_PROGRESSIVE_MIN_PIXELS = 16_000
_WEBP_METHOD = 3
_PNG_COMPRESS_LEVEL = 6
_AVIF_SPEED = 6


def encode(image: Image.Image, fmt: OutputFormat, quality: int) -> bytes:
    buf = io.BytesIO()
    if fmt is OutputFormat.JPEG:
        progressive = image.size[0] * image.size[1] >= _JPEG_PROGRESSIVE_MIN_PIXELS
        image.save(buf, "JPEG", quality=quality, optimize=True, progressive=progressive)
    elif fmt is OutputFormat.PNG:
        image.save(buf, "PNG", compress_level=_PNG_COMPRESS_LEVEL)
    elif fmt is OutputFormat.WEBP:
        image.save(buf, "WEBP", quality=quality, method=_WEBP_METHOD)
    elif fmt is OutputFormat.AVIF:
        if "AVIF" not in DECODE_FORMATS:
            raise RuntimeError("AVIF output needs a Pillow built with libavif")  # configuration error
        image.save(buf, "AVIF", quality=quality, speed=_AVIF_SPEED)
    else:  # pragma: no cover - OutputFormat is exhaustive
        raise ValueError(f"unknown output format {fmt!r}")
    return buf.getvalue()
