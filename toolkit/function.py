"""The deployed function's configuration, as Lambda reports it: what the operator tools need to decide
like the handler (its environment, parsed into the handler's own :class:`~processor.config.Config`),
and what the local runtime needs to run it (timeout, memory)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processor.config import Config, ConfigError
from toolkit.stack import Output, StackOutputs, read_outputs


class FunctionConfigError(RuntimeError):
    """The deployed function's environment does not parse (exit 1: the stack is wrong, not the usage)."""


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


@dataclass(frozen=True)
class Deployment:
    """A stack's outputs and its function's configuration, as the handler sees it: what a tool needs to
    map a key to its renditions and recipes the way the handler does (today's, not a guess)."""

    outputs: StackOutputs
    function: FunctionConfig
    config: Config

    @property
    def source_bucket(self) -> str:
        return self.outputs.source_bucket

    @property
    def dest_bucket(self) -> str:
        return self.outputs.destination_bucket


def load_deployment(cfn: Any, lam: Any, stack_name: str, required: tuple[Output, ...]) -> Deployment:
    """The stack's outputs (``required`` ones checked, :class:`~toolkit.errors.StackNotFound` naming the
    missing ones) and the deployed function's parsed configuration (:class:`FunctionConfigError`)."""
    outputs = read_outputs(cfn, stack_name, required=required)
    function = load_function(lam, outputs.function_name)
    try:
        config = Config.from_env(function.environment)
    except ConfigError as exc:
        raise FunctionConfigError(f"function {function.name}: {exc}") from None
    return Deployment(outputs, function, config)
