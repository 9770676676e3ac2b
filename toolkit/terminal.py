"""Where the operator's output goes to a person, and how it is drawn there: the one home of that choice.

On a terminal the commands draw through rich (progress bars with rate and ETA, live counters, tables);
anywhere else (a pipe, a file, CI, a test capturing output) they print exactly the plain lines that
scripts parse, and ``--json`` never passes through here. rich is a laptop-side library: nothing of
the Lambda's code imports this module (the import-linter contracts in setup.cfg), so the zip never
holds it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.padding import Padding
from rich.table import Table as RichTable
from rich.text import Text


def is_terminal(stream: TextIO) -> bool:
    """True when ``stream`` is a terminal (a person reads it); a stream without ``isatty`` is not."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        return False


def console(stream: TextIO) -> Console:
    """A rich console drawing on ``stream`` as a terminal (it is only asked for when one is there).

    No markup and no highlighting: keys, error messages and S3 prefixes are printed as they are, never
    read as ``[style]`` tags or coloured by guesswork.
    """
    return Console(file=stream, force_terminal=True, markup=False, highlight=False, soft_wrap=False)


@dataclass(frozen=True)
class Table:
    """A table of a command's human output: plain aligned lines off a terminal, a rich table on one.

    ``right`` lists the right-aligned columns; ``indent`` spaces go before each plain line.
    """

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    right: Sequence[int] = ()
    indent: int = 0

    def lines(self) -> list[str]:
        """The plain form: columns two spaces apart, each as wide as its widest cell."""
        widths = [max(len(row[i]) for row in [self.headers, *self.rows]) for i in range(len(self.headers))]

        def line(row: Sequence[str]) -> str:
            cells = [
                cell.rjust(width) if i in self.right else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ]
            return " " * self.indent + "  ".join(cells).rstrip()

        return [line(self.headers), *(line(row) for row in self.rows)]

    def rich(self) -> RichTable | Padding:
        drawn = RichTable(box=None, padding=(0, 2, 0, 0), header_style="bold", pad_edge=False)
        for i, header in enumerate(self.headers):
            drawn.add_column(header, justify="right" if i in self.right else "left", no_wrap=True)
        for row in self.rows:
            drawn.add_row(*(Text(cell) for cell in row))
        return Padding(drawn, (0, 0, 0, self.indent), expand=False) if self.indent else drawn


Block = str | Table  # a line of text, or a table


def plain(blocks: Iterable[Block]) -> str:
    """The text of ``blocks`` as printed off a terminal (what scripts parse)."""
    lines: list[str] = []
    for block in blocks:
        lines += block.lines() if isinstance(block, Table) else [block]
    return "\n".join(lines)


def renderables(blocks: Iterable[Block]) -> list[RichTable | Padding | Text]:
    """``blocks`` for a rich console: tables drawn by rich, lines as they are."""
    return [block.rich() if isinstance(block, Table) else Text(block) for block in blocks]


def group(blocks: Iterable[Block]) -> Group:
    """``blocks`` as one renderable (what a :func:`live` display shows)."""
    return Group(*renderables(blocks))


def redirects() -> dict[str, bool]:
    """What a display on the terminal takes over while it is shown: stdout and stderr, each only when it
    is the terminal too (then what is printed appears above the display); a stream sent to a file or a
    pipe (``--json | jq``, ``2>log``) keeps everything printed to it."""
    return {"redirect_stdout": is_terminal(sys.stdout), "redirect_stderr": is_terminal(sys.stderr)}


def live(stream: TextIO, *, transient: bool = False) -> Live | None:
    """A display redrawn in place on ``stream`` when it is a terminal (None elsewhere: print lines).

    Redrawn only when :meth:`~rich.live.Live.update` is called with ``refresh=True`` (no thread of its
    own); what is printed to stdout or stderr meanwhile appears above it. ``transient``: erased when it
    stops (a summary printed next says it all).
    """
    if not is_terminal(stream):
        return None
    return Live(console=console(stream), auto_refresh=False, transient=transient, **redirects())


def show(blocks: Sequence[Block], stream: TextIO) -> None:
    """Print ``blocks`` on ``stream``: drawn by rich on a terminal, else plain."""
    if is_terminal(stream):
        out = console(stream)
        for item in renderables(blocks):
            out.print(item)
        stream.flush()
    else:
        print(plain(blocks), file=stream, flush=True)
