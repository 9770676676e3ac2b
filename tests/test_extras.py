"""A command whose install extra is missing says which one to install, in one line (not a traceback).

Each case runs `imgproc` in a subprocess where an import hook (a ``sitecustomize`` on ``PYTHONPATH``)
makes the extra's modules unimportable, as in a venv where only ``pip install imgproc`` ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imgproc import boundary, extras

BLOCKER = """
import os, sys

BLOCKED = set(os.environ["IMGPROC_TEST_UNINSTALLED"].split(","))


class Uninstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Uninstalled())
"""


def run_without(tmp_path: Path, modules: tuple[str, ...], *argv: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "IMGPROC_TEST_UNINSTALLED": ",".join(modules),
    }
    env.pop("IMGPROC_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "imgproc.cli", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("argv", "extra"),
    [
        (("up", "--port", "0"), "local"),
        (("demo",), "local"),
        (("dashboard", "--output", "board.png"), "dashboard"),
    ],
)
def test_a_command_names_its_missing_extra(tmp_path: Path, argv: tuple[str, ...], extra: str) -> None:
    completed = run_without(tmp_path, extras.EXTRAS[extra], *argv)
    assert completed.returncode == 1
    assert completed.stdout == ""
    install = f"pip install 'imgproc[{extra}]'"
    assert completed.stderr == f"imgproc {argv[0]}: needs the '{extra}' extra: {install}\n"


def test_the_other_commands_need_no_extra(tmp_path: Path) -> None:
    blocked = tuple(module for modules in extras.EXTRAS.values() for module in modules)
    completed = run_without(tmp_path, blocked, "status", "--help")
    assert completed.returncode == 0, completed.stderr
    assert "--stack-name" in completed.stdout


def test_an_import_of_an_extra_deep_in_a_command_is_named_too() -> None:
    exc = ModuleNotFoundError("No module named 'matplotlib.figure'", name="matplotlib.figure")
    assert boundary.describe(exc) == (
        "needs the 'dashboard' extra: pip install 'imgproc[dashboard]'",
        boundary.EXIT_FAILED,
    )
