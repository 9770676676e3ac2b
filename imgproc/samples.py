"""Sample images generated in code, for `imgproc demo`, the benchmarks and the tests.

Nothing binary is shipped: every sample is drawn here, reproducibly (equal seeds, equal bytes).
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageDraw

EXIF_ORIENTATION = 0x0112


def photo(width: int, height: int, *, noise: float = 6.0, seed: int = 0) -> Image.Image:
    """A photo-like RGB image: smooth colour gradients, blotchy mid-scale structure and fine grain.

    Not flat colour, so encoders and decoders do realistic work. ``noise`` is the grain's standard
    deviation in 8-bit levels (0 for none); equal seeds give equal pixels.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible pixels, not secrets
    size = (width, height)

    def noise_image(w: int, h: int, std: float) -> Image.Image:
        uniform = Image.frombytes("L", (w, h), rng.randbytes(w * h))  # std 73.9 around 127.5
        gain = std / 73.9
        return uniform.point(lambda v: 128 + (v - 127.5) * gain)

    red = Image.linear_gradient("L").resize(size)
    green = Image.radial_gradient("L").resize(size)
    blue = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize(size)
    base = Image.merge("RGB", (red, green, blue))
    blobs = [
        noise_image(max(1, width // scale), max(1, height // scale), 50).resize(
            size, Image.Resampling.BICUBIC
        )
        for scale in (64, 16, 4)
    ]
    image = Image.blend(base, Image.merge("RGB", blobs), 0.45)
    if noise > 0:
        grain = Image.merge("RGB", [noise_image(width, height, noise) for _ in range(3)])
        image = ImageChops.add(image, grain, 1.0, -128)
    return image


@dataclass(frozen=True)
class Sample:
    """A demo upload: its key under the source prefix, its bytes, and what should become of it."""

    name: str
    data: bytes
    error_class: str | None = None  # the DLQ's error-class for a poison file


def _jpeg(image: Image.Image, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90, **params)
    return buf.getvalue()


def _arrow(image: Image.Image) -> Image.Image:
    """Draw an upward arrow, so that a wrongly rotated rendition is obvious to the eye."""
    draw = ImageDraw.Draw(image)
    w, h = image.size
    draw.polygon([(w // 2, h // 8), (w // 4, h // 2), (3 * w // 4, h // 2)], fill=(255, 255, 255))
    draw.rectangle([(w * 7 // 16, h // 2), (w * 9 // 16, h * 7 // 8)], fill=(255, 255, 255))
    return image


def demo_samples() -> list[Sample]:
    """Landscape, portrait, EXIF-rotated and transparent images, and one corrupt file."""
    landscape = _arrow(photo(1600, 1000, seed=1))
    portrait = _arrow(photo(900, 1400, seed=2))
    # Stored sideways with EXIF orientation 6 ("rotate 90 CW to display"): shown upright, 1000x1600.
    rotated_exif = Image.Exif()
    rotated_exif[EXIF_ORIENTATION] = 6
    rotated = _jpeg(_arrow(photo(1000, 1600, seed=3)).transpose(Image.Transpose.ROTATE_90), exif=rotated_exif)
    logo = Image.new("RGBA", (800, 600), (0, 0, 0, 0))
    ImageDraw.Draw(logo).ellipse([(100, 50), (700, 550)], fill=(220, 40, 40, 255))
    buf = io.BytesIO()
    logo.save(buf, "PNG")
    corrupt = _jpeg(photo(640, 480, seed=4))[:1500]  # cut off mid-scan
    return [
        Sample("landscape.jpg", _jpeg(landscape)),
        Sample("portrait.jpg", _jpeg(portrait)),
        Sample("rotated-exif.jpg", rotated),  # displayed upright: 1000x1600
        Sample("logo.png", buf.getvalue()),
        Sample("corrupt.jpg", corrupt, error_class="CorruptImage"),
    ]
