"""The months a run must stage: those whose input changed since they were staged (fingerprints.py), plus the
current month when an API source is configured (its change sync runs with the current month). Used by
`crm-roi run` and the nightly schedule, so that an unchanged export costs no run and no Dagster events."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from crm_roi_pipeline.errors import CrmRoiError
from crm_roi_pipeline.months import add_months
from crm_roi_pipeline.sources.base import MonthScope
from crm_roi_pipeline.sources.csv_reading import drop_text_tables
from crm_roi_pipeline.sources.fields import ENTITIES
from crm_roi_pipeline.sources.registry import API_SOURCES, open_source
from crm_roi_pipeline.staging import fingerprints
from crm_roi_pipeline.staging.partitions import HISTORY_START, last_partition_month


@dataclass
class StagingPlan:
    last_partition: dt.date
    changed: dict[str, list[str]] = field(default_factory=dict)  # entity -> months ('YYYY-MM' or 'none')
    api_sources: bool = False  # an API source pulls its current month and its changes every night
    unplanned: list[str] = field(default_factory=list)  # why an entity's months could not be compared

    def months(self) -> list[dt.date]:
        """Every month to stage, sorted: the changed ones; the current month for rows of no partition (any run
        rewrites their rejects) and for API sources."""
        months = set()
        for changed in self.changed.values():
            for key in changed:
                months.add(self.last_partition if key == fingerprints.NO_PARTITION else dt.date.fromisoformat(key + "-01"))
        if self.api_sources:
            months.add(self.last_partition)
        return sorted(months)

    def ranges(self) -> list[tuple[str, str]]:
        """The months as contiguous ranges of partition keys, one staging run each (a run covers one range)."""
        out: list[list[dt.date]] = []
        for month in self.months():
            if out and add_months(out[-1][1], 1) == month:
                out[-1][1] = month
            else:
                out.append([month, month])
        return [(first.isoformat(), last.isoformat()) for first, last in out]

    def describe(self) -> str:
        """In words, for the CLI and the schedule's log."""
        parts = []
        every = len(_all_months(self.last_partition))
        if all(len(self.changed.get(entity, ())) == every for entity in ENTITIES):
            return "changed since last staged: every month of every table (nothing staged from it yet)" + "".join(
                f"; {why}" for why in self.unplanned)
        for entity in ENTITIES:
            months = self.changed.get(entity)
            if months and len(months) == every:
                parts.append(f"{entity} every month")
            elif months:
                shown = ", ".join(m for m in months[:6]) + (f" and {len(months) - 6} more" if len(months) > 6 else "")
                parts.append(f"{entity} {shown}")
        text = "changed since last staged: " + ("; ".join(parts) if parts else "nothing")
        if self.api_sources:
            text += f"; the API sources' current month {self.last_partition:%Y-%m} and their changes"
        return text + "".join(f"; {why}" for why in self.unplanned)


def plan_staging(warehouse, settings, assumptions, resources, last_partition: dt.date | None = None) -> StagingPlan:
    """Compare each CSV entity's months with what was staged. An entity whose files cannot be read is planned
    whole: the staging run then stops on it with its usual message, naming the file and the fix.
    `last_partition`: the current month (default: now's), as the schedule's evaluation time sees it."""
    parsed = assumptions.load()
    last_partition = last_partition or last_partition_month()
    every_month = MonthScope(HISTORY_START, last_partition, HISTORY_START, last_partition)
    plan = StagingPlan(last_partition, api_sources=any(name in API_SOURCES for name in settings.sources))
    with warehouse.get_connection() as conn:
        for name in settings.sources:
            if name in API_SOURCES:
                continue
            try:
                source = open_source(name, csv_dir=settings.csv_path, workdir=warehouse.path.parent, resources=resources)
            except CrmRoiError:
                plan.changed = {entity: _all_months(last_partition) for entity in ENTITIES}
                plan.unplanned.append(f"the {name} source cannot be read, so every month is staged")
                return plan
            context = source.context_inputs()
            if context is None:
                continue
            stamp = fingerprints.context_hash(*context, assumptions=parsed, history_start=HISTORY_START)
            for entity in ENTITIES:
                before = fingerprints.stored(conn, name, entity)
                if not before:  # never staged from this source: every month, without reading the files twice
                    plan.changed[entity] = _all_months(last_partition)
                    continue
                raw = f"_plan_{entity}"
                try:
                    source.check(entity)
                    load = source.load(conn, entity, raw, every_month, parsed.reporting_currency)
                    now = fingerprints.month_fingerprints(
                        conn, entity, raw if load.loaded else None, stamp, HISTORY_START, last_partition,
                        HISTORY_START, last_partition)
                except CrmRoiError:
                    now = {month: "unreadable" for month in _all_months(last_partition)}
                finally:
                    drop_text_tables(conn, f"{raw}_text_")
                changed = fingerprints.changed(now, before)
                if changed:
                    plan.changed[entity] = sorted(set(plan.changed.get(entity, [])) | set(changed))
    return plan


def _all_months(last_partition: dt.date) -> list[str]:
    return fingerprints.month_keys(HISTORY_START, last_partition)
