CREATE OR REPLACE TEMP TABLE _staged_tickets_csv AS
WITH
-- Tickets: open or closed, the account's matching key, the team, and the first response.
derived AS (
    SELECT
        r.*,
        -- Open or closed: a status map (a mapping file's `stages`, or the CRM's default pipeline), else the
        -- CRM's closed flag, else a canonical status, else whether the ticket has a close date.
        CASE
            WHEN r._stage_class IS NOT NULL THEN r._stage_class
            WHEN r.is_closed IS NOT NULL THEN CASE WHEN r.is_closed THEN 'closed' ELSE 'open' END
            WHEN lower(r.status) IN ('open', 'closed') THEN lower(r.status)
            WHEN r.closed_at IS NOT NULL THEN 'closed'
            ELSE 'open'
        END AS status_,
        coalesce(r.team, ot.team) AS team_,
        coalesce(r.account_external_id, ak.account_key, r.account_id) AS account_key_,
        -- The reply date the row gives, else its first-response milestone (Salesforce), else the time to the
        -- first reply after creation (HubSpot's time_to_first_agent_reply, in milliseconds).
        coalesce(
            r.first_response_at,
            fr.first_response_at,
            r.created_at + to_milliseconds(round(r.first_response_ms)::BIGINT)
        ) AS first_response_at_
    FROM _raw_tickets_csv AS r
    LEFT JOIN _account_names AS an ON an.source_system = r.source_system AND an.account_id = r.account_id
    LEFT JOIN _owner_teams AS ot ON ot.source_system = r.source_system AND ot.owner_id = r.owner_id
    -- One row per case: a change sync adds the milestones of the cases it pulled to those of the months.
    LEFT JOIN (SELECT source_system, ticket_id, min(first_response_at) AS first_response_at FROM _first_responses GROUP BY ALL)
        AS fr ON fr.source_system = r.source_system AND fr.ticket_id = r.ticket_id
    -- The matching key once per distinct account name, not once per ticket.
    LEFT JOIN (
        SELECT account_name, crm_account_key(account_name) AS account_key
        FROM (
            SELECT DISTINCT coalesce(r2.account_name, an2.account_name) AS account_name
            FROM _raw_tickets_csv AS r2
            LEFT JOIN _account_names AS an2 ON an2.source_system = r2.source_system AND an2.account_id = r2.account_id
        )
    ) AS ak ON ak.account_name = coalesce(r.account_name, an.account_name)
),
-- A ticket is staged under the month it was created. Its close date counts only once it is closed: a
-- reopened ticket may still carry the date it was closed before.
dated AS (
    SELECT *, date_trunc('month', created_at)::DATE AS _month, CASE WHEN status_ = 'closed' THEN closed_at END AS closed_at_
    FROM derived
),
-- Every reason the row cannot be staged, or NULL.
checked AS (
    SELECT *,
        CASE WHEN (ticket_id IS NULL)
            OR (is_deleted)
            OR (contains(ticket_id, chr(0)))
            OR (contains(account_id, chr(0)))
            OR (contains(account_external_id, chr(0)))
            OR (contains(account_name, chr(0)))
            OR (contains(owner_id, chr(0)))
            OR (contains(team, chr(0)))
            OR (contains(status, chr(0)))
            OR (is_closed IS NULL AND is_closed__txt IS NOT NULL)
            OR (contains(priority, chr(0)))
            OR (contains(channel, chr(0)))
            OR (created_at IS NULL AND created_at__txt IS NOT NULL)
            OR (first_response_at IS NULL AND first_response_at__txt IS NOT NULL)
            OR (first_response_at < DATE '1970-01-01')
            OR (first_response_at >= DATE '2027-05-21')
            OR (first_response_ms IS NULL AND first_response_ms__txt IS NOT NULL)
            OR (abs(first_response_ms) > 1e15)
            OR (closed_at IS NULL AND closed_at__txt IS NOT NULL)
            OR (closed_at < DATE '1970-01-01')
            OR (closed_at >= DATE '2027-05-21')
            OR (csat_score IS NULL AND csat_score__txt IS NOT NULL)
            OR (abs(csat_score) > 1e15)
            OR (csat_scale_max IS NULL AND csat_scale_max__txt IS NOT NULL)
            OR (abs(csat_scale_max) > 1e15)
            OR (is_deleted IS NULL AND is_deleted__txt IS NOT NULL)
            OR (contains(source_system, chr(0)))
            OR (created_at IS NULL AND created_at__txt IS NULL)
            OR (_month < DATE '2021-01-01')
            OR (_month > DATE '2026-05-01')
        THEN nullif(concat_ws('; ',
            CASE WHEN ticket_id IS NULL THEN 'no ticket_id' END,
            CASE WHEN is_deleted THEN 'deleted in the source (IsDeleted is true)' END,
            CASE WHEN contains(ticket_id, chr(0)) THEN 'ticket_id ' || '''' || replace(ticket_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(account_id, chr(0)) THEN 'account_id ' || '''' || replace(account_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(account_external_id, chr(0)) THEN 'account_external_id ' || '''' || replace(account_external_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(account_name, chr(0)) THEN 'account_name ' || '''' || replace(account_name, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(owner_id, chr(0)) THEN 'owner_id ' || '''' || replace(owner_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(team, chr(0)) THEN 'team ' || '''' || replace(team, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(status, chr(0)) THEN 'status ' || '''' || replace(status, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN is_closed IS NULL AND is_closed__txt IS NOT NULL THEN 'is_closed: cannot read ' || '''' || replace(is_closed__txt, chr(0), '\0') || '''' || ' as true/false' END,
            CASE WHEN contains(priority, chr(0)) THEN 'priority ' || '''' || replace(priority, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(channel, chr(0)) THEN 'channel ' || '''' || replace(channel, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN created_at IS NULL AND created_at__txt IS NOT NULL THEN 'created_at: cannot read ' || '''' || replace(created_at__txt, chr(0), '\0') || '''' || ' as a date' || coalesce(' (date_format ' || _date_format || ' from the mapping file)', '') END,
            CASE WHEN first_response_at IS NULL AND first_response_at__txt IS NOT NULL THEN 'first_response_at: cannot read ' || '''' || replace(first_response_at__txt, chr(0), '\0') || '''' || ' as a date' || coalesce(' (date_format ' || _date_format || ' from the mapping file)', '') END,
            CASE WHEN first_response_at < DATE '1970-01-01' THEN 'first_response_at ' || '''' || replace(first_response_at__txt, chr(0), '\0') || '''' || ' is before 1970 (a placeholder for no date?)' END,
            CASE WHEN first_response_at >= DATE '2027-05-21' THEN 'first_response_at ' || '''' || replace(first_response_at__txt, chr(0), '\0') || '''' || ' is more than a year after the day of the run (after 2027-05-20)' END,
            CASE WHEN first_response_ms IS NULL AND first_response_ms__txt IS NOT NULL THEN 'first_response_ms: cannot read ' || '''' || replace(first_response_ms__txt, chr(0), '\0') || '''' || ' as a number' END,
            CASE WHEN abs(first_response_ms) > 1e15 THEN 'first_response_ms ' || '''' || replace(first_response_ms__txt, chr(0), '\0') || '''' || ' is beyond ±1e15 (a placeholder or a typo?)' END,
            CASE WHEN closed_at IS NULL AND closed_at__txt IS NOT NULL THEN 'closed_at: cannot read ' || '''' || replace(closed_at__txt, chr(0), '\0') || '''' || ' as a date' || coalesce(' (date_format ' || _date_format || ' from the mapping file)', '') END,
            CASE WHEN closed_at < DATE '1970-01-01' THEN 'closed_at ' || '''' || replace(closed_at__txt, chr(0), '\0') || '''' || ' is before 1970 (a placeholder for no date?)' END,
            CASE WHEN closed_at >= DATE '2027-05-21' THEN 'closed_at ' || '''' || replace(closed_at__txt, chr(0), '\0') || '''' || ' is more than a year after the day of the run (after 2027-05-20)' END,
            CASE WHEN csat_score IS NULL AND csat_score__txt IS NOT NULL THEN 'csat_score: cannot read ' || '''' || replace(csat_score__txt, chr(0), '\0') || '''' || ' as a number' END,
            CASE WHEN abs(csat_score) > 1e15 THEN 'csat_score ' || '''' || replace(csat_score__txt, chr(0), '\0') || '''' || ' is beyond ±1e15 (a placeholder or a typo?)' END,
            CASE WHEN csat_scale_max IS NULL AND csat_scale_max__txt IS NOT NULL THEN 'csat_scale_max: cannot read ' || '''' || replace(csat_scale_max__txt, chr(0), '\0') || '''' || ' as a number' END,
            CASE WHEN abs(csat_scale_max) > 1e15 THEN 'csat_scale_max ' || '''' || replace(csat_scale_max__txt, chr(0), '\0') || '''' || ' is beyond ±1e15 (a placeholder or a typo?)' END,
            CASE WHEN is_deleted IS NULL AND is_deleted__txt IS NOT NULL THEN 'is_deleted: cannot read ' || '''' || replace(is_deleted__txt, chr(0), '\0') || '''' || ' as true/false' END,
            CASE WHEN contains(source_system, chr(0)) THEN 'source_system ' || '''' || replace(source_system, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN created_at IS NULL AND created_at__txt IS NULL THEN 'no created_at' END,
            CASE WHEN _month < DATE '2021-01-01' THEN 'created_at ' || strftime(_month, '%Y-%m') || ' is before CRM_ROI_HISTORY_START (2021-01-01)' END,
            CASE WHEN _month > DATE '2026-05-01' THEN 'created_at ' || strftime(_month, '%Y-%m') || ' is after the current month' END
        ), '') END AS _problem
    FROM dated
)
SELECT
    -- The columns of crm.tickets in its order, but loaded_from (the write adds it).
    d.ticket_id, d.source_system, d.account_id, d.account_key_ AS account_key, d.owner_id, d.team_ AS team,
    d.status_ AS status, d.priority, d.channel, d.created_at, d.first_response_at_ AS first_response_at,
    d.closed_at_ AS closed_at, d.csat_score, d.csat_scale_max,
    -- What the writes need: the partition, the reason, and where the row came from.
    d._month, d._problem AS _reason, d.is_deleted,
    d._row, d._file_order,
    -- The input's values, only for a row that may be rejected: one with a problem, or one whose ticket_id
    -- repeats in the pull (all but the newest are rejected once this table is built).
    CASE WHEN d._problem IS NOT NULL
           OR (d.source_system, d.ticket_id) IN (
              SELECT source_system, ticket_id FROM _raw_tickets_csv WHERE ticket_id IS NOT NULL GROUP BY ALL HAVING count(*) > 1
           )
         THEN to_json(map_from_entries(list_filter([
             {'k': 'ticket_id', 'v': (d.ticket_id)::VARCHAR},
             {'k': 'account_id', 'v': (d.account_id)::VARCHAR},
             {'k': 'account_external_id', 'v': (d.account_external_id)::VARCHAR},
             {'k': 'account_name', 'v': (d.account_name)::VARCHAR},
             {'k': 'owner_id', 'v': (d.owner_id)::VARCHAR},
             {'k': 'team', 'v': (d.team)::VARCHAR},
             {'k': 'status', 'v': (d.status)::VARCHAR},
             {'k': 'is_closed', 'v': (d.is_closed__txt)::VARCHAR},
             {'k': 'priority', 'v': (d.priority)::VARCHAR},
             {'k': 'channel', 'v': (d.channel)::VARCHAR},
             {'k': 'created_at', 'v': (d.created_at__txt)::VARCHAR},
             {'k': 'first_response_at', 'v': (d.first_response_at__txt)::VARCHAR},
             {'k': 'first_response_ms', 'v': (d.first_response_ms__txt)::VARCHAR},
             {'k': 'closed_at', 'v': (d.closed_at__txt)::VARCHAR},
             {'k': 'csat_score', 'v': (d.csat_score__txt)::VARCHAR},
             {'k': 'csat_scale_max', 'v': (d.csat_scale_max__txt)::VARCHAR},
             {'k': 'is_deleted', 'v': (d.is_deleted__txt)::VARCHAR}
         ], lambda e: e.v IS NOT NULL)))
    END AS _raw,
    -- Signs that a whole file is misread (an unlisted status, a date that is not month-first).
    CASE WHEN d._has_stage_map AND d.status IS NOT NULL AND d._stage_class IS NULL THEN d.status END AS _unmapped_stage,
    CASE WHEN d._date_format IS NULL THEN CASE WHEN d."created_at" IS NULL AND regexp_full_match(d."created_at__txt", '\d{1,2}/\d{1,2}/\d{2,4}.*') THEN 'created_at' WHEN d."first_response_at" IS NULL AND regexp_full_match(d."first_response_at__txt", '\d{1,2}/\d{1,2}/\d{2,4}.*') THEN 'first_response_at' WHEN d."closed_at" IS NULL AND regexp_full_match(d."closed_at__txt", '\d{1,2}/\d{1,2}/\d{2,4}.*') THEN 'closed_at' END END AS _misread_date
FROM checked AS d
