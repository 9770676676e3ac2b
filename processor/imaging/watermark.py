"""The optional text watermark of a rendition (``WATERMARK_*``), drawn on a copy of the output."""

from __future__ import annotations

import math
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from processor.spec import Watermark, WatermarkPosition

# Watermark geometry, as fractions of the rendition's shorter side: the font size (the text's height,
# accents and descenders included, is about that), the margin to the edges, the outline's width.
_MARK_FONT = 0.05
_MARK_MARGIN = 0.03
_MARK_STROKE = 0.07  # of the font size
_MARK_MIN_FONT = 8  # px: a mark that would need a smaller font to fit the width is drawn at this size


def watermarked(image: Image.Image, mark: Watermark) -> Image.Image:
    """A copy of ``image`` (RGB or RGBA) with ``mark`` drawn on it; ``image`` itself when the rendition
    is below the mark's minimum size. Never draws into ``image``: it may be an intermediate that
    smaller renditions are still derived from.

    White text with a black outline, both at ``mark.opacity``: legible on light and dark pixels alike.
    The font (Pillow's embedded Aileron, scalable, so no font file) is about 5% of the shorter side,
    smaller if needed for the text to fit the width.
    """
    width, height = image.size
    if not mark.applies_to(width, height) or not mark.text.strip():
        return image
    short = min(width, height)
    margin = max(1, round(short * _MARK_MARGIN))
    font, stroke = _mark_font(mark.text, max(_MARK_MIN_FONT, round(short * _MARK_FONT)), width - 2 * margin)
    left, top, right, bottom = font.getbbox(mark.text, stroke_width=stroke)
    text_size = (math.ceil(right - left), math.ceil(bottom - top))
    # Two masks: the outlined text (where black goes) and the text alone (where white goes on top).
    outline, letters = Image.new("L", text_size), Image.new("L", text_size)
    ImageDraw.Draw(outline).text(
        (-left, -top), mark.text, fill=255, font=font, stroke_width=stroke, stroke_fill=255
    )
    ImageDraw.Draw(letters).text((-left, -top), mark.text, fill=255, font=font)
    alpha = outline.point(lambda v: round(v * mark.opacity))
    x, y = _mark_origin(mark.position, (width, height), text_size, margin)
    crop = (max(0, -x), max(0, -y), min(text_size[0], width - x), min(text_size[1], height - y))
    overlay = Image.merge("RGBA", (letters, letters, letters, alpha)).crop(crop)
    dest = (max(0, x), max(0, y))
    marked = image.copy()
    if marked.mode == "RGBA":  # proper "over" compositing: transparent pixels take the mark's alpha
        marked.alpha_composite(overlay, dest)
    else:
        marked.paste(overlay.convert("RGB"), dest, overlay.getchannel("A"))
    return marked


def _mark_font(text: str, size: int, max_width: int) -> tuple[Any, int]:
    """The embedded font at ``size`` px, shrunk so that ``text`` fits ``max_width``; and its outline width.

    A new font object per call (0.1 ms): FreeType faces are not shared between threads.
    """
    for _ in range(3):
        stroke = max(1, round(size * _MARK_STROKE))
        font = ImageFont.load_default(size=size)
        left, _, right, _ = font.getbbox(text, stroke_width=stroke)
        if right - left <= max_width or size <= _MARK_MIN_FONT:
            return font, stroke
        size = max(_MARK_MIN_FONT, int(size * max_width / (right - left)))
    return font, stroke


def _mark_origin(
    position: WatermarkPosition, image_size: tuple[int, int], text_size: tuple[int, int], margin: int
) -> tuple[int, int]:
    (width, height), (text_w, text_h) = image_size, text_size
    x = {"left": margin, "right": width - margin - text_w}.get(position.value.rpartition("-")[2])
    y = {"top": margin, "bottom": height - margin - text_h}.get(position.value.partition("-")[0])
    return (
        (width - text_w) // 2 if x is None else x,
        (height - text_h) // 2 if y is None else y,
    )
