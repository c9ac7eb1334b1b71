"""Reading the files a user writes by hand (mapping files, the assumptions file): YAML without aliases or
unbounded size, and encoding problems located to the line, the character and the byte."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from crm_roi_pipeline.errors import CrmRoiError, quote, shorten

# Both are a few dozen lines; anything far larger is not one of them, and would only be slow to parse.
YAML_MAX_BYTES = 1024 * 1024
SAVE_AS_UTF8 = "save it as UTF-8 (in a text editor: Save As, encoding UTF-8)."


def undecodable(raw: bytes, exc: UnicodeDecodeError) -> tuple[int, str]:
    """(line, problem) for bytes that are not UTF-8: the line, the character in it, the byte and its position,
    and the likely encoding, so that the user can find the character and knows which setting to change."""
    line = raw.count(b"\n", 0, exc.start) + 1
    line_start = raw.rfind(b"\n", 0, exc.start) + 1
    column = len(raw[line_start : exc.start].decode("utf-8", errors="replace")) + 1
    byte = raw[exc.start]
    likely = " (the file is probably saved as Latin-1 or Windows-1252)" if byte >= 0x80 else ""
    return line, f"character {column} of the line, byte 0x{byte:02X} (byte {exc.start + 1:,} of the file), is not UTF-8{likely}."


def unicode_bom(raw: bytes) -> str | None:
    """The encoding a byte-order mark at the start of `raw` announces, when it is not UTF-8."""
    if raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "UTF-32"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16"
    return None


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader refusing aliases: nested aliases (a "billion laughs") expand exponentially in
    everything that walks the result (validation, error messages), from a file of a few hundred bytes."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _AliasFound(event.anchor, event.start_mark)
        return super().compose_node(parent, index)


class _AliasFound(Exception):
    def __init__(self, anchor: str, mark):
        super().__init__(anchor)
        self.anchor = anchor
        self.mark = mark


def read_yaml(path: Path, fail: Callable[[str, str, int | None], CrmRoiError]) -> object:
    """The YAML document in `path`, or `fail(problem, fix, line)` raised for every way a user's YAML file
    can be unreadable: not a file, too large, not UTF-8, not YAML, an alias, nested without end."""
    if not path.is_file():
        what = "a folder" if path.is_dir() else "not a regular file"
        raise fail(f"is {what}, where a YAML file is expected.", "replace it with the YAML file.", None)
    size = path.stat().st_size
    if size > YAML_MAX_BYTES:
        raise fail(
            f"is {size:,} bytes; this YAML file is expected to be a few dozen lines (at most {YAML_MAX_BYTES:,} bytes).",
            "check that it is the right file.",
            None,
        )
    raw = path.read_bytes()
    encoding = unicode_bom(raw)
    if encoding:
        raise fail(f"is saved as {encoding} (it starts with a {encoding} byte-order mark).", SAVE_AS_UTF8, None)
    try:
        # Decoded as plain UTF-8 (then the byte-order mark dropped) so that an error's position is the file's.
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line, problem = undecodable(raw, exc)
        raise fail(problem, SAVE_AS_UTF8, line) from None
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader: plain data only
    except _AliasFound as exc:
        raise fail(
            f"uses a YAML alias ({quote('*' + exc.anchor, 40)}); aliases are not accepted here.",
            "write the value out in full where the alias is.",
            exc.mark.line + 1,
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "cannot be parsed"
        where = f" (column {mark.column + 1})" if mark is not None else ""
        raise fail(
            f"not valid YAML{where}: {shorten(problem)}.",
            "correct the YAML syntax (indentation, a colon after each key, quotes around values with ': ').",
            mark.line + 1 if mark is not None else None,
        ) from None
    except yaml.YAMLError as exc:
        raise fail(f"not valid YAML: {shorten(str(exc))}.", "correct the YAML syntax.", None) from None
    except ValueError as exc:  # e.g. an integer of thousands of digits, which Python refuses to convert
        raise fail(f"a value cannot be read: {shorten(str(exc))}.", "check that it is the right file.", None) from None
    except RecursionError:
        raise fail("is nested too deeply to be read.", "check that it is the right file.", None) from None
