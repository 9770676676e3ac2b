"""What the processor.imaging tests share: specs, render helpers, spies on what Pillow decodes and resizes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageFile, features

from processor.imaging import Rendered, render
from processor.spec import Fit, OutputFormat, RenditionSpec, Size

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
