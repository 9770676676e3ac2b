"""PNG sources through libspng (processor/imaging/png.py): the same result as Pillow's decoder, mode by
mode, and the same errors; numpy and pyspng loaded on the first PNG only; Pillow when they are absent."""

from __future__ import annotations

import io
import subprocess
import sys
import zlib

import imagegen
import numpy
import pyspng
import pytest
from imagingkit import MAX, ROOT, LoadSpy, spec
from PIL import Image

from processor.errors import CorruptImage, ImageTooLarge, ProcessingError
from processor.imaging import png, render
from processor.imaging.colour import to_working_mode
from processor.spec import OutputFormat

INTERLACED = pyspng.ProgressiveMode.INTERLACED


def pillow_working(data: bytes) -> tuple[Image.Image, bool]:
    im = Image.open(io.BytesIO(data))
    im.load()
    return to_working_mode(im)


def spng_working(data: bytes) -> tuple[Image.Image, bool]:
    im = Image.open(io.BytesIO(data))
    decoded = png.decode(im, data)
    assert decoded is not None, "libspng was not used"
    return to_working_mode(decoded)


def assert_parity(data: bytes) -> None:
    (want, want_alpha), (got, got_alpha) = pillow_working(data), spng_working(data)
    assert (got.mode, got.size, got_alpha) == (want.mode, want.size, want_alpha)
    assert got.tobytes() == want.tobytes()  # pixel-equal: no tolerance


def interlaced(array: numpy.ndarray) -> bytes:
    return pyspng.encode(array, progressive=INTERLACED)


def random_array(shape: tuple[int, ...], dtype: type = numpy.uint8, seed: int = 0) -> numpy.ndarray:
    info = numpy.iinfo(dtype)
    return numpy.random.default_rng(seed).integers(0, info.max + 1, size=shape, dtype=dtype)


# (depth, colour type): every combination but palette; Pillow's mode in the id.
RAW_CASES = [
    pytest.param(1, 0, id="1-bit grey (mode 1)"),
    pytest.param(2, 0, id="2-bit grey (L)"),
    pytest.param(4, 0, id="4-bit grey (L)"),
    pytest.param(8, 0, id="8-bit grey (L)"),
    pytest.param(16, 0, id="16-bit grey (I;16)"),
    pytest.param(8, 2, id="8-bit RGB"),
    pytest.param(16, 2, id="16-bit RGB (RGB, high bytes)"),
    pytest.param(8, 4, id="8-bit grey+alpha (LA)"),
    pytest.param(16, 4, id="16-bit grey+alpha (RGBA)"),
    pytest.param(8, 6, id="8-bit RGBA"),
    pytest.param(16, 6, id="16-bit RGBA"),
]


@pytest.mark.parametrize(("depth", "colour_type"), RAW_CASES)
def test_every_mode_decodes_as_pillow_does(depth: int, colour_type: int) -> None:
    assert_parity(imagegen.raw_png(37, 23, depth, colour_type, seed=depth * 10 + colour_type))


@pytest.mark.parametrize(
    "array",
    [
        random_array((29, 41)),
        random_array((29, 41, 2)),
        random_array((29, 41, 3)),
        random_array((29, 41, 4)),
        random_array((29, 41, 4), numpy.uint16),
        random_array((29, 41, 2), numpy.uint16),
    ],
    ids=["L", "LA", "RGB", "RGBA", "RGBA 16-bit", "grey+alpha 16-bit"],
)
def test_interlaced_decodes_as_pillow_does(array: numpy.ndarray) -> None:
    data = interlaced(array)
    assert Image.open(io.BytesIO(data)).info.get("interlace") == 1
    assert_parity(data)


def test_pillow_written_sources_and_their_alpha_verdicts() -> None:
    opaque_rgba = imagegen.encode(imagegen.photo(64, 48).convert("RGBA"), "PNG")
    for data in (
        imagegen.photo_png_rgba(64, 48),
        opaque_rgba,
        imagegen.la_png(20, 10),
        imagegen.bilevel_png(9, 7),
    ):
        assert_parity(data)
    assert spng_working(opaque_rgba) == (spng_working(opaque_rgba)[0], False)  # all-opaque alpha dropped
    assert spng_working(imagegen.gray16(30, 20, 40000, "PNG"))[0].getpixel((0, 0)) == round(40000 / 257)


def test_trns_gamma_and_chromaticity_are_ignored_on_both_paths() -> None:
    chunks = [
        imagegen.png_chunk(b"gAMA", (45455 * 2).to_bytes(4, "big")),
        imagegen.png_chunk(b"cHRM", bytes(32)),
        imagegen.png_chunk(b"sBIT", b"\x05\x05\x05"),
        imagegen.png_chunk(b"tRNS", b"\x00\x10\x00\x20\x00\x30"),
    ]
    data = imagegen.raw_png(30, 20, 8, 2, before_pixels=chunks)
    assert_parity(data)
    assert spng_working(data)[0].mode == "RGB"  # tRNS on RGB: Pillow keeps it in info only


def icc_png(profile: bytes) -> bytes:
    return imagegen.encode(imagegen.photo(60, 40), "PNG", icc_profile=profile)


@pytest.mark.parametrize("fmt", [OutputFormat.JPEG, OutputFormat.PNG, OutputFormat.WEBP])
@pytest.mark.parametrize(
    "data",
    [
        pytest.param(icc_png(imagegen.adobe_rgb_icc()), id="ICC Adobe RGB"),
        pytest.param(imagegen.photo_png_rgba(90, 60), id="RGBA"),
        pytest.param(
            imagegen.encode(imagegen.corner_markers(80, 60), "PNG", exif=imagegen.exif_bytes(orientation=6)),
            id="eXIf 6",
        ),
        pytest.param(imagegen.gray16(50, 40, 1234, "PNG"), id="16-bit grey"),
        pytest.param(interlaced(random_array((40, 50, 3))), id="interlaced"),
    ],
)
def test_renditions_are_byte_identical_to_pillows(
    data: bytes, fmt: OutputFormat, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = [spec(30, 30, fmt=fmt), spec(10, 10, fmt=fmt)]
    fast = render(data, specs, max_pixels=MAX)
    with monkeypatch.context() as patched:
        patched.setattr(png, "_spng", lambda: None)
        slow = render(data, specs, max_pixels=MAX)
    assert [(r.width, r.height, r.data) for r in fast] == [(r.width, r.height, r.data) for r in slow]


def apng(default_image: bool) -> bytes:
    frames = [Image.new("RGBA", (20, 10), colour) for colour in ((255, 0, 0, 255), (0, 0, 255, 128))]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], default_image=default_image)
    return buf.getvalue()


@pytest.mark.parametrize("default_image", [False, True], ids=["IDAT is frame 0", "IDAT is the default image"])
def test_apng_first_frame(default_image: bool) -> None:
    data = apng(default_image)
    assert getattr(Image.open(io.BytesIO(data)), "is_animated", False)
    assert_parity(data)
    assert spng_working(data)[0].getpixel((0, 0)) == (255, 0, 0)


def test_palette_and_late_metadata_are_left_to_pillow() -> None:
    palette = imagegen.palette_png(20, 10, transparent=True)
    assert png.decode(Image.open(io.BytesIO(palette)), palette) is None
    exif = imagegen.exif_bytes(orientation=6)
    for kind, body in (
        (b"eXIf", exif),
        (b"tEXt", b"Comment\x00late"),
        (b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00x"),
    ):
        late = imagegen.raw_png(20, 10, 8, 2, after_pixels=[imagegen.png_chunk(kind, body)])
        assert png.decode(Image.open(io.BytesIO(late)), late) is None, kind
    late_exif = imagegen.raw_png(20, 10, 8, 2, after_pixels=[imagegen.png_chunk(b"eXIf", exif)])
    out = render(late_exif, [spec(100, 100)], max_pixels=MAX)[0]
    assert (out.width, out.height) == (10, 20)  # the late orientation honoured, as before


def test_a_late_icc_profile_is_honoured_as_pillow_honours_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """An iCCP chunk after the pixel data (valid PNG: Pillow reads it while loading) must convert the
    colours exactly as before; libspng's binding would not apply it, so Pillow decodes such a file."""
    profile = zlib.compress(imagegen.adobe_rgb_icc())
    late = imagegen.raw_png(
        64, 48, 8, 2, seed=3, after_pixels=[imagegen.png_chunk(b"iCCP", b"x\x00\x00" + profile)]
    )
    assert png.decode(Image.open(io.BytesIO(late)), late) is None
    specs = [spec(30, 30)]
    fast = render(late, specs, max_pixels=MAX)
    monkeypatch.setattr(png, "_spng", lambda: None)
    assert [r.data for r in fast] == [r.data for r in render(late, specs, max_pixels=MAX)]


def idat_offset(data: bytes) -> int:
    return data.index(b"IDAT") + 4


def corruptions() -> list:
    data = imagegen.raw_png(64, 48, 8, 6, seed=3)
    start = idat_offset(data)
    end = data.index(b"IEND") - 8  # the IDAT's CRC
    flipped = bytearray(data)
    flipped[start + 40 : start + 60] = bytes(20)
    bad_crc = bytearray(data)
    bad_crc[end : end + 4] = b"\x00\x00\x00\x00"
    bad_adler = bytearray(data)
    bad_adler[end - 4 : end] = b"\x00\x00\x00\x00"
    bad_filter = imagegen.raw_png(8, 4, 8, 2)
    raw = zlib.decompress(bad_filter[idat_offset(bad_filter) : bad_filter.index(b"IEND") - 8])
    body = zlib.compress(b"\x09" + raw[1:])
    bad_filter = (
        bad_filter[: idat_offset(bad_filter) - 8]
        + imagegen.png_chunk(b"IDAT", body)
        + imagegen.png_chunk(b"IEND", b"")
    )
    return [
        pytest.param(data[: start + 100], id="truncated in IDAT"),
        pytest.param(data[: len(data) - 12], id="no IEND"),
        pytest.param(bytes(flipped), id="corrupt deflate data"),
        pytest.param(bytes(bad_crc), id="bad IDAT CRC"),
        pytest.param(bytes(bad_adler), id="bad adler-32"),
        pytest.param(bad_filter, id="unknown filter type"),
        pytest.param(data + b"trailing garbage", id="bytes after IEND"),
    ]


@pytest.mark.parametrize("data", corruptions())
def test_broken_pngs_fail_or_render_exactly_as_with_pillow(
    data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def outcome() -> object:
        try:
            return [r.data for r in render(data, [spec(30, 30)], max_pixels=MAX)]
        except ProcessingError as exc:
            return (type(exc), str(exc))

    fast = outcome()
    monkeypatch.setattr(png, "_spng", lambda: None)
    assert fast == outcome()


def test_truncated_png_is_still_corrupt() -> None:
    data = imagegen.photo_png_rgba(64, 48)
    with pytest.raises(CorruptImage, match="truncated"):
        render(data[: len(data) // 2], [spec(30, 30)], max_pixels=MAX)


def test_max_pixels_is_checked_from_the_header_before_libspng(monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[int] = []
    monkeypatch.setattr(png, "decode", lambda *a: called.append(1))
    with pytest.raises(ImageTooLarge):
        render(imagegen.png_bomb(100_000, 100_000), [spec(30, 30)], max_pixels=MAX)
    with pytest.raises(ImageTooLarge):
        render(imagegen.photo_png_rgba(64, 48), [spec(30, 30)], max_pixels=64 * 48 - 1)
    assert called == []


def test_libspng_decodes_and_pillow_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = LoadSpy(monkeypatch)
    render(imagegen.photo_png_rgba(64, 48), [spec(30, 30)], max_pixels=MAX)
    assert spy.calls == []


def test_pillow_decodes_when_pyspng_is_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = LoadSpy(monkeypatch)
    monkeypatch.setattr(png, "_spng", lambda: None)
    render(imagegen.photo_png_rgba(64, 48), [spec(30, 30)], max_pixels=MAX)
    assert spy.calls == [("PNG", (64, 48))]


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


PRELUDE = """
import hashlib
import sys
sys.path[:0] = ["tests"]
import imagegen
from processor.imaging import render
from processor.spec import Fit, RenditionSpec, Size
specs = [RenditionSpec(Size(30, 30), Fit.CONTAIN, None, 85)]
"""


@pytest.mark.slow
def test_numpy_and_pyspng_load_on_the_first_png_only() -> None:
    out = run_python(
        PRELUDE
        + """
render(imagegen.photo_jpeg(64, 48), specs, max_pixels=10**8)
print("numpy" in sys.modules, "pyspng" in sys.modules, end=" ")
render(imagegen.photo_png_rgba(64, 48), specs, max_pixels=10**8)
print("numpy" in sys.modules, "pyspng" in sys.modules)
"""
    )
    assert out == "False False True True"


@pytest.mark.slow
def test_pyspng_missing_means_pillow_with_the_same_outputs() -> None:
    code = """
render_outputs = lambda: [r.data for r in render(imagegen.photo_png_rgba(64, 48), specs, max_pixels=10**8)]
print(hashlib.sha256(b"".join(render_outputs())).hexdigest(), end=" ")
"""
    with_spng = run_python(PRELUDE + code)
    without = run_python(
        'import sys; sys.modules["pyspng"] = None\n' + PRELUDE + code + "print('numpy' in sys.modules)"
    )
    assert without == with_spng.strip() + " False"
