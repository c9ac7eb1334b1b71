{#
  The staged rows of crm.activities from one pull, rendered by staging/transform.py (staged_sql) with
    raw_table           the pull's typed view (sources' create_raw_view): each field typed, the text of each flag,
                        number and date beside it as <field>__txt, and _row, _file_order, _date_format
    staged_table        the TEMP table to create
    problems_sql        a row's reasons, '; '-separated, or NULL; built from the field list (transform._problems)
    raw_json_sql        the input's values of row `d` as JSON (transform.raw_json_sql)
    misread_columns     the columns sources' fail_on_unreadable reads (misread_columns_sql)
  It also reads the macros of macros.sql. Activities have no amount, so no exchange rate (no `rated` step).
#}
CREATE OR REPLACE TEMP TABLE {{ staged_table }} AS
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
        {% filter indent(8, first=True) %}
        {% include 'sources/salesforce/sql/activity_links.sql' %}
        {% endfilter %}
    -- The macro reads its argument a dozen times: given a column, DuckDB binds the expression behind it once.
    FROM (
        SELECT *,
            -- A subtype naming a channel (Salesforce's TaskSubtype) comes before the type.
            lower(CASE WHEN lower(subtype) IN ('call', 'email', 'listemail', 'cadence', 'linkedin') THEN subtype
                       ELSE coalesce(type, subtype) END) AS _type_lower
        FROM {{ raw_table }}
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
        {{ problems_sql | indent(8) }} AS _problem
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
              SELECT source_system, activity_id FROM {{ raw_table }} WHERE activity_id IS NOT NULL GROUP BY ALL HAVING count(*) > 1
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
