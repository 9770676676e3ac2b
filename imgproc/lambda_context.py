"""A stand-in for the Lambda context object, for running the real handler outside Lambda.

The handler reads ``aws_request_id`` for its logs and ``get_remaining_time_in_millis()`` for its
timeout guard, so the countdown must be real: it starts from the function's configured timeout.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field


@dataclass
class LocalContext:
    function_name: str
    timeout_seconds: float
    memory_limit_in_mb: int = 1769
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
