"""Pure imaging core: encoded source bytes in, encoded rendition bytes out (no I/O, no AWS).

:func:`render` decodes a source once and produces every requested rendition from it:

1. *Identify* the bytes (only the formats in :data:`DECODE_FORMATS`; Pillow reads just the header)
   and reject, before any pixel is decoded, what is not an image, what is broken, what declares more
   than ``max_pixels`` and what we cannot render.
2. For JPEG, read the EXIF orientation and ask libjpeg to decode at the smallest DCT scale (1/2, 1/4,
   1/8) that still leaves at least 1.5x the largest output size (``draft``), then *load*.
   Truncated or broken data is always an error, whatever ``ImageFile.LOAD_TRUNCATED_IMAGES`` says.
3. Bring the pixels to a *working mode* (L, LA, RGB, RGBA or CMYK; 16-bit and float scaled down),
   note whether any pixel is transparent, keep the ICC profile aside.
4. For each rendition, largest first: resample (LANCZOS, ``box=`` for the crop, ``reducing_gap=``)
   from the smallest already-rendered intermediate that covers the rendition's region at >= 2x its
   size, or from the decoded image; then orient it, convert it to sRGB RGB/RGBA, flatten it onto white
   for JPEG, draw the watermark (when the spec has one and the rendition is large enough), and encode
   it without any metadata.

Everything costly per pixel (orientation, colour management, mode conversion) happens on the small
outputs, not on the decoded source. Pillow's globals (``MAX_IMAGE_PIXELS``,
``LOAD_TRUNCATED_IMAGES``) are never changed; warnings are silenced with ``catch_warnings`` under a
lock, as briefly as possible, so that concurrent calls from threads are safe.
"""

from __future__ import annotations

import io
import math
import re
import struct
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from PIL import (
    AvifImagePlugin,  # noqa: F401  (imported to register the decoder; the same below)
    BmpImagePlugin,  # noqa: F401
    GifImagePlugin,  # noqa: F401
    Image,
    ImageDraw,
    ImageFont,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    WebPImagePlugin,  # noqa: F401
    features,
)

from processor.errors import CorruptImage, ImageTooLarge, NotAnImage, ProcessingError, UnsupportedImage
from processor.spec import Fit, OutputFormat, RenditionSpec, Watermark, WatermarkPosition

if TYPE_CHECKING:
    from PIL import ImageFile

__all__ = ["DECODE_FORMATS", "Rendered", "Rendering", "SourceInfo", "probe", "render", "render_source"]

# The only formats we decode (Pillow names). Pillow can read many more, some with rarely exercised
# parsers; anything else it recognises is reported as UnsupportedImage without being decoded.
# (JPEG includes MPO, the multi-picture JPEGs many cameras write; PNG includes APNG.) ICO is left out
# on purpose: Pillow decodes an icon's pixels while reading its header, before any size check.
DECODE_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP") + (
    ("AVIF",) if features.check("avif") else ()
)

_RESAMPLE = Image.Resampling.LANCZOS
# Resample in two steps (integer box reduction, then LANCZOS over the last >= 2x), as thumbnail() does.
_REDUCING_GAP = 2.0
# Any intermediate we derive a smaller rendition from is >= this many times that rendition.
_SOURCE_GAP = 2.0
# A JPEG is decoded at the smallest DCT scale leaving >= this many times the largest output. libjpeg's
# DCT scaling is itself a good low-pass filter, so 1.5x (not 2x) costs no visible quality: on a
# 12 MP photo the q85 300x225 output is within 0.1 dB PSNR of the 2x version against a full-resolution
# reference, and renders in 30 ms instead of 40 (1 MP: 7.6 ms instead of 14.4).
_DRAFT_GAP = 1.5
_WHITE = (255, 255, 255)
_ORIENTATION_TAG = 0x0112
# What a viewer does to the stored pixels for each EXIF orientation (the table of exif_transpose).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Pixel modes we can bring to RGB/RGBA faithfully; anything else is UnsupportedImage.
_MODES = frozenset(
    {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "I", "F"}
    | {"I;16", "I;16L", "I;16B", "I;16N"}
)
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

# Watermark geometry, as fractions of the rendition's shorter side: the font size (the text's height,
# accents and descenders included, is about that), the margin to the edges, the outline's width.
_MARK_FONT = 0.05
_MARK_MARGIN = 0.03
_MARK_STROKE = 0.07  # of the font size
_MARK_MIN_FONT = 8  # px: a mark that would need a smaller font to fit the width is drawn at this size

_UNSUPPORTED_REASON = re.compile(
    r"unsupported|not supported|not installed|not available|unknown pixel mode|unknown compression",
    re.IGNORECASE,
)
_MAX_MESSAGE = 300


@dataclass(frozen=True)
class Rendered:
    spec: RenditionSpec  # with the format resolved
    format: OutputFormat
    data: bytes
    width: int
    height: int


@dataclass(frozen=True)
class SourceInfo:
    """What a source is, from its header: format (Pillow's name, lower case) and displayed size
    (after its EXIF orientation)."""

    format: str
    width: int
    height: int


@dataclass(frozen=True)
class Rendering:
    """:func:`render_source`'s result: the source's :class:`SourceInfo` and the renditions."""

    source: SourceInfo
    renditions: list[Rendered]


Stage = Callable[[str], AbstractContextManager[Any]]


def render(
    data: bytes, specs: Sequence[RenditionSpec], *, max_pixels: int, stage: Stage | None = None
) -> list[Rendered]:
    """Decode ``data`` once and produce one :class:`Rendered` per spec, in the order given.

    Raises :class:`~processor.errors.NotAnImage`, :class:`~processor.errors.CorruptImage`,
    :class:`~processor.errors.ImageTooLarge` (header declares more than ``max_pixels``, checked before
    decoding) or :class:`~processor.errors.UnsupportedImage`. ``spec.format`` None means JPEG when
    the image is opaque, PNG when any pixel is transparent (decided once per source).

    ``stage(name)``, when given, wraps the decode (``"decode"``) and each rendition (``"render WxH"``):
    the caller times and traces them without this module knowing how.
    """
    if not specs:
        return []
    return render_source(data, specs, max_pixels=max_pixels, stage=stage).renditions


def render_source(
    data: bytes, specs: Sequence[RenditionSpec], *, max_pixels: int, stage: Stage | None = None
) -> Rendering:
    """:func:`render`, also returning what the source is (for the catalog): same checks, same errors."""
    stage = stage or no_stage
    with stage("decode"):
        source = _decode(data, specs, max_pixels)
    return Rendering(source.info, _render_all(source, specs, stage))


def probe(data: bytes, *, max_pixels: int = 2**40) -> SourceInfo:
    """Format and displayed size of an encoded image from its header alone (no pixel is decoded).

    ``data`` may be only the start of the file: what is missing makes it a
    :class:`~processor.errors.CorruptImage` (the caller can retry with more). Only a PNG whose EXIF
    comes after its pixel data (rare; legal) is reported in its stored orientation.
    """
    im = _identify(_Stream(data), data, max_pixels)
    fmt = im.format or "image"
    orientation = 1 if fmt == "PNG" and "exif" not in im.info else _orientation(im)
    return _source_info(fmt, im.size, orientation)


def _source_info(fmt: str, stored: tuple[int, int], orientation: int) -> SourceInfo:
    """What the source is as a viewer shows it: orientations 5-8 swap width and height."""
    width, height = stored
    if orientation >= 5:
        width, height = height, width
    return SourceInfo("jpeg" if fmt == "MPO" else fmt.lower(), width, height)


def no_stage(name: str) -> AbstractContextManager[None]:
    """A :data:`Stage` that neither times nor traces."""
    return nullcontext()


# ---------------------------------------------------------------------------------------------------
# Decoding


class _Truncated(Exception):
    """A decoder asked for bytes past the end of the data."""


class _Stream(io.BytesIO):
    """The source bytes; while ``armed`` (during pixel decoding), reading at the end is an error.

    Pillow decoders only read past the end of data that is cut short. With the default
    ``ImageFile.LOAD_TRUNCATED_IMAGES = False`` Pillow raises itself; this makes truncation an error
    even when some other code has set it to True, without touching that global.
    """

    armed = False

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        if not chunk and self.armed and size != 0:
            raise _Truncated
        return chunk


@dataclass(frozen=True)
class _Plan:
    """Where one rendition comes from and how big it is, in the source's *stored* orientation."""

    region: tuple[float, float, float, float]  # left, top, right, bottom in full-resolution pixels
    size: tuple[int, int]


@dataclass(frozen=True)
class _Layer:
    """An image that covers ``region`` of the source at ``scale`` image pixels per source pixel."""

    image: Image.Image
    region: tuple[float, float, float, float]
    scale: tuple[float, float]


@dataclass(frozen=True)
class _Source:
    base: _Layer  # the decoded image in working mode (L, LA, RGB, RGBA or CMYK), stored orientation
    plans: list[_Plan]
    orientation: int
    has_alpha: bool
    icc_profile: bytes | None
    info: SourceInfo


def _decode(data: bytes, specs: Sequence[RenditionSpec], max_pixels: int) -> _Source:
    stream = _Stream(data)
    im = _identify(stream, data, max_pixels)
    full_size = im.size
    fmt = im.format or "image"
    with _decoding(fmt):
        scale = (1.0, 1.0)
        if fmt in ("JPEG", "MPO"):
            # EXIF comes with the header: orientation first, so that draft knows the output sizes.
            orientation = _orientation(im)
            plans = [_plan(spec, full_size, orientation) for spec in specs]
            scale = _draft(im, plans) if plans else (1.0, 1.0)
        stream.armed = True
        limit = Image.MAX_IMAGE_PIXELS  # read, never written
        with _pillow_warnings_silenced(limit is not None and full_size[0] * full_size[1] > limit):
            im.load()
        stream.armed = False
        if fmt not in ("JPEG", "MPO"):
            orientation = _orientation(im)  # PNG may keep its eXIf chunk after the pixels
            plans = [_plan(spec, full_size, orientation) for spec in specs]
        icc_profile = im.info.get("icc_profile") or None
        working, has_alpha = _working(im)
    working.info = {}  # nothing from the source (EXIF, XMP, comments, profile) reaches an output
    base = _Layer(working, (0.0, 0.0, float(full_size[0]), float(full_size[1])), scale)
    info = _source_info(fmt, full_size, orientation)
    return _Source(base, plans, orientation, has_alpha, icc_profile, info)


def _identify(stream: _Stream, data: bytes, max_pixels: int) -> ImageFile.ImageFile:
    """Open (header only) and check format, size and mode before any pixel is decoded."""
    if not data:
        raise NotAnImage("the object is empty (0 bytes)")
    claimed = _claimed_format(data)
    try:
        with _pillow_warnings_silenced(True, UserWarning):  # e.g. "Corrupt EXIF data", "Invalid APNG"
            im, reasons = _open_as(stream, DECODE_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"image header declares too many pixels: {_short(exc)}") from None
    except MemoryError:
        raise
    except Exception as exc:  # a plugin rejected a header it recognised
        raise _decode_error(claimed or "image", exc) from None
    if im is None:
        raise _unidentified(data, claimed, reasons.get(claimed or ""))
    width, height = im.size
    if width < 1 or height < 1:
        raise CorruptImage(f"{im.format} header declares an empty image ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{im.format} header declares {width}x{height} = {width * height} pixels, "
            f"more than MAX_PIXELS={max_pixels}"
        )
    if im.mode not in _MODES:
        raise UnsupportedImage(f"{im.format} images in pixel mode {im.mode!r} are not supported")
    return im


def _open_as(stream: io.BytesIO, formats: Sequence[str]) -> tuple[ImageFile.ImageFile | None, dict[str, str]]:
    """What ``Image.open(stream, formats=formats)`` does, minus its decompression-bomb check.

    That check uses Pillow's global ``MAX_IMAGE_PIXELS`` (raising above 2x of it, ~179 MP, whatever
    ``max_pixels`` says); we enforce ``max_pixels`` ourselves, right after. Returns the image (None
    if no plugin took the data) and, per format whose signature matched, why its plugin refused the
    header (for the error message).
    """
    prefix = stream.read(16)
    reasons: dict[str, str] = {}
    for fmt in formats:
        factory, accept = Image.OPEN[fmt]
        accepted = accept(prefix) if accept is not None else True
        if not accepted or isinstance(accepted, str):  # a str is Pillow's "maybe, but unsupported"
            if isinstance(accepted, str):
                reasons[fmt] = accepted
            continue
        stream.seek(0)
        try:
            return factory(stream, ""), reasons
        except (SyntaxError, IndexError, TypeError, struct.error) as exc:  # as Image.open does
            reasons[fmt] = _short(exc)
    return None, reasons


# warnings.catch_warnings swaps process-wide state: two threads entering and leaving it interleaved
# can leave one's filter installed for good, or run unprotected. Ours never interleave.
_WARNINGS_LOCK = threading.Lock()


@contextmanager
def _pillow_warnings_silenced(active: bool = True, *also: type[Warning]) -> Iterator[None]:
    """Keep Pillow's DecompressionBombWarning (and the ``also`` categories) from leaking out.

    Some plugins re-check sizes against Pillow's global limit and warn above it (~89 MP): GIF when a
    frame is larger than the logical screen, MPO while reading its header, several while loading.
    Under our limit such images are legitimate; the warning is noise. So are Pillow's UserWarnings
    about odd metadata ("Corrupt EXIF data") for a batch job that ignores that metadata anyway.
    Loading only needs this for images over Pillow's limit (it holds the lock while decoding).
    """
    if not active:
        yield
        return
    with _WARNINGS_LOCK, warnings.catch_warnings():
        for category in (Image.DecompressionBombWarning, *also):
            warnings.simplefilter("ignore", category)
        yield


@contextmanager
def _decoding(fmt: str) -> Iterator[None]:
    """Turn whatever Pillow raises while decoding into one of our permanent errors."""
    try:
        yield
    except ProcessingError:
        raise
    except _Truncated:
        raise CorruptImage(f"{fmt} data is truncated") from None
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(_short(exc)) from None
    except MemoryError:
        raise
    except Exception as exc:
        raise _decode_error(fmt, exc) from None


def _decode_error(fmt: str, exc: BaseException) -> ProcessingError:
    reason = _short(exc)
    if _UNSUPPORTED_REASON.search(reason):
        return UnsupportedImage(f"{fmt} image cannot be rendered: {reason}")
    return CorruptImage(f"{fmt} data cannot be decoded: {reason}")


def _short(exc: BaseException) -> str:
    """The first line of an exception's message (KeyError's repr quoting left out), at most 300 chars."""
    raw = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)
    text = (raw.strip().splitlines() or [""])[0] or type(exc).__name__
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _orientation(im: Image.Image) -> int:
    """EXIF (or XMP) orientation, 1..8; anything missing, odd or unreadable counts as 1."""
    try:
        with _pillow_warnings_silenced(True, UserWarning):  # "Corrupt EXIF data" and the like
            value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _draft(im: ImageFile.ImageFile, plans: Sequence[_Plan]) -> tuple[float, float]:
    """Configure a JPEG to decode at the smallest DCT scale that leaves >= 1.5x every output.

    Returns the decoded image's pixels per full-resolution pixel along x and y.
    """
    width, height = im.size
    need_x = max(_DRAFT_GAP * p.size[0] / (p.region[2] - p.region[0]) for p in plans)
    need_y = max(_DRAFT_GAP * p.size[1] / (p.region[3] - p.region[1]) for p in plans)
    if need_x > 0.5 or need_y > 0.5:  # not even a 1/2 scale would leave enough pixels
        return (1.0, 1.0)
    # Pillow picks the scale s in (8, 4, 2, 1) with s <= min(width // w, height // h).
    request = (math.ceil(width * need_x), math.ceil(height * need_y))
    result = im.draft(im.mode, request)
    if result is None:
        return (1.0, 1.0)
    box = result[1]
    return (box[2] / width, box[3] / height)


def _working(im: Image.Image) -> tuple[Image.Image, bool]:
    """The loaded image in L, LA, RGB, RGBA or CMYK, and whether any pixel is transparent."""
    mode = im.mode
    out: Image.Image = im
    if mode == "P":
        transparent = "transparency" in im.info or (im.palette is not None and im.palette.mode == "RGBA")
        out = im.convert("RGBA" if transparent else "RGB")
    elif mode in ("PA", "RGBa"):
        out = im.convert("RGBA")
    elif mode == "La":
        out = im.convert("LA")
    elif mode in ("RGBX", "YCbCr"):
        out = im.convert("RGB")
    elif mode == "1":
        out = im.convert("L")
    elif mode.startswith("I;16"):
        out = im.convert("I").point(_lut_16_to_8(), "L")
    elif mode in ("I", "F"):
        out = _stretch_to_l(im)
    if out.mode in ("RGBA", "LA"):
        if out.getchannel("A").getextrema()[0] < 255:
            return out, True
        out = out.convert("RGB" if out.mode == "RGBA" else "L")  # an alpha band that is all opaque
    return out, False


@lru_cache(maxsize=1)
def _lut_16_to_8() -> list[int]:
    """16-bit to 8-bit, rounding v / 257 (65535 -> 255, 32896 -> 128), never clipping to white."""
    return [(v * 255 + 32767) // 65535 for v in range(65536)]


def _stretch_to_l(im: Image.Image) -> Image.Image:
    """32-bit integer or float samples, scaled from their range (min..max) to 0..255."""
    low, high = im.getextrema()
    if not (math.isfinite(low) and math.isfinite(high)):
        raise UnsupportedImage(f"{im.format} image has non-finite sample values")
    if high <= low:  # flat: keep the value where it is meaningful as 8-bit (or 0..1 for floats)
        value = low * 255 if im.mode == "F" and 0 <= low <= 1 else low
        return Image.new("L", im.size, round(min(255, max(0, value))))
    gain = 255.0 / (high - low)
    offset = 0.5 - low * gain  # + 0.5: the F -> L conversion truncates
    return im.convert("F").point(lambda v: v * gain + offset).convert("L")


def _unidentified(data: bytes, claimed: str | None, reason: str | None) -> ProcessingError:
    """Why no decoder of ours took ``data``: broken header, other image format, or not an image."""
    if claimed is not None:
        if reason and _UNSUPPORTED_REASON.search(reason):
            return UnsupportedImage(f"{claimed} image cannot be rendered: {reason}")
        return CorruptImage(f"{claimed} header cannot be parsed" + (f": {reason}" if reason else ""))
    other = _other_format(data)
    if other is not None:
        return UnsupportedImage(f"{other} images are not supported")
    return NotAnImage(f"not an image in any format we know (starts with {data[:16]!r})")


_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (  # (signature, offset, our format)
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"WEBP", 8, "WEBP"),  # after b"RIFF" and a length
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"II+\x00", 0, "TIFF"),
    (b"MM\x00+", 0, "TIFF"),
    (b"BM", 0, "BMP"),
    (b"ftypavif", 4, "AVIF"),
    (b"ftypavis", 4, "AVIF"),
)


def _claimed_format(data: bytes) -> str | None:
    """The format of :data:`DECODE_FORMATS` whose signature ``data`` starts with, if any."""
    for signature, offset, fmt in _SIGNATURES:
        if data.startswith(signature, offset) and (fmt != "WEBP" or data.startswith(b"RIFF")):
            return fmt if fmt in DECODE_FORMATS else None
    return None


_FOREIGN_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"\xff\x0a", "JPEG XL"),
    (b"8BPS", "PSD"),
    (b"%!PS", "PostScript"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"qoif", "QOI"),
    (b"DDS ", "DDS"),
    (b"icns", "ICNS"),
    (b"#?RADIANCE", "Radiance HDR"),
    (b"\x76\x2f\x31\x01", "OpenEXR"),
)
_DECODES_ON_OPEN = ("ICO", "BLP", "IM")  # Pillow plugins whose header parsing loads pixels
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1"})


def _other_format(data: bytes) -> str | None:
    """The name of an image format we recognise but do not decode, if ``data`` is one."""
    head = data[:64]
    for signature, name in _FOREIGN_SIGNATURES:
        if head.startswith(signature):
            return name
    if head[4:8] == b"ftyp" and (head[8:12] in _HEIF_BRANDS or head[8:12] in (b"avif", b"avis")):
        return "AVIF" if head[8:12] in (b"avif", b"avis") else "HEIF"
    text = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "SVG"
    # Whatever else Pillow can identify by a signature and a header that parses. Formats without a
    # signature (TGA, ...) would "recognise" random bytes; a few plugins decode pixels while reading
    # the header, so for those the signature alone has to do.
    Image.init()
    for name in _DECODES_ON_OPEN:
        accept = Image.OPEN[name][1] if name in Image.OPEN else None
        if accept is not None and accept(data[:16]) is True:
            return name
    others = tuple(
        name
        for name, (_, accept) in Image.OPEN.items()
        if accept is not None and name not in DECODE_FORMATS and name not in _DECODES_ON_OPEN
    )
    try:
        with _pillow_warnings_silenced(True, UserWarning):
            im, _ = _open_as(io.BytesIO(data), others)
    except MemoryError:
        raise
    except Exception:
        return None
    return None if im is None else im.format


# ---------------------------------------------------------------------------------------------------
# Geometry


def _plan(spec: RenditionSpec, full_size: tuple[int, int], orientation: int) -> _Plan:
    """The region of the stored image a rendition shows, and its size, both in stored orientation."""
    swap = orientation >= 5  # 5..8 turn the image by 90 degrees: displayed w/h are stored h/w
    width, height = full_size
    shown = (height, width) if swap else (width, height)
    region_w, region_h, out_w, out_h = _geometry(spec.size.width, spec.size.height, spec.fit, *shown)
    if swap:
        region_w, region_h, out_w, out_h = region_h, region_w, out_h, out_w
    # Crops are centred, so they are the same under every flip and rotation.
    left, top = (width - region_w) / 2, (height - region_h) / 2
    return _Plan((left, top, left + region_w, top + region_h), (out_w, out_h))


def _geometry(box_w: int, box_h: int, fit: Fit, width: int, height: int) -> tuple[float, float, int, int]:
    """(region width, region height, output width, output height) in displayed orientation."""
    if fit is Fit.CONTAIN:
        scale = min(box_w / width, box_h / height)
        if scale >= 1:  # never upscale
            return width, height, width, height
        out_w = min(box_w, max(1, round(width * scale)))
        out_h = min(box_h, max(1, round(height * scale)))
        return width, height, out_w, out_h
    scale = max(box_w / width, box_h / height)
    if scale <= 1:  # fill the box: centre crop of the box's aspect, scaled down
        return min(width, box_w / scale), min(height, box_h / scale), box_w, box_h
    # The source is smaller than the box: crop to the box's aspect at source resolution.
    aspect = box_w / box_h
    if width / height > aspect:
        region_w, region_h = height * aspect, float(height)
    else:
        region_w, region_h = float(width), width / aspect
    return region_w, region_h, max(1, round(region_w)), max(1, round(region_h))


# ---------------------------------------------------------------------------------------------------
# Rendering


def _render_all(source: _Source, specs: Sequence[RenditionSpec], stage: Stage) -> list[Rendered]:
    fmt_auto = OutputFormat.PNG if source.has_alpha else OutputFormat.JPEG
    layers: list[_Layer] = []
    results: list[Rendered | None] = [None] * len(specs)
    # Largest first, so that smaller renditions can be derived from larger ones.
    order = sorted(range(len(specs)), key=lambda i: -source.plans[i].size[0] * source.plans[i].size[1])
    for i in order:
        plan = source.plans[i]
        with stage(f"render {specs[i].size}"):
            layer = _pick_layer(source.base, layers, plan)
            image = _resample(layer, plan)
            layers.append(_Layer(image, plan.region, _scale_of(plan)))
            fmt = specs[i].format or fmt_auto
            results[i] = _finish(image, source, specs[i].resolved(fmt), fmt)
    return [r for r in results if r is not None]


def _scale_of(plan: _Plan) -> tuple[float, float]:
    left, top, right, bottom = plan.region
    return (plan.size[0] / (right - left), plan.size[1] / (bottom - top))


def _box_in(layer: _Layer, region: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """``region`` (full-resolution source pixels) in ``layer``'s image pixels, clamped to the image."""
    (sx, sy), (left, top) = layer.scale, layer.region[:2]
    width, height = layer.image.size
    return (
        min(width, max(0.0, (region[0] - left) * sx)),
        min(height, max(0.0, (region[1] - top) * sy)),
        min(width, max(0.0, (region[2] - left) * sx)),
        min(height, max(0.0, (region[3] - top) * sy)),
    )


def _pick_layer(base: _Layer, layers: Sequence[_Layer], plan: _Plan) -> _Layer:
    """The smallest rendered intermediate that covers ``plan``'s region with >= 2x its pixels
    (or exactly its pixels), else the decoded image."""
    best: _Layer | None = None
    for layer in layers:
        if not _covers(layer.region, plan.region):
            continue
        box = _box_in(layer, plan.region)
        box_w, box_h = box[2] - box[0], box[3] - box[1]
        same = layer.image.size == plan.size and _close(layer.region, plan.region)
        enough = box_w >= _SOURCE_GAP * plan.size[0] - 1e-6 and box_h >= _SOURCE_GAP * plan.size[1] - 1e-6
        if (same or enough) and (best is None or _area(layer) < _area(best)):
            best = layer
    return best or base


def _covers(outer: tuple[float, ...], inner: tuple[float, ...], eps: float = 1e-3) -> bool:
    return (
        inner[0] >= outer[0] - eps
        and inner[1] >= outer[1] - eps
        and inner[2] <= outer[2] + eps
        and inner[3] <= outer[3] + eps
    )


def _close(a: tuple[float, ...], b: tuple[float, ...], eps: float = 1e-3) -> bool:
    return all(abs(x - y) <= eps for x, y in zip(a, b, strict=True))


def _area(layer: _Layer) -> int:
    return layer.image.size[0] * layer.image.size[1]


def _resample(layer: _Layer, plan: _Plan) -> Image.Image:
    box = _box_in(layer, plan.region)
    image = layer.image
    if plan.size == image.size and _close(box, (0, 0, *image.size)):
        return image  # nothing to do (a source no larger than the box, or a repeated spec)
    return image.resize(plan.size, _RESAMPLE, box=box, reducing_gap=_REDUCING_GAP)


def _finish(image: Image.Image, source: _Source, spec: RenditionSpec, fmt: OutputFormat) -> Rendered:
    """Orient, convert to sRGB RGB/RGBA, flatten for JPEG and encode one resampled rendition."""
    if source.orientation != 1:
        image = image.transpose(_TRANSPOSE[source.orientation])
    image = _to_srgb(image, source.icc_profile)
    if fmt is OutputFormat.JPEG and image.mode == "RGBA":
        image = _flatten(image)
    if spec.watermark is not None:
        image = _watermarked(image, spec.watermark)
    if image.info:  # only ever a fresh image here (ImageCms tags its output with the sRGB profile)
        image.info = {}
    data = _encode(image, fmt, spec.quality)
    return Rendered(spec=spec, format=fmt, data=data, width=image.size[0], height=image.size[1])


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """RGB or RGBA in sRGB: through the source's ICC profile when it has a usable non-sRGB one."""
    transform = None if icc_profile is None else _transform_to_srgb(icc_profile, image.mode)
    if transform is not None:
        try:
            return transform.apply(image)
        except MemoryError:
            raise
        except Exception:  # a profile LittleCMS accepted but cannot apply: ignore it, like a bad one
            transform = None
    if image.mode in ("RGB", "RGBA"):
        return image
    return image.convert("RGBA" if image.mode == "LA" else "RGB")


@lru_cache(maxsize=8)
def _transform_to_srgb(icc_profile: bytes, mode: str) -> Any:
    """A cached LittleCMS transform from ``icc_profile`` to sRGB, or None when the profile is sRGB,
    invalid, or does not fit ``mode`` (an RGB profile on a CMYK image, say)."""
    cms = _cms()
    if mode not in ("RGB", "RGBA", "CMYK", "L"):
        return None
    try:
        profile = cms.ImageCmsProfile(io.BytesIO(icc_profile))
        if _is_srgb(profile):
            return None
        return cms.buildTransform(
            profile,
            _srgb_profile(),
            mode,
            "RGBA" if mode == "RGBA" else "RGB",
            renderingIntent=cms.Intent.PERCEPTUAL,
            # Cached and shared by threads: LittleCMS transforms are only thread-safe without their
            # one-pixel cache.
            flags=cms.Flags.NOCACHE,
        )
    except MemoryError:
        raise
    except Exception:
        return None


@lru_cache(maxsize=1)
def _cms() -> Any:
    """PIL.ImageCms, imported on first use: only images with a profile pay for loading LittleCMS."""
    from PIL import ImageCms  # noqa: PLC0415

    return ImageCms


@lru_cache(maxsize=1)
def _srgb_profile() -> Any:
    cms = _cms()
    return cms.ImageCmsProfile(cms.createProfile("sRGB"))


# D50-adapted colorants of sRGB, as stored in sRGB profiles' rXYZ/gXYZ/bXYZ tags.
_SRGB_COLORANTS = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))


def _is_srgb(profile: Any) -> bool:
    """Named sRGB and, when the profile is a matrix/TRC one, with sRGB's primaries."""
    description = (_cms().getProfileDescription(profile) or "").lower()
    if "srgb" not in description or profile.profile.xcolor_space.strip() != "RGB":
        return False
    colorants = (profile.profile.red_colorant, profile.profile.green_colorant, profile.profile.blue_colorant)
    if any(c is None for c in colorants):
        return True  # a LUT-based profile named sRGB
    return all(
        abs(got - want) < 0.01
        for colorant, expected in zip(colorants, _SRGB_COLORANTS, strict=True)
        for got, want in zip(colorant[0], expected, strict=True)
    )


def _flatten(image: Image.Image) -> Image.Image:
    """RGBA composited onto white (JPEG has no alpha; transparent areas must not turn black)."""
    background = Image.new("RGB", image.size, _WHITE)
    background.paste(image, (0, 0), image)
    return background


def _watermarked(image: Image.Image, mark: Watermark) -> Image.Image:
    """A copy of ``image`` (RGB or RGBA) with ``mark`` drawn on it; ``image`` itself when the rendition
    is below the mark's minimum size. Never draws into ``image``: it may be an intermediate that
    smaller renditions are still derived from.

    White text with a black outline, both at ``mark.opacity``: legible on light and dark pixels alike.
    The font (Pillow's embedded Aileron, scalable, so no font file) is about 5% of the shorter side,
    smaller if needed for the text to fit the width.
    """
    width, height = image.size
    if not mark.applies_to(width, height) or not mark.text.strip():
        return image
    short = min(width, height)
    margin = max(1, round(short * _MARK_MARGIN))
    font, stroke = _mark_font(mark.text, max(_MARK_MIN_FONT, round(short * _MARK_FONT)), width - 2 * margin)
    left, top, right, bottom = font.getbbox(mark.text, stroke_width=stroke)
    text_size = (math.ceil(right - left), math.ceil(bottom - top))
    # Two masks: the outlined text (where black goes) and the text alone (where white goes on top).
    outline, letters = Image.new("L", text_size), Image.new("L", text_size)
    ImageDraw.Draw(outline).text(
        (-left, -top), mark.text, fill=255, font=font, stroke_width=stroke, stroke_fill=255
    )
    ImageDraw.Draw(letters).text((-left, -top), mark.text, fill=255, font=font)
    alpha = outline.point(lambda v: round(v * mark.opacity))
    x, y = _mark_origin(mark.position, (width, height), text_size, margin)
    crop = (max(0, -x), max(0, -y), min(text_size[0], width - x), min(text_size[1], height - y))
    overlay = Image.merge("RGBA", (letters, letters, letters, alpha)).crop(crop)
    dest = (max(0, x), max(0, y))
    marked = image.copy()
    if marked.mode == "RGBA":  # proper "over" compositing: transparent pixels take the mark's alpha
        marked.alpha_composite(overlay, dest)
    else:
        marked.paste(overlay.convert("RGB"), dest, overlay.getchannel("A"))
    return marked


def _mark_font(text: str, size: int, max_width: int) -> tuple[Any, int]:
    """The embedded font at ``size`` px, shrunk so that ``text`` fits ``max_width``; and its outline width.

    A new font object per call (0.1 ms): FreeType faces are not shared between threads.
    """
    for _ in range(3):
        stroke = max(1, round(size * _MARK_STROKE))
        font = ImageFont.load_default(size=size)
        left, _, right, _ = font.getbbox(text, stroke_width=stroke)
        if right - left <= max_width or size <= _MARK_MIN_FONT:
            return font, stroke
        size = max(_MARK_MIN_FONT, int(size * max_width / (right - left)))
    return font, stroke


def _mark_origin(
    position: WatermarkPosition, image_size: tuple[int, int], text_size: tuple[int, int], margin: int
) -> tuple[int, int]:
    (width, height), (text_w, text_h) = image_size, text_size
    x = {"left": margin, "right": width - margin - text_w}.get(position.value.rpartition("-")[2])
    y = {"top": margin, "bottom": height - margin - text_h}.get(position.value.partition("-")[0])
    return (
        (width - text_w) // 2 if x is None else x,
        (height - text_h) // 2 if y is None else y,
    )


def _encode(image: Image.Image, fmt: OutputFormat, quality: int) -> bytes:
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
