"""docs/design.md against the code: every name and value of its "Contract:" sections.

The document is in the repo, so nothing here is ever skipped: a missing section or table fails. Each
test parses one section's tables and compares them with what the code does or declares (the
environment variables ``processor.config`` reads and their defaults, the marker keys written, the
DLQ attributes sent and what a replay does to them, the EMF metrics, the template's outputs and
handler, the CLI's commands and exit statuses), so renaming on one side only fails here.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import MISSING, fields
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode_str

from dlq_replayer import moves
from imgproc import boundary, cli
from observability import metrics
from processor import dead_letter, errors, events, markers
from processor.config import Config, variable_names
from processor.events import SqsMessage
from processor.renditions import plan_renditions
from processor.spec import OutputFormat

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "design.md"
TEMPLATE = REPO / "infra" / "cloudformation" / "imgproc.yaml"
CONTRACT_SECTIONS = (
    "Contract: handler",
    "Contract: environment variables",
    "Contract: rendition keys",
    "Contract: idempotency markers",
    "Contract: dead-letter messages",
    "Contract: metrics",
    "Contract: stack outputs",
    "Contract: CLI",
)


# ----------------------------------------------------------------------------------------------------
# reading the document
# ----------------------------------------------------------------------------------------------------
@cache
def _sections() -> dict[str, str]:
    """Level-2 heading -> the text under it, up to the next level-2 heading."""
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def section(title: str) -> str:
    sections = _sections()
    assert title in sections, f"docs/design.md has no section '## {title}' (it has {sorted(sections)})"
    return sections[title]


def tables(text: str) -> list[list[dict[str, str]]]:
    """Every Markdown table in ``text``: a list of rows, each a dict from header to cell text."""
    found: list[list[dict[str, str]]] = []
    block: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if len(block) >= 2:
            header, *rows = (_cells(row) for row in block)
            rows = [row for row in rows if not all(set(c) <= set("-: ") for c in row)]  # the |---| line
            assert all(len(row) == len(header) for row in rows), f"ragged table under {header}"
            found.append([dict(zip(header, row, strict=True)) for row in rows])
        block = []
    return found


def table(title: str, first_column: str) -> list[dict[str, str]]:
    """The table of section ``title`` whose first column is headed ``first_column``."""
    for candidate in tables(section(title)):
        if candidate and next(iter(candidate[0])) == first_column:
            return candidate
    raise AssertionError(f"section '{title}' has no table whose first column is '{first_column}'")


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def code(cell: str) -> str:
    """The cell's text without the backticks of a cell that is one code span."""
    match = re.fullmatch(r"`([^`]*)`", cell)
    return match.group(1) if match else cell


def code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _template() -> dict[str, Any]:
    decoded, matches = decode_str(TEMPLATE.read_text(encoding="utf-8"))
    assert not matches, matches
    return decoded


# ----------------------------------------------------------------------------------------------------
# the document's shape
# ----------------------------------------------------------------------------------------------------
def test_every_contract_section_is_there() -> None:
    contract = [title for title in _sections() if title.startswith("Contract:")]
    assert contract == list(CONTRACT_SECTIONS)


def test_the_failure_classes_are_the_ones_in_processor_errors() -> None:
    (kinds,) = tables(section("Failures"))
    by_kind = {row["kind"]: set(code_spans(row["classes"])) for row in kinds}

    def leaves(cls: type) -> set[str]:
        subclasses = cls.__subclasses__()
        return {cls.__name__} if not subclasses else set().union(*(leaves(sub) for sub in subclasses))

    assert by_kind == {
        "transient": leaves(errors.TransientError),
        "permanent": leaves(errors.PermanentError),
    }


# ----------------------------------------------------------------------------------------------------
# handler and configuration
# ----------------------------------------------------------------------------------------------------
def test_the_handler_entry_point_is_the_templates_and_exists() -> None:
    rows = {row["item"]: row["value"] for row in table("Contract: handler", "item")}
    entry_point = code(rows["entry point"])
    module, _, name = entry_point.rpartition(".")
    assert callable(getattr(__import__(module, fromlist=[name]), name))
    assert _template()["Resources"]["ProcessorFunction"]["Properties"]["Handler"] == entry_point
    assert f'`"{events.BACKFILL_MARKER}": true`' in rows["backfill records"]


def _documented_variables() -> dict[str, str]:
    return {
        code(row["variable"]): code(row["default"])
        for row in table("Contract: environment variables", "variable")
    }


def test_the_environment_variables_are_those_the_function_reads() -> None:
    assert set(_documented_variables()) == set(variable_names())
    assert len(_documented_variables()) == len(table("Contract: environment variables", "variable"))


def test_each_documented_default_is_the_codes() -> None:
    """``required``: the field has no default; ``unset``: it defaults to None; any other value, read by
    the function's own parser, gives the field's default."""
    by_field = {f.name: f for f in fields(Config)}
    baseline = Config(dest_bucket="b")
    for variable, default in _documented_variables().items():
        field = by_field[variable.lower()]
        if default == "required":
            assert field.default is MISSING, variable
        elif default == "unset":
            assert field.default is None, variable
        else:
            assert field.default is not MISSING, variable
            parsed = Config.from_env({"DEST_BUCKET": "b", variable: default})
            assert getattr(parsed, field.name) == getattr(baseline, field.name), (variable, default)


def test_the_template_sets_only_documented_variables() -> None:
    function = _template()["Resources"]["ProcessorFunction"]["Properties"]
    assert set(function["Environment"]["Variables"]) <= set(_documented_variables())


def test_the_rendition_key_examples_hold() -> None:
    rows = table("Contract: rendition keys", "source key")
    assert rows
    for row in rows:
        config = Config.from_env(
            {"DEST_BUCKET": "b", "OUTPUT_FORMAT": code(row["`OUTPUT_FORMAT`"]), "SIZES": code(row["size"])}
        )
        (plan,) = plan_renditions(config, code(row["source key"]))
        if len(plan.candidates) == 1:
            (candidate,) = plan.candidates
        else:  # the pixels decide
            candidate = plan.candidate_for(
                OutputFormat.PNG if row["pixels"] == "transparent" else OutputFormat.JPEG
            )
        assert candidate.key == code(row["rendition key"]), row


# ----------------------------------------------------------------------------------------------------
# markers and dead-letter messages
# ----------------------------------------------------------------------------------------------------
def test_the_marker_keys_are_those_written() -> None:
    documented = {code(row["key"]) for row in table("Contract: idempotency markers", "key")}
    assert documented == {markers.SOURCE_ETAG, markers.SOURCE_KEY, markers.RENDITION, markers.PROCESSED_AT}
    assert documented == set(markers.build("original/a b.jpg", '"etag"', "digest"))


def _dead_letter_rows() -> dict[str, dict[str, str]]:
    return {code(row["attribute"]): row for row in table("Contract: dead-letter messages", "attribute")}


def _sent_attributes(replay_count: int = 0) -> dict[str, dict[str, str]]:
    original = "m-1" if replay_count else None
    message = SqsMessage(
        "m-2", "{}", receive_count=1, replay_count=replay_count, original_message_id=original
    )
    return dead_letter.attributes(message, errors.CorruptImage("broken"))


def test_the_dead_letter_attributes_are_those_sent_with_their_types() -> None:
    documented = {name: row["type"] for name, row in _dead_letter_rows().items()}
    assert documented == {name: value["DataType"] for name, value in _sent_attributes().items()}
    limit = _dead_letter_rows()[dead_letter.ERROR_MESSAGE]["value"]
    assert f"at most {dead_letter.MAX_ERROR_MESSAGE_BYTES} bytes" in limit


def test_the_error_classes_are_the_permanent_errors() -> None:
    documented = {
        code(row["`error-class`"]) for row in table("Contract: dead-letter messages", "`error-class`")
    }
    assert documented == {cls.__name__ for cls in errors.PermanentError.__subclasses__()}


def test_a_replay_treats_each_attribute_as_documented() -> None:
    """The "on replay" column against what ``imgproc dlq replay`` sends for a dead-lettered message."""
    received = {
        "MessageId": "m-2",
        "Body": "{}",
        "MessageAttributes": _sent_attributes(replay_count=2),
        "Attributes": {},
    }
    sent = moves.replay_entry(received)["MessageAttributes"]
    for name, row in _dead_letter_rows().items():
        rule = row["on replay"]
        if rule == "dropped":
            assert name not in sent, name
        elif rule == "incremented":
            assert (
                int(sent[name]["StringValue"]) == int(received["MessageAttributes"][name]["StringValue"]) + 1
            )
        elif rule.startswith("kept"):
            assert sent[name] == received["MessageAttributes"][name], name
        else:
            pytest.fail(f"unknown replay rule {rule!r} for {name}")
    dropped = {name for name, row in _dead_letter_rows().items() if row["on replay"] == "dropped"}
    assert dropped == moves.FAILURE_ATTRIBUTES


def test_a_replay_sets_a_missing_original_message_id() -> None:
    assert _dead_letter_rows()[dead_letter.ORIGINAL_MESSAGE_ID]["on replay"] == "kept (set if missing)"
    redriven = {"MessageId": "m-9", "Body": "{}", "MessageAttributes": {}, "Attributes": {}}
    sent = moves.replay_entry(redriven)["MessageAttributes"]
    assert sent[dead_letter.ORIGINAL_MESSAGE_ID]["StringValue"] == "m-9"


# ----------------------------------------------------------------------------------------------------
# metrics, stack outputs, CLI
# ----------------------------------------------------------------------------------------------------
def test_the_metrics_namespace_names_units_and_dimensions_are_those_emitted() -> None:
    assert re.search(r"Namespace: `(\w+)`", section("Contract: metrics")).group(1) == metrics.NAMESPACE
    rows = table("Contract: metrics", "metric")
    assert {code(row["metric"]): row["unit"] for row in rows} == metrics.UNITS
    documented = {
        (code(row["metric"]), tuple(code_spans(dimension_set)))
        for row in rows
        for dimension_set in row["dimensions"].split(";")
    }
    assert documented == metrics.EMITTED


def test_the_stack_outputs_are_the_templates() -> None:
    documented = [code(row["output"]) for row in table("Contract: stack outputs", "output")]
    assert sorted(documented) == sorted(_template()["Outputs"])


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_the_cli_commands_are_those_of_imgproc_cli() -> None:
    documented = [code(row["command"]).split() for row in table("Contract: CLI", "command")]
    assert all(words[0] == "imgproc" for words in documented)
    parser = cli.build_parser()
    expected = set()
    for name, sub in _subcommands(parser).items():
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        expected |= {f"{name} {action}" for action in _subcommands(sub)} if nested else {name}
    assert {" ".join(words[1:]) for words in documented} == expected
    assert {words[1] for words in documented} == set(cli.COMMANDS)


def test_the_exit_statuses_are_the_boundarys() -> None:
    rows = {int(row["status"]): row["meaning"].split(":")[0] for row in table("Contract: CLI", "status")}
    assert rows == {
        boundary.EXIT_OK: "done",
        boundary.EXIT_FAILED: "failure",
        boundary.EXIT_USAGE: "usage",
        boundary.EXIT_INTERRUPTED: "interrupted",
    }


def test_every_commands_help_states_its_exit_statuses() -> None:
    parser = cli.build_parser()
    for name, sub in _subcommands(parser).items():
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        for command in _subcommands(sub).values() if nested else [sub]:
            assert "Exit status" in " ".join(command.format_help().split()), name
