"""PNG pixels through libspng (the ``pyspng-seunglab`` wheel) when it is installed: ~1.6-1.8x faster
than Pillow's PNG decoder on the same bytes, with the same result.

"The same result" is what :mod:`.render` gets from Pillow's ``load()`` and :func:`.colour.to_working_mode`:
the same pixel values, the same working mode, the same metadata. So only what libspng decodes exactly
as Pillow does goes through it (every case has a parity test against Pillow):

* greyscale 1/2/4/8-bit (libspng scales sub-byte samples like Pillow's ``L;2``/``L;4``/``1`` unpackers),
  16-bit greyscale (brought to 8 bits with the rounding of ``to_working_mode``, ``(v + 128) // 257``,
  here rather than by a full-size ``convert("I").point()``), RGB, grey+alpha and RGBA at 8 or 16 bits
  (16 to 8 bits by the high byte, as Pillow does), interlaced or not, an APNG's default image;
* ``tRNS`` of greyscale and RGB images is ignored on both paths (Pillow keeps it in ``info`` only), and
  so are ``gAMA``, ``cHRM``, ``sBIT``; the ICC profile is the one Pillow read from the header
  (``iCCP`` comes before the pixels), converted to sRGB later, on the outputs, as for every source.

Left to Pillow: palette images (the binding applies no ``tRNS``, and an index past the palette's end
reads differently); a PNG with EXIF or text chunks after its pixels (Pillow reads them while loading,
and they can carry the EXIF/XMP orientation); and anything libspng refuses or the chunk walk finds
broken (truncated, corrupt): Pillow then decodes it as it always did, so a broken file raises exactly
the error it raised before, and a file Pillow tolerates still renders.

numpy and pyspng are imported on the first PNG, not before: a JPEG never loads them (cold start).

One cost: the binding holds the GIL while it decodes (Pillow's decoder releases it), so the other
records of a batch (processor/batch.py's threads) wait for a PNG decode instead of running beside it
(12 MP: ~220 ms). Under 1,769 MB a function has less than one vCPU and they could not run beside it
anyway; above, PNG decodes no longer overlap each other, each 1.6x shorter.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import Any

from PIL import Image

# libspng output format per (Pillow's mode, PNG bit depth): the one that gives Pillow's values. None:
# the binding's automatic choice, the raw samples (its GA8 conversion is broken: libspng issue 207).
_FORMATS: dict[tuple[str, int], str | None] = {
    ("1", 1): "G8",
    ("L", 2): "G8",
    ("L", 4): "G8",
    ("L", 8): "G8",
    ("I;16", 16): "GA16",  # libspng has no G16 output: grey + an opaque alpha, which we drop
    ("RGB", 8): "RGB8",
    ("RGB", 16): "RGB8",
    ("LA", 8): None,
    ("RGBA", 16): "RGBA8",  # 16-bit grey + alpha: Pillow makes it RGBA
    ("RGBA", 8): "RGBA8",
}
# Chunks after the pixel data that Pillow reads while loading: they can carry the orientation (EXIF,
# text) or the colour space (ICC profile, sRGB, gamma, chromaticities), so Pillow decodes such a file.
_LATE_METADATA = frozenset({b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"iCCP", b"sRGB", b"gAMA", b"cHRM"})
_CHUNK_HEAD = struct.Struct(">I4s")


def decode(im: Image.Image, data: bytes) -> Image.Image | None:
    """``im`` (a PNG opened by Pillow, not loaded) decoded by libspng, in the working mode
    :func:`.colour.to_working_mode` would make of Pillow's result; None when Pillow has to decode it
    (libspng not installed, a case listed in the module doc, anything libspng rejects)."""
    depth = data[24] if len(data) > 24 else 0
    if (im.mode, depth) not in _FORMATS or not _plain(data):
        return None
    spng = _spng()
    if spng is None:
        return None
    module, numpy = spng
    fmt = _FORMATS[(im.mode, depth)]
    try:
        pixels = module.spng_decode_image_bytes(data, getattr(module, f"SPNG_FMT_{fmt or 'AUTO'}"))
    except MemoryError:
        raise
    except Exception:  # libspng is stricter than Pillow here and there: Pillow decides
        return None
    if pixels.shape[:2] != (im.size[1], im.size[0]):
        return None
    if im.mode == "I;16":  # through a table: no full-size temporaries (12 MP: 12 MB, not 3 x 48 MB)
        mode, pixels = "L", _table_16_to_8(numpy)[pixels[:, :, 0]]
    else:
        mode = "L" if im.mode == "1" else im.mode
    image = Image.frombuffer(mode, im.size, numpy.ascontiguousarray(pixels), "raw", mode, 0, 1)
    image.info = dict(im.info)
    return image


def _plain(data: bytes) -> bool:
    """The chunks are whole up to IEND (or to the next APNG frame) and none after the pixel data
    carries metadata Pillow would read while loading."""
    pos, end, seen_pixels = 8, len(data), False
    while pos + 8 <= end:
        length, kind = _CHUNK_HEAD.unpack_from(data, pos)
        if kind == b"IDAT":
            seen_pixels = True
        elif seen_pixels:
            if kind in (b"IEND", b"fcTL"):  # Pillow stops at the next frame's control chunk too
                return True
            if kind in _LATE_METADATA:
                return False
        pos += 12 + length
    return False  # cut short: Pillow reports it (or tolerates it) as it always has


@lru_cache(maxsize=1)
def _table_16_to_8(numpy: Any) -> Any:
    """16-bit to 8-bit as :func:`.colour.to_working_mode` rounds it: (v * 255 + 32767) // 65535."""
    return ((numpy.arange(65536, dtype=numpy.uint32) + 128) // 257).astype(numpy.uint8)


@lru_cache(maxsize=1)
def _spng() -> tuple[Any, Any] | None:
    """(the libspng binding, numpy), imported on the first PNG; None when not installed."""
    try:
        import pyspng  # noqa: PLC0415
    except ImportError:
        return None  # and numpy stays unloaded
    import numpy  # noqa: PLC0415  (pyspng's own dependency, loaded by now)

    return pyspng.c, numpy  # its extension module: pyspng.load cannot ask for GA16 or the raw samples
