"""structlog set up once: one JSON object per line (what CloudWatch Logs Insights reads best).

Context that belongs to every line of a unit of work (request id, message id, key, source ETag) lives
in structlog's context variables, bound once and merged into every line, never formatted into the
event name, so every line can be filtered by it. On a terminal the same events read as console lines.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog


def configure(level: str = "INFO", *, stream: TextIO | None = None, json: bool | None = None) -> None:
    """Route structlog to ``stream`` (stdout by default) at ``level`` and above.

    ``json`` None means JSON unless ``stream`` is a terminal (Lambda's stdout never is).
    """
    stream = stream or sys.stdout
    if json is None:
        json = not getattr(stream, "isatty", lambda: False)()
    renderer: list[Any] = (
        [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
        if json
        else [structlog.dev.ConsoleRenderer(colors=False)]
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            *renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str, **context: Any) -> Any:
    """A logger whose every line names its origin (``logger``) and carries ``context``."""
    return structlog.get_logger().bind(logger=name, **context)
