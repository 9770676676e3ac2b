"""What every record of a batch is processed with: built once per batch, passed down as one object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processor.config import Config
from processor.followups import Followups


@dataclass(frozen=True)
class Deps:
    """The configuration and the edges of one batch, shared read-only by its records' threads.

    ``followups`` is never None: with the catalog and the notifications both off it is the no-op
    :class:`~processor.followups.Followups` that :meth:`Followups.create` returns.
    """

    config: Config
    s3: Any
    sqs: Any
    followups: Followups
    log: Any
