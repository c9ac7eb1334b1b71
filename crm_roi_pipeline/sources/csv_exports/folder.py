"""Recognising the files of the CSV folder: canonical names, Salesforce object exports (by name), HubSpot
exports (by header), or any file with a mapping file beside it. Each file's mapping is matched against its
header here, so a missing column fails before anything is read."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from crm_roi_pipeline.errors import InputFileError, quote
from crm_roi_pipeline.sources.hubspot.exports import detect_hubspot
from crm_roi_pipeline.sources.mappings import (
    CANONICAL_FILES,
    FileMapping,
    ResolvedFile,
    apply_mapping_file,
    canonical_mapping,
    check_unique_header,
    load_mapping_file,
    norm_name,
    read_header,
    resolve_columns,
)
from crm_roi_pipeline.sources.salesforce.objects import (
    CASE_MILESTONE_COLUMNS,
    MILESTONE_TYPE_COLUMNS,
    SALESFORCE_LOOKUPS,
    SALESFORCE_OBJECTS,
    CaseSettings,
    case_mapping,
)

FX_FILE = "fx_rates.csv"
# Salesforce files that only give tickets their first response (see objects.CASE_MILESTONE_COLUMNS).
MILESTONE_FILES = {"casemilestone": CASE_MILESTONE_COLUMNS, "milestonetype": MILESTONE_TYPE_COLUMNS}


@dataclass(frozen=True)
class Lookup:
    path: Path
    name: str  # account_names | owner_teams
    key: str
    values: tuple[str, ...]
    header: tuple[str, ...] = ()


@dataclass
class FolderPlan:
    folder: Path
    files: dict[str, list[ResolvedFile]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[InputFileError]] = field(default_factory=lambda: defaultdict(list))
    lookups: list[Lookup] = field(default_factory=list)
    fx_file: Path | None = None
    # CaseMilestone.csv / MilestoneType.csv: (path, header, canonical name -> the column giving it)
    milestones: dict[str, tuple[Path, tuple[str, ...], dict[str, str]]] = field(default_factory=dict)
    case: CaseSettings = field(default_factory=CaseSettings)
    ignored: list[str] = field(default_factory=list)

    def files_for(self, entity: str) -> list[ResolvedFile]:
        """The entity's files; the first problem found with any of them (or with a file of unknown entity)."""
        problems = self.errors.get(entity, []) + self.errors.get("*", [])
        if problems:
            raise problems[0]
        return self.files.get(entity, [])


def _kind(path: Path) -> str:
    if path.is_dir():
        return "a folder"
    if path.is_symlink() and not path.exists():
        return "a broken link"
    return "not a regular file"


def _not_a_file(path: Path) -> tuple[str, str]:
    """(problem, fix) for a `.csv` entry of the folder that is not a readable file. Nothing reads it: a folder
    has no rows, and a pipe or a device would block the read forever."""
    kind = _kind(path)
    if kind == "a folder":
        return (
            "is a folder, where a CSV export is expected; nothing in it is read.",
            (
                f"put the export itself in the CSV folder as {path.name}, or rename the folder so that its name "
                "does not end in .csv."
            ),
        )
    if kind == "a broken link":
        return (
            f"is a link to {quote(str(path.readlink()))}, which does not exist.",
            "point the link at the export, or replace it with the file.",
        )
    return ("is not a regular file (a pipe, socket or device).", "replace it with the exported file.")


def _known_entity(path: Path, mapping_files: dict[str, Path]) -> str | None:
    """The entity a name alone says a file holds ("*" for a file every entity reads: fx rates, lookups), or
    None for a name the pipeline does not know, whose file is only recognised by its header."""
    if path.name in CANONICAL_FILES:
        return CANONICAL_FILES[path.name]
    if path.stem.lower() in SALESFORCE_OBJECTS:
        return SALESFORCE_OBJECTS[path.stem.lower()].entity
    if path.stem.lower() in MILESTONE_FILES:
        return "tickets"
    if path.name.lower() == FX_FILE or path.stem.lower() in SALESFORCE_LOOKUPS or path.stem in mapping_files:
        return "*"
    return None


def plan_folder(folder: Path, case: CaseSettings | None = None) -> FolderPlan:
    if not folder.is_dir():
        raise InputFileError(str(folder), "the CSV folder does not exist (CRM_ROI_CSV_DIR).")
    plan = FolderPlan(folder=folder, case=case or CaseSettings())
    mapping_files = {p.name[: -len(".mapping.yaml")]: p for p in folder.glob("*.mapping.yaml")}
    entries = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv")
    csv_files = [p for p in entries if p.is_file()]
    for path in entries:
        if path.is_file():
            continue
        entity = _known_entity(path, mapping_files)
        if entity is None:  # a name only a header could make an export of: ignored, as such a file would be
            plan.ignored.append(f"{path.name} ({_kind(path)})")
            continue
        problem, fix = _not_a_file(path)
        plan.errors[entity].append(InputFileError(path.name, problem, fix=fix))
    for stem in sorted(set(mapping_files) - {p.stem for p in entries}):
        plan.errors["*"].append(
            InputFileError(mapping_files[stem].name, f"there is no {stem}.csv beside it.", fix="rename it to match its CSV file.")
        )
    for path in csv_files:
        entity = _known_entity(path, mapping_files) or "*"
        try:
            header = read_header(path)
            if path.name.lower() == FX_FILE:
                check_unique_header(path, header)
                plan.fx_file = path
                continue
            if path.stem.lower() in MILESTONE_FILES and path.stem not in mapping_files:
                _plan_milestone_file(plan, path, header)
                continue
            lookup = SALESFORCE_LOOKUPS.get(path.stem.lower())
            if lookup is not None and path.stem not in mapping_files:
                key = next((c for c in lookup["key"] if c in header), None)
                values = tuple(c for c in lookup["value"] if c in header)
                if key and values:
                    check_unique_header(path, header)
                    plan.lookups.append(Lookup(path, lookup["lookup"], key, values, tuple(header)))
                else:
                    plan.ignored.append(f"{path.name} (no {'/'.join(lookup['key'] + lookup['value'])} columns)")
                continue
            base = _builtin(path, header, plan.case)
            mapping_file = mapping_files.get(path.stem)
            if mapping_file is not None:
                spec = load_mapping_file(mapping_file)
                entity = spec.entity or (base.entity if base else "*")
                mapping: FileMapping | None = apply_mapping_file(mapping_file, spec, base)
            else:
                mapping = base
            if mapping is None:
                plan.ignored.append(path.name)
                continue
            entity = mapping.entity
            check_unique_header(path, header)
            plan.files[entity].append(resolve_columns(path, header, mapping, mapping_file))
        except InputFileError as exc:
            plan.errors[entity].append(exc)
    return plan


def _plan_milestone_file(plan: FolderPlan, path: Path, header: list[str]) -> None:
    """CaseMilestone.csv or MilestoneType.csv: which column gives what; a file without the columns it needs is
    an error of the tickets (it would leave every first response empty without a word)."""
    check_unique_header(path, header)
    wanted = MILESTONE_FILES[path.stem.lower()]
    columns = {
        name: next((h for c in candidates for h in header if norm_name(h) == norm_name(c)), None)
        for name, candidates in wanted.items()
    }
    if path.stem.lower() == "casemilestone":
        needed = ["case_id", "completed_at"] + ([] if columns["type_name"] or columns["type_id"] else ["type_name"])
    else:
        needed = ["id", "name"]
    missing = [name for name in needed if columns[name] is None]
    if missing:
        raise InputFileError(
            path.name,
            "has no " + " and no ".join(f"{' or '.join(wanted[m])} column" for m in missing) + "; it gives the "
            "tickets their first response.",
            fix="export it with those columns (Data Loader: CaseId, MilestoneTypeId, CompletionDate; MilestoneType: "
            "Id, Name), or remove it from the folder.",
        )
    plan.milestones[path.stem.lower()] = (path, tuple(header), {k: v for k, v in columns.items() if v})


def _builtin(path: Path, header: list[str], case: CaseSettings) -> FileMapping | None:
    if path.name in CANONICAL_FILES:
        return canonical_mapping(CANONICAL_FILES[path.name])
    if path.stem.lower() == "case":
        if case.csat_field and case.csat_field not in header:
            raise InputFileError(
                path.name,
                f"has no column {quote(case.csat_field)}, which SALESFORCE_CSAT_FIELD names as the satisfaction score.",
                fix="export Case with that field, or correct or unset SALESFORCE_CSAT_FIELD.",
                line=1,
            )
        return case_mapping(case)
    salesforce = SALESFORCE_OBJECTS.get(path.stem.lower())
    if salesforce is not None:
        return salesforce
    return detect_hubspot(header, path.stem)
