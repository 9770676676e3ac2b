"""What the operator typed, turned into the source key the handler reconciles: pure, no I/O.

Three spellings are accepted: a source key (``original/a/b.jpg``), an ``s3://bucket/key`` URL of the
source or the destination bucket, and a rendition key (``resized/300x300/a/b.jpg``). Keys are taken as
S3 stores them (not URL-encoded as in event bodies): spaces, ``+`` and non-ASCII characters are
themselves.

A rendition key is mapped back by asking the processor's own naming
(:func:`processor.renditions.plan_renditions`) which source keys would produce it, never by
re-deriving the naming here: ``resized/300x300/a/b.png.webp`` comes from ``original/a/b.png``;
``resized/300x300/a/b.jpg`` from ``original/a/b.jpg`` or, when the pixels chose JPEG, from
``original/a/b``. Every such candidate is returned, the literal one first; which one exists is a
question for S3 (:func:`explainer.probe.pick_source`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from processor.config import Config
from processor.renditions import plan_renditions
from processor.spec import OutputFormat, Size
from toolkit.errors import UsageError

S3_SCHEME = "s3://"


@dataclass(frozen=True)
class KeyInput:
    """One key the operator asked about: the spelling given and the source key(s) it names."""

    given: str
    candidates: tuple[str, ...]  # source keys, most likely first; more than one only for a rendition
    rendition_key: str | None = None  # the rendition key given (directly or as a URL)

    @property
    def source_key(self) -> str:
        return self.candidates[0]


def parse(text: str, config: Config, *, source_bucket: str, dest_bucket: str) -> KeyInput:
    """The source key(s) ``text`` names; :class:`UsageError` saying why when it names none."""
    if not text:
        raise UsageError("an empty key")
    key, bucket = text, None
    if text.startswith(S3_SCHEME):
        bucket, _, key = text[len(S3_SCHEME) :].partition("/")
        if bucket not in (source_bucket, dest_bucket):
            raise UsageError(
                f"{text!r}: bucket {bucket!r} is neither the stack's source bucket ({source_bucket}) "
                f"nor its destination bucket ({dest_bucket})"
            )
    if not key or key.endswith("/"):
        raise UsageError(f"{text!r} is a folder, not an object key")
    if bucket != source_bucket and key.startswith(config.dest_prefix):
        return KeyInput(text, source_candidates(key, config), rendition_key=key)
    if bucket != dest_bucket and key.startswith(config.source_prefix):
        return KeyInput(text, (key,))
    raise UsageError(
        f"{text!r} is neither a source key (under SOURCE_PREFIX {config.source_prefix!r}) nor a "
        f"rendition key (under DEST_PREFIX {config.dest_prefix!r})"
    )


def source_candidates(rendition_key: str, config: Config) -> tuple[str, ...]:
    """Every source key whose rendition of that size the processor would write at ``rendition_key``.

    The size is the key's first folder after ``DEST_PREFIX``; it need not be configured any more (a
    rendition of a size since removed still names its source).
    """
    size_text, _, relative = rendition_key[len(config.dest_prefix) :].partition("/")
    try:
        size = Size.parse(size_text)
    except ValueError:
        raise UsageError(
            f"{rendition_key!r}: {size_text!r} is not a rendition size WIDTHxHEIGHT "
            f"(rendition keys are {config.dest_prefix}WxH/...)"
        ) from None
    if not relative:
        raise UsageError(f"{rendition_key!r} names no object under its size folder")
    one_size = replace(config, sizes=(size,))
    guesses = [relative]
    lowered = relative.lower()
    for fmt in OutputFormat:
        guesses += [
            relative[: -len(ext)]
            for ext in fmt.extensions
            if lowered.endswith(ext) and len(relative) > len(ext)
        ]
    found = []
    for guess in dict.fromkeys(config.source_prefix + g for g in guesses):
        if any(c.key == rendition_key for plan in plan_renditions(one_size, guess) for c in plan.candidates):
            found.append(guess)
    if not found:
        raise UsageError(
            f"{rendition_key!r} is not a rendition key the function writes with today's OUTPUT_FORMAT"
        )
    return tuple(found)
