{#
  The staged rows of crm.deals from one pull, rendered by staging/transform.py (staged_sql) with
    raw_table           the pull's typed view (sources' create_raw_view): each field typed, the text of each flag,
                        number and date beside it as <field>__txt, and _row, _file_order, _date_format,
                        _stage_class, _has_stage_map
    staged_table        the TEMP table to create
    reporting_currency  e.g. USD
    problems_sql        a row's reasons, '; '-separated, or NULL; built from the field list (transform._problems)
    raw_json_sql        the input's values of row `d` as JSON (transform.raw_json_sql)
    misread_columns     the columns sources' fail_on_unreadable reads (misread_columns_sql)
  It also reads the lookups loaded before staging, _account_names, _owner_teams, _deal_type_map (transform.load_deal_types)
  and _fx_rates, and the macros of macros.sql.
#}
CREATE OR REPLACE TEMP TABLE {{ staged_table }} AS
WITH
-- Deals: won/closed state, the deal class, the account's matching key, the team and the currency.
derived AS (
    SELECT
        r.*,
        coalesce(r.is_won, FALSE) AS is_won_,
        -- A won deal is closed, whatever the closed flag says.
        coalesce(r.is_closed, r.closed_at IS NOT NULL) OR coalesce(r.is_won, FALSE) AS is_closed_,
        -- An amount without a currency is in the reporting currency.
        coalesce(upper(r.currency), {{ reporting_currency | sql_string }}) AS currency_,
        coalesce(r.team, ot.team) AS team_,
        coalesce(r.account_external_id, ak.account_key, r.account_id) AS account_key_,
        -- The class the deal-type map gives the CRM's value (`deal_types` in the assumptions), else the
        -- value itself when it already is one.
        coalesce(
            dt.deal_type,
            CASE WHEN lower(r.deal_type) IN ('new_business', 'expansion', 'renewal') THEN lower(r.deal_type) END
        ) AS deal_type_
    FROM {{ raw_table }} AS r
    LEFT JOIN _account_names AS an ON an.source_system = r.source_system AND an.account_id = r.account_id
    LEFT JOIN _owner_teams AS ot ON ot.source_system = r.source_system AND ot.owner_id = r.owner_id
    LEFT JOIN _deal_type_map AS dt ON dt.crm_value = r.deal_type
    -- The matching key once per distinct account name (three regular expressions), not once per deal.
    LEFT JOIN (
        SELECT account_name, crm_account_key(account_name) AS account_key
        FROM (
            SELECT DISTINCT coalesce(r2.account_name, an2.account_name) AS account_name
            FROM {{ raw_table }} AS r2
            LEFT JOIN _account_names AS an2 ON an2.source_system = r2.source_system AND an2.account_id = r2.account_id
        )
    ) AS ak ON ak.account_name = coalesce(r.account_name, an.account_name)
),
-- A deal is staged under the month it was created. Its close date counts only once it is closed: an open
-- deal's CloseDate is when it is expected to close.
dated AS (
    SELECT *, date_trunc('month', created_at)::DATE AS _month, CASE WHEN is_closed_ THEN closed_at END AS closed_at_
    FROM derived
),
-- The rate to the reporting currency of the month the deal closed (created, while open), from fx_rates.csv;
-- 1 in the reporting currency itself. No rate is a reason in `checked`.
rated AS (
    SELECT d.*, CASE WHEN d.currency_ = {{ reporting_currency | sql_string }} THEN 1.0 ELSE x.rate END AS _rate
    FROM (SELECT *, date_trunc('month', coalesce(closed_at_, created_at))::DATE AS _fx_month FROM dated) AS d
    LEFT JOIN _fx_rates AS x ON x.currency = d.currency_ AND x.month = d._fx_month
),
-- Every reason the row cannot be staged, or NULL.
checked AS (
    SELECT *,
        {{ problems_sql | indent(8) }} AS _problem
    FROM rated
)
SELECT
    -- The columns of crm.deals in its order, but loaded_from (the write adds it).
    d.deal_id, d.source_system, d.account_id, d.account_key_ AS account_key,
    d.owner_id, d.team_ AS team, d.name, d.stage, d.is_closed_ AS is_closed, d.is_won_ AS is_won,
    d.amount, d.currency_ AS currency, d.amount * d._rate AS amount_reporting,
    d.deal_type_ AS deal_type, d.deal_type AS crm_deal_type, d.lead_source, d.lead_id,
    d.created_at, d.closed_at_ AS closed_at,
    -- What the writes need: the partition, the reason, and where the row came from.
    d._month, d._problem AS _reason, d.is_deleted,
    d._row, d._file_order,
    -- The input's values, only for a row that may be rejected: one with a problem, or one whose deal_id
    -- repeats in the pull (all but the newest are rejected once this table is built); one hash aggregate
    -- over the id column finds those.
    CASE WHEN d._problem IS NOT NULL
           OR (d.source_system, d.deal_id) IN (
              SELECT source_system, deal_id FROM {{ raw_table }} WHERE deal_id IS NOT NULL GROUP BY ALL HAVING count(*) > 1
           )
         THEN {{ raw_json_sql | indent(9) }}
    END AS _raw{{ "," if misread_columns }}
    {% if misread_columns %}
    -- Signs that a whole file is misread (an unlisted stage, a date that is not month-first).
    {% endif %}
    {% for column in misread_columns %}
    {{ column }}{{ "," if not loop.last }}
    {% endfor %}
FROM checked AS d
