"""What a rendition is: its box, fit, format, quality and watermark, and the digest that names that recipe.

The digest is written into every rendition's metadata (``rendition``) so that changing any part of
the recipe (a size, the quality, the renderer itself) makes existing renditions stale on the next
event or backfill, while an unchanged recipe lets a redelivered event stop at a HEAD.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass

# Bump when the renditions we produce for the same input and spec look different (resampling, colour
# handling, quality): every rendition then re-renders on its next event. Encoder effort alone (PNG's
# zlib level, WebP's method) does not count: docs/design.md, "Reconcile rules".
RENDERER_VERSION = "1"


class Fit(enum.Enum):
    CONTAIN = "contain"  # fit inside the box, keep the aspect ratio
    COVER = "cover"  # fill the box exactly, centre crop


class OutputFormat(enum.Enum):
    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"
    AVIF = "avif"

    @property
    def extension(self) -> str:
        """The extension appended to rendition keys that do not already carry one of ours."""
        return _EXTENSIONS[self][0]

    @property
    def extensions(self) -> tuple[str, ...]:
        return _EXTENSIONS[self]

    @property
    def content_type(self) -> str:
        return f"image/{self.value}"

    @property
    def carries_alpha(self) -> bool:
        return self is not OutputFormat.JPEG

    @classmethod
    def from_extension(cls, name: str) -> OutputFormat | None:
        """The format whose extension ``name`` ends in (case-insensitive), if any."""
        lowered = name.lower()
        for fmt, exts in _EXTENSIONS.items():
            if lowered.endswith(exts):
                return fmt
        return None


_EXTENSIONS: dict[OutputFormat, tuple[str, ...]] = {
    OutputFormat.JPEG: (".jpg", ".jpeg"),
    OutputFormat.PNG: (".png",),
    OutputFormat.WEBP: (".webp",),
    OutputFormat.AVIF: (".avif",),
}


@dataclass(frozen=True)
class Size:
    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"

    @classmethod
    def parse(cls, text: str) -> Size:
        """``"300x200"`` → ``Size(300, 200)``; raises ValueError with the offending text."""
        parts = text.strip().lower().split("x")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ValueError(f"{text!r} is not WIDTHxHEIGHT")
        width, height = int(parts[0]), int(parts[1])
        if not (1 <= width <= 10000 and 1 <= height <= 10000):
            raise ValueError(f"{text!r}: width and height must be between 1 and 10000")
        return cls(width, height)


class WatermarkPosition(enum.Enum):
    """Where the watermark sits in a rendition (``WATERMARK_POSITION``)."""

    TOP_LEFT = "top-left"
    TOP_RIGHT = "top-right"
    BOTTOM_LEFT = "bottom-left"
    BOTTOM_RIGHT = "bottom-right"
    CENTER = "center"


@dataclass(frozen=True)
class Watermark:
    """A text watermark: what, where, how opaque, and from which rendition size on.

    ``min_size`` is compared with a rendition's *shorter* side: smaller renditions (thumbnails) get
    no mark. A spec whose box is already smaller than that never carries a watermark (see
    :func:`processor.renditions.plan_renditions`), so changing the watermark does not re-render them.
    """

    text: str
    position: WatermarkPosition = WatermarkPosition.BOTTOM_RIGHT
    opacity: float = 0.5  # 0 < opacity <= 1
    min_size: int = 150

    def applies_to(self, width: int, height: int) -> bool:
        """Whether a rendition of ``width`` x ``height`` pixels gets the mark."""
        return min(width, height) >= self.min_size

    def recipe(self) -> dict[str, object]:
        return {
            "text": self.text,
            "position": self.position.value,
            "opacity": self.opacity,
            "min_size": self.min_size,
        }


@dataclass(frozen=True)
class RenditionSpec:
    """One rendition recipe.

    ``format`` None means "decide from the pixels": JPEG when opaque, PNG when the image has
    transparency.  That is what ``OUTPUT_FORMAT=auto`` becomes for sources whose key does not name a
    web format; see :mod:`processor.renditions`.
    """

    size: Size
    fit: Fit
    format: OutputFormat | None
    quality: int
    watermark: Watermark | None = None

    def resolved(self, fmt: OutputFormat) -> RenditionSpec:
        return RenditionSpec(self.size, self.fit, fmt, self.quality, self.watermark)

    def digest(self) -> str:
        """A short stable digest of everything that shapes the output bytes (format resolved)."""
        if self.format is None:
            raise ValueError("digest() needs a resolved format")
        recipe = {
            "size": str(self.size),
            "fit": self.fit.value,
            "format": self.format.value,
            # Quality is meaningless for lossless PNG; keeping it out avoids needless re-renders.
            "quality": None if self.format is OutputFormat.PNG else self.quality,
            # None without a watermark: the digests of unwatermarked renditions never changed.
            "watermark": None if self.watermark is None else self.watermark.recipe(),
            "renderer": RENDERER_VERSION,
        }
        canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
