"""The rendering pipeline: decode a source once, then produce every rendition from it (see the
package doc for the steps); the subjects it draws on live in the sibling modules."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from PIL import Image

from processor.imaging import png
from processor.imaging.colour import flatten, to_srgb, to_working_mode
from processor.imaging.encode import encode
from processor.imaging.geometry import (
    Layer,
    Plan,
    draft,
    orient,
    pick_layer,
    plan_rendition,
    resample,
    scale_of,
)
from processor.imaging.identify import (
    SourceInfo,
    Stream,
    decoding,
    identify,
    pillow_warnings_silenced,
    read_orientation,
    source_info,
)
from processor.imaging.watermark import watermarked
from processor.spec import OutputFormat, RenditionSpec


@dataclass(frozen=True)
class Rendered:
    spec: RenditionSpec  # with the format resolved
    format: OutputFormat
    data: bytes
    width: int
    height: int


@dataclass(frozen=True)
class Rendering:
    """:func:`render_source`'s result: the source's :class:`SourceInfo` and the renditions."""

    source: SourceInfo
    renditions: list[Rendered]


Stage = Callable[[str], AbstractContextManager[Any]]


def render(
    data: bytes, specs: Sequence[RenditionSpec], *, max_pixels: int, stage: Stage | None = None
) -> list[Rendered]:
    """Decode ``data`` once and produce one :class:`Rendered` per spec, in the order given.

    Raises :class:`~processor.errors.NotAnImage`, :class:`~processor.errors.CorruptImage`,
    :class:`~processor.errors.ImageTooLarge` (header declares more than ``max_pixels``, checked before
    decoding) or :class:`~processor.errors.UnsupportedImage`. ``spec.format`` None means JPEG when
    the image is opaque, PNG when any pixel is transparent (decided once per source).

    ``stage(name)``, when given, wraps the decode (``"decode"``) and each rendition (``"render WxH"``):
    the caller times and traces them without this module knowing how.
    """
    if not specs:
        return []
    return render_source(data, specs, max_pixels=max_pixels, stage=stage).renditions


def render_source(
    data: bytes, specs: Sequence[RenditionSpec], *, max_pixels: int, stage: Stage | None = None
) -> Rendering:
    """:func:`render`, also returning what the source is (for the catalog): same checks, same errors."""
    stage = stage or no_stage
    with stage("decode"):
        source = _decode(data, specs, max_pixels)
    return Rendering(source.info, _render_all(source, specs, stage))


def no_stage(name: str) -> AbstractContextManager[None]:
    """A :data:`Stage` that neither times nor traces."""
    return nullcontext()


@dataclass(frozen=True)
class _Source:
    base: Layer  # the decoded image in working mode (L, LA, RGB, RGBA or CMYK), stored orientation
    plans: list[Plan]
    orientation: int
    has_alpha: bool
    icc_profile: bytes | None
    info: SourceInfo


def _decode(data: bytes, specs: Sequence[RenditionSpec], max_pixels: int) -> _Source:
    stream = Stream(data)
    im = identify(stream, data, max_pixels)
    full_size = im.size
    fmt = im.format or "image"
    with decoding(fmt):
        scale = (1.0, 1.0)
        if fmt in ("JPEG", "MPO"):
            # EXIF comes with the header: orientation first, so that draft knows the output sizes.
            orientation = read_orientation(im)
            plans = [plan_rendition(spec, full_size, orientation) for spec in specs]
            scale = draft(im, plans) if plans else (1.0, 1.0)
        loaded = png.decode(im, data) if fmt == "PNG" else None  # libspng, when it gives Pillow's result
        if loaded is None:
            stream.armed = True
            limit = Image.MAX_IMAGE_PIXELS  # read, never written
            with pillow_warnings_silenced(limit is not None and full_size[0] * full_size[1] > limit):
                im.load()
            stream.armed = False
            loaded = im
        if fmt not in ("JPEG", "MPO"):
            orientation = read_orientation(loaded)  # PNG may keep its eXIf chunk after the pixels
            plans = [plan_rendition(spec, full_size, orientation) for spec in specs]
        icc_profile = im.info.get("icc_profile") or None
        working, has_alpha = to_working_mode(loaded)
    working.info = {}  # nothing from the source (EXIF, XMP, comments, profile) reaches an output
    base = Layer(working, (0.0, 0.0, float(full_size[0]), float(full_size[1])), scale)
    info = source_info(fmt, full_size, orientation)
    return _Source(base, plans, orientation, has_alpha, icc_profile, info)


def _render_all(source: _Source, specs: Sequence[RenditionSpec], stage: Stage) -> list[Rendered]:
    fmt_auto = OutputFormat.PNG if source.has_alpha else OutputFormat.JPEG
    layers: list[Layer] = []
    results: list[Rendered | None] = [None] * len(specs)
    # Largest first, so that smaller renditions can be derived from larger ones.
    order = sorted(range(len(specs)), key=lambda i: -source.plans[i].size[0] * source.plans[i].size[1])
    for i in order:
        plan = source.plans[i]
        with stage(f"render {specs[i].size}"):
            layer = pick_layer(source.base, layers, plan)
            image = resample(layer, plan)
            layers.append(Layer(image, plan.region, scale_of(plan)))
            fmt = specs[i].format or fmt_auto
            results[i] = _finish(image, source, specs[i].resolved(fmt), fmt)
    return [r for r in results if r is not None]


def _finish(image: Image.Image, source: _Source, spec: RenditionSpec, fmt: OutputFormat) -> Rendered:
    """Orient, convert to sRGB RGB/RGBA, flatten for JPEG and encode one resampled rendition."""
    image = orient(image, source.orientation)
    image = to_srgb(image, source.icc_profile)
    if fmt is OutputFormat.JPEG and image.mode == "RGBA":
        image = flatten(image)
    if spec.watermark is not None:
        image = watermarked(image, spec.watermark)
    if image.info:  # only ever a fresh image here (ImageCms tags its output with the sRGB profile)
        image.info = {}
    data = encode(image, fmt, spec.quality)
    return Rendered(spec=spec, format=fmt, data=data, width=image.size[0], height=image.size[1])
