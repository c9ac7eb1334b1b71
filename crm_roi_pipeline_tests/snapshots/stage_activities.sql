CREATE OR REPLACE TEMP TABLE _staged_activities_csv AS
WITH
-- Activities: type and status normalised, what the activity is about, its duration in minutes.
derived AS (
    SELECT
        r.*,
        crm_activity_type_lower(r._type_lower) AS type_,
        -- A closed flag decides; without one, a status that reads open; anything else is completed.
        CASE
            WHEN r.is_closed IS NOT NULL THEN CASE WHEN r.is_closed THEN 'completed' ELSE 'open' END
            WHEN crm_activity_open(r.status) THEN 'open'
            ELSE 'completed'
        END AS status_,
        -- The duration in minutes from whichever unit was given.
        coalesce(
            r.duration_minutes,
            r.duration_seconds / 60.0,
            r.duration_ms / 60000.0,
            epoch(TRY_CAST(r.duration_hms AS INTERVAL)) / 60.0
        ) AS duration_minutes_,
        -- What a Salesforce activity is about and whom it is with: Tasks and Events name them in two polymorphic
        -- fields, WhatId (an opportunity or an account) and WhoId (a lead or a contact), whose object only the key
        -- prefix every Salesforce id starts with tells: 006 opportunity, 001 account, 00Q lead, 003 contact.
        -- An id the input gives in a column of its own comes first.
        coalesce(r.deal_id, CASE WHEN r.what_id LIKE '006%' THEN r.what_id END) AS deal_id_,
        coalesce(r.account_id, CASE WHEN r.what_id LIKE '001%' THEN r.what_id END) AS account_id_,
        coalesce(r.lead_id, CASE WHEN r.who_id LIKE '00Q%' THEN r.who_id END) AS lead_id_,
        coalesce(r.contact_id, CASE WHEN r.who_id LIKE '003%' THEN r.who_id END) AS contact_id_
    -- The macro reads its argument a dozen times: given a column, DuckDB binds the expression behind it once.
    FROM (
        SELECT *,
            -- A subtype naming a channel (Salesforce's TaskSubtype) comes before the type.
            lower(CASE WHEN lower(subtype) IN ('call', 'email', 'listemail', 'cadence', 'linkedin') THEN subtype
                       ELSE coalesce(type, subtype) END) AS _type_lower
        FROM _raw_activities_csv
    ) AS r
),
-- An activity is staged under the month it occurred.
dated AS (
    SELECT *, date_trunc('month', occurred_at)::DATE AS _month
    FROM derived
),
-- Every reason the row cannot be staged, or NULL.
checked AS (
    SELECT *,
        CASE WHEN (activity_id IS NULL)
            OR (is_deleted)
            OR (contains(activity_id, chr(0)))
            OR (contains(type, chr(0)))
            OR (contains(subtype, chr(0)))
            OR (contains(status, chr(0)))
            OR (is_closed IS NULL AND is_closed__txt IS NOT NULL)
            OR (occurred_at IS NULL AND occurred_at__txt IS NOT NULL)
            OR (contains(owner_id, chr(0)))
            OR (contains(deal_id, chr(0)))
            OR (contains(lead_id, chr(0)))
            OR (contains(contact_id, chr(0)))
            OR (contains(account_id, chr(0)))
            OR (contains(what_id, chr(0)))
            OR (contains(who_id, chr(0)))
            OR (duration_minutes IS NULL AND duration_minutes__txt IS NOT NULL)
            OR (abs(duration_minutes) > 1e15)
            OR (duration_seconds IS NULL AND duration_seconds__txt IS NOT NULL)
            OR (abs(duration_seconds) > 1e15)
            OR (duration_ms IS NULL AND duration_ms__txt IS NOT NULL)
            OR (abs(duration_ms) > 1e15)
            OR (contains(duration_hms, chr(0)))
            OR (is_deleted IS NULL AND is_deleted__txt IS NOT NULL)
            OR (contains(source_system, chr(0)))
            OR (occurred_at IS NULL AND occurred_at__txt IS NULL)
            OR (_month < DATE '2021-01-01')
            OR (_month > DATE '2026-05-01')
        THEN nullif(concat_ws('; ',
            CASE WHEN activity_id IS NULL THEN 'no activity_id' END,
            CASE WHEN is_deleted THEN 'deleted in the source (IsDeleted is true)' END,
            CASE WHEN contains(activity_id, chr(0)) THEN 'activity_id ' || '''' || replace(activity_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(type, chr(0)) THEN 'type ' || '''' || replace(type, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(subtype, chr(0)) THEN 'subtype ' || '''' || replace(subtype, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(status, chr(0)) THEN 'status ' || '''' || replace(status, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN is_closed IS NULL AND is_closed__txt IS NOT NULL THEN 'is_closed: cannot read ' || '''' || replace(is_closed__txt, chr(0), '\0') || '''' || ' as true/false' END,
            CASE WHEN occurred_at IS NULL AND occurred_at__txt IS NOT NULL THEN 'occurred_at: cannot read ' || '''' || replace(occurred_at__txt, chr(0), '\0') || '''' || ' as a date' || coalesce(' (date_format ' || _date_format || ' from the mapping file)', '') END,
            CASE WHEN contains(owner_id, chr(0)) THEN 'owner_id ' || '''' || replace(owner_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(deal_id, chr(0)) THEN 'deal_id ' || '''' || replace(deal_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(lead_id, chr(0)) THEN 'lead_id ' || '''' || replace(lead_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(contact_id, chr(0)) THEN 'contact_id ' || '''' || replace(contact_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(account_id, chr(0)) THEN 'account_id ' || '''' || replace(account_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(what_id, chr(0)) THEN 'what_id ' || '''' || replace(what_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(who_id, chr(0)) THEN 'who_id ' || '''' || replace(who_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN duration_minutes IS NULL AND duration_minutes__txt IS NOT NULL THEN 'duration_minutes: cannot read ' || '''' || replace(duration_minutes__txt, chr(0), '\0') || '''' || ' as a number' END,
            CASE WHEN abs(duration_minutes) > 1e15 THEN 'duration_minutes ' || '''' || replace(duration_minutes__txt, chr(0), '\0') || '''' || ' is beyond ±1e15 (a placeholder or a typo?)' END,
            CASE WHEN duration_seconds IS NULL AND duration_seconds__txt IS NOT NULL THEN 'duration_seconds: cannot read ' || '''' || replace(duration_seconds__txt, chr(0), '\0') || '''' || ' as a number' END,
            CASE WHEN abs(duration_seconds) > 1e15 THEN 'duration_seconds ' || '''' || replace(duration_seconds__txt, chr(0), '\0') || '''' || ' is beyond ±1e15 (a placeholder or a typo?)' END,
            CASE WHEN duration_ms IS NULL AND duration_ms__txt IS NOT NULL THEN 'duration_ms: cannot read ' || '''' || replace(duration_ms__txt, chr(0), '\0') || '''' || ' as a number' END,
            CASE WHEN abs(duration_ms) > 1e15 THEN 'duration_ms ' || '''' || replace(duration_ms__txt, chr(0), '\0') || '''' || ' is beyond ±1e15 (a placeholder or a typo?)' END,
            CASE WHEN contains(duration_hms, chr(0)) THEN 'duration_hms ' || '''' || replace(duration_hms, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN is_deleted IS NULL AND is_deleted__txt IS NOT NULL THEN 'is_deleted: cannot read ' || '''' || replace(is_deleted__txt, chr(0), '\0') || '''' || ' as true/false' END,
            CASE WHEN contains(source_system, chr(0)) THEN 'source_system ' || '''' || replace(source_system, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN occurred_at IS NULL AND occurred_at__txt IS NULL THEN 'no occurred_at' END,
            CASE WHEN _month < DATE '2021-01-01' THEN 'occurred_at ' || strftime(_month, '%Y-%m') || ' is before CRM_ROI_HISTORY_START (2021-01-01)' END,
            CASE WHEN _month > DATE '2026-05-01' THEN 'occurred_at ' || strftime(_month, '%Y-%m') || ' is after the current month' END
        ), '') END AS _problem
    FROM dated
)
SELECT
    -- The columns of crm.activities in its order, but loaded_from (the write adds it).
    d.activity_id, d.source_system, d.type_ AS type, d.status_ AS status,
    d.occurred_at, d.owner_id, d.deal_id_ AS deal_id, d.lead_id_ AS lead_id, d.contact_id_ AS contact_id,
    d.account_id_ AS account_id, d.duration_minutes_ AS duration_minutes,
    -- What the writes need: the partition, the reason, and where the row came from.
    d._month, d._problem AS _reason, d.is_deleted,
    d._row, d._file_order,
    -- The input's values, only for a row that may be rejected: one with a problem, or one whose activity_id
    -- repeats in the pull (all but the newest are rejected once this table is built); one hash aggregate
    -- over the id column finds those.
    CASE WHEN d._problem IS NOT NULL
           OR (d.source_system, d.activity_id) IN (
              SELECT source_system, activity_id FROM _raw_activities_csv WHERE activity_id IS NOT NULL GROUP BY ALL HAVING count(*) > 1
           )
         THEN to_json(map_from_entries(list_filter([
             {'k': 'activity_id', 'v': (d.activity_id)::VARCHAR},
             {'k': 'type', 'v': (d.type)::VARCHAR},
             {'k': 'subtype', 'v': (d.subtype)::VARCHAR},
             {'k': 'status', 'v': (d.status)::VARCHAR},
             {'k': 'is_closed', 'v': (d.is_closed__txt)::VARCHAR},
             {'k': 'occurred_at', 'v': (d.occurred_at__txt)::VARCHAR},
             {'k': 'owner_id', 'v': (d.owner_id)::VARCHAR},
             {'k': 'deal_id', 'v': (d.deal_id)::VARCHAR},
             {'k': 'lead_id', 'v': (d.lead_id)::VARCHAR},
             {'k': 'contact_id', 'v': (d.contact_id)::VARCHAR},
             {'k': 'account_id', 'v': (d.account_id)::VARCHAR},
             {'k': 'what_id', 'v': (d.what_id)::VARCHAR},
             {'k': 'who_id', 'v': (d.who_id)::VARCHAR},
             {'k': 'duration_minutes', 'v': (d.duration_minutes__txt)::VARCHAR},
             {'k': 'duration_seconds', 'v': (d.duration_seconds__txt)::VARCHAR},
             {'k': 'duration_ms', 'v': (d.duration_ms__txt)::VARCHAR},
             {'k': 'duration_hms', 'v': (d.duration_hms)::VARCHAR},
             {'k': 'is_deleted', 'v': (d.is_deleted__txt)::VARCHAR}
         ], lambda e: e.v IS NOT NULL)))
    END AS _raw,
    -- Signs that a whole file is misread (a date that is not month-first).
    CASE WHEN d._date_format IS NULL THEN CASE WHEN d."occurred_at" IS NULL AND regexp_full_match(d."occurred_at__txt", '\d{1,2}/\d{1,2}/\d{2,4}.*') THEN 'occurred_at' END END AS _misread_date
FROM checked AS d
