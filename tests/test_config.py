from __future__ import annotations

import pytest

from processor.config import Config, ConfigError, variable_names
from processor.spec import Fit, OutputFormat, Size, Watermark, WatermarkPosition


def test_defaults_follow_the_contract() -> None:
    config = Config.from_env({"DEST_BUCKET": "dest"})
    assert config == Config(dest_bucket="dest")
    assert config.source_prefix == "original/"
    assert config.dest_prefix == "resized/"
    assert config.sizes == (Size(100, 100), Size(300, 300))
    assert config.fit is Fit.CONTAIN
    assert config.output_format is None  # auto
    assert (config.quality, config.max_pixels, config.max_source_bytes) == (85, 100_000_000, 104_857_600)
    assert config.delete_on_remove is True
    assert config.dlq_url is None


def test_every_variable_is_parsed() -> None:
    config = Config.from_env(
        {
            "DEST_BUCKET": "dest",
            "SOURCE_PREFIX": "in",
            "DEST_PREFIX": "out/",
            "SIZES": " 640x480 , 64x64",
            "FIT": "COVER",
            "OUTPUT_FORMAT": "webp",
            "QUALITY": "70",
            "MAX_PIXELS": "1000",
            "MAX_SOURCE_BYTES": "2000",
            "DLQ_URL": "https://sqs/dlq",
            "DELETE_ON_REMOVE": "false",
            "WATERMARK_TEXT": "(c) me",
            "WATERMARK_POSITION": "Top-Left",
            "WATERMARK_OPACITY": "0.8",
            "WATERMARK_MIN_SIZE": "150",
            "CATALOG_TABLE": "catalog",
            "NOTIFY_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t",
            "LOG_LEVEL": "debug",
            "CONCURRENCY": "8",
        }
    )
    assert config.source_prefix == "in/"
    assert config.sizes == (Size(640, 480), Size(64, 64))
    assert config.fit is Fit.COVER
    assert config.output_format is OutputFormat.WEBP
    assert (config.quality, config.max_pixels, config.max_source_bytes) == (70, 1000, 2000)
    assert config.delete_on_remove is False
    assert config.watermark_text == "(c) me"
    assert config.watermark == Watermark("(c) me", WatermarkPosition.TOP_LEFT, 0.8, 150)
    assert config.catalog_table == "catalog"
    assert config.notify_topic_arn == "arn:aws:sns:us-east-1:1:t"
    assert config.log_level == "DEBUG"
    assert config.concurrency == 8


def test_empty_values_mean_unset() -> None:
    # CloudFormation cannot drop a variable conditionally; the template writes "" instead.
    config = Config.from_env({"DEST_BUCKET": "dest", "DLQ_URL": "", "CATALOG_TABLE": " ", "SIZES": ""})
    assert config.dlq_url is None
    assert config.catalog_table is None
    assert config.sizes == (Size(100, 100), Size(300, 300))


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        Config.from_env({"SIZES": "100x,abc", "QUALITY": "101", "FIT": "stretch", "OUTPUT_FORMAT": "gif"})
    message = str(raised.value)
    assert "DEST_BUCKET is required" in message
    assert "SIZES='100x,abc'" in message
    assert "QUALITY='101': must be between 1 and 100" in message
    assert "FIT='stretch': expected one of contain, cover" in message
    assert "OUTPUT_FORMAT='gif'" in message


@pytest.mark.parametrize(
    ("name", "value"),
    [("DELETE_ON_REMOVE", "maybe"), ("SIZES", "0x10"), ("SIZES", "10x10,10x10"), ("MAX_PIXELS", "lots")],
)
def test_invalid_values_are_rejected(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Config.from_env({"DEST_BUCKET": "dest", name: value})


def test_the_watermark_is_off_by_default_and_its_settings_default_sensibly() -> None:
    assert Config.from_env({"DEST_BUCKET": "d"}).watermark is None
    config = Config.from_env({"DEST_BUCKET": "d", "WATERMARK_TEXT": "© ACME"})
    assert config.watermark == Watermark("© ACME", WatermarkPosition.BOTTOM_RIGHT, 0.5, 150)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "WATERMARK_POSITION",
            "middle",
            "WATERMARK_POSITION='middle': expected one of top-left, top-right, "
            "bottom-left, bottom-right, center",
        ),
        ("WATERMARK_OPACITY", "0", "WATERMARK_OPACITY='0': must be greater than 0 and at most 1"),
        ("WATERMARK_OPACITY", "1.5", "WATERMARK_OPACITY='1.5': must be greater than 0 and at most 1"),
        ("WATERMARK_OPACITY", "nan", "WATERMARK_OPACITY='nan': must be greater than 0 and at most 1"),
        ("WATERMARK_OPACITY", "half", "WATERMARK_OPACITY='half': not a number"),
        ("WATERMARK_MIN_SIZE", "-1", "WATERMARK_MIN_SIZE='-1': must be between 0 and 10000"),
        ("WATERMARK_TEXT", "a\tb", "WATERMARK_TEXT='a\\tb': must be one line of printable characters"),
        ("WATERMARK_TEXT", "x" * 201, "WATERMARK_TEXT='" + "x" * 201 + "': at most 200 characters"),
    ],
)
def test_invalid_watermark_settings_are_reported_by_name(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Config.from_env({"DEST_BUCKET": "dest", "WATERMARK_TEXT": "x", name: value})
    assert str(raised.value) == f"invalid configuration: {message}"


def test_overlapping_prefixes_are_rejected() -> None:
    with pytest.raises(ConfigError, match="overlap"):
        Config.from_env({"DEST_BUCKET": "d", "SOURCE_PREFIX": "images/", "DEST_PREFIX": "images/small/"})


def test_config_is_frozen() -> None:
    config = Config(dest_bucket="d")
    with pytest.raises(AttributeError):
        config.quality = 10  # type: ignore[misc]


def test_variable_names_lists_every_variable_read() -> None:
    names = variable_names()
    assert names[:3] == ("DEST_BUCKET", "SOURCE_BUCKET", "SOURCE_PREFIX")
    assert {"SIZES", "OUTPUT_FORMAT", "DLQ_URL", "LOG_LEVEL", "CONCURRENCY", "CACHE_CONTROL"} <= set(names)
    free_text = {"DEST_BUCKET", "SOURCE_BUCKET", "DLQ_URL", "WATERMARK_TEXT", "CATALOG_TABLE"}
    free_text |= {"NOTIFY_TOPIC_ARN", "CACHE_CONTROL"}
    for name in set(names) - free_text:  # each one really is parsed: a bad value is reported by name
        with pytest.raises(ConfigError, match=name):
            Config.from_env({"DEST_BUCKET": "d", name: "/-1x"})
