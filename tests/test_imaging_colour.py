"""processor.imaging.colour: pixel modes, colour profiles and metadata, animations, transparency."""

from __future__ import annotations

import io
from collections.abc import Callable

import imagegen
import pytest
from imagingkit import HAS_AVIF, OUTPUT_FORMATS, near, one, opened
from PIL import Image, ImageCms

from processor.spec import OutputFormat

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
