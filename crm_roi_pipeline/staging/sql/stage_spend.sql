{#
  The staged rows of crm.spend from one pull, rendered by staging/transform.py (staged_sql) with
    raw_table           the pull's typed view (sources' create_raw_view): each field typed, the text of each flag,
                        number and date beside it as <field>__txt, and _row, _file_order, _date_format
    staged_table        the TEMP table to create
    reporting_currency  e.g. USD
    problems_sql        a row's reasons, '; '-separated, or NULL; built from the field list (transform._problems)
    raw_json_sql        the input's values of row `d` as JSON (transform.raw_json_sql)
    misread_columns     the columns sources' fail_on_unreadable reads (misread_columns_sql)
  It also reads the lookup _fx_rates, loaded before staging, and the macros of macros.sql.
#}
CREATE OR REPLACE TEMP TABLE {{ staged_table }} AS
WITH
-- Spend: its category in lower case and its currency.
derived AS (
    SELECT
        r.*,
        lower(r.category) AS category_,
        -- An amount without a currency is in the reporting currency.
        coalesce(upper(r.currency), {{ reporting_currency | sql_string }}) AS currency_
    FROM {{ raw_table }} AS r
),
-- Any date in a month stands for that month: a spend line is staged under it.
dated AS (
    SELECT *, date_trunc('month', month)::DATE AS _month
    FROM derived
),
-- The rate to the reporting currency of the spend's month, from fx_rates.csv; 1 in the reporting currency
-- itself. No rate is a reason in `checked`.
rated AS (
    SELECT d.*, CASE WHEN d.currency_ = {{ reporting_currency | sql_string }} THEN 1.0 ELSE x.rate END AS _rate
    FROM (SELECT *, date_trunc('month', month)::DATE AS _fx_month FROM dated) AS d
    LEFT JOIN _fx_rates AS x ON x.currency = d.currency_ AND x.month = d._fx_month
),
-- Every reason the row cannot be staged, or NULL.
checked AS (
    SELECT *,
        {{ problems_sql | indent(8) }} AS _problem
    FROM rated
)
SELECT
    -- The columns of crm.spend in its order, but loaded_from (the write adds it).
    d._month AS month, d.category_ AS category, d.channel, d.amount, d.currency_ AS currency,
    d.amount * d._rate AS amount_reporting, d.source_system, d.spend_id,
    -- What the writes need: the partition, the reason, and where the row came from.
    d._month, d._problem AS _reason, d.is_deleted,
    d._row, d._file_order,
    -- The input's values, only for a row with a problem (a spend line is never rejected as a duplicate).
    CASE WHEN d._problem IS NOT NULL
         THEN {{ raw_json_sql | indent(9) }}
    END AS _raw{{ "," if misread_columns }}
    {% if misread_columns %}
    -- Signs that a whole file is misread (a date that is not month-first).
    {% endif %}
    {% for column in misread_columns %}
    {{ column }}{{ "," if not loop.last }}
    {% endfor %}
FROM checked AS d
