from __future__ import annotations

import pytest

from processor.config import Config
from processor.renditions import ignore_reason, plan_renditions, rendition_key
from processor.spec import Fit, OutputFormat, RenditionSpec, Size, Watermark, WatermarkPosition

CONFIG = Config(dest_bucket="dest")


@pytest.mark.parametrize(
    ("source", "fmt", "expected"),
    [
        ("original/a/b.jpg", OutputFormat.JPEG, "resized/300x300/a/b.jpg"),
        ("original/a/b.JPEG", OutputFormat.JPEG, "resized/300x300/a/b.JPEG"),
        ("original/a/b.png", OutputFormat.WEBP, "resized/300x300/a/b.png.webp"),
        ("original/a/b", OutputFormat.JPEG, "resized/300x300/a/b.jpg"),
        ("original/a/b.tif", OutputFormat.PNG, "resized/300x300/a/b.tif.png"),
        ("original/a b/ü.avif", OutputFormat.AVIF, "resized/300x300/a b/ü.avif"),
    ],
)
def test_rendition_keys(source: str, fmt: OutputFormat, expected: str) -> None:
    assert rendition_key(CONFIG, Size(300, 300), source, fmt) == expected


def test_sources_with_different_extensions_never_share_a_rendition_key() -> None:
    keys = {
        rendition_key(CONFIG, Size(100, 100), f"original/b.{ext}", OutputFormat.JPEG)
        for ext in ("png", "jpg")
    }
    assert len(keys) == 2


def test_auto_keeps_a_web_format_named_by_the_key() -> None:
    plans = plan_renditions(CONFIG, "original/x.PNG")
    assert [p.spec.size for p in plans] == [Size(300, 300), Size(100, 100)]  # largest first
    assert [[c.key for c in p.candidates] for p in plans] == [
        ["resized/300x300/x.PNG"],
        ["resized/100x100/x.PNG"],
    ]
    assert all(p.spec.format is OutputFormat.PNG for p in plans)


def test_auto_lets_the_pixels_decide_for_other_sources() -> None:
    (large, _) = plan_renditions(CONFIG, "original/x.gif")
    assert large.spec.format is None
    assert [c.key for c in large.candidates] == ["resized/300x300/x.gif.jpg", "resized/300x300/x.gif.png"]
    assert large.candidate_for(OutputFormat.PNG).spec.format is OutputFormat.PNG


def test_explicit_format_has_one_candidate() -> None:
    config = Config(dest_bucket="dest", output_format=OutputFormat.WEBP, fit=Fit.COVER)
    (large, small) = plan_renditions(config, "original/x.jpg")
    assert [c.key for c in small.candidates] == ["resized/100x100/x.jpg.webp"]
    assert large.spec == RenditionSpec(Size(300, 300), Fit.COVER, OutputFormat.WEBP, 85)


def test_digest_changes_with_every_part_of_the_recipe() -> None:
    base = RenditionSpec(Size(300, 300), Fit.CONTAIN, OutputFormat.JPEG, 85)
    variants = [
        base,
        RenditionSpec(Size(300, 200), Fit.CONTAIN, OutputFormat.JPEG, 85),
        RenditionSpec(Size(300, 300), Fit.COVER, OutputFormat.JPEG, 85),
        RenditionSpec(Size(300, 300), Fit.CONTAIN, OutputFormat.WEBP, 85),
        RenditionSpec(Size(300, 300), Fit.CONTAIN, OutputFormat.JPEG, 80),
        RenditionSpec(Size(300, 300), Fit.CONTAIN, OutputFormat.JPEG, 85, watermark=Watermark("x")),
        RenditionSpec(Size(300, 300), Fit.CONTAIN, OutputFormat.JPEG, 85, watermark=Watermark("y")),
        RenditionSpec(
            Size(300, 300), Fit.CONTAIN, OutputFormat.JPEG, 85, Watermark("x", WatermarkPosition.CENTER)
        ),
        RenditionSpec(Size(300, 300), Fit.CONTAIN, OutputFormat.JPEG, 85, Watermark("x", opacity=0.8)),
        RenditionSpec(Size(300, 300), Fit.CONTAIN, OutputFormat.JPEG, 85, Watermark("x", min_size=100)),
    ]
    assert len({v.digest() for v in variants}) == len(variants)
    assert base.digest() == RenditionSpec(Size(300, 300), Fit.CONTAIN, OutputFormat.JPEG, 85).digest()


def test_digests_without_a_watermark_are_those_renditions_already_carry() -> None:
    # Renditions written before watermarks existed must stay current: these are their digests.
    assert RenditionSpec(Size(300, 300), Fit.CONTAIN, OutputFormat.JPEG, 85).digest() == "a6358ee628156675"
    assert RenditionSpec(Size(100, 100), Fit.COVER, OutputFormat.PNG, 85).digest() == "fc179c25fc2bc11a"


def test_the_watermark_is_in_the_recipe_only_of_boxes_large_enough_to_show_it() -> None:
    config = Config(
        dest_bucket="dest",
        sizes=(Size(100, 100), Size(300, 300), Size(1000, 150)),
        watermark_text="(c) me",
        watermark_position=WatermarkPosition.TOP_LEFT,
        watermark_opacity=0.7,
        watermark_min_size=150,
    )
    marks = {str(plan.spec.size): plan.spec.watermark for plan in plan_renditions(config, "original/a.jpg")}
    mark = Watermark("(c) me", WatermarkPosition.TOP_LEFT, 0.7, 150)
    assert marks == {"1000x150": mark, "300x300": mark, "100x100": None}
    unmarked = {str(p.spec.size): p.candidates[0].digest for p in plan_renditions(CONFIG, "original/a.jpg")}
    assert {str(p.spec.size): p.candidates[0].digest for p in plan_renditions(config, "original/a.jpg")}[
        "100x100"
    ] == unmarked["100x100"]


@pytest.mark.parametrize(
    ("bucket", "key", "reason"),
    [
        ("src", "original/a.jpg", None),
        ("src", "other/a.jpg", "outside-source-prefix"),
        ("src", "original/folder/", "folder-marker"),
        ("dest", "resized/100x100/a.jpg", "loop-guard"),
        ("src", "resized/100x100/a.jpg", "outside-source-prefix"),
    ],
)
def test_ignore_reasons(bucket: str, key: str, reason: str | None) -> None:
    assert ignore_reason(bucket, key, CONFIG) == reason


def test_events_for_another_bucket_are_ignored_when_the_source_bucket_is_known() -> None:
    config = Config(dest_bucket="dest", source_bucket="src")
    assert ignore_reason("src", "original/a.jpg", config) is None
    assert ignore_reason("elsewhere", "original/a.jpg", config) == "foreign-bucket"
    assert ignore_reason("dest", "resized/100x100/a.jpg", config) == "loop-guard"
