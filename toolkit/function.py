"""The deployed function's configuration, as Lambda reports it: what backfill needs to decide like the
handler (its environment), and what the local runtime needs to run it (timeout, memory)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FunctionConfig:
    name: str
    arn: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]
    # Where its logs go: the LoggingConfig's group, else Lambda's default /aws/lambda/<name>.
    log_group: str = ""


def load_function(lam: Any, name: str) -> FunctionConfig:
    """The deployed function's configuration (``lambda:GetFunctionConfiguration``)."""
    conf = lam.get_function_configuration(FunctionName=name)
    return FunctionConfig(
        name=conf["FunctionName"],
        arn=conf["FunctionArn"],
        timeout_seconds=int(conf.get("Timeout", 3)),
        memory_mb=int(conf.get("MemorySize", 128)),
        environment={k: str(v) for k, v in (conf.get("Environment") or {}).get("Variables", {}).items()},
        log_group=(conf.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{conf['FunctionName']}",
    )
