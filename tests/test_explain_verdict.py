"""`imgproc explain`'s pure core: which source a typed key names (through the processor's own rendition
naming) and the verdict from what was observed. No AWS here: the observations are built by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from explainer import keys
from explainer.verdict import (
    Explanation,
    Fixes,
    RenditionState,
    State,
    classify,
)
from processor import markers
from processor.config import Config
from processor.renditions import plan_renditions
from processor.spec import OutputFormat
from processor.storage import SourceHead
from toolkit.dead_letters import DeadLetter
from toolkit.errors import UsageError
from toolkit.renditions import Candidate, SizeObservation

CONFIG = Config(dest_bucket="dest", source_bucket="src")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KEY = "original/a b+c/é.jpg"
SOURCE = SourceHead("etag-now", 1234, "image/jpeg", NOW - timedelta(hours=1))


def observed(
    key: str = KEY,
    *,
    etag: str | None = "etag-now",
    config: Config = CONFIG,
    digest: str | None = None,
    only: str = "",
) -> list[SizeObservation]:
    """Every configured size of ``key``, each with a marker from ``etag`` (None: no rendition) and the
    recipe ``digest`` (default: today's); ``only``: that size alone carries the odd marker."""
    sizes = []
    for plan in plan_renditions(config, key):
        candidates = []
        for c in plan.candidates:
            odd = not only or str(plan.spec.size) == only
            if etag is None and odd:
                meta = None
            else:
                meta = markers.build(key, etag if odd else "etag-now", (digest if odd else None) or c.digest)
            candidates.append(Candidate(c.key, c.digest, meta))
        sizes.append(SizeObservation(str(plan.spec.size), tuple(candidates)))
    return sizes


def letter(
    error_class: str = "CorruptImage", failed_at: str = "2026-12-01T11:30:00Z", replays: int = 0
) -> DeadLetter:
    return DeadLetter("m-1", error_class, "cannot decode: broken data stream", failed_at, None, replays)


def explain(
    source: SourceHead | None = SOURCE, sizes: list[SizeObservation] | None = None, **kw: Any
) -> Explanation:
    kw.setdefault("source_bucket", "src")
    kw.setdefault("now", NOW)
    return classify(KEY, source, observed() if sizes is None else sizes, kw.pop("letters", []), **kw)


# --- the verdict -----------------------------------------------------------------------------------


def test_every_rendition_current_is_healthy_with_no_fix() -> None:
    result = explain()
    assert result.verdict.state is State.HEALTHY
    assert result.verdict.healthy
    assert result.verdict.fix is None
    assert {r.state for r in result.renditions} == {RenditionState.CURRENT}
    assert all(r.recipe_current for r in result.renditions)


def test_a_rendition_made_from_another_etag_is_stale_and_says_which() -> None:
    result = explain(sizes=observed(etag="etag-old", only="300x300"))
    assert result.verdict.state is State.STALE
    assert not result.verdict.healthy
    stale = next(r for r in result.renditions if r.size == "300x300")
    assert stale.state is RenditionState.STALE
    assert stale.made_from_etag == "etag-old"
    assert stale.reason == "made from ETag etag-old, the source is now etag-now"
    assert result.verdict.fix == "imgproc enqueue 'original/a b+c/é.jpg'"


def test_a_changed_recipe_makes_renditions_stale_and_names_both_digests() -> None:
    result = explain(sizes=observed(digest="0123456789abcdef"))
    assert result.verdict.state is State.STALE
    report = result.renditions[0]
    assert report.recipe_current is False
    assert report.reason == f"recipe 0123456789abcdef, today's is {report.expected_recipe}"


def test_missing_renditions_are_fixed_by_an_enqueue_and_a_fresh_upload_is_said_to_be_on_its_way() -> None:
    result = explain(sizes=observed(etag=None))
    assert result.verdict.state is State.MISSING
    assert result.verdict.fix == "imgproc enqueue 'original/a b+c/é.jpg'"
    fresh = explain(replace(SOURCE, last_modified=NOW - timedelta(seconds=5)), observed(etag=None))
    assert "written 5s ago and may still be on its way" in fresh.verdict.summary


def test_renditions_of_a_source_that_is_gone_are_orphaned_unless_kept_on_purpose() -> None:
    result = explain(None, observed(etag="etag-old"))
    assert result.verdict.state is State.ORPHANED
    assert {r.state for r in result.renditions} == {RenditionState.ORPHANED}
    assert result.verdict.fix == "imgproc enqueue 'original/a b+c/é.jpg'"
    kept = explain(None, observed(etag="etag-old"), delete_on_remove=False)
    assert kept.verdict.state is State.KEPT
    assert kept.verdict.healthy


def test_no_source_and_no_rendition_asks_to_fix_the_source() -> None:
    result = explain(None, observed(etag=None))
    assert result.verdict.state is State.NO_SOURCE
    assert not result.verdict.healthy
    assert result.verdict.fix is not None
    assert result.verdict.fix.startswith("fix the source: there is no object s3://src/original/a b+c/é.jpg")


def test_a_dead_lettered_bad_source_is_fixed_at_the_source() -> None:
    result = explain(sizes=observed(etag=None), letters=[letter()])
    verdict = result.verdict
    assert verdict.state is State.DEAD_LETTERED
    assert verdict.summary == "dead-lettered as CorruptImage at 2026-12-01T11:30:00Z"
    assert verdict.fix is not None
    assert verdict.fix.startswith("fix the source: cannot decode: broken data stream")


def test_a_dead_letter_older_than_the_source_is_replayed_with_force_past_the_cap() -> None:
    before_upload = letter(failed_at="2026-12-01T10:00:00Z", replays=3)
    result = explain(sizes=observed(etag=None), letters=[before_upload], fixes=Fixes(("--stack-name", "s")))
    assert result.verdict.summary == (
        "dead-lettered as CorruptImage at 2026-12-01T10:00:00Z, replayed 3 time(s); the source changed since"
    )
    assert result.verdict.fix == "imgproc dlq replay --key 'original/a b+c/é.jpg' --force --stack-name s"


def test_retries_exhausted_is_replayed() -> None:
    result = explain(sizes=observed(etag=None), letters=[letter("RetriesExhausted", failed_at="")])
    assert result.verdict.fix == "imgproc dlq replay --key 'original/a b+c/é.jpg'"


def test_healthy_with_an_old_failure_left_on_the_dlq_says_how_to_clear_it() -> None:
    result = explain(letters=[letter(failed_at="2026-12-01T10:00:00Z")])
    assert result.verdict.healthy
    assert any("imgproc dlq purge --key" in note for note in result.notes)


def test_the_catalog_tells_a_dead_lettered_version_whose_message_is_gone() -> None:
    item = {"status": "dead-lettered", "source_etag": "etag-now", "error_class": "NotAnImage"}
    result = explain(sizes=observed(etag=None), catalog=item)
    assert result.verdict.state is State.DEAD_LETTERED
    assert result.verdict.fix == "fix the source: it failed as NotAnImage; upload a valid image"


def test_a_pixel_decided_size_is_current_through_either_candidate_and_reports_the_other() -> None:
    key = "original/anim.gif"
    sizes = []
    for plan in plan_renditions(CONFIG, key):
        png, jpeg = plan.candidate_for(OutputFormat.PNG), plan.candidate_for(OutputFormat.JPEG)
        sizes.append(
            SizeObservation(
                str(plan.spec.size),
                (
                    Candidate(jpeg.key, jpeg.digest, markers.build(key, "old", jpeg.digest)),
                    Candidate(png.key, png.digest, markers.build(key, "etag-now", png.digest)),
                ),
            )
        )
    result = classify(key, SOURCE, sizes, [], source_bucket="src", now=NOW)
    assert result.verdict.healthy
    assert all(r.key.endswith(".gif.png") and r.leftovers for r in result.renditions)


# --- what a typed key names -------------------------------------------------------------------------


def parse(text: str, config: Config = CONFIG) -> keys.KeyInput:
    return keys.parse(text, config, source_bucket="src", dest_bucket="dest")


@pytest.mark.parametrize("key", ["original/a b.jpg", "original/a+b.jpg", "original/naïve/日本.png"])
def test_a_source_key_or_its_url_names_itself(key: str) -> None:
    assert parse(key).candidates == (key,)
    assert parse(f"s3://src/{key}").candidates == (key,)


@pytest.mark.parametrize(
    ("rendition", "output_format", "sources"),
    [
        ("resized/300x300/a b/é+.jpg", None, ("original/a b/é+.jpg", "original/a b/é+")),
        ("resized/100x100/x.JPEG", None, ("original/x.JPEG",)),  # from original/x it would be x.jpg
        ("resized/300x300/x.png.webp", OutputFormat.WEBP, ("original/x.png.webp", "original/x.png")),
        ("resized/300x300/x.gif.png", None, ("original/x.gif.png", "original/x.gif")),
        ("resized/640x480/old-size.jpg", None, ("original/old-size.jpg", "original/old-size")),
    ],
)
def test_a_rendition_key_maps_back_through_the_processors_naming(
    rendition: str, output_format: OutputFormat | None, sources: tuple[str, ...]
) -> None:
    config = replace(CONFIG, output_format=output_format)
    assert parse(rendition, config).candidates == sources
    assert parse(f"s3://dest/{rendition}", config).rendition_key == rendition


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("s3://other/original/a.jpg", "bucket 'other' is neither"),
        ("elsewhere/a.jpg", "neither a source key"),
        ("original/folder/", "is a folder"),
        ("resized/big/a.jpg", "'big' is not a rendition size"),
        ("resized/300x300/a.gif", "not a rendition key the function writes"),
        ("s3://dest/original/a.jpg", "neither a source key"),
    ],
)
def test_keys_that_name_no_source_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(text)


# --- walk of issue 16: collisions, a source deleted on purpose, an orphan's absent sizes -----------


def claimed_sizes(key: str, other: str) -> list[SizeObservation]:
    """Every size of ``key`` held by ``other``'s rendition: its marker names ``other``."""
    return [
        SizeObservation(
            size.size,
            tuple(
                Candidate(c.key, c.digest, markers.build(other, "etag-other", c.digest), key)
                for c in size.candidates
            ),
        )
        for size in observed(key)
    ]


def test_a_rendition_whose_marker_names_another_source_is_claimed_and_the_fix_is_a_rename() -> None:
    other = "original/a b+c/é.jpg.jpg"
    result = explain(sizes=claimed_sizes(KEY, other))
    assert result.verdict.state is State.COLLISION
    assert not result.verdict.healthy
    assert {r.state for r in result.renditions} == {RenditionState.CLAIMED}
    assert {r.claimed_by for r in result.renditions} == {other}
    assert f"claimed by {other} (a name collision" in result.verdict.summary
    assert result.verdict.fix is not None
    assert result.verdict.fix.startswith(f"rename one of the two sources ({KEY} or {other})")
    assert "enqueue" not in result.verdict.fix.split(":")[0]
    # Even with the source's own ETag (the same bytes), it is not this key's: never current.
    same_bytes = [
        SizeObservation(
            s.size,
            tuple(replace(c, metadata=markers.build(other, "etag-now", c.digest)) for c in s.candidates),
        )
        for s in claimed_sizes(KEY, other)
    ]
    assert explain(sizes=same_bytes).verdict.state is State.COLLISION
    # Its own marker (the key as the handler writes it, URL-quoted) is not a claim.
    own = [
        SizeObservation(s.size, tuple(replace(c, source_key=KEY) for c in s.candidates)) for s in observed()
    ]
    assert explain(sizes=own).verdict.state is State.HEALTHY


def test_without_a_source_another_keys_renditions_are_not_orphans_to_delete() -> None:
    result = explain(None, claimed_sizes(KEY, "original/other.jpg"))
    assert result.verdict.state is State.NO_SOURCE
    assert "original/other.jpg's renditions: a name collision" in result.verdict.summary
    assert not any(r.state is RenditionState.ORPHANED for r in result.renditions)


def test_a_source_gone_with_a_message_left_proposes_an_upload_or_the_exact_purge() -> None:
    result = explain(None, observed(etag=None), letters=[letter()])
    assert result.verdict.state is State.NO_SOURCE
    assert result.verdict.fix == (
        f"fix the source: there is no object s3://src/{KEY}; upload it again, or if it was deleted on "
        f"purpose: imgproc dlq purge --key '{KEY}'"
    )


def test_an_orphans_absent_sizes_are_none_because_the_source_is_gone_not_missing() -> None:
    sizes = [
        s
        if s.size == "300x300"
        else SizeObservation(s.size, tuple(replace(c, metadata=None) for c in s.candidates))
        for s in observed(etag="etag-old")
    ]
    result = explain(None, sizes)
    assert result.verdict.state is State.ORPHANED
    states = {r.size: (r.state, r.reason) for r in result.renditions}
    assert states == {
        "300x300": (RenditionState.ORPHANED, ""),
        "100x100": (RenditionState.NONE, "source gone"),
    }
    gone = explain(None, observed(etag=None))
    assert {r.state for r in gone.renditions} == {RenditionState.NONE}


def test_the_proposed_replay_and_purge_select_the_exact_key_quoted() -> None:
    fixes = Fixes(("--stack-name", "s"))
    assert (
        fixes.purge("original/it's é+.jpg")
        == "imgproc dlq purge --key 'original/it'\"'\"'s é+.jpg' --stack-name s"
    )
    assert (
        fixes.replay("original/a.jpg", force=True)
        == "imgproc dlq replay --key original/a.jpg --force --stack-name s"
    )
