"""Colour: the decoded pixels brought to a working mode, each output converted to sRGB RGB or RGBA
through the source's ICC profile (LittleCMS, loaded only for sources that have one), and flattened
onto white for formats without alpha.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache
from typing import Any

from PIL import Image

from processor.errors import UnsupportedImage

_WHITE = (255, 255, 255)


def to_working_mode(im: Image.Image) -> tuple[Image.Image, bool]:
    """The loaded image in L, LA, RGB, RGBA or CMYK, and whether any pixel is transparent."""
    mode = im.mode
    out: Image.Image = im
    if mode == "P":
        transparent = "transparency" in im.info or (im.palette is not None and im.palette.mode == "RGBA")
        out = im.convert("RGBA" if transparent else "RGB")
    elif mode in ("PA", "RGBa"):
        out = im.convert("RGBA")
    elif mode == "La":
        out = im.convert("LA")
    elif mode in ("RGBX", "YCbCr"):
        out = im.convert("RGB")
    elif mode == "1":
        out = im.convert("L")
    elif mode.startswith("I;16"):
        out = im.convert("I").point(_lut_16_to_8(), "L")
    elif mode in ("I", "F"):
        out = _stretch_to_l(im)
    if out.mode in ("RGBA", "LA"):
        if out.getchannel("A").getextrema()[0] < 255:
            return out, True
        out = out.convert("RGB" if out.mode == "RGBA" else "L")  # an alpha band that is all opaque
    return out, False


@lru_cache(maxsize=1)
def _lut_16_to_8() -> list[int]:
    """16-bit to 8-bit, rounding v / 257 (65535 -> 255, 32896 -> 128), never clipping to white."""
    return [(v * 255 + 32767) // 65535 for v in range(65536)]


def _stretch_to_l(im: Image.Image) -> Image.Image:
    """32-bit integer or float samples, scaled from their range (min..max) to 0..255."""
    low, high = im.getextrema()
    if not (math.isfinite(low) and math.isfinite(high)):
        raise UnsupportedImage(f"{im.format} image has non-finite sample values")
    if high <= low:  # flat: keep the value where it is meaningful as 8-bit (or 0..1 for floats)
        value = low * 255 if im.mode == "F" and 0 <= low <= 1 else low
        return Image.new("L", im.size, round(min(255, max(0, value))))
    gain = 255.0 / (high - low)
    offset = 0.5 - low * gain  # + 0.5: the F -> L conversion truncates
    return im.convert("F").point(lambda v: v * gain + offset).convert("L")


def to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """RGB or RGBA in sRGB: through the source's ICC profile when it has a usable non-sRGB one."""
    transform = None if icc_profile is None else _transform_to_srgb(icc_profile, image.mode)
    if transform is not None:
        try:
            return transform.apply(image)
        except MemoryError:
            raise
        except Exception:  # a profile LittleCMS accepted but cannot apply: ignore it, like a bad one
            transform = None
    if image.mode in ("RGB", "RGBA"):
        return image
    return image.convert("RGBA" if image.mode == "LA" else "RGB")


@lru_cache(maxsize=8)
def _transform_to_srgb(icc_profile: bytes, mode: str) -> Any:
    """A cached LittleCMS transform from ``icc_profile`` to sRGB, or None when the profile is sRGB,
    invalid, or does not fit ``mode`` (an RGB profile on a CMYK image, say)."""
    cms = _cms()
    if mode not in ("RGB", "RGBA", "CMYK", "L"):
        return None
    try:
        profile = cms.ImageCmsProfile(io.BytesIO(icc_profile))
        if _is_srgb(profile):
            return None
        return cms.buildTransform(
            profile,
            _srgb_profile(),
            mode,
            "RGBA" if mode == "RGBA" else "RGB",
            renderingIntent=cms.Intent.PERCEPTUAL,
            # Cached and shared by threads: LittleCMS transforms are only thread-safe without their
            # one-pixel cache.
            flags=cms.Flags.NOCACHE,
        )
    except MemoryError:
        raise
    except Exception:
        return None


@lru_cache(maxsize=1)
def _cms() -> Any:
    """PIL.ImageCms, imported on first use: only images with a profile pay for loading LittleCMS."""
    from PIL import ImageCms  # noqa: PLC0415

    return ImageCms


@lru_cache(maxsize=1)
def _srgb_profile() -> Any:
    cms = _cms()
    return cms.ImageCmsProfile(cms.createProfile("sRGB"))


# D50-adapted colorants of sRGB, as stored in sRGB profiles' rXYZ/gXYZ/bXYZ tags.
_SRGB_COLORANTS = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))


def _is_srgb(profile: Any) -> bool:
    """Named sRGB and, when the profile is a matrix/TRC one, with sRGB's primaries."""
    description = (_cms().getProfileDescription(profile) or "").lower()
    if "srgb" not in description or profile.profile.xcolor_space.strip() != "RGB":
        return False
    colorants = (profile.profile.red_colorant, profile.profile.green_colorant, profile.profile.blue_colorant)
    if any(c is None for c in colorants):
        return True  # a LUT-based profile named sRGB
    return all(
        abs(got - want) < 0.01
        for colorant, expected in zip(colorants, _SRGB_COLORANTS, strict=True)
        for got, want in zip(colorant[0], expected, strict=True)
    )


def flatten(image: Image.Image) -> Image.Image:
    """RGBA composited onto white (JPEG has no alpha; transparent areas must not turn black)."""
    background = Image.new("RGB", image.size, _WHITE)
    background.paste(image, (0, 0), image)
    return background
