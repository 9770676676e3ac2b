"""Geometry of the renditions: the box a spec asks for (contain or cover, never upscaled), the
region of the source each one shows, the JPEG draft scale, which already-resampled intermediate a
smaller rendition is derived from, and the EXIF orientation applied to an output.

Regions are in full-resolution source pixels, in the source's *stored* orientation; crops are centred,
so they are the same under every flip and rotation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

from processor.spec import Fit, RenditionSpec

if TYPE_CHECKING:
    from PIL import ImageFile

_RESAMPLE = Image.Resampling.LANCZOS
# Resample in two steps (integer box reduction, then LANCZOS over the last >= 2x), as thumbnail() does.
_REDUCING_GAP = 2.0
# Any intermediate we derive a smaller rendition from is >= this many times that rendition.
_SOURCE_GAP = 2.0
# A JPEG is decoded at the smallest DCT scale leaving >= this many times the largest output. libjpeg's
# DCT scaling is itself a good low-pass filter, so 1.5x (not 2x) costs no visible quality: on a
# 12 MP photo the q85 300x225 output is within 0.1 dB PSNR of the 2x version against a full-resolution
# reference, and renders in 30 ms instead of 40 (1 MP: 7.6 ms instead of 14.4).
_DRAFT_GAP = 1.5
# What a viewer does to the stored pixels for each EXIF orientation (the table of exif_transpose).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class Plan:
    """Where one rendition comes from and how big it is, in the source's *stored* orientation."""

    region: tuple[float, float, float, float]  # left, top, right, bottom in full-resolution pixels
    size: tuple[int, int]


@dataclass(frozen=True)
class Layer:
    """An image that covers ``region`` of the source at ``scale`` image pixels per source pixel."""

    image: Image.Image
    region: tuple[float, float, float, float]
    scale: tuple[float, float]


def plan_rendition(spec: RenditionSpec, full_size: tuple[int, int], orientation: int) -> Plan:
    """The region of the stored image a rendition shows, and its size, both in stored orientation."""
    swap = orientation >= 5  # 5..8 turn the image by 90 degrees: displayed w/h are stored h/w
    width, height = full_size
    shown = (height, width) if swap else (width, height)
    region_w, region_h, out_w, out_h = _geometry(spec.size.width, spec.size.height, spec.fit, *shown)
    if swap:
        region_w, region_h, out_w, out_h = region_h, region_w, out_h, out_w
    # Crops are centred, so they are the same under every flip and rotation.
    left, top = (width - region_w) / 2, (height - region_h) / 2
    return Plan((left, top, left + region_w, top + region_h), (out_w, out_h))


def _geometry(box_w: int, box_h: int, fit: Fit, width: int, height: int) -> tuple[float, float, int, int]:
    """(region width, region height, output width, output height) in displayed orientation."""
    if fit is Fit.CONTAIN:
        scale = min(box_w / width, box_h / height)
        if scale >= 1:  # never upscale
            return width, height, width, height
        out_w = min(box_w, max(1, round(width * scale)))
        out_h = min(box_h, max(1, round(height * scale)))
        return width, height, out_w, out_h
    scale = max(box_w / width, box_h / height)
    if scale <= 1:  # fill the box: centre crop of the box's aspect, scaled down
        return min(width, box_w / scale), min(height, box_h / scale), box_w, box_h
    # The source is smaller than the box: crop to the box's aspect at source resolution.
    aspect = box_w / box_h
    if width / height > aspect:
        region_w, region_h = height * aspect, float(height)
    else:
        region_w, region_h = float(width), width / aspect
    return region_w, region_h, max(1, round(region_w)), max(1, round(region_h))


def draft(im: ImageFile.ImageFile, plans: Sequence[Plan]) -> tuple[float, float]:
    """Configure a JPEG to decode at the smallest DCT scale that leaves >= 1.5x every output.

    Returns the decoded image's pixels per full-resolution pixel along x and y.
    """
    width, height = im.size
    need_x = max(_DRAFT_GAP * p.size[0] / (p.region[2] - p.region[0]) for p in plans)
    need_y = max(_DRAFT_GAP * p.size[1] / (p.region[3] - p.region[1]) for p in plans)
    if need_x > 0.5 or need_y > 0.5:  # not even a 1/2 scale would leave enough pixels
        return (1.0, 1.0)
    # Pillow picks the scale s in (8, 4, 2, 1) with s <= min(width // w, height // h).
    request = (math.ceil(width * need_x), math.ceil(height * need_y))
    result = im.draft(im.mode, request)
    if result is None:
        return (1.0, 1.0)
    box = result[1]
    return (box[2] / width, box[3] / height)


def scale_of(plan: Plan) -> tuple[float, float]:
    left, top, right, bottom = plan.region
    return (plan.size[0] / (right - left), plan.size[1] / (bottom - top))


def _box_in(layer: Layer, region: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """``region`` (full-resolution source pixels) in ``layer``'s image pixels, clamped to the image."""
    (sx, sy), (left, top) = layer.scale, layer.region[:2]
    width, height = layer.image.size
    return (
        min(width, max(0.0, (region[0] - left) * sx)),
        min(height, max(0.0, (region[1] - top) * sy)),
        min(width, max(0.0, (region[2] - left) * sx)),
        min(height, max(0.0, (region[3] - top) * sy)),
    )


def pick_layer(base: Layer, layers: Sequence[Layer], plan: Plan) -> Layer:
    """The smallest rendered intermediate that covers ``plan``'s region with >= 2x its pixels
    (or exactly its pixels), else the decoded image."""
    best: Layer | None = None
    for layer in layers:
        if not _covers(layer.region, plan.region):
            continue
        box = _box_in(layer, plan.region)
        box_w, box_h = box[2] - box[0], box[3] - box[1]
        same = layer.image.size == plan.size and _close(layer.region, plan.region)
        enough = box_w >= _SOURCE_GAP * plan.size[0] - 1e-6 and box_h >= _SOURCE_GAP * plan.size[1] - 1e-6
        if (same or enough) and (best is None or _area(layer) < _area(best)):
            best = layer
    return best or base


def _covers(outer: tuple[float, ...], inner: tuple[float, ...], eps: float = 1e-3) -> bool:
    return (
        inner[0] >= outer[0] - eps
        and inner[1] >= outer[1] - eps
        and inner[2] <= outer[2] + eps
        and inner[3] <= outer[3] + eps
    )


def _close(a: tuple[float, ...], b: tuple[float, ...], eps: float = 1e-3) -> bool:
    return all(abs(x - y) <= eps for x, y in zip(a, b, strict=True))


def _area(layer: Layer) -> int:
    return layer.image.size[0] * layer.image.size[1]


def resample(layer: Layer, plan: Plan) -> Image.Image:
    box = _box_in(layer, plan.region)
    image = layer.image
    if plan.size == image.size and _close(box, (0, 0, *image.size)):
        return image  # nothing to do (a source no larger than the box, or a repeated spec)
    return image.resize(plan.size, _RESAMPLE, box=box, reducing_gap=_REDUCING_GAP)


def orient(image: Image.Image, orientation: int) -> Image.Image:
    """``image`` as a viewer shows a source of EXIF ``orientation`` (1..8)."""
    return image if orientation == 1 else image.transpose(_TRANSPOSE[orientation])
