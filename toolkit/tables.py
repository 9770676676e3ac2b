"""Text cut to fit a table's column (the tables themselves: :class:`toolkit.terminal.Table`)."""

from __future__ import annotations


def clip(text: str, width: int) -> str:
    """``text`` on one line (whatever an error message held), cut to ``width`` with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."
