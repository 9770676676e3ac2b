"""Encode one finished rendition, without any metadata, with settings chosen by measurement."""

from __future__ import annotations

import io

from PIL import Image

from processor.imaging.identify import DECODE_FORMATS
from processor.spec import OutputFormat

# Encoder settings, chosen by measurement on 100x75 .. 600x450 renditions of photo-like sources:
# - JPEG: optimize (Huffman tables for the image) is always worth its ~0.3 ms. Progressive is 1-4%
#   smaller from ~15,000 pixels up (and 1-2% larger below), for ~1 ms at 300x225.
# - PNG: optimize=True (zlib level 9) is ~23% smaller than level 6 on flat graphics, the usual
#   transparent sources, and 0.5% smaller on photo-like RGBA for ~2x the time (13 vs 7 ms at 300x225).
# - WebP: method 4 is as fast as 3 here and 4-6% smaller than Pillow's default 0; 6 costs 3x for 2%.
# - AVIF: speed 6 (libavif's default); 7 is 1.7x faster but ~10% larger, 4 is 3x slower for <1%.
_JPEG_PROGRESSIVE_MIN_PIXELS = 16_000
_WEBP_METHOD = 4
_AVIF_SPEED = 6


def encode(image: Image.Image, fmt: OutputFormat, quality: int) -> bytes:
    buf = io.BytesIO()
    if fmt is OutputFormat.JPEG:
        progressive = image.size[0] * image.size[1] >= _JPEG_PROGRESSIVE_MIN_PIXELS
        image.save(buf, "JPEG", quality=quality, optimize=True, progressive=progressive)
    elif fmt is OutputFormat.PNG:
        image.save(buf, "PNG", optimize=True)
    elif fmt is OutputFormat.WEBP:
        image.save(buf, "WEBP", quality=quality, method=_WEBP_METHOD)
    elif fmt is OutputFormat.AVIF:
        if "AVIF" not in DECODE_FORMATS:
            raise RuntimeError("AVIF output needs a Pillow built with libavif")  # configuration error
        image.save(buf, "AVIF", quality=quality, speed=_AVIF_SPEED)
    else:  # pragma: no cover - OutputFormat is exhaustive
        raise ValueError(f"unknown output format {fmt!r}")
    return buf.getvalue()
