"""Pure imaging core: encoded source bytes in, encoded rendition bytes out (no I/O, no AWS)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from processor.spec import OutputFormat, RenditionSpec


@dataclass(frozen=True)
class Rendered:
    spec: RenditionSpec  # with the format resolved
    format: OutputFormat
    data: bytes
    width: int
    height: int


def render(data: bytes, specs: Sequence[RenditionSpec], *, max_pixels: int) -> list[Rendered]:
    """Decode ``data`` once and produce one :class:`Rendered` per spec, in the order given."""
    raise NotImplementedError
