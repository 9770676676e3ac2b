"""Pure imaging core: encoded source bytes in, encoded rendition bytes out (no I/O, no AWS).

:func:`render` decodes a source once and produces every requested rendition from it:

1. *Identify* the bytes (only the formats in :data:`DECODE_FORMATS`; Pillow reads just the header)
   and reject, before any pixel is decoded, what is not an image, what is broken, what declares more
   than ``max_pixels`` and what we cannot render.
2. For JPEG, read the EXIF orientation and ask libjpeg to decode at the smallest DCT scale (1/2, 1/4,
   1/8) that still leaves at least 1.5x the largest output size (``draft``), then *load*.
   Truncated or broken data is always an error, whatever ``ImageFile.LOAD_TRUNCATED_IMAGES`` says.
3. Bring the pixels to a *working mode* (L, LA, RGB, RGBA or CMYK; 16-bit and float scaled down),
   note whether any pixel is transparent, keep the ICC profile aside.
4. For each rendition, largest first: resample (LANCZOS, ``box=`` for the crop, ``reducing_gap=``)
   from the smallest already-rendered intermediate that covers the rendition's region at >= 2x its
   size, or from the decoded image; then orient it, convert it to sRGB RGB/RGBA, flatten it onto white
   for JPEG, draw the watermark (when the spec has one and the rendition is large enough), and encode
   it without any metadata.

Everything costly per pixel (orientation, colour management, mode conversion) happens on the small
outputs, not on the decoded source. Pillow's globals (``MAX_IMAGE_PIXELS``,
``LOAD_TRUNCATED_IMAGES``) are never changed; warnings are silenced with ``catch_warnings`` under a
lock, as briefly as possible, so that concurrent calls from threads are safe.

One module per subject, this package's ``__init__`` the only public face: :mod:`.identify` (format
sniffing, the header-only checks, orientation tag, Pillow's errors made ours), :mod:`.heif` (HEIC/HEIF
through pillow-heif, imported on the first such source), :mod:`.geometry` (box,
contain/cover, regions, draft scale, intermediates, orientation), :mod:`.colour` (working modes, ICC
to sRGB, alpha), :mod:`.watermark`, :mod:`.encode`, and :mod:`.render`, the pipeline that uses them.
"""

from processor.imaging.identify import DECODE_FORMATS, SourceInfo, probe
from processor.imaging.render import Rendered, Rendering, render, render_source
from processor.imaging.render import Stage as Stage  # for callers that time and trace the stages
from processor.imaging.render import no_stage as no_stage

__all__ = ["DECODE_FORMATS", "Rendered", "Rendering", "SourceInfo", "probe", "render", "render_source"]
