"""toolkit: the stack's outputs (one home for their names), durations and option types."""

from __future__ import annotations

import argparse

import pytest

from imgproc import template
from toolkit.durations import format_age, format_duration, parse_duration
from toolkit.errors import StackNotFound
from toolkit.options import positive, whole
from toolkit.stack import Output, StackOutputs


def test_the_output_names_are_the_templates() -> None:
    assert {output.value for output in Output} == set(template.load()["Outputs"])


def test_stack_outputs_name_what_is_missing() -> None:
    outputs = StackOutputs("s", {"QueueUrl": "u", "QueueArn": "arn:aws:sqs:r:1:ingest", "FunctionName": ""})
    assert (outputs.queue_url, outputs.queue_name) == ("u", "ingest")
    with pytest.raises(StackNotFound, match="stack 's' has no FunctionName output"):
        _ = outputs.function_name
    with pytest.raises(StackNotFound, match="has no DeadLetterQueueUrl, FunctionName output"):
        outputs.require(Output.QUEUE_URL, Output.DLQ_URL, Output.FUNCTION_NAME)


@pytest.mark.parametrize(
    ("text", "seconds"), [("2w", 1_209_600), ("7 D", 604_800), ("1h 30m", 5400), ("1.5d", 129_600)]
)
def test_one_duration_parser_for_every_command(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_two_spellings_typed_and_clock() -> None:
    assert [format_duration(s) for s in (5400, 86_400, 0)] == ["1h30m", "1d", "0s"]
    assert [format_age(s) for s in (5, 75, 3725, None)] == ["5s", "1m15s", "1h02m", "unknown"]


def test_option_types() -> None:
    assert positive(int)("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match="must be a positive number"):
        positive(float)("0")
    with pytest.raises(argparse.ArgumentTypeError, match="at most 5 seconds"):
        whole(1, 5, too_large="at most 5 seconds")("6")
