"""processor.imaging.watermark: where the mark goes, when, and that it stays legible."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import imagegen
import pytest
from imagingkit import MAX, opened
from PIL import Image, ImageChops, ImageOps

from processor.imaging import render
from processor.spec import Fit, OutputFormat, RenditionSpec, Size, Watermark, WatermarkPosition

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
