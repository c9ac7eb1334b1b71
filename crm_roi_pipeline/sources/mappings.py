"""Which canonical field comes from which column: built-in mappings for known exports, and mapping files.

A folder of exports is read file by file. Each file gets a `FileMapping`: the entity it holds, the system
its records come from, and for every canonical field the columns to read it from (the first non-empty one
wins, row by row). Built-ins cover canonical files, Salesforce exports (by object name) and HubSpot
exports (by header); a `<stem>.mapping.yaml` beside a file maps anything else, or overrides a built-in
field by field.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from crm_roi_pipeline.errors import InputFileError, quote, shorten
from crm_roi_pipeline.user_files import read_yaml, undecodable, unicode_bom
from crm_roi_pipeline.sources.fields import ENTITIES, REQUIRED, STAGE_CLASSES, STAGE_FIELD, fields_of

StageClass = Literal["won", "lost", "open", "closed"]


@dataclass(frozen=True)
class FileMapping:
    entity: str
    source_system: str
    kind: str  # what the file was recognised as, for messages and metadata
    columns: dict[str, tuple[str, ...]]  # canonical field -> candidate columns, in order of preference
    defaults: dict[str, str] = field(default_factory=dict)  # used when none of a field's columns exist
    constants: dict[str, str] = field(default_factory=dict)  # used for every row, whatever the columns
    stages: dict[str, str] | None = None  # stage value -> won | lost | open
    stage_default: str | None = None  # class of unlisted stage values; None makes them an error
    stage_fallback: bool = False  # unlisted values are no error: the entity's own rule decides (tickets: closed_at)
    stages_case_insensitive: bool = False
    date_format: str | None = None
    explicit_columns: frozenset[str] = frozenset()  # fields whose columns a mapping file named


def canonical_mapping(entity: str) -> FileMapping:
    return FileMapping(
        entity=entity,
        source_system="csv",
        kind=f"canonical {entity} file",
        columns={name: (name,) for name in fields_of(entity)},
    )


CANONICAL_FILES = {f"{entity}.csv": entity for entity in ENTITIES}



def norm_name(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().lower())


# The header is read from the file's first bytes: a header is a line, and reading on would decode (and fail
# on) rows that DuckDB reads and reports line by line.
_HEADER_BYTES = 1024 * 1024
SAVE_CSV_AS_UTF8 = (
    "save it as UTF-8: in Excel, Save As > 'CSV UTF-8 (Comma delimited) (*.csv)'; in another editor, choose the "
    "encoding UTF-8 when saving."
)


def _bomless_utf16(raw: bytes) -> bool:
    """True for text whose every other byte is zero from the start: UTF-16 written without a byte-order mark."""
    if len(raw) < 4:
        return False
    little_endian = raw[1] == raw[3] == 0 and raw[0] != 0 and raw[2] != 0
    big_endian = raw[0] == raw[2] == 0 and raw[1] != 0 and raw[3] != 0
    return little_endian or big_endian


def read_header(path: Path) -> list[str]:
    """The header row, as the file's first record; the byte-order mark real exports start with is dropped.

    A file that is not UTF-8 text fails here, naming what it is, before DuckDB would read it as one column of
    garbled names (and report the first required column as missing). Empty names get a placeholder, so that
    every column has a name DuckDB can be given."""
    with path.open("rb") as handle:
        raw = handle.read(_HEADER_BYTES)
    encoding = unicode_bom(raw) or ("UTF-16" if _bomless_utf16(raw) else None)
    if encoding:
        how = "a byte-order mark" if unicode_bom(raw) else "every other byte is zero"
        raise InputFileError(
            path.name, f"is saved as {encoding} ({how}); CSV exports are read as UTF-8.", fix=SAVE_CSV_AS_UTF8
        )
    # surrogateescape keeps an undecodable byte recognisable in the header, and decoding never fails here on
    # the rows that follow it.
    text = raw.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    header = next(csv.reader(io.StringIO(text, newline="")), None)
    if not header:
        raise InputFileError(path.name, "the file is empty; it needs a header row.")
    if any(re.search("[\udc80-\udcff]", h) for h in header):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:  # the first undecodable byte is the header's: the header comes first
            line, problem = undecodable(raw, exc)
            raise InputFileError(path.name, f"the header: {problem}", fix=SAVE_CSV_AS_UTF8, line=line) from None
    names = [h.strip() for h in header]
    taken = {norm_name(n) for n in names}
    for i, name in enumerate(names):
        if not name:
            placeholder = f"column{i + 1}"
            while norm_name(placeholder) in taken:
                placeholder += "_"
            names[i] = placeholder
            taken.add(norm_name(placeholder))
    return names


def _column_letter(index: int) -> str:
    """A spreadsheet's letter for the 0-based column `index`: A, B, ..., Z, AA, ..."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def check_unique_header(path: Path, header: list[str]) -> None:
    """Fail on two columns of the same name (compared as the mapping matches names: ignoring case and spaces):
    which of them a field reads would be a guess, and DuckDB cannot be given both."""
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        first = seen.setdefault(norm_name(name), i)
        if first != i:
            columns = f"column {first + 1} ({_column_letter(first)}) and column {i + 1} ({_column_letter(i)})"
            if header[first] == name:
                problem = f"{columns} are both named {quote(name)}."
            else:
                problem = f"{columns}, {quote(header[first])} and {quote(name)}, have the same name (column names are matched ignoring case and spaces)."
            raise InputFileError(
                path.name,
                problem,
                fix="rename or delete one of the two columns, so that every column name appears once.",
                line=1,
            )


# --- mapping files ------------------------------------------------------------------------------


class MappingFile(BaseModel):
    """`<stem>.mapping.yaml`: the format CONTRACT.md shows."""

    model_config = ConfigDict(extra="forbid")

    entity: Literal[ENTITIES] | None = None  # type: ignore[valid-type]
    source_system: Literal["salesforce", "hubspot", "csv"] | None = None
    columns: dict[str, str | list[str]] = {}
    stages: dict[str, StageClass] | None = None
    constants: dict[str, str | int | float | bool] = {}
    date_format: str | None = None

    @field_validator("stages", mode="before")
    @classmethod
    def _stage_keys_as_text(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        return value


def load_mapping_file(path: Path) -> MappingFile:
    data = read_yaml(path, lambda problem, fix, line: InputFileError(path.name, problem, fix=fix, line=line)) or {}
    if not isinstance(data, dict):
        raise InputFileError(path.name, "expected keys entity, columns, stages, constants, date_format.")
    try:
        return MappingFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = shorten(".".join(str(p) for p in err["loc"]))
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown key '{loc}' (allowed: entity, source_system, columns, stages, constants, date_format)")
            else:
                problems.append(f"'{loc}': {err['msg']} (got {quote(err.get('input'))})")
        if len(problems) > 10:  # a file of thousands of bad keys would otherwise make a message of thousands of lines
            problems = [*problems[:10], f"and {len(problems) - 10} more"]
        raise InputFileError(path.name, "; ".join(problems) + ".", fix="correct the mapping file as docs/your-data.md (Mapping files) shows.") from None


def _unknown_fields(names: list[str], entity: str, where: str, path: Path) -> None:
    known = fields_of(entity)
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise InputFileError(
                path.name,
                f"{quote(name)} under {where} is not a canonical field of {entity}.{hint}",
                fix=f"use one of: {', '.join(sorted(known))}.",
            )


def apply_mapping_file(path: Path, spec: MappingFile, base: FileMapping | None) -> FileMapping:
    """A mapping file on its own (base None) or as a field-by-field override of a built-in mapping."""
    if base is None and spec.entity is None:
        raise InputFileError(
            path.name,
            "no 'entity' given, and the file beside it is not a recognised export.",
            fix="add 'entity: deals' (or leads, activities, spend, tickets).",
        )
    if base is not None and spec.entity is not None and spec.entity != base.entity:
        raise InputFileError(
            path.name,
            f"says entity '{spec.entity}', but the file beside it is a {base.kind} ({base.entity}).",
            fix=f"remove 'entity' or set it to {base.entity}.",
        )
    entity = spec.entity or base.entity  # type: ignore[union-attr]
    _unknown_fields(list(spec.columns), entity, "columns", path)
    _unknown_fields(list(spec.constants), entity, "constants", path)
    if spec.stages is not None and entity not in STAGE_FIELD:
        raise InputFileError(
            path.name, f"'stages' applies to deals and tickets only, not {entity}.", fix="remove 'stages'."
        )
    if spec.stages is not None:
        wrong = {k: v for k, v in spec.stages.items() if v not in STAGE_CLASSES[entity]}
        if wrong:
            value, cls = next(iter(wrong.items()))
            raise InputFileError(
                path.name,
                f"stages: {quote(value)} is mapped to '{cls}', which is no class of {entity}.",
                fix=f"map each {STAGE_FIELD[entity]} value to {' or '.join(STAGE_CLASSES[entity])}.",
            )
    columns = {k: ((v,) if isinstance(v, str) else tuple(v)) for k, v in spec.columns.items()}
    constants = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in spec.constants.items()}
    if base is None:
        return FileMapping(
            entity=entity,
            source_system=spec.source_system or "csv",
            kind=f"spreadsheet mapped by {path.name}",
            columns=columns,
            constants=constants,
            stages=spec.stages,
            date_format=spec.date_format,
            explicit_columns=frozenset(columns),
        )
    return replace(
        base,
        kind=f"{base.kind} with overrides from {path.name}",
        source_system=spec.source_system or base.source_system,
        # A stages map given by the user decides won/closed, over the export's own flags.
        columns={
            **{k: v for k, v in base.columns.items() if not (spec.stages and k in ("is_won", "is_closed"))},
            **columns,
        },
        constants={**base.constants, **constants},
        stages=spec.stages if spec.stages is not None else base.stages,
        stage_default=None if spec.stages is not None else base.stage_default,
        stage_fallback=False if spec.stages is not None else base.stage_fallback,
        stages_case_insensitive=False if spec.stages is not None else base.stages_case_insensitive,
        date_format=spec.date_format or base.date_format,
        explicit_columns=frozenset(columns),
    )


@dataclass(frozen=True)
class ResolvedFile:
    """A file with its mapping matched against its header: each field's columns that exist."""

    path: Path
    mapping: FileMapping
    header: tuple[str, ...]
    columns: dict[str, tuple[str, ...]]  # field -> header columns present, in preference order
    mapping_file: Path | None

    @property
    def name(self) -> str:
        return self.path.name


def resolve_columns(path: Path, header: list[str], mapping: FileMapping, mapping_file: Path | None) -> ResolvedFile:
    by_norm: dict[str, str] = {}
    for col in header:
        by_norm.setdefault(norm_name(col), col)
    resolved: dict[str, tuple[str, ...]] = {}
    for name, candidates in mapping.columns.items():
        present = []
        for cand in candidates:
            col = cand if cand in header else by_norm.get(norm_name(cand))
            if col is not None:
                present.append(col)
            elif name in mapping.explicit_columns:
                close = difflib.get_close_matches(cand, header, n=3)
                hint = f" Close matches: {', '.join(shorten(c) for c in close)}." if close else ""
                raise InputFileError(
                    path.name,
                    f"column {quote(cand)} (mapped to {name} in {mapping_file.name if mapping_file else 'the mapping'}) "
                    f"is not in the file.{hint}",
                    fix=f"name an existing column for {name} in {mapping_file.name if mapping_file else 'the mapping file'}.",
                )
        if present:
            resolved[name] = tuple(present)
    _check_required(path, mapping, resolved, mapping_file)
    return ResolvedFile(path=path, mapping=mapping, header=tuple(header), columns=resolved, mapping_file=mapping_file)


def _check_required(path: Path, mapping: FileMapping, resolved: dict, mapping_file: Path | None) -> None:
    override = mapping_file.name if mapping_file else f"{path.stem}.mapping.yaml"
    needed = list(REQUIRED[mapping.entity])
    for name in needed:
        if name in resolved or name in mapping.constants:
            continue
        looked = mapping.columns.get(name, ())
        looked_for = f" (looked for {', '.join(looked)})" if looked else ""
        raise InputFileError(
            path.name,
            f"the required column for {mapping.entity} field '{name}' is missing{looked_for}.",
            fix=f"export the file with that column, or map another column to it in {override}: "
            f"'columns: {{{name}: <column>}}'.",
        )
    if mapping.entity == "deals" and "is_won" not in resolved and "is_won" not in mapping.constants and mapping.stages is None:
        raise InputFileError(
            path.name,
            "deals need their won/closed state: an is_won column (and is_closed or closed_at), or a stage column "
            "with a 'stages' map.",
            fix=f"map is_won/is_closed, or add 'stage' and 'stages: {{<value>: won|lost|open}}' to {override}.",
        )
    field = STAGE_FIELD.get(mapping.entity)
    if mapping.stages is not None and field not in resolved and field not in mapping.constants:
        raise InputFileError(
            path.name, f"a 'stages' map is given but no {field} column is mapped.", fix=f"map '{field}' in {override}."
        )
