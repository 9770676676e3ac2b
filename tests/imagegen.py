"""Test images made in code, so that no binary fixture is ever committed.

Every helper returns either a PIL image or encoded bytes, is deterministic (seeded), and is cheap at
the small sizes tests use.  Other test modules (handler, end-to-end, benchmarks) reuse these, so they
stay general: sizes, colours, orientation, quality and profiles are parameters.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Sequence

from PIL import Image

from imgproc.samples import photo

RGB = tuple[int, int, int]

RED: RGB = (255, 0, 0)
GREEN: RGB = (0, 255, 0)
BLUE: RGB = (0, 0, 255)
YELLOW: RGB = (255, 255, 0)
WHITE: RGB = (255, 255, 255)

# Colours of the four quadrants of corner_markers(), as the image is meant to be *displayed*.
MARKERS: dict[str, RGB] = {
    "top_left": RED,
    "top_right": GREEN,
    "bottom_left": YELLOW,
    "bottom_right": BLUE,
}

EXIF_ORIENTATION = 0x0112
EXIF_GPS_IFD = 0x8825

# What a viewer does to the stored pixels to display an image with EXIF orientation N (the same
# table as ImageOps.exif_transpose), and the inverse: how to store a displayed image under N.
_DISPLAY = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_STORE = {**_DISPLAY, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}

# Not images at all.
HTML = b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>nope</body></html>\n"
TEXT = b"just some text that someone uploaded with a .jpg name\n"
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def random_bytes(n: int, seed: int = 0) -> bytes:
    """``n`` reproducible pseudo-random bytes."""
    return random.Random(seed).randbytes(n)


# ---------------------------------------------------------------------------------------------------
# Pixels


def corner_markers(width: int, height: int) -> Image.Image:
    """An RGB image whose four quadrants have the distinct colours of :data:`MARKERS`."""
    image = Image.new("RGB", (width, height))
    half_w, half_h = width // 2, height // 2
    image.paste(MARKERS["top_left"], (0, 0, half_w, half_h))
    image.paste(MARKERS["top_right"], (half_w, 0, width, half_h))
    image.paste(MARKERS["bottom_left"], (0, half_h, half_w, height))
    image.paste(MARKERS["bottom_right"], (half_w, half_h, width, height))
    return image


def corner_colours(image: Image.Image, inset: float = 0.2) -> dict[str, tuple[int, ...]]:
    """The colours sampled near each corner (``inset`` of the way in), keyed like :data:`MARKERS`."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    left, right = int(w * inset), min(w - 1, int(w * (1 - inset)))
    top, bottom = int(h * inset), min(h - 1, int(h * (1 - inset)))
    return {
        "top_left": rgb.getpixel((left, top)),
        "top_right": rgb.getpixel((right, top)),
        "bottom_left": rgb.getpixel((left, bottom)),
        "bottom_right": rgb.getpixel((right, bottom)),
    }


def stored_for_orientation(displayed: Image.Image, orientation: int) -> Image.Image:
    """The pixels to store so that a viewer honouring EXIF ``orientation`` shows ``displayed``."""
    method = _STORE.get(orientation)
    return displayed.copy() if method is None else displayed.transpose(method)


def displayed_for_orientation(stored: Image.Image, orientation: int) -> Image.Image:
    """What a viewer honouring EXIF ``orientation`` shows for ``stored`` pixels."""
    method = _DISPLAY.get(orientation)
    return stored.copy() if method is None else stored.transpose(method)


def rgba_halves(
    width: int,
    height: int,
    *,
    opaque: RGB = RED,
    transparent: tuple[int, int, int, int] = (0, 0, 0, 0),
    split: float = 0.5,
) -> Image.Image:
    """RGBA: the left ``split`` of the width opaque ``opaque``, the rest ``transparent``.

    The default transparent colour is black with alpha 0, the case that turns edges dark or whole
    backgrounds black when a resizer or a JPEG writer ignores alpha.
    """
    image = Image.new("RGBA", (width, height), transparent)
    image.paste((*opaque, 255), (0, 0, max(1, round(width * split)), height))
    return image


# ---------------------------------------------------------------------------------------------------
# Encoders


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    """``image`` saved as ``fmt`` (a Pillow format name) with ``params``."""
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def photo_jpeg(
    width: int,
    height: int,
    orientation: int | None = None,
    quality: int = 90,
    *,
    noise: float = 6.0,
    seed: int = 0,
    progressive: bool = False,
    exif: bytes | None = None,
    icc_profile: bytes | None = None,
) -> bytes:
    """A photo-like :func:`photo` JPEG. ``orientation`` adds an EXIF orientation tag without changing
    the pixels (use :func:`oriented` for pixels stored so that they display upright); ``exif`` is a
    whole EXIF block instead (see :func:`exif_bytes`)."""
    if orientation is not None and exif is not None:
        raise ValueError("pass either orientation or exif")
    params: dict[str, object] = {"quality": quality, "progressive": progressive}
    if orientation is not None:
        params["exif"] = exif_bytes(orientation=orientation)
    elif exif is not None:
        params["exif"] = exif
    if icc_profile is not None:
        params["icc_profile"] = icc_profile
    return encode(photo(width, height, noise=noise, seed=seed), "JPEG", **params)


def oriented(displayed: Image.Image, orientation: int, fmt: str = "JPEG", **params: object) -> bytes:
    """``displayed`` stored under EXIF ``orientation``: a correct viewer shows ``displayed``."""
    stored = stored_for_orientation(displayed, orientation)
    return encode(stored, fmt, exif=exif_bytes(orientation=orientation), **params)


def png_rgba(
    width: int,
    height: int,
    *,
    opaque: RGB = RED,
    transparent: tuple[int, int, int, int] = (0, 0, 0, 0),
    split: float = 0.5,
) -> bytes:
    """A PNG of :func:`rgba_halves`."""
    return encode(rgba_halves(width, height, opaque=opaque, transparent=transparent, split=split), "PNG")


def photo_png_rgba(width: int, height: int, *, seed: int = 0, compress_level: int = 1) -> bytes:
    """A photo-like RGBA PNG whose alpha is a radial vignette: opaque centre, transparent corners."""
    image = photo(width, height, seed=seed).convert("RGBA")
    alpha = Image.radial_gradient("L").resize((width, height)).point(lambda v: max(0, 255 - 2 * v))
    image.putalpha(alpha)
    return encode(image, "PNG", compress_level=compress_level)


def palette_png(
    width: int, height: int, *, transparent: bool = True, colours: Sequence[RGB] = (RED, BLUE)
) -> bytes:
    """Mode P: the left half colour 0, the right half colour 1; with ``transparent`` colour 1 is fully
    transparent through tRNS."""
    image = Image.new("P", (width, height), 0)
    palette: list[int] = []
    for colour in colours:
        palette.extend(colour)
    image.putpalette(palette)
    image.paste(1, (width // 2, 0, width, height))
    params: dict[str, object] = {"transparency": 1} if transparent else {}
    return encode(image, "PNG", **params)


def gif(width: int, height: int, *, transparent: bool = False) -> bytes:
    """A GIF: red on the left half, blue on the right, or (``transparent``) nothing on the right."""
    image = Image.new("P", (width, height), 0)
    image.putpalette([*RED, *BLUE])
    image.paste(1, (width // 2, 0, width, height))
    params: dict[str, object] = {"transparency": 1} if transparent else {}
    return encode(image, "GIF", **params)


def la_png(width: int, height: int, *, grey: int = 100) -> bytes:
    """Mode LA: ``grey`` opaque on the left half, fully transparent (grey 0) on the right."""
    image = Image.new("LA", (width, height), (0, 0))
    image.paste((grey, 255), (0, 0, width // 2, height))
    return encode(image, "PNG")


def bilevel_png(width: int, height: int) -> bytes:
    """Mode 1: white on the left half, black on the right."""
    image = Image.new("1", (width, height), 0)
    image.paste(1, (0, 0, width // 2, height))
    return encode(image, "PNG")


def gray16(width: int, height: int, value: int, fmt: str = "TIFF", mode: str = "I;16") -> bytes:
    """A flat 16-bit greyscale image (``mode`` I;16 or I;16B) of ``value`` in 0..65535."""
    return encode(Image.new(mode, (width, height), value), fmt)


def float_tiff(width: int, height: int, low: float = 0.0, high: float = 1.0) -> bytes:
    """Mode F: a horizontal ramp from ``low`` (left) to ``high`` (right)."""
    ramp = Image.linear_gradient("L").rotate(90)  # 0 on the left, 255 on the right
    ramp = ramp.resize((width, height), Image.Resampling.BILINEAR).convert("F")
    scale = (high - low) / 255.0
    return encode(ramp.point(lambda v: v * scale + low), "TIFF")


def int32_tiff(width: int, height: int, low: int, high: int) -> bytes:
    """Mode I (32-bit signed): a horizontal ramp from ``low`` to ``high``."""
    ramp = Image.linear_gradient("L").rotate(90)  # 0 on the left, 255 on the right
    ramp = ramp.resize((width, height), Image.Resampling.BILINEAR).convert("I")
    scale = (high - low) / 255.0
    return encode(ramp.point(lambda v: v * scale + low), "TIFF")


def cmyk_jpeg(width: int, height: int, cmyk: tuple[int, int, int, int], **params: object) -> bytes:
    """A flat CMYK JPEG. Pillow writes it the Adobe way: APP14 "Adobe" marker, inverted values."""
    return encode(Image.new("CMYK", (width, height), cmyk), "JPEG", quality=95, **params)


def animated(width: int, height: int, colours: Sequence[RGB], fmt: str = "GIF", **params: object) -> bytes:
    """An animation (GIF, WEBP or PNG, i.e. APNG) with one flat frame per colour."""
    frames = [Image.new("RGB", (width, height), colour) for colour in colours]
    if fmt == "WEBP":
        params.setdefault("lossless", True)
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **params)


# ---------------------------------------------------------------------------------------------------
# Metadata


def exif_bytes(*, orientation: int | None = None, gps: bool = False, extra: dict | None = None) -> bytes:
    """An EXIF block (``Exif\\0\\0`` + TIFF) with an orientation, a GPS position, other tags."""
    exif = Image.Exif()
    if orientation is not None:
        exif[EXIF_ORIENTATION] = orientation
    if gps:
        exif[EXIF_GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    for tag, value in (extra or {}).items():
        exif[tag] = value
    return exif.tobytes()


def with_exif(data: bytes, exif: bytes) -> bytes:
    """``data`` with its EXIF replaced by ``exif``, without re-encoding JPEG or PNG pixels.

    JPEG: an APP1 segment after SOI (existing EXIF APP1 segments dropped). PNG: an eXIf chunk before
    the first IDAT. Other formats are re-encoded by Pillow with the ``exif`` parameter.
    """
    payload = exif if exif.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + exif
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg_with_app1(data, payload)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_insert_before_idat(data, png_chunk(b"eXIf", payload[6:]))
    with Image.open(io.BytesIO(data)) as image:
        return encode(image, image.format or "PNG", exif=payload)


def with_exif_orientation(data: bytes, orientation: int) -> bytes:
    """``data`` tagged with EXIF ``orientation`` (any value, even invalid ones), pixels unchanged."""
    return with_exif(data, exif_bytes(orientation=orientation))


def _jpeg_with_app1(data: bytes, payload: bytes) -> bytes:
    segments = [data[:2]]
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA or not 0xE0 <= marker <= 0xFE:  # image data or non-APPn/COM: stop
            break
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        segment = data[pos : pos + 2 + length]
        if not (marker == 0xE1 and segment[4:10] == b"Exif\x00\x00"):
            segments.append(segment)
        pos += 2 + length
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    # Keep JFIF APP0 first when there is one.
    if len(segments) > 1 and segments[1][:2] == b"\xff\xe0":
        return segments[0] + segments[1] + app1 + b"".join(segments[2:]) + data[pos:]
    return segments[0] + app1 + b"".join(segments[1:]) + data[pos:]


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_insert_before_idat(data: bytes, chunk: bytes) -> bytes:
    pos = 8
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        if data[pos + 4 : pos + 8] == b"IDAT":
            return data[:pos] + chunk + data[pos:]
        pos += 12 + length
    raise ValueError("no IDAT chunk")


def declared_size_png(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG header whose IHDR declares ``width`` x ``height`` (8-bit RGB), followed
    by a few bytes of image data: a decompression bomb's header without the bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def gif_with_oversized_frame(screen: tuple[int, int], frame: tuple[int, int]) -> bytes:
    """A GIF whose logical screen is ``screen`` but whose first frame declares ``frame``: Pillow
    grows the image to the frame (and checks that size against its own limits) while opening it.
    The frame's data is a stub, so decoding it fails."""
    header = b"GIF89a" + struct.pack("<HHBBB", *screen, 0, 0, 0)
    descriptor = b"," + struct.pack("<HHHHB", 0, 0, *frame, 0x80) + b"\x00\x00\x00\xff\xff\xff"
    return header + descriptor + b"\x02\x02\x4c\x01\x00;"


def png_bomb(width: int, height: int) -> bytes:
    """Alias of :func:`declared_size_png`: a few hundred bytes declaring ``width`` x ``height``."""
    return declared_size_png(width, height)


# ---------------------------------------------------------------------------------------------------
# ICC profiles

D50 = (0.9642, 1.0, 0.8249)
# Colorants (XYZ, adapted to D50, as stored in rXYZ/gXYZ/bXYZ) of two well-known RGB spaces.
SRGB_COLORANTS = ((0.43607, 0.22249, 0.01392), (0.38515, 0.71687, 0.09708), (0.14307, 0.06061, 0.71410))
ADOBE_RGB_COLORANTS = (
    (0.60974, 0.31111, 0.01947),
    (0.20528, 0.62567, 0.06087),
    (0.14919, 0.06322, 0.74457),
)


def icc_rgb_profile(
    description: str,
    colorants: Sequence[Sequence[float]],
    *,
    gamma: float = 2.2,
    white: Sequence[float] = D50,
) -> bytes:
    """A minimal, valid ICC v2 RGB display profile (matrix/TRC): red, green, blue ``colorants``
    (XYZ, D50-adapted), one pure ``gamma`` tone curve for all three channels."""

    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(values: Sequence[float]) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(s15(v) for v in values)

    ascii_desc = description.encode("ascii") + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(ascii_desc)) + ascii_desc
    desc += struct.pack(">II", 0, 0) + struct.pack(">HB", 0, 0) + b"\0" * 67
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags: list[tuple[bytes, bytes]] = [
        (b"desc", desc),
        (b"cprt", b"text\0\0\0\0" + b"No copyright, test data\0"),
        (b"wtpt", xyz(white)),
        (b"rXYZ", xyz(colorants[0])),
        (b"gXYZ", xyz(colorants[1])),
        (b"bXYZ", xyz(colorants[2])),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    entries, blobs = [], b""
    for signature, body in tags:
        padded = body + b"\0" * (-len(body) % 4)
        entries.append(struct.pack(">4sII", signature, offset + len(blobs), len(body)))
        blobs += padded
    size = offset + len(blobs)
    header = struct.pack(">I4sI4s4s4s", size, b"\0\0\0\0", 0x02100000, b"mntr", b"RGB ", b"XYZ ")
    header += struct.pack(">6H", 2024, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 4 + struct.pack(">I", 0)
    header += b"\0" * 4 + b"\0" * 4 + b"\0" * 8 + struct.pack(">I", 0) + b"".join(s15(v) for v in D50)
    header += b"\0" * 4 + b"\0" * 16 + b"\0" * 28
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + b"".join(entries) + blobs


def adobe_rgb_icc() -> bytes:
    """An Adobe RGB (1998)-like profile: wider gamut than sRGB, gamma 563/256."""
    return icc_rgb_profile("Adobe RGB (1998) test", ADOBE_RGB_COLORANTS, gamma=563 / 256)


def swapped_red_blue_icc() -> bytes:
    """A profile whose red primary is sRGB blue and vice versa: stored red must display as blue."""
    r, g, b = SRGB_COLORANTS
    return icc_rgb_profile("Red-blue swapped test", (b, g, r), gamma=2.2)


def srgb_icc() -> bytes:
    """LittleCMS's built-in sRGB profile, serialised."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def raw_png(
    width: int,
    height: int,
    depth: int,
    colour_type: int,
    *,
    seed: int = 0,
    before_pixels: Sequence[bytes] = (),
    after_pixels: Sequence[bytes] = (),
) -> bytes:
    """A PNG of random samples at any bit depth and colour type (0 grey, 2 RGB, 4 grey+alpha, 6 RGBA),
    Pillow's writer offering only some; ``before_pixels``/``after_pixels``: whole chunks (see
    :func:`png_chunk`) around the image data."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    row_bytes = (width * channels * depth + 7) // 8
    rng = random.Random(seed)
    raw = b"".join(b"\x00" + rng.randbytes(row_bytes) for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + b"".join(before_pixels)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + b"".join(after_pixels)
        + png_chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------------------------------------------
# HEIC/HEIF (pillow-heif's encoder: x265 in its wheel)


def heif(*images: Image.Image, primary: int = 0, orientation: int | None = None, **params: object) -> bytes:
    """A HEIC file holding ``images`` (the one at ``primary`` is the primary item).

    ``orientation`` is written as phones do: as the file's own ``irot``/``imir`` transforms *and* as
    the EXIF Orientation tag, so that the images given are the stored pixels and a viewer shows
    them transformed once (:func:`displayed_for_orientation`).
    """
    import pillow_heif

    container = pillow_heif.from_pillow(images[0])
    for image in images[1:]:
        container.add_from_pillow(image)
    if orientation is not None:
        params["exif"] = exif_bytes(orientation=orientation)
    buf = io.BytesIO()
    container.save(buf, primary_index=primary, **params)
    return buf.getvalue()


def heif_with_declared_size(data: bytes, width: int, height: int) -> bytes:
    """``data`` (a one-image HEIF) with its ``ispe`` box declaring ``width`` x ``height``."""
    at = data.index(b"ispe") + 8  # past the box type, version and flags
    return data[:at] + struct.pack(">II", width, height) + data[at + 8 :]
