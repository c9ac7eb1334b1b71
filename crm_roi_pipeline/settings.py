"""Settings from the environment and the business-assumptions file, validated before anything is written.

The environment variables are the public contract (`CONTRACT.md`); Dagster resources read them through
`EnvVar` (see `definitions.py`). The assumptions file is validated with pydantic so that a typo in a key,
a missing key or an impossible value stops the run before any write, with the key and the problem named.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from crm_roi_pipeline.errors import SettingsError, quote, shorten
from crm_roi_pipeline.user_files import read_yaml
from crm_roi_pipeline.project import resolve_path

DEFAULTS = {
    "CRM_ROI_SOURCE": "csv",
    "CRM_ROI_CSV_DIR": "data/sample",
    "CRM_ROI_DUCKDB_PATH": "data/crm_roi.duckdb",
    "CRM_ROI_ASSUMPTIONS": "data/roi_assumptions.yaml",
    "CRM_ROI_HISTORY_START": "2015-01-01",
    "CRM_ROI_DUCKDB_MEMORY_LIMIT": "1GB",
}
# CRM_ROI_REPORTS_DIR has no fixed default: unset, the report goes beside the database it describes,
# `<db dir>/<db file stem>_reports/` (resources.Reports); the Parquet copies likewise to `<stem>_published/`.
COST_CATEGORIES = (
    "software",
    "implementation",
    "customization",
    "training",
    "integration",
    "data_migration",
    "maintenance",
    "internal_labor",
    "other",
)
DEAL_TYPES = ("new_business", "expansion", "renewal")


def env_setting(name: str) -> str:
    """The value of a contract setting: the environment's, else the documented default."""
    return os.environ.get(name) or DEFAULTS[name]


def parse_history_start(value: str) -> dt.date:
    """The first month of the partitions; any day in it means that month."""
    try:
        day = dt.date.fromisoformat(value.strip())
    except ValueError:
        raise SettingsError(
            f"CRM_ROI_HISTORY_START={value!r} is not a date; write it as YYYY-MM-DD, e.g. 2015-01-01."
        ) from None
    return day.replace(day=1)


# --- the assumptions file -------------------------------------------------------------------------

NonNegative = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CostLine(_Strict):
    name: str
    category: Literal[COST_CATEGORIES]  # type: ignore[valid-type]
    amount: NonNegative
    recurring: bool = False


class BenefitEstimate(_Strict):
    name: str
    hours_per_user_per_week: NonNegative
    users: NonNegative
    hourly_cost: NonNegative
    risk: Fraction = 0.0


class Risk(_Strict):
    revenue: Fraction = 0.0
    acquisition_cost: Fraction = 0.0


class Assumptions(_Strict):
    adoption_date: dt.date
    transition_months: Annotated[int, Field(ge=0)]
    window_months: Annotated[int, Field(ge=1)]
    as_of: dt.date | None = None
    conversion_window_days: Annotated[int, Field(ge=0)] = 90
    reporting_currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    gross_margin: Fraction
    discount_rate: Annotated[float, Field(ge=0, le=1)]
    horizon_years: Annotated[int, Field(ge=1, le=30)]
    costs: list[CostLine]
    benefits: list[BenefitEstimate] = []
    risk: Risk = Risk()
    deal_types: dict[str, Literal[DEAL_TYPES]] = {}  # type: ignore[valid-type]
    # How sure are we (metrics.adoption intervals, metrics.uplift): the confidence level of every interval,
    # what feeds the ROI's revenue benefit (METRICS.md "The revenue lift and the verdict": auto = the
    # interrupted time series where it can be fitted, else the before/after), and for rollouts team by
    # team, each team's go-live (team: date).
    confidence_level: Annotated[float, Field(gt=0.5, lt=1)] = 0.95
    benefit_method: Literal["auto", "before_after", "its"] = "auto"
    team_adoption_dates: dict[str, dt.date] = {}

    @field_validator("deal_types", "team_adoption_dates", mode="before")
    @classmethod
    def _keys_as_text(cls, value: object) -> object:
        # YAML reads `Yes: renewal` as a boolean key; the CRM value is text.
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _cost_names_unique(self) -> "Assumptions":
        names = [c.name for c in self.costs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"cost names must be unique (sensitivity moves each line): {', '.join(twice)}")
        return self


def _format_location(loc: tuple[object, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _format_error(error: dict) -> str:
    # A location can hold a key of the user's (deal_types.<CRM value>), which can be of any length.
    loc = shorten(_format_location(tuple(p for p in error["loc"] if not str(p).startswith("function-"))))
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{loc}: unknown key (check the spelling; see 'The assumptions file' in docs/settings.md)"
    if kind == "missing":
        return f"{loc}: missing key"
    value = error.get("input")
    if value is None and "input" in error:  # `adoption_date:` with nothing after it (as `crm-roi init` writes it)
        return f"{loc}: no value; fill it in ({error['msg']})"
    shown = "" if isinstance(value, (dict, list)) else f" (got {quote(value)})"
    return f"{loc}: {error['msg']}{shown}"


def load_assumptions(path: str | os.PathLike[str]) -> Assumptions:
    """Read and validate the assumptions file; every problem is reported at once, by key."""
    file = resolve_path(path)
    if not file.exists():
        raise SettingsError(f"{file}: the assumptions file does not exist (CRM_ROI_ASSUMPTIONS).")

    def unreadable(problem: str, fix: str, line: int | None) -> SettingsError:
        where = file if line is None else f"{file}, line {line}"
        return SettingsError(f"{where}: {problem} Fix: {fix}")

    data = read_yaml(file, unreadable)
    if not isinstance(data, dict):
        raise SettingsError(f"{file}: expected a mapping of keys (adoption_date, costs, ...) at the top level.")
    try:
        return Assumptions.model_validate(data)
    except ValidationError as exc:
        errors = [_format_error(e) for e in exc.errors()]
        if len(errors) > 10:  # thousands of bad keys would otherwise make a message of thousands of lines
            errors = [*errors[:10], f"and {len(errors) - 10} more"]
        problems = "\n  - ".join(errors)
        raise SettingsError(f"{file}: invalid assumptions:\n  - {problems}") from None
