"""Markdown for the Dagster UI's metadata, with every value escaped.

Names, files and reasons come from the user's data: a `|` in a lead source would shift every figure after
it into the wrong column, a newline would end the table, and `*`, `_`, `[` or `<` would be read as markup.
"""

from __future__ import annotations

import re

# CommonMark's backslash escapes for the characters that mean something inside a table cell.
_MARKUP = re.compile(r"([\\`*_\[\]|~#])")


def md_cell(value: object) -> str:
    """A value as one table cell's text: one line, markup shown as typed, ints with thousands separators."""
    if isinstance(value, bool) or value is None:
        text = "" if value is None else str(value)
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    text = " ".join(text.splitlines())
    return _MARKUP.sub(r"\\\1", text).replace("<", "&lt;").replace(">", "&gt;")


def md_table(header: list[str] | tuple[str, ...], rows: list) -> str:
    """A markdown table whose every cell, header included, is escaped by `md_cell`."""
    lines = ["| " + " | ".join(md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
