"""The console script's entry point (imgproc.entry): a Ctrl-C while the command line still loads, and a
reader that closed stdout, end like everything else at the boundary: one line (or none), a documented
exit status, never a traceback. Run as real processes, since both are about the process (a closed
stdout: test_careless_user.py, on its embedded AWS)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

# What the console script runs, with a Ctrl-C delivered (a real SIGINT, to the process itself) the
# moment the import of the command line reaches botocore: before the error boundary is entered.
INTERRUPTED_IMPORT = """
import signal, sys

class CtrlCOnImport:
    def find_spec(self, name, path=None, target=None):
        if name == "botocore":
            signal.raise_signal(signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlCOnImport())
sys.argv = ["imgproc", "status", "--stack-name", "x"]
from imgproc.entry import main
sys.exit(main())
"""


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )


def test_the_console_script_is_the_light_entry_point() -> None:
    (script,) = entry_points(group="console_scripts", name="imgproc")
    assert script.value == "imgproc.entry:main"
    loaded = python(
        "import sys, imgproc.entry; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore', 'rich', 'PIL'}))"
    )
    assert loaded.stdout == "[]\n"  # nothing heavy before its try


def test_ctrl_c_while_the_command_line_loads_is_one_line_and_130() -> None:
    result = python(INTERRUPTED_IMPORT)
    assert (result.returncode, result.stdout, result.stderr) == (130, "", "imgproc status: interrupted\n")
