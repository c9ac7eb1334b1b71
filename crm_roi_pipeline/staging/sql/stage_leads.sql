{#
  The staged rows of crm.leads from one pull, rendered by staging/transform.py (staged_sql) with
    raw_table           the pull's typed view (sources' create_raw_view): each field typed, the text of each flag,
                        number and date beside it as <field>__txt, and _row, _file_order, _date_format
    staged_table        the TEMP table to create
    problems_sql        a row's reasons, '; '-separated, or NULL; built from the field list (transform._problems)
    raw_json_sql        the input's values of row `d` as JSON (transform.raw_json_sql)
    misread_columns     the columns sources' fail_on_unreadable reads (misread_columns_sql)
  It also reads the lookup _owner_teams, loaded before staging, and the macros of macros.sql.
  Leads have no amount, so no exchange rate (no `rated` step).
#}
CREATE OR REPLACE TEMP TABLE {{ staged_table }} AS
WITH
-- Leads: a lead is converted when its flag says so or, without a flag column, when it has a conversion date.
derived AS (
    SELECT
        r.*,
        coalesce(r.is_converted, r.converted_at IS NOT NULL) AS is_converted_,
        coalesce(r.team, ot.team) AS team_
    FROM {{ raw_table }} AS r
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
        {{ problems_sql | indent(8) }} AS _problem
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
              SELECT source_system, lead_id FROM {{ raw_table }} WHERE lead_id IS NOT NULL GROUP BY ALL HAVING count(*) > 1
           )
         THEN {{ raw_json_sql | indent(9) }}
    END AS _raw{{ "," if misread_columns }}
    {% if misread_columns %}
    -- Signs that a whole file is misread (a date that is not month-first).
    {% endif %}
    {% for column in misread_columns %}
    {{ column }}{{ "," if not loop.last }}
    {% endfor %}
FROM checked AS d
