"""Where each rendition of a source key lives, and with which recipe: pure, no I/O.

Rendition keys must be known *before* the source is downloaded, because an up-to-date rendition
must cost a HEAD and nothing more.  With ``OUTPUT_FORMAT=auto`` the format of a source whose key
names a web format (``.jpg``, ``.png``, ``.webp``, ``.avif``) is kept; for any other source (``.gif``,
``.tif``, no extension…) it depends on the pixels (JPEG if opaque, PNG if transparent), so such a
rendition has two candidate keys and the reconciler checks both.
"""

from __future__ import annotations

from dataclasses import dataclass

from processor.config import Config
from processor.spec import OutputFormat, RenditionSpec, Size

# Formats `auto` can pick from the pixels when the key names no web format: opaque first.
_PIXEL_DECIDED = (OutputFormat.JPEG, OutputFormat.PNG)


@dataclass(frozen=True)
class Candidate:
    """A key a rendition may live at, with the digest its marker must carry to be current."""

    key: str
    spec: RenditionSpec  # format resolved
    digest: str


@dataclass(frozen=True)
class Plan:
    """One configured size of one source: the recipe and where its output may be."""

    spec: RenditionSpec  # format None when the pixels decide
    candidates: tuple[Candidate, ...]

    def candidate_for(self, fmt: OutputFormat) -> Candidate:
        for candidate in self.candidates:
            if candidate.spec.format is fmt:
                return candidate
        raise KeyError(fmt)


def ignore_reason(bucket: str, key: str, config: Config) -> str | None:
    """Why an event for ``bucket/key`` must not be processed, or None when it must."""
    if bucket == config.dest_bucket and key.startswith(config.dest_prefix):
        return "loop-guard"  # our own output: processing it would feed on itself
    if config.source_bucket and bucket != config.source_bucket:
        # Another bucket's notification routed to our queue: a HEAD there could even read as "source
        # deleted" and remove the renditions of our own object with the same key.
        return "foreign-bucket"
    if not key.startswith(config.source_prefix):
        return "outside-source-prefix"
    if key.endswith("/"):
        return "folder-marker"
    return None


def rendition_key(config: Config, size: Size, source_key: str, fmt: OutputFormat) -> str:
    """``DEST_PREFIX + WxH/ + relative key``, with the format's extension appended unless present."""
    relative = source_key[len(config.source_prefix) :]
    if not relative.lower().endswith(fmt.extensions):
        relative += fmt.extension
    return f"{config.dest_prefix}{size}/{relative}"


def plan_renditions(config: Config, source_key: str) -> list[Plan]:
    """Every configured rendition of ``source_key``, largest area first (the order imaging wants)."""
    fmt = config.output_format or OutputFormat.from_extension(source_key)
    formats = (fmt,) if fmt else _PIXEL_DECIDED
    plans = []
    watermark = config.watermark
    for size in sorted(config.sizes, key=lambda s: s.width * s.height, reverse=True):
        # A rendition is never larger than its box: when the box is below the watermark's minimum
        # size, the mark is never drawn, and leaving it out of the recipe keeps a watermark change
        # from re-rendering such thumbnails for nothing.
        marked = (
            watermark if watermark is not None and watermark.applies_to(size.width, size.height) else None
        )
        spec = RenditionSpec(size, config.fit, fmt, config.quality, marked)
        candidates = []
        for f in formats:
            resolved = spec.resolved(f)
            key = rendition_key(config, size, source_key, f)
            candidates.append(Candidate(key, resolved, resolved.digest()))
        plans.append(Plan(spec, tuple(candidates)))
    return plans
