"""Project metadata that setuptools reads without complaint (`make demo` used to print its
licence-classifier deprecation twice) and files an operator's commands leave behind that git ignores."""

from __future__ import annotations

import configparser
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_licence_is_an_spdx_expression_without_a_licence_classifier() -> None:
    metadata = configparser.ConfigParser()
    metadata.read(ROOT / "setup.cfg")
    assert metadata["metadata"]["license_expression"] == "Apache-2.0"
    assert "license" not in metadata["metadata"]
    assert "License ::" not in metadata["metadata"]["classifiers"]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    assert "setuptools>=77" in requires  # the first setuptools that reads license_expression


def test_operators_outputs_in_the_working_directory_are_ignored_by_git() -> None:
    paths = ["imgproc-dashboard.png", "imgproc-dashboard.html", "dlq-archive-20261130T120000Z.jsonl"]
    result = subprocess.run(
        ["git", "check-ignore", *paths], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.stdout.split() == paths
