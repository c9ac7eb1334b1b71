"""The CSV folder's files that enrich other rows: fx_rates.csv, Salesforce's Account.csv and User.csv, and a
case's first response from CaseMilestone.csv (with MilestoneType.csv)."""

from __future__ import annotations

import duckdb

from crm_roi_pipeline.errors import InputFileError, quote
from crm_roi_pipeline.sources.csv_exports.folder import FolderPlan
from crm_roi_pipeline.sources.csv_exports.reading import read_export
from crm_roi_pipeline.sources.csv_reading import ROW_COLUMN, drop_text_tables, ident
from crm_roi_pipeline.sources.mappings import read_header
from crm_roi_pipeline.sources.raw_views import timestamp_sql


def load_lookups(conn: duckdb.DuckDBPyConnection, plan: FolderPlan) -> None:
    """Account names and owner teams from Account.csv / User.csv, to enrich deals and leads."""
    for lookup in plan.lookups:
        value = "coalesce(" + ", ".join(f"nullif(trim({ident(v)}), '')" for v in lookup.values) + ")"
        relation = read_export(conn, lookup.path, "_lookup_text", lookup.header)
        conn.execute(
            f"INSERT INTO _{lookup.name} SELECT 'salesforce', trim({ident(lookup.key)}), {value} "
            f"FROM {relation} WHERE nullif(trim({ident(lookup.key)}), '') IS NOT NULL"
        )
        drop_text_tables(conn, "_lookup_text")


def load_fx_rates(conn: duckdb.DuckDBPyConnection, plan: FolderPlan) -> None:
    """`fx_rates.csv` (month, currency, rate: reporting-currency units per unit) into `_fx_rates`."""
    if plan.fx_file is None:
        return
    header = read_header(plan.fx_file)
    missing = [c for c in ("month", "currency", "rate") if c not in header]
    if missing:
        raise InputFileError(
            plan.fx_file.name, f"missing column(s) {', '.join(missing)}.", fix="write it with the columns month, currency, rate."
        )
    month = timestamp_sql("nullif(trim(month), '')", None)
    relation = read_export(conn, plan.fx_file, "_fx_text", tuple(header))
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE _fx_raw AS
            SELECT {ROW_COLUMN} AS _row, month AS m, upper(trim(currency)) AS c, rate AS r,
                   date_trunc('month', {month})::DATE AS month,
                   crm_number(nullif(trim(rate), '')) AS rate
            FROM {relation}"""
    )
    drop_text_tables(conn, "_fx_text")
    bad = conn.execute(
        "SELECT _row, m, c, r FROM _fx_raw WHERE month IS NULL OR rate IS NULL OR rate <= 0 OR c IS NULL OR c = '' "
        "ORDER BY _row LIMIT 1"
    ).fetchone()
    if bad:
        raise InputFileError(
            plan.fx_file.name,
            f"cannot read month {quote(bad[1])}, currency {quote(bad[2])}, rate {quote(bad[3])} (a rate must be a "
            "positive number).",
            fix="correct or delete that row.",
            row=bad[0],
        )
    twice = conn.execute(
        "SELECT strftime(month, '%Y-%m'), c FROM _fx_raw GROUP BY ALL HAVING count(*) > 1 ORDER BY 1 LIMIT 1"
    ).fetchone()
    if twice:
        raise InputFileError(plan.fx_file.name, f"two rates for {quote(twice[1])} in {twice[0]}.", fix="keep one.")
    conn.execute("INSERT INTO _fx_rates SELECT month, c, rate FROM _fx_raw")


def load_first_responses(conn: duckdb.DuckDBPyConnection, plan: FolderPlan) -> list[str]:
    """`_first_responses`: per Salesforce case, the earliest completion of a milestone of the type
    SALESFORCE_FIRST_RESPONSE_MILESTONE names. Returns notes for the run's metadata: without the files (an org
    without entitlements) the first response is empty, and the metadata says why."""
    milestones = plan.milestones.get("casemilestone")
    if milestones is None:
        return []
    path, header, columns = milestones
    name = plan.case.first_response_milestone
    relation = read_export(conn, path, "_milestones_text", header)
    if "type_name" in columns:
        type_name, join = f"m.{ident(columns['type_name'])}", ""
    elif "milestonetype" in plan.milestones:
        types_path, types_header, type_columns = plan.milestones["milestonetype"]
        types = read_export(conn, types_path, "_milestone_types_text", types_header)
        type_name = f"t.{ident(type_columns['name'])}"
        join = f"LEFT JOIN {types} AS t ON trim(t.{ident(type_columns['id'])}) = trim(m.{ident(columns['type_id'])})"
    else:
        drop_text_tables(conn, "_milestones_text")
        return [
            f"{path.name} names milestone types by id only and there is no MilestoneType.csv beside it: no first "
            "response is read. Add MilestoneType.csv (Id, Name) to the folder."
        ]
    completed = timestamp_sql(f"crm_text(m.{ident(columns['completed_at'])})", None)
    conn.execute(
        f"""INSERT INTO _first_responses
            SELECT 'salesforce', trim(m.{ident(columns['case_id'])}), min({completed})
            FROM {relation} AS m {join}
            WHERE lower(trim({type_name})) = lower(?) AND nullif(trim(m.{ident(columns['case_id'])}), '') IS NOT NULL
            GROUP BY ALL""",
        [name],
    )
    drop_text_tables(conn, "_milestones_text")
    drop_text_tables(conn, "_milestone_types_text")
    if not conn.execute("SELECT count(*) FROM _first_responses").fetchone()[0]:
        return [
            f"{path.name} has no milestone named {quote(name)} (SALESFORCE_FIRST_RESPONSE_MILESTONE): no first "
            "response is read. Set SALESFORCE_FIRST_RESPONSE_MILESTONE to the org's first-response milestone."
        ]
    return []
