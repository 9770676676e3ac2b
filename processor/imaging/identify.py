"""Identify a source from its header alone: format sniffing, the size and mode checks made before
any pixel is decoded, the EXIF orientation, and Pillow's errors turned into ours.

Only the formats in :data:`DECODE_FORMATS` are opened (Pillow reads just the header), and HEIC/HEIF
(libheif parses just the boxes, see :mod:`.heif`); what is not an image, what is broken, what
declares more than ``max_pixels`` and what we cannot render is rejected here, with the reason a
person can act on (another format named, a plugin's own complaint).
"""

from __future__ import annotations

import io
import re
import struct
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import (
    AvifImagePlugin,  # noqa: F401  (imported to register the decoder; the same below)
    BmpImagePlugin,  # noqa: F401
    GifImagePlugin,  # noqa: F401
    Image,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    WebPImagePlugin,  # noqa: F401
    features,
)

from processor.errors import CorruptImage, ImageTooLarge, NotAnImage, ProcessingError, UnsupportedImage
from processor.imaging import heif

if TYPE_CHECKING:
    from PIL import ImageFile

# The only formats we decode (Pillow names). Pillow can read many more, some with rarely exercised
# parsers; anything else it recognises is reported as UnsupportedImage without being decoded.
# (JPEG includes MPO, the multi-picture JPEGs many cameras write; PNG includes APNG.) ICO is left out
# on purpose: Pillow decodes an icon's pixels while reading its header, before any size check.
DECODE_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP") + (
    ("AVIF",) if features.check("avif") else ()
)
_ORIENTATION_TAG = 0x0112
# Pixel modes we can bring to RGB/RGBA faithfully; anything else is UnsupportedImage.
_MODES = frozenset(
    {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "I", "F"}
    | {"I;16", "I;16L", "I;16B", "I;16N"}
)
_UNSUPPORTED_REASON = re.compile(
    r"unsupported|not supported|not installed|not available|unknown pixel mode|unknown compression",
    re.IGNORECASE,
)
_MAX_MESSAGE = 300


@dataclass(frozen=True)
class SourceInfo:
    """What a source is, from its header: format (Pillow's name, lower case) and displayed size
    (after its EXIF orientation)."""

    format: str
    width: int
    height: int


def probe(data: bytes, *, max_pixels: int = 2**40) -> SourceInfo:
    """Format and displayed size of an encoded image from its header alone (no pixel is decoded).

    ``data`` may be only the start of the file: what is missing makes it a
    :class:`~processor.errors.CorruptImage` (the caller can retry with more). Only a PNG whose EXIF
    comes after its pixel data (rare; legal) is reported in its stored orientation.
    """
    im = identify(Stream(data), data, max_pixels)
    fmt = im.format or "image"
    orientation = 1 if fmt == "PNG" and "exif" not in im.info else read_orientation(im)
    return source_info(fmt, im.size, orientation)


def source_info(fmt: str, stored: tuple[int, int], orientation: int) -> SourceInfo:
    """What the source is as a viewer shows it: orientations 5-8 swap width and height."""
    width, height = stored
    if orientation >= 5:
        width, height = height, width
    return SourceInfo("jpeg" if fmt == "MPO" else fmt.lower(), width, height)


class _Truncated(Exception):
    """A decoder asked for bytes past the end of the data."""


class Stream(io.BytesIO):
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


def identify(stream: Stream, data: bytes, max_pixels: int) -> ImageFile.ImageFile:
    """Open (header only) and check format, size and mode before any pixel is decoded."""
    if not data:
        raise NotAnImage("the object is empty (0 bytes)")
    claimed = heif.FORMAT if heif.is_heif(data) else _claimed_format(data)
    try:
        with pillow_warnings_silenced(True, UserWarning):  # e.g. "Corrupt EXIF data", "Invalid APNG"
            if claimed == heif.FORMAT:
                im, reasons = heif.open_header(data), {}
            else:
                im, reasons = _open_as(stream, DECODE_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"image header declares too many pixels: {_short(exc)}") from None
    except (MemoryError, ImportError):  # ImportError: a decoder missing from the zip is not the image's fault
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
def pillow_warnings_silenced(active: bool = True, *also: type[Warning]) -> Iterator[None]:
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
def decoding(fmt: str) -> Iterator[None]:
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
    if "security limit exceeded" in reason.lower():  # libheif's own caps (HEIF): size, tiles, memory
        return ImageTooLarge(f"{fmt} image is over the decoder's limits: {reason}")
    if _UNSUPPORTED_REASON.search(reason):
        return UnsupportedImage(f"{fmt} image cannot be rendered: {reason}")
    return CorruptImage(f"{fmt} data cannot be decoded: {reason}")


def _short(exc: BaseException) -> str:
    """The first line of an exception's message (KeyError's repr quoting left out), at most 300 chars."""
    raw = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)
    text = (raw.strip().splitlines() or [""])[0] or type(exc).__name__
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def read_orientation(im: Image.Image) -> int:
    """EXIF (or XMP) orientation, 1..8; anything missing, odd or unreadable counts as 1.

    Always 1 for HEIF: libheif applies the file's own transforms while decoding (:mod:`.heif`).
    """
    if im.format == heif.FORMAT:
        return 1
    try:
        with pillow_warnings_silenced(True, UserWarning):  # "Corrupt EXIF data" and the like
            value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


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


def _other_format(data: bytes) -> str | None:
    """The name of an image format we recognise but do not decode, if ``data`` is one."""
    head = data[:64]
    for signature, name in _FOREIGN_SIGNATURES:
        if head.startswith(signature):
            return name
    if heif.ftyp_brands(head) & {b"avif", b"avis"}:  # (HEIF never gets here: see heif.is_heif)
        return "AVIF"
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
        with pillow_warnings_silenced(True, UserWarning):
            im, _ = _open_as(io.BytesIO(data), others)
    except MemoryError:
        raise
    except Exception:
        return None
    return None if im is None else im.format
