"""The stack's outputs, the one way every tool finds its resources (queues, buckets, the function).

The names are the template's ``Outputs`` (``infra/cloudformation/imgproc.yaml``), spelled once here
as :class:`Output`; tools read them through :class:`StackOutputs`, whose properties say what each
one is, so that a renamed output is one edit and a typo is an attribute error, not a ``KeyError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from toolkit.errors import StackNotFound


class Output(StrEnum):
    """The template's output names."""

    SOURCE_BUCKET = "SourceBucketName"
    DESTINATION_BUCKET = "DestinationBucketName"
    QUEUE_URL = "QueueUrl"
    QUEUE_ARN = "QueueArn"
    DLQ_URL = "DeadLetterQueueUrl"
    DLQ_ARN = "DeadLetterQueueArn"
    FUNCTION_NAME = "FunctionName"
    DASHBOARD_NAME = "DashboardName"
    DISTRIBUTION_DOMAIN = "DistributionDomainName"


def _name(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class StackOutputs:
    """A stack's outputs by name (``values``), read once; each property is one output (or a name
    derived from it), :class:`StackNotFound` when the stack lacks it (deployed from an older
    template)."""

    stack_name: str
    values: Mapping[str, str]

    def get(self, name: Output) -> str | None:
        return self.values.get(name) or None

    def __getitem__(self, name: Output) -> str:
        value = self.get(name)
        if value is None:
            raise StackNotFound(f"stack {self.stack_name!r} has no {name} output(s); redeploy it")
        return value

    def require(self, *names: Output) -> StackOutputs:
        """``self``, or :class:`StackNotFound` naming every one of ``names`` the stack lacks."""
        missing = [name for name in names if not self.values.get(name)]
        if missing:
            raise StackNotFound(
                f"stack {self.stack_name!r} has no {', '.join(missing)} output(s); redeploy it"
            )
        return self

    @property
    def source_bucket(self) -> str:
        return self[Output.SOURCE_BUCKET]

    @property
    def destination_bucket(self) -> str:
        return self[Output.DESTINATION_BUCKET]

    @property
    def queue_url(self) -> str:
        return self[Output.QUEUE_URL]

    @property
    def queue_arn(self) -> str:
        return self[Output.QUEUE_ARN]

    @property
    def queue_name(self) -> str:
        return _name(self.queue_arn)

    @property
    def dlq_url(self) -> str:
        return self[Output.DLQ_URL]

    @property
    def dlq_arn(self) -> str:
        return self[Output.DLQ_ARN]

    @property
    def dlq_name(self) -> str:
        return _name(self.dlq_arn)

    @property
    def function_name(self) -> str:
        return self[Output.FUNCTION_NAME]


def read_outputs(cfn: Any, stack_name: str, required: tuple[Output, ...] = ()) -> StackOutputs:
    """The stack's outputs; :class:`StackNotFound` when there is no such stack, or when it lacks one of
    the ``required`` outputs (a stack deployed from an older template)."""
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            raise StackNotFound(f"stack {stack_name!r} not found; deploy it with `imgproc deploy`") from None
        raise
    values = {o["OutputKey"]: o.get("OutputValue", "") for o in stacks[0].get("Outputs") or []}
    return StackOutputs(stack_name, values).require(*required)


def stack_outputs(cfn: Any, stack_name: str, required: tuple[Output, ...] = ()) -> dict[str, str]:
    """Every output of the stack by name, as a plain dict (what `imgproc deploy` prints)."""
    return dict(read_outputs(cfn, stack_name, required).values)
