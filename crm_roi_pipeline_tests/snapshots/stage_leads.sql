CREATE OR REPLACE TEMP TABLE _staged_leads_csv AS
WITH
-- Leads: a lead is converted when its flag says so or, without a flag column, when it has a conversion date.
derived AS (
    SELECT
        r.*,
        coalesce(r.is_converted, r.converted_at IS NOT NULL) AS is_converted_,
        coalesce(r.team, ot.team) AS team_
    FROM _raw_leads_csv AS r
    LEFT JOIN _owner_teams AS ot ON ot.source_system = r.source_system AND ot.owner_id = r.owner_id
),
-- A lead is staged under the month it was created.
dated AS (
    SELECT *, date_trunc('month', created_at)::DATE AS _month
    FROM derived
),
-- Every reason the row cannot be staged, or NULL.
checked AS (
    SELECT *,
        CASE WHEN (lead_id IS NULL)
            OR (is_deleted)
            OR (contains(lead_id, chr(0)))
            OR (contains(owner_id, chr(0)))
            OR (contains(team, chr(0)))
            OR (contains(lead_source, chr(0)))
            OR (contains(status, chr(0)))
            OR (created_at IS NULL AND created_at__txt IS NOT NULL)
            OR (is_converted IS NULL AND is_converted__txt IS NOT NULL)
            OR (converted_at IS NULL AND converted_at__txt IS NOT NULL)
            OR (converted_at < DATE '1970-01-01')
            OR (converted_at >= DATE '2027-05-21')
            OR (contains(converted_deal_id, chr(0)))
            OR (contains(converted_account_id, chr(0)))
            OR (is_deleted IS NULL AND is_deleted__txt IS NOT NULL)
            OR (contains(source_system, chr(0)))
            OR (created_at IS NULL AND created_at__txt IS NULL)
            OR (_month < DATE '2021-01-01')
            OR (_month > DATE '2026-05-01')
        THEN nullif(concat_ws('; ',
            CASE WHEN lead_id IS NULL THEN 'no lead_id' END,
            CASE WHEN is_deleted THEN 'deleted in the source (IsDeleted is true)' END,
            CASE WHEN contains(lead_id, chr(0)) THEN 'lead_id ' || '''' || replace(lead_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(owner_id, chr(0)) THEN 'owner_id ' || '''' || replace(owner_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(team, chr(0)) THEN 'team ' || '''' || replace(team, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(lead_source, chr(0)) THEN 'lead_source ' || '''' || replace(lead_source, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(status, chr(0)) THEN 'status ' || '''' || replace(status, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN created_at IS NULL AND created_at__txt IS NOT NULL THEN 'created_at: cannot read ' || '''' || replace(created_at__txt, chr(0), '\0') || '''' || ' as a date' || coalesce(' (date_format ' || _date_format || ' from the mapping file)', '') END,
            CASE WHEN is_converted IS NULL AND is_converted__txt IS NOT NULL THEN 'is_converted: cannot read ' || '''' || replace(is_converted__txt, chr(0), '\0') || '''' || ' as true/false' END,
            CASE WHEN converted_at IS NULL AND converted_at__txt IS NOT NULL THEN 'converted_at: cannot read ' || '''' || replace(converted_at__txt, chr(0), '\0') || '''' || ' as a date' || coalesce(' (date_format ' || _date_format || ' from the mapping file)', '') END,
            CASE WHEN converted_at < DATE '1970-01-01' THEN 'converted_at ' || '''' || replace(converted_at__txt, chr(0), '\0') || '''' || ' is before 1970 (a placeholder for no date?)' END,
            CASE WHEN converted_at >= DATE '2027-05-21' THEN 'converted_at ' || '''' || replace(converted_at__txt, chr(0), '\0') || '''' || ' is more than a year after the day of the run (after 2027-05-20)' END,
            CASE WHEN contains(converted_deal_id, chr(0)) THEN 'converted_deal_id ' || '''' || replace(converted_deal_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(converted_account_id, chr(0)) THEN 'converted_account_id ' || '''' || replace(converted_account_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN is_deleted IS NULL AND is_deleted__txt IS NOT NULL THEN 'is_deleted: cannot read ' || '''' || replace(is_deleted__txt, chr(0), '\0') || '''' || ' as true/false' END,
            CASE WHEN contains(source_system, chr(0)) THEN 'source_system ' || '''' || replace(source_system, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN created_at IS NULL AND created_at__txt IS NULL THEN 'no created_at' END,
            CASE WHEN _month < DATE '2021-01-01' THEN 'created_at ' || strftime(_month, '%Y-%m') || ' is before CRM_ROI_HISTORY_START (2021-01-01)' END,
            CASE WHEN _month > DATE '2026-05-01' THEN 'created_at ' || strftime(_month, '%Y-%m') || ' is after the current month' END
        ), '') END AS _problem
    FROM dated
)
SELECT
    -- The columns of crm.leads in its order, but loaded_from (the write adds it).
    d.lead_id, d.source_system, d.owner_id, d.team_ AS team, d.lead_source,
    d.status, d.created_at, d.is_converted_ AS is_converted, d.converted_at, d.converted_deal_id,
    d.converted_account_id,
    -- What the writes need: the partition, the reason, and where the row came from.
    d._month, d._problem AS _reason, d.is_deleted,
    d._row, d._file_order,
    -- The input's values, only for a row that may be rejected: one with a problem, or one whose lead_id
    -- repeats in the pull (all but the newest are rejected once this table is built); one hash aggregate
    -- over the id column finds those.
    CASE WHEN d._problem IS NOT NULL
           OR (d.source_system, d.lead_id) IN (
              SELECT source_system, lead_id FROM _raw_leads_csv WHERE lead_id IS NOT NULL GROUP BY ALL HAVING count(*) > 1
           )
         THEN to_json(map_from_entries(list_filter([
             {'k': 'lead_id', 'v': (d.lead_id)::VARCHAR},
             {'k': 'owner_id', 'v': (d.owner_id)::VARCHAR},
             {'k': 'team', 'v': (d.team)::VARCHAR},
             {'k': 'lead_source', 'v': (d.lead_source)::VARCHAR},
             {'k': 'status', 'v': (d.status)::VARCHAR},
             {'k': 'created_at', 'v': (d.created_at__txt)::VARCHAR},
             {'k': 'is_converted', 'v': (d.is_converted__txt)::VARCHAR},
             {'k': 'converted_at', 'v': (d.converted_at__txt)::VARCHAR},
             {'k': 'converted_deal_id', 'v': (d.converted_deal_id)::VARCHAR},
             {'k': 'converted_account_id', 'v': (d.converted_account_id)::VARCHAR},
             {'k': 'is_deleted', 'v': (d.is_deleted__txt)::VARCHAR}
         ], lambda e: e.v IS NOT NULL)))
    END AS _raw,
    -- Signs that a whole file is misread (a date that is not month-first).
    CASE WHEN d._date_format IS NULL THEN CASE WHEN d."created_at" IS NULL AND regexp_full_match(d."created_at__txt", '\d{1,2}/\d{1,2}/\d{2,4}.*') THEN 'created_at' WHEN d."converted_at" IS NULL AND regexp_full_match(d."converted_at__txt", '\d{1,2}/\d{1,2}/\d{2,4}.*') THEN 'converted_at' END END AS _misread_date
FROM checked AS d
