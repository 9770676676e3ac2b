"""processor.imaging.encode: the output format chosen and produced, quality and encoder settings."""

from __future__ import annotations

import io

import imagegen
import pytest
from imagingkit import MAX, OUTPUT_FORMATS, one, opened, spec
from PIL import Image

from processor.imaging import render
from processor.spec import Fit, OutputFormat, RenditionSpec, Size, Watermark

# ---------------------------------------------------------------------------------------------------
# Format choice and encoding


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
