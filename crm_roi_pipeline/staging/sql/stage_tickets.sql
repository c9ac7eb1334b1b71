{#
  The staged rows of crm.tickets from one pull, rendered by staging/transform.py (staged_sql) with
    raw_table           the pull's typed view (sources' create_raw_view): each field typed, the text of each flag,
                        number and date beside it as <field>__txt, and _row, _file_order, _date_format,
                        _stage_class, _has_stage_map
    staged_table        the TEMP table to create
    problems_sql        a row's reasons, '; '-separated, or NULL; built from the field list (transform._problems)
    raw_json_sql        the input's values of row `d` as JSON (transform.raw_json_sql)
    misread_columns     the columns sources' fail_on_unreadable reads (misread_columns_sql)
  It also reads the lookups loaded before staging, _account_names, _owner_teams and _first_responses (a
  Salesforce case's first-response milestone), and the macros of macros.sql. Tickets have no amount, so no
  exchange rate (no `rated` step).
#}
CREATE OR REPLACE TEMP TABLE {{ staged_table }} AS
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
    FROM {{ raw_table }} AS r
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
            FROM {{ raw_table }} AS r2
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
        {{ problems_sql | indent(8) }} AS _problem
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
              SELECT source_system, ticket_id FROM {{ raw_table }} WHERE ticket_id IS NOT NULL GROUP BY ALL HAVING count(*) > 1
           )
         THEN {{ raw_json_sql | indent(9) }}
    END AS _raw{{ "," if misread_columns }}
    {% if misread_columns %}
    -- Signs that a whole file is misread (an unlisted status, a date that is not month-first).
    {% endif %}
    {% for column in misread_columns %}
    {{ column }}{{ "," if not loop.last }}
    {% endfor %}
FROM checked AS d
