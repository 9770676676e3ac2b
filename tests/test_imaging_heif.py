"""processor.imaging.heif: HEIC/HEIF sources (iPhone photos) with the guarantees of every other format.

Every file is made in code with pillow-heif's own encoder (:func:`imagegen.heif`); none is committed.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import imagegen
import pillow_heif
import pytest
from imagingkit import MAX, near, one, opened, spec
from PIL import Image, ImageFile

from processor.errors import CorruptImage, ImageTooLarge, NotAnImage, ProcessingError
from processor.imaging import SourceInfo, heif, probe, render, render_source
from processor.spec import OutputFormat

PHOTO = imagegen.heif(imagegen.photo(640, 480), quality=80)
SMALL = imagegen.heif(imagegen.photo(64, 64))


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The size of every HEIF image libheif decodes (pillow-heif's one decoding entry point); the
    encoder goes through it too, so sources are made before the spy is set."""
    calls: list[tuple[int, int]] = []
    original = pillow_heif.heif.BaseImage.load

    def load(image: pillow_heif.heif.BaseImage) -> None:
        if not image._data:  # a real decode, not a no-op once decoded
            calls.append(image.size)
        original(image)

    monkeypatch.setattr(pillow_heif.heif.BaseImage, "load", load)
    return calls


def test_a_heic_source_renders_every_size_in_the_configured_format() -> None:
    rendering = render_source(PHOTO, [spec(300, 300), spec(100, 100, fmt=OutputFormat.WEBP)], max_pixels=MAX)

    assert rendering.source == SourceInfo("heif", 640, 480)
    large, small = rendering.renditions
    assert (large.format, large.width, large.height) == (OutputFormat.JPEG, 300, 225)  # auto: opaque
    assert (small.format, small.width, small.height) == (OutputFormat.WEBP, 100, 75)
    assert opened(large).size == (300, 225)
    assert opened(small).size == (100, 75)


def test_the_header_says_format_and_size_without_decoding(decoded: list[tuple[int, int]]) -> None:
    assert probe(PHOTO) == SourceInfo("heif", 640, 480)
    assert decoded == []


@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_the_files_own_rotation_is_applied_once_whatever_its_exif_repeats(orientation: int) -> None:
    displayed = imagegen.corner_markers(120, 80)
    stored = imagegen.stored_for_orientation(displayed, orientation)
    data = imagegen.heif(stored, orientation=orientation, quality=90)
    exif = Image.Exif()
    exif.load(pillow_heif.open_heif(data).info["exif"])
    assert exif[imagegen.EXIF_ORIENTATION] == orientation  # as a phone writes it: EXIF and irot both

    out = opened(one(data, 60, 60, fmt=OutputFormat.PNG))

    assert out.size == (60, 40)
    assert probe(data) == SourceInfo("heif", 120, 80)
    assert all(
        near(got, want, 24)
        for got, want in zip(imagegen.corner_colours(out).values(), imagegen.MARKERS.values(), strict=True)
    )


def test_an_exif_orientation_left_in_place_by_pillow_heif_is_still_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pillow-heif resets the EXIF tag it exposes to 1; we do not depend on it doing so."""
    monkeypatch.setattr(pillow_heif.as_plugin, "set_orientation", lambda info: None)
    displayed = imagegen.corner_markers(120, 80)
    data = imagegen.heif(imagegen.stored_for_orientation(displayed, 6), orientation=6, quality=90)

    out = opened(one(data, 60, 60, fmt=OutputFormat.PNG))

    assert out.size == (60, 40)
    assert near(imagegen.corner_colours(out)["top_left"], imagegen.RED, 24)


def test_an_icc_profile_is_converted_to_srgb() -> None:
    red = Image.new("RGB", (64, 48), imagegen.RED)
    tagged = imagegen.heif(red, quality=95, icc_profile=imagegen.swapped_red_blue_icc())
    assert pillow_heif.open_heif(tagged).info["icc_profile"] == imagegen.swapped_red_blue_icc()

    out = opened(one(tagged, 32, 32, fmt=OutputFormat.PNG))
    plain = opened(one(imagegen.heif(red, quality=95), 32, 32, fmt=OutputFormat.PNG))

    assert near(out.getpixel((10, 10)), imagegen.BLUE, 16)  # the profile says: this "red" is blue
    assert near(plain.getpixel((10, 10)), imagegen.RED, 16)
    assert "icc_profile" not in out.info


def test_transparency_survives_and_auto_picks_png() -> None:
    data = imagegen.heif(imagegen.rgba_halves(64, 32), quality=95)

    out = one(data, 32, 32)

    assert out.format is OutputFormat.PNG
    image = opened(out)
    assert image.mode == "RGBA"
    assert image.getpixel((4, 8))[3] == 255
    assert image.getpixel((28, 8))[3] == 0


@pytest.mark.parametrize("primary", [0, 1])
def test_a_file_of_several_images_renders_its_primary_image(primary: int) -> None:
    red = Image.new("RGB", (64, 48), imagegen.RED)
    blue = Image.new("RGB", (32, 96), imagegen.BLUE)
    data = imagegen.heif(red, blue, primary=primary, quality=90)

    out = opened(one(data, 300, 300, fmt=OutputFormat.PNG))

    assert out.size == ((64, 48), (32, 96))[primary]
    assert near(out.getpixel((8, 8)), (imagegen.RED, imagegen.BLUE)[primary], 16)


@pytest.mark.parametrize("cut", [0.98, 0.8, 0.5, 0.1])
@pytest.mark.parametrize("load_truncated", [False, True])
def test_a_truncated_file_is_corrupt(
    cut: float, load_truncated: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cut in the pixel data, in the boxes or in the ftyp: corrupt, even when Pillow is told to
    load truncated images (pillow-heif's own plugin then returns a blank image)."""
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", load_truncated)
    data = imagegen.heif(imagegen.photo(256, 256), quality=90)

    with pytest.raises(CorruptImage, match="HEIF"):
        render(data[: int(len(data) * cut)], [spec(100, 100)], max_pixels=MAX)


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64),  # a brand and nothing after it
        PHOTO.replace(b"meta", b"mxta", 1),
        PHOTO.replace(b"hvcC", b"hvcX", 1),
    ],
    ids=["ftyp-only", "no-meta", "no-decoder-config"],
)
def test_a_broken_file_is_corrupt(data: bytes) -> None:
    with pytest.raises(CorruptImage, match="HEIF"):
        render(data, [spec(100, 100)], max_pixels=MAX)


def test_too_many_pixels_is_rejected_from_the_header_before_any_decoding(
    decoded: list[tuple[int, int]],
) -> None:
    data = imagegen.heif_with_declared_size(SMALL, 20_000, 20_000)

    with pytest.raises(ImageTooLarge, match=r"HEIF header declares 20000x20000"):
        render(data, [spec(100, 100)], max_pixels=MAX)
    with pytest.raises(ImageTooLarge):
        probe(data, max_pixels=MAX)
    assert decoded == []


def test_max_pixels_is_inclusive(decoded: list[tuple[int, int]]) -> None:
    assert len(render(PHOTO, [spec(100, 100)], max_pixels=640 * 480)) == 1
    assert decoded == [(640, 480)]
    with pytest.raises(ImageTooLarge):
        render(PHOTO, [spec(100, 100)], max_pixels=640 * 480 - 1)


def test_libheifs_own_size_limit_is_too_large_too() -> None:
    """Above libheif's security limit (2^30 pixels), which a MAX_PIXELS set higher does not lift."""
    data = imagegen.heif_with_declared_size(SMALL, 70_000, 70_000)

    with pytest.raises(ImageTooLarge, match="limit"):
        render(data, [spec(100, 100)], max_pixels=10**10)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", True),  # iPhone
        (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1heicmiaf", True),
        (b"\x00\x00\x00\x18ftypheix\x00\x00\x00\x00mif1heix", True),  # 10-bit
        (b"\x00\x00\x00\x18ftyphevc\x00\x00\x00\x00msf1hevc", True),  # a sequence
        (b"\x00\x00\x00\x14ftypmif1\x00\x00\x00\x00mif1", True),  # structural brand only
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", False),  # AVIF: Pillow's plugin
        (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf", False),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", False),  # an MP4 video
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", False),
        (b"ftypheic", False),
    ],
)
def test_heif_is_recognised_by_its_ftyp_brands(head: bytes, expected: bool) -> None:
    assert heif.is_heif(head + bytes(16)) is expected


def test_an_mp4_video_is_still_not_an_image() -> None:
    mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(64)
    with pytest.raises(NotAnImage):
        render(mp4, [spec(100, 100)], max_pixels=MAX)


_LAZY = """
import json, sys
from processor import handler  # what the function imports at cold start
from processor.imaging import render
from processor.spec import Fit, RenditionSpec, Size
specs = [RenditionSpec(Size(50, 50), Fit.CONTAIN, None, 85)]
loaded = lambda: sorted(m for m in sys.modules if "heif" in m and m != "processor.imaging.heif")
seen = {"import": loaded()}
render(open(sys.argv[1], "rb").read(), specs, max_pixels=10**8)
seen["jpeg"] = loaded()
render(open(sys.argv[2], "rb").read(), specs, max_pixels=10**8)
seen["heif"] = loaded()
print(json.dumps(seen))
"""


def test_pillow_heif_is_imported_on_the_first_heif_source_only(tmp_path: Path) -> None:
    jpeg, heic = tmp_path / "a.jpg", tmp_path / "b.heic"
    jpeg.write_bytes(imagegen.photo_jpeg(120, 80))
    heic.write_bytes(imagegen.heif(imagegen.photo(120, 80)))

    command = [sys.executable, "-c", _LAZY, str(jpeg), str(heic)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    assert completed.returncode == 0, completed.stderr
    seen = json.loads(completed.stdout)
    assert seen["import"] == seen["jpeg"] == []
    assert "pillow_heif" in seen["heif"]
    assert "_pillow_heif" in seen["heif"]


def test_nothing_is_registered_with_pillow() -> None:
    one(PHOTO, 50, 50)

    assert "HEIF" not in Image.OPEN
    with pytest.raises(Image.UnidentifiedImageError):
        Image.open(io.BytesIO(PHOTO))


def test_a_broken_avif_in_a_generic_container_is_not_called_heif() -> None:
    broken = b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf" + bytes(64)

    with pytest.raises(ProcessingError) as caught:
        render(broken, [spec(100, 100)], max_pixels=MAX)

    assert "AVIF" in str(caught.value)
    assert "HEIF" not in str(caught.value)


def test_a_decoder_missing_from_the_package_is_not_blamed_on_the_image(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pillow-heif absent, or its libheif failing to load: an ImportError, retried as unexpected,
    never a permanent CorruptImage that would delete every HEIF's renditions and dead-letter them."""
    data = imagegen_heic()
    heif._strict_image_file.cache_clear()
    for name in ("pillow_heif", "pillow_heif.as_plugin"):  # importing them raises ImportError
        monkeypatch.setitem(sys.modules, name, None)
    try:
        with pytest.raises(ImportError):
            render(data, [spec(30, 30)], max_pixels=MAX)
    finally:
        heif._strict_image_file.cache_clear()


def imagegen_heic() -> bytes:
    return imagegen.heif(imagegen.photo(64, 48))
