"""The function's configuration: environment variables parsed once into a frozen dataclass.

Every problem is reported at once, with the variable's name and the value it had, so that a bad
deployment fails at cold start with a message an operator can act on, not mid-batch.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, TypeVar

from processor.spec import Fit, OutputFormat, Size, Watermark, WatermarkPosition

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_UNSET = object()  # _Parser.get: nothing usable in the environment, the field's default applies


class ConfigError(ValueError):
    """One or more environment variables are missing or invalid; the message lists each."""


@dataclass(frozen=True)
class Config:
    dest_bucket: str
    source_bucket: str | None = None  # when set, events for any other bucket are ignored (SOURCE_BUCKET)
    source_prefix: str = "original/"
    dest_prefix: str = "resized/"
    sizes: tuple[Size, ...] = (Size(100, 100), Size(300, 300))
    fit: Fit = Fit.CONTAIN
    output_format: OutputFormat | None = None  # None is OUTPUT_FORMAT=auto
    quality: int = 85
    max_pixels: int = 100_000_000
    max_source_bytes: int = 104_857_600
    dlq_url: str | None = None
    delete_on_remove: bool = True
    watermark_text: str | None = None
    watermark_position: WatermarkPosition = WatermarkPosition.BOTTOM_RIGHT
    watermark_opacity: float = 0.5
    watermark_min_size: int = 150  # no mark on renditions whose shorter side is below it
    catalog_table: str | None = None
    notify_topic_arn: str | None = None
    log_level: str = "INFO"
    # Not in the interface contract; tuning knobs with safe defaults.
    concurrency: int = 4  # records of one batch rendered at once (CONCURRENCY)
    deadline_margin_ms: int = 5_000  # stop starting records this close to the timeout (DEADLINE_MARGIN_MS)
    cache_control: str = "public, max-age=86400"  # on every rendition (CACHE_CONTROL)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Parse ``env`` (default ``os.environ``); raise :class:`ConfigError` naming every bad variable.

        An unset (or empty) variable leaves its field's default; a field without one is required.
        """
        env = os.environ if env is None else env
        parser = _Parser(env)
        values: dict[str, Any] = {}
        for f in fields(cls):
            variable, convert = _VARIABLES[f.name]
            value = parser.get(variable, convert, required=f.default is MISSING)
            if value is not _UNSET:
                values[f.name] = value
        parser.raise_if_invalid()
        config = cls(**values)
        if config.source_prefix.startswith(config.dest_prefix) or config.dest_prefix.startswith(
            config.source_prefix
        ):
            raise ConfigError(
                f"SOURCE_PREFIX={config.source_prefix!r} and DEST_PREFIX={config.dest_prefix!r} overlap: "
                "renditions written into the source prefix would trigger themselves"
            )
        return config

    @property
    def watermark(self) -> Watermark | None:
        """The watermark every large enough rendition gets, or None (``WATERMARK_TEXT`` unset)."""
        if not self.watermark_text:
            return None
        return Watermark(
            self.watermark_text, self.watermark_position, self.watermark_opacity, self.watermark_min_size
        )


def variable_names() -> tuple[str, ...]:
    """Every environment variable :meth:`Config.from_env` reads, in order."""
    return tuple(variable for variable, _ in _VARIABLES.values())


class _Parser:
    """Collects every invalid variable instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._problems: list[str] = []

    def get(self, name: str, convert: Callable[[str], T], *, required: bool = False) -> T | object:
        """The converted value, or :data:`_UNSET` when the variable is unset or invalid."""
        raw = self._env.get(name, "").strip()
        if not raw:  # CloudFormation cannot omit a variable conditionally: empty means unset
            if required:
                self._problems.append(f"{name} is required")
            return _UNSET
        try:
            return convert(raw)
        except ValueError as exc:
            self._problems.append(f"{name}={raw!r}: {exc}")
            return _UNSET

    def raise_if_invalid(self) -> None:
        if self._problems:
            raise ConfigError("invalid configuration: " + "; ".join(self._problems))


def _prefix(raw: str) -> str:
    if raw.startswith("/"):
        raise ValueError("S3 key prefixes do not start with '/'")
    return raw if raw.endswith("/") else raw + "/"


def _sizes(raw: str) -> tuple[Size, ...]:
    sizes = tuple(Size.parse(part) for part in raw.split(",") if part.strip())
    if not sizes:
        raise ValueError("give at least one WIDTHxHEIGHT")
    if len(set(sizes)) != len(sizes):
        raise ValueError("sizes repeat")
    return sizes


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def convert(raw: str) -> int:
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            raise ValueError("not an integer") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return convert


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected true or false")


def _choice_of(allowed: tuple[str, ...]) -> Callable[[str], str]:
    def convert(raw: str) -> str:
        if raw.upper() not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return raw.upper()

    return convert


def _choice(enum_type: type[E]) -> Callable[[str], E]:
    def convert(raw: str) -> E:
        try:
            return enum_type(raw.lower())
        except ValueError:
            raise ValueError(f"expected one of {', '.join(m.value for m in enum_type)}") from None

    return convert


def _watermark_text(raw: str) -> str:
    if any(not ch.isprintable() for ch in raw):
        raise ValueError("must be one line of printable characters")
    if len(raw) > 200:
        raise ValueError("at most 200 characters")
    return raw


def _opacity(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("not a number") from None
    if not (math.isfinite(value) and 0 < value <= 1):
        raise ValueError("must be greater than 0 and at most 1")
    return value


def _output_format(raw: str) -> OutputFormat | None:
    if raw.lower() == "auto":
        return None
    try:
        return OutputFormat(raw.lower())
    except ValueError:
        raise ValueError(f"expected auto or one of {', '.join(f.value for f in OutputFormat)}") from None


# Each field of Config: the environment variable that sets it and how its text is read.
_VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "dest_bucket": ("DEST_BUCKET", str),
    "source_bucket": ("SOURCE_BUCKET", str),
    "source_prefix": ("SOURCE_PREFIX", _prefix),
    "dest_prefix": ("DEST_PREFIX", _prefix),
    "sizes": ("SIZES", _sizes),
    "fit": ("FIT", _choice(Fit)),
    "output_format": ("OUTPUT_FORMAT", _output_format),
    "quality": ("QUALITY", _int_between(1, 100)),
    "max_pixels": ("MAX_PIXELS", _int_between(1, 2**40)),
    "max_source_bytes": ("MAX_SOURCE_BYTES", _int_between(1, 5 * 2**40)),
    "dlq_url": ("DLQ_URL", str),
    "delete_on_remove": ("DELETE_ON_REMOVE", _bool),
    "watermark_text": ("WATERMARK_TEXT", _watermark_text),
    "watermark_position": ("WATERMARK_POSITION", _choice(WatermarkPosition)),
    "watermark_opacity": ("WATERMARK_OPACITY", _opacity),
    "watermark_min_size": ("WATERMARK_MIN_SIZE", _int_between(0, 10000)),
    "catalog_table": ("CATALOG_TABLE", str),
    "notify_topic_arn": ("NOTIFY_TOPIC_ARN", str),
    "log_level": ("LOG_LEVEL", _choice_of(_LOG_LEVELS)),
    "concurrency": ("CONCURRENCY", _int_between(1, 64)),
    "deadline_margin_ms": ("DEADLINE_MARGIN_MS", _int_between(0, 900_000)),
    "cache_control": ("CACHE_CONTROL", str),
}
