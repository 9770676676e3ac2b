"""processor.imaging as a whole: purity, decode once and derive from intermediates, odd sizes, the public
interface, what the source is. Every source image is generated in code (tests/imagegen.py); the
subjects have their own files (test_imaging_identify, _geometry, _colour, _encode, _watermark)."""

from __future__ import annotations

import builtins
import io
import socket
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import imagegen
import pytest
from imagingkit import MAX, ROOT, LoadSpy, ResizeSpy, one, opened, spec
from PIL import Image, ImageChops, ImageStat

from processor import imaging
from processor.errors import CorruptImage, ImageTooLarge, NotAnImage, UnsupportedImage
from processor.imaging import SourceInfo, probe, render, render_source
from processor.spec import Fit, OutputFormat, RenditionSpec

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
