"""structlog set up once: one JSON object per line (what CloudWatch Logs Insights reads best).

Context that belongs to every line of a unit of work (request id, message id, key) is bound on the
logger passed down, never formatted into the event name, so every line can be filtered by it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog


def configure(level: str = "INFO", *, stream: TextIO | None = None) -> None:
    """Route structlog to ``stream`` (stdout by default) as JSON lines at ``level`` and above."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stdout),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str, **context: Any) -> Any:
    """A logger whose every line names its origin (``logger``) and carries ``context``."""
    return structlog.get_logger().bind(logger=name, **context)
