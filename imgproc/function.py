"""Run the real handler here, configured exactly as the deployed function is.

`imgproc invoke` and the local poller both read the function's configuration (environment, timeout)
from the deployed stack and run ``processor.handler.lambda_handler`` in this process with it, so
what runs locally is what runs in Lambda, minus the container.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from imgproc.lambda_context import LocalContext
from processor.config import variable_names
from toolkit.function import FunctionConfig

if TYPE_CHECKING:
    from processor.batch import BatchResult


def apply_environment(function: FunctionConfig, *, endpoint_url: str | None, region: str) -> None:
    """Make this process look like the function's container: its variables (and none of the handler's
    from this shell), this endpoint and region.

    The handler builds its configuration and clients once per process (as per container), so this
    must run before its first invocation; :func:`invoke` resets that cache to be sure.
    """
    for name in variable_names():  # this shell's settings must not leak into the "deployed" function
        os.environ.pop(name, None)
    os.environ.update(function.environment)
    os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = region
    os.environ["AWS_LAMBDA_FUNCTION_NAME"] = function.name
    if endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url


def invoke(function: FunctionConfig, event: Mapping[str, Any], *, fresh: bool = False) -> dict[str, Any]:
    """Invoke the handler once on ``event`` with a context counting down from the function's timeout.

    ``fresh`` drops the handler's cached configuration and clients first (a cold start).
    """
    return invoke_batch(function, event, fresh=fresh).response()


def invoke_batch(function: FunctionConfig, event: Mapping[str, Any], *, fresh: bool = False) -> BatchResult:
    """:func:`invoke`, returning the handler's whole result (each record's outcome), not its response."""
    from processor import handler  # noqa: PLC0415 - imported after apply_environment, like Lambda does

    if fresh:
        handler.runtime.cache_clear()
    context = LocalContext(
        function_name=function.name,
        timeout_seconds=function.timeout_seconds,
        memory_limit_in_mb=function.memory_mb,
        invoked_function_arn=function.arn,
    )
    return handler.handle_batch(dict(event), context)
