"""processor.imaging.geometry: the JPEG draft scale, orientation, contain and cover."""

from __future__ import annotations

import io

import imagegen
import pytest
from imagingkit import MAX, LoadSpy, near, one, opened, spec
from PIL import Image, ImageOps

from processor.imaging import render
from processor.spec import Fit, OutputFormat

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
    one(imagegen.encode(imagegen.photo(800, 600), "WEBP"), 100, 100)
    assert spy.calls == [("WEBP", (800, 600))]  # (PNG: libspng, when installed; test_imaging_png.py)


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
