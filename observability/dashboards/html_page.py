"""The dashboard as one self-contained HTML page: the header, the PNG inline, and the failures as a
table of text (keys escaped, shown whole where the PNG clips them)."""

from __future__ import annotations

import base64
import html

from observability.dashboards.local_board import TITLE, Dashboard
from observability.dashboards.local_panels import TablePanel


def render_html(board: Dashboard, png: bytes) -> str:
    """One self-contained page: the PNG inline, and the failures as a table of text (keys escaped)."""
    e = html.escape
    table = next(p for row in board.view.rows for p in row if isinstance(p, TablePanel))
    header = "\n".join(f"<li>{e(line)}</li>" for line in board.header)
    if board.view.failures:
        rows = "\n".join(
            f'<tr class="{e(f.outcome)}"><td>{e(f.timestamp)}</td><td><code>{e(f.key or "-")}</code></td>'
            f"<td>{e(f.error_class)}</td><td>{e(f.outcome)}</td><td>{e(f.error or '')}</td>"
            f"<td><code>{e(f.message_id or '-')}</code></td></tr>"
            for f in board.view.failures
        )
        failures = (
            "<table>\n<thead><tr><th>time (UTC)</th><th>key</th><th>error class</th><th>outcome</th>"
            f"<th>error</th><th>message id</th></tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>"
        )
    else:
        failures = "<p>No failures in this window.</p>"
    image = base64.b64encode(png).decode("ascii")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{e(TITLE)}: {e(board.header[0])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
ul.header {{ list-style: none; padding: 0; line-height: 1.5; }}
img {{ max-width: 100%; height: auto; border: 1px solid #ddd; }}
table {{ border-collapse: collapse; margin-top: .5rem; }}
th, td {{ border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; vertical-align: top; }}
th {{ background: #eee; }}
tr.dead-lettered {{ background: #fbe3e3; }}
tr.retry {{ background: #fff1d6; }}
</style>
</head>
<body>
<h1>{e(TITLE)}</h1>
<ul class="header">
{header}
</ul>
<img src="data:image/png;base64,{image}" alt="{e(TITLE)}">
<h2>{e(table.title)}</h2>
{failures}
</body>
</html>
"""
