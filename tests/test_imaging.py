"""processor.imaging: the pure imaging core. Every source image is generated in code (tests/imagegen.py)."""

from __future__ import annotations

import builtins
import contextlib
import io
import socket
import struct
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import imagegen
import pytest
from PIL import Image, ImageChops, ImageCms, ImageFile, ImageOps, ImageStat, features

from processor import imaging
from processor.errors import CorruptImage, ImageTooLarge, NotAnImage, UnsupportedImage
from processor.imaging import Rendered, SourceInfo, probe, render, render_source
from processor.spec import Fit, OutputFormat, RenditionSpec, Size, Watermark, WatermarkPosition

MAX = 100_000_000
PILLOW_NAMES = {
    OutputFormat.JPEG: "JPEG",
    OutputFormat.PNG: "PNG",
    OutputFormat.WEBP: "WEBP",
    OutputFormat.AVIF: "AVIF",
}
HAS_AVIF = features.check("avif")
OUTPUT_FORMATS = [
    OutputFormat.JPEG,
    OutputFormat.PNG,
    OutputFormat.WEBP,
    pytest.param(OutputFormat.AVIF, marks=pytest.mark.skipif(not HAS_AVIF, reason="Pillow without AVIF")),
]
ROOT = Path(__file__).resolve().parent.parent


def spec(
    width: int, height: int, fit: Fit = Fit.CONTAIN, fmt: OutputFormat | None = None, quality: int = 85
) -> RenditionSpec:
    return RenditionSpec(Size(width, height), fit, fmt, quality)


def one(data: bytes, width: int = 300, height: int = 300, fit: Fit = Fit.CONTAIN, **kw: object) -> Rendered:
    return render(data, [spec(width, height, fit, **kw)], max_pixels=MAX)[0]  # type: ignore[arg-type]


def opened(out: Rendered) -> Image.Image:
    """The rendition decoded again, after checking it is what ``out`` says it is."""
    image = Image.open(io.BytesIO(out.data))
    image.load()
    assert image.format == PILLOW_NAMES[out.format]
    assert image.size == (out.width, out.height)
    assert image.mode in ("RGB", "RGBA")
    return image


def near(got: tuple[int, ...] | float, want: tuple[int, ...], tolerance: int) -> bool:
    assert isinstance(got, tuple)
    return len(got) == len(want) and all(abs(a - b) <= tolerance for a, b in zip(got, want, strict=True))


class LoadSpy:
    """Records (format, size) of every ImageFile.load() call: what was decoded, at which size."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str | None, tuple[int, int]]] = []
        original = ImageFile.ImageFile.load

        def load(im: ImageFile.ImageFile) -> object:
            if im.tile:  # a real decode, not a no-op reload
                self.calls.append((im.format, im.size))
            return original(im)

        monkeypatch.setattr(ImageFile.ImageFile, "load", load)


class ResizeSpy:
    """Records (input size, output size, box) of every Image.resize() call made by render."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[tuple[int, int], tuple[int, int], tuple[float, ...] | None]] = []
        original = Image.Image.resize

        def resize(im: Image.Image, size: tuple[int, int], *args: object, **kwargs: object) -> Image.Image:
            if im.mode not in ("RGBa", "La"):  # Pillow's own premultiplied inner call
                self.calls.append((im.size, tuple(size), kwargs.get("box")))  # type: ignore[arg-type]
            return original(im, size, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Image.Image, "resize", resize)


# ---------------------------------------------------------------------------------------------------
# Purity


def test_importing_the_module_pulls_in_no_aws_sdk_and_no_colour_engine() -> None:
    code = (
        "import sys, processor.imaging; "
        "print(sorted(m for m in ('boto3', 'botocore', 'PIL.ImageCms', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"


def test_render_does_no_file_or_network_io(monkeypatch: pytest.MonkeyPatch) -> None:
    sources = [
        imagegen.photo_jpeg(200, 150, orientation=6, icc_profile=imagegen.adobe_rgb_icc()),
        imagegen.png_rgba(80, 40),
        imagegen.animated(30, 20, [imagegen.RED, imagegen.BLUE], "GIF"),
    ]
    specs = [spec(100, 100, fmt=fmt) for fmt in (None, OutputFormat.PNG, OutputFormat.WEBP)]
    expected = [[(r.width, r.height, r.data) for r in render(s, specs, max_pixels=MAX)] for s in sources]
    with pytest.raises(UnsupportedImage):  # the path that looks for other formats (warm it up too)
        render(imagegen.encode(imagegen.photo(8, 8), "SGI"), specs, max_pixels=MAX)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"I/O attempted: {args!r}")

    monkeypatch.setattr(builtins, "open", forbidden)
    monkeypatch.setattr(io, "open", forbidden)
    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(socket, "create_connection", forbidden)
    for source, want in zip(sources, expected, strict=True):
        assert [(r.width, r.height, r.data) for r in render(source, specs, max_pixels=MAX)] == want
    with pytest.raises(UnsupportedImage):
        render(imagegen.encode(imagegen.photo(8, 8), "SGI"), specs, max_pixels=MAX)


def test_concurrent_renders_match_sequential_ones_and_leave_warning_filters_alone() -> None:
    # The handler renders several records at once in threads.
    sources = [
        imagegen.photo_jpeg(400, 300, orientation=6, icc_profile=imagegen.adobe_rgb_icc()),
        imagegen.photo_png_rgba(200, 150),
        imagegen.palette_png(60, 40),
        imagegen.gif_with_oversized_frame((10, 10), (10_000, 9_500)),  # warns inside Pillow, then fails
        imagegen.png_bomb(10_000, 9_500),  # decoded under the warning guard, then fails
        imagegen.HTML,
    ]
    specs = [spec(120, 120), spec(40, 40, Fit.COVER, OutputFormat.WEBP)]

    def run(data: bytes) -> object:
        try:
            return [(r.format, r.width, r.height, r.data) for r in render(data, specs, max_pixels=MAX)]
        except (CorruptImage, NotAnImage, ImageTooLarge, UnsupportedImage) as exc:
            return type(exc).__name__

    expected = [run(data) for data in sources]
    filters = list(warnings.filters)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(run, sources * 5))
    assert results == expected * 5
    assert list(warnings.filters) == filters


def test_no_specs_no_work() -> None:
    assert render(b"not even an image", [], max_pixels=MAX) == []


# ---------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    "data",
    [
        b"",
        imagegen.random_bytes(4096, seed=1),
        imagegen.random_bytes(4096, seed=2),
        imagegen.HTML,
        imagegen.TEXT,
        imagegen.PDF,
        b"\x00" * 100,
        b'{"not": "an image"}',
    ],
    ids=["empty", "random-1", "random-2", "html", "text", "pdf", "zeros", "json"],
)
def test_not_an_image(data: bytes) -> None:
    with pytest.raises(NotAnImage):
        render(data, [spec(100, 100)], max_pixels=MAX)


JPEG = imagegen.photo_jpeg(160, 120)
PNG = imagegen.encode(imagegen.photo(160, 120), "PNG")


@pytest.mark.parametrize(
    "cut", [3, 30, 200, len(JPEG) // 3, len(JPEG) // 2, len(JPEG) - 200, len(JPEG) - 2, len(JPEG) - 1]
)
def test_truncated_jpeg_is_corrupt(cut: int) -> None:
    with pytest.raises(CorruptImage):
        render(JPEG[:cut], [spec(100, 100)], max_pixels=MAX)


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.9, 0.999])
def test_truncated_jpeg_is_corrupt_when_decoded_at_reduced_scale(fraction: float) -> None:
    data = imagegen.photo_jpeg(800, 600)  # 100x75 from a 1/4 draft
    with pytest.raises(CorruptImage):
        render(data[: int(len(data) * fraction)], [spec(100, 100)], max_pixels=MAX)


@pytest.mark.parametrize("cut", [9, 20, 33, 45, len(PNG) // 4, len(PNG) // 2, len(PNG) - 20])
def test_truncated_png_is_corrupt(cut: int) -> None:
    with pytest.raises(CorruptImage):
        render(PNG[:cut], [spec(100, 100)], max_pixels=MAX)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "TIFF", "BMP", "WEBP"])
@pytest.mark.parametrize("fraction", [0.3, 0.7])
def test_truncation_is_an_error_even_with_load_truncated_images(
    monkeypatch: pytest.MonkeyPatch, fmt: str, fraction: float
) -> None:
    data = imagegen.encode(imagegen.photo(96, 64), fmt)
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # as some other library might
    with pytest.raises(CorruptImage):
        render(data[: int(len(data) * fraction)], [spec(50, 50)], max_pixels=MAX)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # and we did not touch it


def _broken_png_idat(data: bytes) -> bytes:
    start = data.index(b"IDAT") + 4 + 40
    return data[:start] + b"\xff" * 64 + data[start + 64 :]


def _broken_jpeg_huffman_table(data: bytes) -> bytes:
    start = data.index(b"\xff\xc4") + 5
    return data[:start] + b"\xff" * 24 + data[start + 24 :]


def _broken_png_header_crc(data: bytes) -> bytes:
    return data[:29] + bytes([data[29] ^ 0xFF]) + data[30:]


@pytest.mark.parametrize(
    "breaker",
    [_broken_png_idat, _broken_jpeg_huffman_table, _broken_png_header_crc],
    ids=lambda f: f.__name__,
)
def test_broken_data_is_corrupt(breaker: Callable[[bytes], bytes]) -> None:
    data = JPEG if "jpeg" in breaker.__name__ else PNG
    with pytest.raises(CorruptImage):
        render(breaker(data), [spec(100, 100)], max_pixels=MAX)


@pytest.mark.parametrize(
    "exc",
    [ValueError, SyntaxError, IndexError, TypeError, KeyError, EOFError, OSError, struct.error, RuntimeError],
)
def test_any_other_decoder_exception_becomes_a_short_corrupt_image(
    monkeypatch: pytest.MonkeyPatch, exc: type[BaseException]
) -> None:
    def explode(im: ImageFile.ImageFile) -> None:
        raise exc("decoder fell over\nTraceback (most recent call last):\n  File 'x', line 1")

    monkeypatch.setattr(ImageFile.ImageFile, "load", explode)
    with pytest.raises(CorruptImage) as caught:
        render(JPEG, [spec(100, 100)], max_pixels=MAX)
    message = str(caught.value)
    assert "decoder fell over" in message
    assert "\n" not in message
    assert "Traceback" not in message
    assert len(message) < 400


def test_memory_errors_are_not_disguised_as_corrupt_images(monkeypatch: pytest.MonkeyPatch) -> None:
    def exhausted(im: ImageFile.ImageFile) -> None:
        raise MemoryError

    monkeypatch.setattr(ImageFile.ImageFile, "load", exhausted)
    with pytest.raises(MemoryError):
        render(JPEG, [spec(100, 100)], max_pixels=MAX)


@pytest.mark.parametrize(
    ("width", "height", "max_pixels"),
    [
        (100_000, 100_000, MAX),  # far beyond Pillow's own limits too
        (12_000, 10_000, MAX),  # between Pillow's warning and error limits
        (10_000, 9_500, 90_000_000),  # under Pillow's error limit, over ours
        (2_000, 2_000, 3_999_999),
    ],
)
def test_declared_size_over_max_pixels_is_too_large_before_decoding(
    monkeypatch: pytest.MonkeyPatch, width: int, height: int, max_pixels: int
) -> None:
    spy = LoadSpy(monkeypatch)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning (or any other) may escape
        with pytest.raises(ImageTooLarge) as caught:
            render(imagegen.png_bomb(width, height), [spec(100, 100)], max_pixels=max_pixels)
    assert time.perf_counter() - start < 0.5
    assert spy.calls == []
    assert f"{width}x{height}" in str(caught.value)


def test_max_pixels_is_inclusive_and_checked_on_real_images(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = LoadSpy(monkeypatch)
    data = imagegen.photo_jpeg(200, 150)
    with pytest.raises(ImageTooLarge):
        render(data, [spec(100, 100)], max_pixels=200 * 150 - 1)
    assert spy.calls == []
    assert render(data, [spec(100, 100)], max_pixels=200 * 150)[0].width == 100


def test_large_declared_size_within_max_pixels_decodes_without_leaking_bomb_warnings() -> None:
    # 95 MP is over Pillow's warning threshold (~89 MP) and within ours: the data behind the header is
    # missing, so this fails as corrupt, but only after passing the size checks without warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CorruptImage):
            render(imagegen.png_bomb(10_000, 9_500), [spec(100, 100)], max_pixels=MAX)


def test_pillows_decompression_bomb_error_becomes_image_too_large() -> None:
    # The GIF plugin grows the image to a first frame larger than the screen, and checks that size
    # against Pillow's own limits (error above ~179 MP) while opening: before our own check.
    gif = imagegen.gif_with_oversized_frame((10, 10), (20_000, 20_000))
    with pytest.raises(ImageTooLarge):
        render(gif, [spec(100, 100)], max_pixels=10**12)


def test_pillows_decompression_bomb_warning_does_not_leak() -> None:
    gif = imagegen.gif_with_oversized_frame((10, 10), (10_000, 9_500))  # Pillow warns above ~89 MP
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageTooLarge):
            render(gif, [spec(100, 100)], max_pixels=90_000_000)
        with pytest.raises(CorruptImage):  # within our limit: decoded, and the stub data is broken
            render(gif, [spec(100, 100)], max_pixels=MAX)


def test_pillow_globals_and_warning_filters_are_left_alone() -> None:
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES, list(warnings.filters))
    sources = [
        JPEG,
        PNG[:500],
        imagegen.png_bomb(10_000, 9_500),
        imagegen.png_bomb(100_000, 100_000),
        imagegen.gif_with_oversized_frame((10, 10), (10_000, 9_500)),
        b"",
    ]
    for data in sources:
        with contextlib.suppress(CorruptImage, ImageTooLarge, NotAnImage):
            render(data, [spec(100, 100)], max_pixels=MAX)
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES, list(warnings.filters)) == before


@pytest.mark.parametrize(
    "make",
    [
        lambda: imagegen.encode(imagegen.photo(20, 20), "SGI"),
        lambda: imagegen.encode(imagegen.photo(20, 20), "PCX"),
        lambda: imagegen.encode(imagegen.photo(20, 20), "PPM"),
        lambda: imagegen.encode(imagegen.photo(20, 20), "DDS"),
        lambda: imagegen.encode(imagegen.photo(32, 32), "ICO", sizes=[(32, 32)]),
        lambda: imagegen.encode(Image.new("LAB", (20, 20)), "TIFF"),  # a pixel mode we cannot show
        lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64),
        lambda: b"\x00\x00\x00\x0cJXL \r\n\x87\n" + bytes(64),
        lambda: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    ],
    ids=["sgi", "pcx", "ppm", "dds", "ico", "lab-tiff", "heic", "jpeg-xl", "svg"],
)
def test_recognised_formats_we_cannot_render_are_unsupported(make: Callable[[], bytes]) -> None:
    with pytest.raises(UnsupportedImage):
        render(make(), [spec(100, 100)], max_pixels=MAX)


@pytest.mark.parametrize("value", [0, 9, 255, 65535])
def test_out_of_range_orientation_counts_as_1(value: int) -> None:
    markers = imagegen.encode(imagegen.corner_markers(120, 80), "PNG")
    out = opened(one(imagegen.with_exif_orientation(markers, value), 60, 60, fmt=OutputFormat.PNG))
    assert out.size == (60, 40)
    assert imagegen.corner_colours(out) == imagegen.MARKERS


@pytest.mark.parametrize(
    "exif",
    [
        b"Exif\x00\x00" + b"\xde\xad\xbe\xef" * 8,
        b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03",  # IFD cut short
        # One IFD entry: orientation as ASCII "6" instead of a SHORT.
        b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x02\x00\x00\x00\x026\x00\x00\x00\x00\x00\x00\x00",
    ],
    ids=["garbage", "truncated-ifd", "wrong-type"],
)
def test_corrupt_exif_counts_as_orientation_1(exif: bytes) -> None:
    markers = imagegen.encode(imagegen.corner_markers(120, 80), "JPEG", quality=95)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor does Pillow's "Corrupt EXIF data" warning escape
        out = opened(one(imagegen.with_exif(markers, exif), 60, 60))
    assert out.size == (60, 40)
    assert all(near(got, imagegen.MARKERS[k], 40) for k, got in imagegen.corner_colours(out).items())


# ---------------------------------------------------------------------------------------------------
# JPEG draft


def test_jpeg_is_decoded_at_the_smallest_dct_scale_leaving_one_and_a_half_times_the_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = LoadSpy(monkeypatch)
    out = one(imagegen.photo_jpeg(1200, 900), 150, 150)
    assert (out.width, out.height) == (150, 112)
    # 1/4 leaves 300x225 >= 1.5 x 150x112; 1/8 (150x113) would not.
    assert spy.calls == [("JPEG", (300, 225))]


def test_draft_follows_the_largest_rendition(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = LoadSpy(monkeypatch)
    outs = render(imagegen.photo_jpeg(1200, 900), [spec(100, 100), spec(300, 300)], max_pixels=MAX)
    assert [(o.width, o.height) for o in outs] == [(100, 75), (300, 225)]
    assert spy.calls == [("JPEG", (600, 450))]  # 1/2: 300x225 needs >= 450x338; 1/4 is 300x225


@pytest.mark.parametrize(
    ("fit", "decoded"),
    [
        (Fit.CONTAIN, (200, 150)),  # 130x98 output: 1/8 leaves 200x150 >= 1.5 x 130x98
        (Fit.COVER, (400, 300)),  # 130x130 from the central 1200x1200: 1/8 leaves 150 < 195, so 1/4
    ],
)
def test_draft_takes_the_fit_into_account(
    monkeypatch: pytest.MonkeyPatch, fit: Fit, decoded: tuple[int, int]
) -> None:
    spy = LoadSpy(monkeypatch)
    one(imagegen.photo_jpeg(1600, 1200), 130, 130, fit)
    assert spy.calls == [("JPEG", decoded)]


def test_draft_takes_the_orientation_into_account(monkeypatch: pytest.MonkeyPatch) -> None:
    # Stored 1600x400, displayed 400x1600 (orientation 6). In a 100x400 box that is 100x400; had the
    # orientation been ignored, it would be 100x25 and a 1/8 draft (200x50) would have done.
    spy = LoadSpy(monkeypatch)
    out = one(imagegen.photo_jpeg(1600, 400, orientation=6), 100, 400)
    assert (out.width, out.height) == (100, 400)
    assert spy.calls == [("JPEG", (800, 200))]


def test_no_draft_when_no_dct_scale_leaves_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = LoadSpy(monkeypatch)
    one(imagegen.photo_jpeg(500, 400), 300, 300)
    assert spy.calls == [("JPEG", (500, 400))]


def test_other_formats_are_decoded_at_full_size(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = LoadSpy(monkeypatch)
    one(imagegen.encode(imagegen.photo(800, 600), "PNG"), 100, 100)
    assert spy.calls == [("PNG", (800, 600))]


# ---------------------------------------------------------------------------------------------------
# Orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_imagegen_stores_orientations_the_way_pillow_displays_them(orientation: int) -> None:
    displayed = imagegen.corner_markers(120, 80)
    data = imagegen.oriented(displayed, orientation, "PNG")
    shown = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    assert shown.size == (120, 80)
    assert imagegen.corner_colours(shown) == imagegen.MARKERS


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize(("fit", "size"), [(Fit.CONTAIN, (60, 40)), (Fit.COVER, (60, 60))])
def test_every_exif_orientation_is_applied(
    orientation: int, fmt: str, fit: Fit, size: tuple[int, int]
) -> None:
    # 480x320 displayed: JPEG sources are drafted to 1/4 before the orientation is applied.
    params: dict[str, object] = {"quality": 95} if fmt == "JPEG" else {}
    if fmt == "WEBP":
        params["lossless"] = True
    data = imagegen.oriented(imagegen.corner_markers(480, 320), orientation, fmt, **params)
    out = opened(one(data, 60, 60, fit, fmt=OutputFormat.PNG))
    assert out.size == size
    tolerance = 24 if fmt == "JPEG" else 0
    for corner, colour in imagegen.corner_colours(out).items():
        assert near(colour, imagegen.MARKERS[corner], tolerance), (corner, colour)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_orientation_applies_to_renditions_derived_from_intermediates(orientation: int) -> None:
    data = imagegen.oriented(imagegen.corner_markers(960, 640), orientation, "JPEG", quality=95)
    outs = render(data, [spec(240, 240), spec(60, 60), spec(50, 50, Fit.COVER)], max_pixels=MAX)
    assert [(o.width, o.height) for o in outs] == [(240, 160), (60, 40), (50, 50)]
    for out in outs:
        for corner, colour in imagegen.corner_colours(opened(out)).items():
            assert near(colour, imagegen.MARKERS[corner], 40), (out.width, corner, colour)


# ---------------------------------------------------------------------------------------------------
# Pixel modes


@pytest.mark.parametrize(
    ("cmyk", "rgb"),
    [((255, 0, 0, 0), (0, 255, 255)), ((0, 255, 255, 0), (255, 0, 0)), ((0, 0, 0, 255), (0, 0, 0))],
)
def test_adobe_cmyk_jpeg_becomes_rgb(cmyk: tuple[int, int, int, int], rgb: tuple[int, int, int]) -> None:
    data = imagegen.cmyk_jpeg(64, 48, cmyk)
    source = Image.open(io.BytesIO(data))
    assert (source.mode, "adobe" in source.info) == ("CMYK", True)  # Adobe APP14: inverted CMYK
    out = opened(one(data, 32, 32, fmt=OutputFormat.PNG))
    assert out.mode == "RGB"
    assert near(out.getpixel((16, 12)), rgb, 6)


def test_cmyk_with_a_profile_that_does_not_fit_ignores_the_profile() -> None:
    data = imagegen.cmyk_jpeg(64, 48, (255, 0, 0, 0), icc_profile=imagegen.adobe_rgb_icc())
    out = opened(one(data, 32, 32, fmt=OutputFormat.PNG))
    assert near(out.getpixel((16, 12)), (0, 255, 255), 6)


def test_palette_with_trns_becomes_rgba() -> None:
    data = imagegen.palette_png(80, 40)
    assert Image.open(io.BytesIO(data)).mode == "P"
    out = one(data, 40, 40)
    assert out.format is OutputFormat.PNG
    image = opened(out)
    assert image.mode == "RGBA"
    assert image.getpixel((5, 10)) == (255, 0, 0, 255)
    assert image.getpixel((35, 10))[3] == 0


def test_palette_without_transparency_becomes_rgb() -> None:
    out = one(imagegen.palette_png(80, 40, transparent=False), 40, 40, fmt=OutputFormat.PNG)
    image = opened(out)
    assert image.mode == "RGB"
    assert (image.getpixel((5, 10)), image.getpixel((35, 10))) == ((255, 0, 0), (0, 0, 255))


def test_transparent_gif_keeps_its_transparency() -> None:
    image = opened(one(imagegen.gif(80, 40, transparent=True), 40, 40))
    assert image.mode == "RGBA"
    assert (image.getpixel((5, 10)), image.getpixel((35, 10))[3]) == ((255, 0, 0, 255), 0)


def test_la_becomes_rgba() -> None:
    image = opened(one(imagegen.la_png(80, 40, grey=100), 40, 40))
    assert image.mode == "RGBA"
    assert image.getpixel((5, 10)) == (100, 100, 100, 255)
    assert image.getpixel((35, 10))[3] == 0


def test_bilevel_becomes_rgb() -> None:
    image = opened(one(imagegen.bilevel_png(80, 40), 40, 40, fmt=OutputFormat.PNG))
    assert image.mode == "RGB"
    assert (image.getpixel((5, 10)), image.getpixel((35, 10))) == ((255, 255, 255), (0, 0, 0))


@pytest.mark.parametrize(("fmt", "mode"), [("TIFF", "I;16"), ("TIFF", "I;16B"), ("PNG", "I;16")])
@pytest.mark.parametrize(("value", "grey"), [(32896, 128), (65535, 255), (0, 0), (51400, 200), (1000, 4)])
def test_16_bit_greys_are_scaled_not_clipped(fmt: str, mode: str, value: int, grey: int) -> None:
    data = imagegen.gray16(40, 30, value, fmt, mode)
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    image = opened(one(data, 20, 20, fmt=OutputFormat.PNG))
    assert image.mode == "RGB"
    assert image.getpixel((10, 7)) == (grey, grey, grey)


def test_float_samples_are_scaled_by_their_range() -> None:
    data = imagegen.float_tiff(256, 32, 0.0, 1.0)
    assert Image.open(io.BytesIO(data)).mode == "F"
    image = opened(one(data, 256, 32, fmt=OutputFormat.PNG))
    row = [image.getpixel((x, 16))[0] for x in range(256)]
    assert row[0] <= 2
    assert row[-1] >= 253
    assert abs(row[128] - 128) <= 3
    assert row == sorted(row)


def test_32_bit_integer_samples_are_scaled_by_their_range() -> None:
    data = imagegen.int32_tiff(256, 32, -100_000, 100_000)
    assert Image.open(io.BytesIO(data)).mode == "I"
    image = opened(one(data, 256, 32, fmt=OutputFormat.PNG))
    row = [image.getpixel((x, 16))[0] for x in range(256)]
    assert (row[0], row[-1]) == (0, 255)
    assert row == sorted(row)


def test_rgba_is_kept() -> None:
    image = opened(one(imagegen.png_rgba(80, 40), 40, 40))
    assert image.mode == "RGBA"


MODE_SOURCES: dict[str, Callable[[], bytes]] = {
    "rgb-jpeg": lambda: imagegen.photo_jpeg(40, 30),
    "progressive-jpeg": lambda: imagegen.photo_jpeg(40, 30, progressive=True),
    "mpo": lambda: imagegen.encode(
        imagegen.photo(40, 30), "MPO", save_all=True, append_images=[imagegen.photo(40, 30, seed=1)]
    ),
    "gif": lambda: imagegen.gif(40, 30),
    "apng": lambda: imagegen.animated(40, 30, [imagegen.RED, imagegen.BLUE], "PNG"),
    "grey-jpeg": lambda: imagegen.encode(imagegen.photo(40, 30).convert("L"), "JPEG"),
    "cmyk-jpeg": lambda: imagegen.cmyk_jpeg(40, 30, (10, 200, 30, 5)),
    "palette": lambda: imagegen.palette_png(40, 30),
    "la": lambda: imagegen.la_png(40, 30),
    "1-bit": lambda: imagegen.bilevel_png(40, 30),
    "i16": lambda: imagegen.gray16(40, 30, 30000),
    "float": lambda: imagegen.float_tiff(40, 30),
    "rgba": lambda: imagegen.png_rgba(40, 30),
    "bmp": lambda: imagegen.encode(imagegen.photo(40, 30), "BMP"),
    "tiff-lzw": lambda: imagegen.encode(imagegen.photo(40, 30), "TIFF", compression="tiff_lzw"),
    "webp": lambda: imagegen.encode(imagegen.photo(40, 30), "WEBP"),
}
if HAS_AVIF:
    MODE_SOURCES["avif"] = lambda: imagegen.encode(imagegen.photo(40, 30), "AVIF")


@pytest.mark.parametrize("source", sorted(MODE_SOURCES))
@pytest.mark.parametrize("fmt", [None, *OUTPUT_FORMATS])
def test_outputs_are_always_rgb_or_rgba(source: str, fmt: OutputFormat | None) -> None:
    out = one(MODE_SOURCES[source](), 20, 20, fmt=fmt)
    image = opened(out)  # asserts RGB or RGBA
    assert image.mode == (
        "RGBA" if out.format.carries_alpha and source in ("palette", "la", "rgba") else "RGB"
    )


# ---------------------------------------------------------------------------------------------------
# Colour profiles and metadata


def test_a_foreign_profile_is_converted_to_srgb_and_not_embedded() -> None:
    stored = Image.new("RGB", (40, 30), (255, 0, 0))
    data = imagegen.encode(stored, "PNG", icc_profile=imagegen.swapped_red_blue_icc())
    out = one(data, 20, 20, fmt=OutputFormat.PNG)
    image = opened(out)
    assert near(image.getpixel((10, 7)), (0, 0, 255), 3)  # the profile says: this "red" is blue
    assert "icc_profile" not in image.info


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_an_adobe_rgb_jpeg_is_converted_to_srgb(fmt: OutputFormat) -> None:
    colour = (200, 100, 50)
    icc = imagegen.adobe_rgb_icc()
    data = imagegen.encode(Image.new("RGB", (64, 48), colour), "JPEG", quality=100, icc_profile=icc)
    expected = ImageCms.profileToProfile(
        Image.new("RGB", (1, 1), colour),
        ImageCms.ImageCmsProfile(io.BytesIO(icc)),
        ImageCms.createProfile("sRGB"),
        renderingIntent=ImageCms.Intent.PERCEPTUAL,
    )
    assert expected is not None
    want = expected.getpixel((0, 0))
    assert isinstance(want, tuple)
    assert abs(want[0] - colour[0]) >= 20  # the conversion matters
    image = opened(one(data, 32, 32, fmt=fmt))
    assert near(image.getpixel((16, 12)), want, 6 if fmt is OutputFormat.PNG else 10)
    assert not image.info.get("icc_profile")


def test_a_profile_on_a_transparent_image_keeps_the_alpha() -> None:
    stored = imagegen.rgba_halves(40, 30)  # opaque red | transparent
    data = imagegen.encode(stored, "PNG", icc_profile=imagegen.swapped_red_blue_icc())
    image = opened(one(data, 40, 40))
    assert near(image.getpixel((5, 15)), (0, 0, 255, 255), 3)
    assert image.getpixel((35, 15))[3] == 0


def test_an_srgb_profile_changes_nothing() -> None:
    photo = imagegen.photo(64, 48)
    plain = one(imagegen.encode(photo, "PNG"), 32, 32, fmt=OutputFormat.PNG)
    tagged = one(imagegen.encode(photo, "PNG", icc_profile=imagegen.srgb_icc()), 32, 32, fmt=OutputFormat.PNG)
    assert opened(tagged).tobytes() == opened(plain).tobytes()


@pytest.mark.parametrize("icc", [b"not a profile" * 10, imagegen.adobe_rgb_icc()[:200], b"\x00" * 128])
def test_an_invalid_profile_is_ignored(icc: bytes) -> None:
    photo = imagegen.photo(64, 48)
    plain = one(imagegen.encode(photo, "PNG"), 32, 32, fmt=OutputFormat.PNG)
    broken = one(imagegen.encode(photo, "PNG", icc_profile=icc), 32, 32, fmt=OutputFormat.PNG)
    image = opened(broken)
    assert image.tobytes() == opened(plain).tobytes()
    assert "icc_profile" not in image.info


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_outputs_carry_no_exif_gps_xmp_or_comment(fmt: OutputFormat) -> None:
    exif = imagegen.exif_bytes(orientation=1, gps=True, extra={0x010F: "Camera Maker"})
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    data = imagegen.encode(imagegen.photo(64, 48), "JPEG", exif=exif, xmp=xmp, comment=b"secret comment")
    source = Image.open(io.BytesIO(data))
    assert source.getexif().get_ifd(imagegen.EXIF_GPS_IFD)  # the source does carry a GPS position
    out = one(data, 32, 32, fmt=fmt)
    image = opened(out)
    assert not image.getexif()
    assert not image.info.get("exif")
    assert not image.info.get("xmp")
    assert not image.info.get("comment")
    for needle in (b"Exif", b"Camera Maker", b"adobe:ns:meta", b"secret comment"):
        assert needle not in out.data


# ---------------------------------------------------------------------------------------------------
# Animations


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animations_render_their_first_frame(fmt: str) -> None:
    data = imagegen.animated(40, 30, [imagegen.RED, imagegen.BLUE, imagegen.GREEN], fmt)
    source = Image.open(io.BytesIO(data))
    assert getattr(source, "n_frames", 1) == 3
    image = opened(one(data, 20, 20, fmt=OutputFormat.PNG))
    assert image.getpixel((10, 7)) == (255, 0, 0)


# ---------------------------------------------------------------------------------------------------
# Transparency and format choice


def test_transparent_areas_are_white_in_jpeg_and_transparent_in_png() -> None:
    data = imagegen.png_rgba(200, 100)  # left: opaque red; right: transparent *black*
    jpeg = opened(one(data, 100, 100, fmt=OutputFormat.JPEG))
    png = opened(one(data, 100, 100, fmt=OutputFormat.PNG))
    assert jpeg.mode == "RGB"
    assert near(jpeg.getpixel((90, 25)), (255, 255, 255), 2)
    assert near(jpeg.getpixel((10, 25)), (255, 0, 0), 12)
    assert png.getpixel((90, 25)) == (0, 0, 0, 0)
    assert png.getpixel((10, 25)) == (255, 0, 0, 255)


@pytest.mark.parametrize("fmt", [OutputFormat.WEBP, *OUTPUT_FORMATS[3:]])
def test_transparency_is_kept_in_webp_and_avif(fmt: OutputFormat) -> None:
    image = opened(one(imagegen.png_rgba(200, 100), 100, 100, fmt=fmt))
    assert image.mode == "RGBA"
    assert image.getpixel((90, 25))[3] <= 2
    assert image.getpixel((10, 25))[3] >= 253


def test_resizing_rgba_leaves_no_dark_fringes() -> None:
    # An odd width puts the edge between red and transparent black inside output pixels.
    data = imagegen.png_rgba(301, 101, split=0.5)
    png = opened(one(data, 100, 100, fmt=OutputFormat.PNG))
    edge = [png.getpixel((x, y)) for x in range(png.width) for y in range(png.height)]
    partial = [p for p in edge if 0 < p[3] < 255]
    assert partial  # the edge is really soft
    assert all(p[0] >= 250 and p[1] <= 3 and p[2] <= 3 for p in edge if p[3] > 0)  # still pure red
    jpeg = opened(one(data, 100, 100, fmt=OutputFormat.JPEG))
    assert min(jpeg.getpixel((x, y))[0] for x in range(jpeg.width) for y in range(jpeg.height)) >= 220
    # What goes wrong without premultiplied alpha and proper flattening, to show the test can fail:
    assert Image.open(io.BytesIO(data)).convert("RGB").getpixel((300, 50)) == (0, 0, 0)


def test_auto_format_is_jpeg_for_opaque_and_png_for_transparent() -> None:
    opaque = imagegen.encode(imagegen.photo(40, 30).convert("RGBA"), "PNG")  # alpha band, all 255
    one_clear_pixel = imagegen.photo(400, 300).convert("RGBA")
    one_clear_pixel.putpixel((123, 45), (1, 2, 3, 254))
    cases = {
        "jpeg": (imagegen.photo_jpeg(40, 30), OutputFormat.JPEG, "RGB"),
        "opaque-rgba": (opaque, OutputFormat.JPEG, "RGB"),
        "one-translucent-pixel": (imagegen.encode(one_clear_pixel, "PNG"), OutputFormat.PNG, "RGBA"),
        "palette-trns": (imagegen.palette_png(40, 30), OutputFormat.PNG, "RGBA"),
        "palette-opaque": (imagegen.palette_png(40, 30, transparent=False), OutputFormat.JPEG, "RGB"),
        "la": (imagegen.la_png(40, 30), OutputFormat.PNG, "RGBA"),
    }
    for name, (data, fmt, mode) in cases.items():
        outs = render(data, [spec(100, 100), spec(20, 20)], max_pixels=MAX)
        assert [o.format for o in outs] == [fmt, fmt], name  # decided once per source
        assert all(o.spec.format is fmt for o in outs), name
        assert opened(outs[0]).mode == mode, name


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
@pytest.mark.parametrize("source", ["opaque", "transparent"])
def test_the_requested_format_is_produced(fmt: OutputFormat, source: str) -> None:
    data = imagegen.photo_jpeg(120, 90) if source == "opaque" else imagegen.png_rgba(120, 90)
    requested = RenditionSpec(Size(60, 60), Fit.CONTAIN, fmt, 80, watermark=None)
    out = render(data, [requested], max_pixels=MAX)[0]
    assert out.format is fmt
    assert out.spec == requested
    image = opened(out)
    assert image.size == (60, 45)
    transparent = source == "transparent" and fmt is not OutputFormat.JPEG
    assert image.mode == ("RGBA" if transparent else "RGB")


def test_resolved_spec_keeps_everything_but_the_format() -> None:
    requested = RenditionSpec(Size(50, 40), Fit.COVER, None, 77, watermark=Watermark("w"))
    out = render(imagegen.photo_jpeg(100, 100), [requested], max_pixels=MAX)[0]
    assert out.spec == requested.resolved(OutputFormat.JPEG)
    assert out.spec.digest() == requested.resolved(OutputFormat.JPEG).digest()


@pytest.mark.parametrize("fmt", [OutputFormat.JPEG, OutputFormat.WEBP, *OUTPUT_FORMATS[3:]])
def test_quality_is_honoured(fmt: OutputFormat) -> None:
    data = imagegen.photo_jpeg(400, 300, noise=8)
    low, high = (len(one(data, 200, 200, fmt=fmt, quality=q).data) for q in (20, 95))
    assert low * 2 < high


def test_jpeg_encoding_settings() -> None:
    outs = render(imagegen.photo_jpeg(800, 600), [spec(300, 300), spec(100, 100)], max_pixels=MAX)
    big, small = (Image.open(io.BytesIO(o.data)) for o in outs)
    assert big.info.get("progressive") == 1  # smaller above ~15,000 pixels (measured)
    assert not small.info.get("progressive")  # and larger below
    assert "jfif" in big.info  # a plain JFIF: no EXIF, no ICC


# ---------------------------------------------------------------------------------------------------
# Geometry


@pytest.mark.parametrize(
    ("source", "box", "expected"),
    [
        ((1200, 800), (300, 300), (300, 200)),
        ((800, 1200), (300, 300), (200, 300)),
        ((1200, 800), (300, 100), (150, 100)),
        ((800, 1200), (100, 300), (100, 150)),
        ((1000, 333), (300, 300), (300, 100)),
        ((333, 1000), (300, 300), (100, 300)),
        ((120, 80), (300, 300), (120, 80)),  # never upscaled
        ((400, 80), (300, 300), (300, 60)),  # only one side larger than the box
        ((1, 1), (300, 300), (1, 1)),
        ((1, 10_000), (300, 300), (1, 300)),
        ((10_000, 1), (300, 300), (300, 1)),
    ],
)
def test_contain_fits_inside_the_box_keeping_the_aspect(
    source: tuple[int, int], box: tuple[int, int], expected: tuple[int, int]
) -> None:
    data = imagegen.encode(Image.new("RGB", source, (10, 120, 200)), "PNG")
    out = opened(one(data, *box, fmt=OutputFormat.PNG))
    assert out.size == expected
    (w, h), (sw, sh), (bw, bh) = out.size, source, box
    assert 1 <= w <= bw
    assert 1 <= h <= bh
    assert abs(w - h * sw / sh) <= 1 or abs(h - w * sh / sw) <= 1  # aspect within 1 px
    assert w == min(bw, sw) or h == min(bh, sh)  # the binding side fills the box (or the source)


@pytest.mark.parametrize(
    ("source", "box", "expected"),
    [
        ((1200, 800), (300, 300), (300, 300)),
        ((800, 1200), (300, 300), (300, 300)),
        ((1200, 800), (400, 100), (400, 100)),
        ((800, 1200), (100, 400), (100, 400)),
        ((200, 150), (300, 300), (150, 150)),  # smaller than the box: box aspect at source resolution
        ((200, 150), (400, 100), (200, 50)),
        ((1000, 50), (300, 300), (50, 50)),
        ((1, 1), (300, 300), (1, 1)),
        ((1, 10_000), (300, 300), (1, 1)),
        ((10_000, 1), (300, 100), (3, 1)),
    ],
)
def test_cover_fills_the_box_without_upscaling(
    source: tuple[int, int], box: tuple[int, int], expected: tuple[int, int]
) -> None:
    data = imagegen.encode(Image.new("RGB", source, (10, 120, 200)), "PNG")
    out = opened(one(data, *box, Fit.COVER, fmt=OutputFormat.PNG))
    assert out.size == expected
    (w, h), (bw, bh) = out.size, box
    assert abs(w - h * bw / bh) <= 1 or abs(h - w * bh / bw) <= 1  # the box's aspect within 1 px


@pytest.mark.parametrize("portrait", [False, True])
def test_cover_crops_the_centre(portrait: bool) -> None:
    thirds = Image.new("RGB", (300, 100), imagegen.RED)
    thirds.paste(imagegen.GREEN, (100, 0, 200, 100))
    thirds.paste(imagegen.BLUE, (200, 0, 300, 100))
    if portrait:
        thirds = thirds.transpose(Image.Transpose.ROTATE_90)
    out = opened(one(imagegen.encode(thirds, "PNG"), 50, 50, Fit.COVER, fmt=OutputFormat.PNG))
    assert out.size == (50, 50)
    colours = out.getcolors()
    assert colours is not None
    assert max(colours)[1] == imagegen.GREEN
    # LANCZOS (box=) sees a little past the crop, so the outermost 3 pixels may blend a little.
    assert near(out.getpixel((3, 3)), imagegen.GREEN, 2)
    assert near(out.getpixel((46, 46)), imagegen.GREEN, 2)


def test_geometry_uses_the_displayed_orientation() -> None:
    data = imagegen.photo_jpeg(1200, 800, orientation=6)  # stored landscape, displayed portrait
    outs = render(data, [spec(300, 300), spec(300, 100, Fit.COVER)], max_pixels=MAX)
    assert [(o.width, o.height) for o in outs] == [(200, 300), (300, 100)]
    assert [opened(o).size for o in outs] == [(200, 300), (300, 100)]


# ---------------------------------------------------------------------------------------------------
# Decode once, derive from intermediates


def _mean_difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


@pytest.mark.parametrize(
    "specs",
    [
        [spec(300, 300), spec(100, 100)],
        [spec(300, 300, Fit.COVER), spec(100, 100, Fit.COVER)],
        [spec(300, 300), spec(100, 100, Fit.COVER)],  # a centre crop inside a contained intermediate
    ],
    ids=["contain", "cover", "contain-then-cover"],
)
def test_smaller_renditions_derive_from_a_larger_intermediate(
    monkeypatch: pytest.MonkeyPatch, specs: list[RenditionSpec]
) -> None:
    data = imagegen.encode(imagegen.photo(1200, 800), "PNG")
    specs = [RenditionSpec(s.size, s.fit, OutputFormat.PNG, s.quality) for s in specs]
    direct = render(data, specs[1:], max_pixels=MAX)[0]
    spy = ResizeSpy(monkeypatch)
    large, small = render(data, specs, max_pixels=MAX)
    assert [call[0] for call in spy.calls] == [(1200, 800), (large.width, large.height)]
    assert (small.width, small.height) == (direct.width, direct.height)
    assert _mean_difference(opened(small), opened(direct)) < 2.0


def test_intermediates_less_than_twice_the_size_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    data = imagegen.encode(imagegen.photo(1200, 800), "PNG")
    spy = ResizeSpy(monkeypatch)
    render(data, [spec(300, 300), spec(200, 200)], max_pixels=MAX)  # 300 is only 1.5x 200
    assert [call[0] for call in spy.calls] == [(1200, 800), (1200, 800)]


def test_other_regions_are_not_derived_from(monkeypatch: pytest.MonkeyPatch) -> None:
    data = imagegen.encode(imagegen.photo(1200, 800), "PNG")
    spy = ResizeSpy(monkeypatch)
    outs = render(data, [spec(600, 600, Fit.COVER), spec(200, 100, Fit.COVER)], max_pixels=MAX)
    # 600x600 shows the central 800x800; 200x100 needs the full width: it comes from the source.
    assert [call[0] for call in spy.calls] == [(1200, 800), (1200, 800)]
    assert [(o.width, o.height) for o in outs] == [(600, 600), (200, 100)]


def test_results_follow_the_order_of_the_specs_and_decode_once(monkeypatch: pytest.MonkeyPatch) -> None:
    loads = LoadSpy(monkeypatch)
    specs = [spec(50, 50), spec(300, 300), spec(100, 100, Fit.COVER), spec(300, 300)]
    outs = render(imagegen.photo_jpeg(1200, 800), specs, max_pixels=MAX)
    assert [(o.width, o.height) for o in outs] == [(50, 33), (300, 200), (100, 100), (300, 200)]
    assert [o.spec.size for o in outs] == [s.size for s in specs]
    assert outs[1].data == outs[3].data  # a repeated spec gives the same bytes
    assert len(loads.calls) == 1


def test_resampling_uses_lanczos_with_box_and_reducing_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, object]] = []
    original = Image.Image.resize

    def resize(
        im: Image.Image, size: tuple[int, int], resample: object = None, **kwargs: object
    ) -> Image.Image:
        if im.mode not in ("RGBa", "La"):
            seen.append({"resample": resample, **kwargs})
        return original(im, size, resample, **kwargs)  # type: ignore[arg-type]

    data = imagegen.encode(imagegen.photo(400, 300), "PNG")
    monkeypatch.setattr(Image.Image, "resize", resize)
    one(data, 100, 100, Fit.COVER)
    assert seen == [
        {"resample": Image.Resampling.LANCZOS, "box": (50.0, 0.0, 350.0, 300.0), "reducing_gap": 2.0}
    ]


# ---------------------------------------------------------------------------------------------------
# Odd sizes


@pytest.mark.parametrize("size", [(1, 1), (1, 10_000), (10_000, 1), (2, 3)])
@pytest.mark.parametrize("fit", [Fit.CONTAIN, Fit.COVER])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_tiny_and_extreme_images(size: tuple[int, int], fit: Fit, fmt: str) -> None:
    data = imagegen.encode(Image.new("RGB", size, (200, 30, 30)), fmt)
    specs = [spec(300, 300, fit), spec(100, 100, fit)]
    outs = render(data, specs, max_pixels=MAX)
    assert [o.spec.size for o in outs] == [s.size for s in specs]
    # Never upscaled: CONTAIN keeps the aspect (at least 1 pixel a side), COVER crops to the square box.
    assert [opened(o).size for o in outs] == TINY_EXPECTED[size, fit]
    for out in outs:
        assert 1 <= out.width <= out.spec.size.width
        assert 1 <= out.height <= out.spec.size.height


# (source size, fit) -> the renditions' sizes in the 300x300 then the 100x100 box.
TINY_EXPECTED = {
    ((1, 1), Fit.CONTAIN): [(1, 1), (1, 1)],
    ((1, 10_000), Fit.CONTAIN): [(1, 300), (1, 100)],
    ((10_000, 1), Fit.CONTAIN): [(300, 1), (100, 1)],
    ((2, 3), Fit.CONTAIN): [(2, 3), (2, 3)],
    ((1, 1), Fit.COVER): [(1, 1), (1, 1)],
    ((1, 10_000), Fit.COVER): [(1, 1), (1, 1)],
    ((10_000, 1), Fit.COVER): [(1, 1), (1, 1)],
    ((2, 3), Fit.COVER): [(2, 2), (2, 2)],
}


def test_public_interface() -> None:
    assert imaging.__all__ == [
        "DECODE_FORMATS",
        "Rendered",
        "Rendering",
        "SourceInfo",
        "probe",
        "render",
        "render_source",
    ]
    assert {"JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP"} <= set(imaging.DECODE_FORMATS)


# ---------------------------------------------------------------------------------------------------
# Watermark

# Where each position's mark must lie in a 300x300 rendition (left, top, right, bottom).
MARK_REGIONS = {
    WatermarkPosition.TOP_LEFT: (0, 0, 150, 50),
    WatermarkPosition.TOP_RIGHT: (150, 0, 300, 50),
    WatermarkPosition.BOTTOM_LEFT: (0, 250, 150, 300),
    WatermarkPosition.BOTTOM_RIGHT: (150, 250, 300, 300),
    WatermarkPosition.CENTER: (75, 125, 225, 175),
}


def marked(
    width: int, height: int, mark: Watermark | None, fmt: OutputFormat = OutputFormat.PNG
) -> RenditionSpec:
    return RenditionSpec(Size(width, height), Fit.CONTAIN, fmt, 85, mark)


def mark_box(
    data: bytes, mark: Watermark, size: int = 300
) -> tuple[Image.Image, tuple[int, int, int, int] | None]:
    """The marked rendition and the bounding box of the pixels the mark changed."""
    plain, stamped = (opened(render(data, [marked(size, size, m)], max_pixels=MAX)[0]) for m in (None, mark))
    return stamped, ImageChops.difference(plain.convert("RGB"), stamped.convert("RGB")).getbbox()


@pytest.mark.parametrize("position", list(WatermarkPosition))
def test_the_mark_is_drawn_in_its_corner_of_a_large_rendition(position: WatermarkPosition) -> None:
    data = imagegen.encode(imagegen.photo(600, 600), "PNG")
    _, box = mark_box(data, Watermark("(c) ACME", position))
    assert box is not None
    left, top, right, bottom = MARK_REGIONS[position]
    assert left <= box[0] < box[2] <= right, box
    assert top <= box[1] < box[3] <= bottom, box
    # The text is ~5% of the shorter side tall (15 px here) plus its outline.
    assert 12 <= box[3] - box[1] <= 24, box


def test_no_mark_below_the_minimum_size() -> None:
    data = imagegen.encode(imagegen.photo(600, 600), "PNG")
    mark = Watermark("(c) ACME", min_size=200)
    plain, small = (render(data, [marked(100, 100, m)], max_pixels=MAX)[0] for m in (None, mark))
    assert small.data == plain.data
    # 300x300 box, but a 300x150 rendition: its shorter side is below 200 too.
    wide = imagegen.encode(imagegen.photo(600, 300), "PNG")
    plain, banner = (render(wide, [marked(300, 300, m)], max_pixels=MAX)[0] for m in (None, mark))
    assert (banner.width, banner.height) == (300, 150)
    assert banner.data == plain.data
    assert (
        render(wide, [marked(300, 300, Watermark("x", min_size=150))], max_pixels=MAX)[0].data != plain.data
    )


@pytest.mark.parametrize("background", [(255, 255, 255), (0, 0, 0), (128, 128, 128)])
def test_the_mark_is_legible_on_light_dark_and_mid_grey_images(background: tuple[int, int, int]) -> None:
    data = imagegen.encode(Image.new("RGB", (600, 600), background), "PNG")
    image, box = mark_box(data, Watermark("(c) ACME", opacity=1.0))
    assert box is not None
    lows, highs = ImageOps.grayscale(image.crop(box)).getextrema()
    assert lows <= 20  # the dark outline
    assert highs >= 235  # the light letters
    # At the default opacity the mark still stands out by half the range from either extreme.
    image, box = mark_box(data, Watermark("(c) ACME"))
    assert box is not None
    lows, highs = ImageOps.grayscale(image.crop(box)).getextrema()
    assert highs - lows >= 120


def test_the_mark_keeps_transparency_around_it_and_shows_on_transparent_pixels() -> None:
    data = imagegen.png_rgba(600, 600, split=0.5)  # left half red, right half transparent
    image, box = mark_box(data, Watermark("(c) ACME", WatermarkPosition.BOTTOM_RIGHT, opacity=0.5))
    assert image.mode == "RGBA"
    assert box is not None
    alpha = image.getchannel("A")
    assert alpha.getpixel((200, 20)) == 0  # still transparent away from the mark
    assert alpha.crop(box).getextrema() == (0, 128)  # the mark, at half opacity, over nothing


def test_the_mark_is_drawn_on_jpeg_after_flattening() -> None:
    data = imagegen.png_rgba(600, 600)
    out = render(data, [marked(300, 300, Watermark("(c) ACME"), OutputFormat.JPEG)], max_pixels=MAX)[0]
    image = opened(out)
    assert image.mode == "RGB"
    corner = ImageOps.grayscale(image.crop(MARK_REGIONS[WatermarkPosition.BOTTOM_RIGHT]))
    assert corner.getextrema()[0] <= 150  # the outline on the white flattened background


def test_a_marked_rendition_never_marks_the_smaller_ones_derived_from_it() -> None:
    data = imagegen.encode(imagegen.photo(1200, 1200), "PNG")
    unmarked = render(data, [marked(600, 600, None), marked(250, 250, None)], max_pixels=MAX)
    both = render(data, [marked(600, 600, Watermark("(c) ACME")), marked(250, 250, None)], max_pixels=MAX)
    assert both[0].data != unmarked[0].data
    assert both[1].data == unmarked[1].data  # derived from the 600x600 intermediate, without its mark


def test_a_long_text_shrinks_to_fit_the_width() -> None:
    data = imagegen.encode(Image.new("RGB", (600, 600), (128, 128, 128)), "PNG")
    _, box = mark_box(data, Watermark("an overly long copyright notice for a small image"))
    assert box is not None
    assert box[0] >= 8  # the 3% margin is kept on both sides: the text was made smaller
    assert box[2] <= 292
    # Beyond the smallest legible size the text is cut at the image's edge, never an error.
    _, box = mark_box(data, Watermark("an overly long copyright notice for a small image " * 4))
    assert box is not None
    assert box[0] == 0


def test_watermarking_is_thread_safe() -> None:
    data = imagegen.encode(imagegen.photo(600, 600), "PNG")
    specs = [marked(300, 300, Watermark("(c) ACME", position)) for position in WatermarkPosition]
    expected = [out.data for out in render(data, specs, max_pixels=MAX)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: [o.data for o in render(data, specs, max_pixels=MAX)], range(16)))
    assert all(result == expected for result in results)


# ---------------------------------------------------------------------------------------------------
# What the source is (for the catalog)


def test_render_source_reports_the_source_format_and_displayed_size() -> None:
    data = imagegen.photo_jpeg(800, 600, orientation=6)  # shown rotated: 600x800
    rendering = render_source(data, [spec(300, 300)], max_pixels=MAX)
    assert rendering.source == SourceInfo("jpeg", 600, 800)
    assert [(r.width, r.height) for r in rendering.renditions] == [(225, 300)]
    assert render(data, [spec(300, 300)], max_pixels=MAX)[0].data == rendering.renditions[0].data


def test_probe_reads_only_the_header() -> None:
    data = imagegen.photo_jpeg(800, 600, orientation=8)
    assert probe(data) == SourceInfo("jpeg", 600, 800)
    assert probe(data[:2048]) == SourceInfo("jpeg", 600, 800)  # pixel data cut off: still fine
    assert probe(imagegen.png_rgba(120, 60)) == SourceInfo("png", 120, 60)
    with pytest.raises(CorruptImage):
        probe(data[:200])  # not even the whole header
    with pytest.raises(NotAnImage):
        probe(b"hello")
