"""A source key's renditions as they are now, seen from outside the function: the one way the operator
commands look at them (`imgproc explain`, `imgproc dlq replay --follow`).

The keys come from the handler's own mapping (:func:`processor.renditions.plan_renditions`, with the
deployed function's :class:`~processor.config.Config`, see :func:`toolkit.function.load_deployment`),
so a rendition is looked for exactly where the handler writes it, with the recipe digest it would
give it today; "current" is the handler's own test (:func:`processor.markers.is_current`). What a
command makes of it (explain's verdict, the follow's outcome) is that command's business.

Two source keys can map to one rendition key (``original/a`` with no extension, rendered as PNG, and
``original/a.png`` both write ``resized/WxH/a.png``): the object there is then the rendition of
whichever was rendered last, and its ``source-key`` marker says which. A candidate whose marker names
another source key is *claimed* by it (:attr:`Candidate.claimed_by`): not this key's rendition,
current or not, and re-enqueueing this key would only take it back until the other one is rendered.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from processor import markers, storage
from processor.config import Config
from processor.renditions import plan_renditions


@dataclass(frozen=True)
class Candidate:
    """One key a rendition may live at (:class:`processor.renditions.Candidate`), as its HEAD found it."""

    key: str
    digest: str  # today's recipe digest for this key: the one its marker must carry to be current
    metadata: Mapping[str, str] | None  # the rendition's user metadata; None: no such object
    source_key: str | None = None  # the source it is looked for; None: the claim is not checked

    def is_current(self, source_etag: str) -> bool:
        """Made from the source's ``source_etag`` with today's recipe, as the handler decides it, and
        not claimed by another source key (then it is that key's rendition, whatever its ETag)."""
        return self.claimed_by is None and markers.is_current(self.metadata, source_etag, self.digest)

    @property
    def claimed_by(self) -> str | None:
        """The other source key this rendition's ``source-key`` marker names (a name collision), or
        None: no object, no such marker (renditions of older versions), or it names this key."""
        if self.source_key is None or not markers.made_for_another_source(self.metadata, self.source_key):
            return None
        return markers.source_key_of(self.metadata)


@dataclass(frozen=True)
class SizeObservation:
    """One configured size of a source key and what is at each of its candidate keys."""

    size: str  # WxH
    candidates: tuple[Candidate, ...]  # two when OUTPUT_FORMAT=auto lets the pixels decide

    def current(self, source_etag: str) -> list[Candidate]:
        """The candidates made from ``source_etag`` with today's recipe (none: the size is not current)."""
        return [c for c in self.candidates if c.is_current(source_etag)]


def observe_renditions(
    s3: Any, dest_bucket: str, config: Config, source_key: str
) -> Iterator[SizeObservation]:
    """Each configured size of ``source_key`` (largest first), every candidate key HEADed in
    ``dest_bucket``. Lazy, one size at a time: a caller that has seen enough stops the HEADs there."""
    for plan in plan_renditions(config, source_key):
        yield SizeObservation(
            str(plan.spec.size),
            tuple(
                Candidate(c.key, c.digest, storage.head_metadata(s3, dest_bucket, c.key), source_key)
                for c in plan.candidates
            ),
        )
