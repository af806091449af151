"""Small HTML builders for the run report: escaped tables, inlined PNG figures, notes."""

from __future__ import annotations

import base64
import html
from typing import Any


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def image(png: bytes | None, alt: str) -> str:
    """The figure inlined as base64 (the page stays one file), or a note that nothing was logged."""
    if png is None:
        return note(f"{alt}: nothing logged yet.")
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def key_value_table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def grid_table(header: list[str], rows: list[list[str]], css_class: str = "") -> str:
    """A table with a header row; the first cell of every row is its label."""
    attr = f' class="{html.escape(css_class)}"' if css_class else ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        f"<tr><th>{html.escape(row[0])}</th>"
        + "".join(f"<td>{html.escape(c)}</td>" for c in row[1:])
        + "</tr>"
        for row in rows
    )
    return f"<table{attr}><tr>{head}</tr>{body}</table>"


def note(text: str) -> str:
    return f"<p><em>{html.escape(text)}</em></p>"
