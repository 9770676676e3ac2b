"""What a replayed key's observation means (dlq_replayer.outcomes): pure, no AWS."""

from __future__ import annotations

from dlq_replayer.outcomes import Observation, Outcome, Verdict, classify
from processor import markers
from toolkit.dead_letters import DeadLetter as DeadLetterSeen
from toolkit.renditions import Candidate as CandidateSeen

ETAG = "0123456789abcdef0123456789abcdef"
DIGEST_100, DIGEST_300 = "a" * 16, "b" * 16


def marker(etag: str = ETAG, digest: str = DIGEST_100) -> dict[str, str]:
    return markers.build("original/a.jpg", f'"{etag}"', digest)


def sizes(small: dict[str, str] | None, large: dict[str, str] | None) -> list[list[CandidateSeen]]:
    return [
        [CandidateSeen("resized/300x300/a.jpg", DIGEST_300, large)],
        [CandidateSeen("resized/100x100/a.jpg", DIGEST_100, small)],
    ]


BACK = DeadLetterSeen("m-2", "CorruptImage", "image file is truncated", replay_count=1)


def test_every_rendition_current_is_rendered() -> None:
    seen = Observation(ETAG, sizes(marker(), marker(digest=DIGEST_300)))
    assert classify(seen) == Verdict(Outcome.RENDERED)


def test_a_rendition_of_an_older_version_or_recipe_or_a_missing_one_is_pending() -> None:
    older = Observation(ETAG, sizes(marker(), marker(etag="f" * 32, digest=DIGEST_300)))
    recipe = Observation(ETAG, sizes(marker(), marker(digest="c" * 16)))
    missing = Observation(ETAG, sizes(marker(), None))
    for seen in (older, recipe, missing):
        assert classify(seen).outcome is Outcome.PENDING


def test_a_size_decided_by_the_pixels_is_current_through_either_candidate() -> None:
    jpeg, png = "d" * 16, "e" * 16
    gif = [
        [
            CandidateSeen("resized/100x100/a.gif.jpg", jpeg, None),
            CandidateSeen("resized/100x100/a.gif.png", png, marker(digest=png)),
        ]
    ]
    assert classify(Observation(ETAG, gif)).outcome is Outcome.RENDERED


def test_back_on_the_dlq_is_failed_again_with_its_class_whatever_s3_shows() -> None:
    for seen in (
        Observation(ETAG, sizes(None, None), BACK),
        Observation(ETAG, sizes(marker(), marker(digest=DIGEST_300)), BACK),  # another key of its message
        Observation(None, (), BACK),  # a message naming no key
    ):
        assert classify(seen) == Verdict(
            Outcome.FAILED_AGAIN, "CorruptImage", "image file is truncated", "m-2"
        )


def test_a_deleted_source_is_gone_once_its_renditions_are() -> None:
    assert classify(Observation(None, sizes(None, None))).outcome is Outcome.SOURCE_GONE
    # The handler has not run yet: it will delete them.
    assert classify(Observation(None, sizes(marker(), None))).outcome is Outcome.PENDING


def test_without_delete_on_remove_a_deleted_source_is_gone_at_once() -> None:
    seen = Observation(None, sizes(marker(), marker(digest=DIGEST_300)), delete_on_remove=False)
    assert classify(seen).outcome is Outcome.SOURCE_GONE


def test_only_pending_is_not_final() -> None:
    assert [o for o in Outcome if not o.final] == [Outcome.PENDING]


def test_a_record_the_handler_ignores_is_ignored_unless_its_message_is_back() -> None:
    seen = Observation(None, (), ignored="outside-source-prefix")
    assert classify(seen) == Verdict(Outcome.IGNORED, ignored="outside-source-prefix")
    assert classify(Observation(None, (), BACK, ignored="folder-marker")).outcome is Outcome.FAILED_AGAIN


def test_a_rendition_claimed_by_another_source_key_is_not_rendered_for_this_one() -> None:
    # `original/a` (no extension, rendered as PNG) and `original/a.png` share resized/WxH/a.png:
    # a marker naming the other key is the other key's rendition, even with the same bytes (ETag).
    def claimed(key: str, meta: dict[str, str] | None) -> list[list[CandidateSeen]]:
        return [[CandidateSeen("resized/100x100/a.jpg", DIGEST_100, meta, key)]]

    mine = markers.build("original/a.jpg", f'"{ETAG}"', DIGEST_100)
    assert classify(Observation(ETAG, claimed("original/a.jpg", mine))) == Verdict(Outcome.RENDERED)
    other = markers.build("original/a", f'"{ETAG}"', DIGEST_100)
    seen = classify(Observation(ETAG, claimed("original/a.jpg", other)))
    assert seen == Verdict(Outcome.PENDING, claimed_by="original/a")
    assert not seen.outcome.final
