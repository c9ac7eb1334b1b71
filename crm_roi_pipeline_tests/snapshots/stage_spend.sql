CREATE OR REPLACE TEMP TABLE _staged_spend_csv AS
WITH
-- Spend: its category in lower case and its currency.
derived AS (
    SELECT
        r.*,
        lower(r.category) AS category_,
        -- An amount without a currency is in the reporting currency.
        coalesce(upper(r.currency), 'USD') AS currency_
    FROM _raw_spend_csv AS r
),
-- Any date in a month stands for that month: a spend line is staged under it.
dated AS (
    SELECT *, date_trunc('month', month)::DATE AS _month
    FROM derived
),
-- The rate to the reporting currency of the spend's month, from fx_rates.csv; 1 in the reporting currency
-- itself. No rate is a reason in `checked`.
rated AS (
    SELECT d.*, CASE WHEN d.currency_ = 'USD' THEN 1.0 ELSE x.rate END AS _rate
    FROM (SELECT *, date_trunc('month', month)::DATE AS _fx_month FROM dated) AS d
    LEFT JOIN _fx_rates AS x ON x.currency = d.currency_ AND x.month = d._fx_month
),
-- Every reason the row cannot be staged, or NULL.
checked AS (
    SELECT *,
        CASE WHEN (is_deleted)
            OR (contains(spend_id, chr(0)))
            OR (month IS NULL AND month__txt IS NOT NULL)
            OR (contains(category, chr(0)))
            OR (contains(channel, chr(0)))
            OR (amount IS NULL AND amount__txt IS NOT NULL)
            OR (abs(amount) > 1e15)
            OR (contains(currency, chr(0)))
            OR (is_deleted IS NULL AND is_deleted__txt IS NOT NULL)
            OR (contains(source_system, chr(0)))
            OR (month IS NULL AND month__txt IS NULL)
            OR (_month < DATE '2021-01-01')
            OR (_month > DATE '2026-05-01')
            OR (amount IS NOT NULL AND _rate IS NULL)
            OR (abs(amount) <= 1e15 AND abs(amount * _rate) > 1e15)
            OR (amount IS NULL AND amount__txt IS NULL)
            OR (category_ IS NULL)
            OR (category_ NOT IN ('marketing', 'sales'))
        THEN nullif(concat_ws('; ',
            CASE WHEN is_deleted THEN 'deleted in the source (IsDeleted is true)' END,
            CASE WHEN contains(spend_id, chr(0)) THEN 'spend_id ' || '''' || replace(spend_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN month IS NULL AND month__txt IS NOT NULL THEN 'month: cannot read ' || '''' || replace(month__txt, chr(0), '\0') || '''' || ' as a date' || coalesce(' (date_format ' || _date_format || ' from the mapping file)', '') END,
            CASE WHEN contains(category, chr(0)) THEN 'category ' || '''' || replace(category, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(channel, chr(0)) THEN 'channel ' || '''' || replace(channel, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN amount IS NULL AND amount__txt IS NOT NULL THEN 'amount: cannot read ' || '''' || replace(amount__txt, chr(0), '\0') || '''' || ' as a number' END,
            CASE WHEN abs(amount) > 1e15 THEN 'amount ' || '''' || replace(amount__txt, chr(0), '\0') || '''' || ' is beyond ±1e15 (a placeholder or a typo?)' END,
            CASE WHEN contains(currency, chr(0)) THEN 'currency ' || '''' || replace(currency, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN is_deleted IS NULL AND is_deleted__txt IS NOT NULL THEN 'is_deleted: cannot read ' || '''' || replace(is_deleted__txt, chr(0), '\0') || '''' || ' as true/false' END,
            CASE WHEN contains(source_system, chr(0)) THEN 'source_system ' || '''' || replace(source_system, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN month IS NULL AND month__txt IS NULL THEN 'no month' END,
            CASE WHEN _month < DATE '2021-01-01' THEN 'month ' || strftime(_month, '%Y-%m') || ' is before CRM_ROI_HISTORY_START (2021-01-01)' END,
            CASE WHEN _month > DATE '2026-05-01' THEN 'month ' || strftime(_month, '%Y-%m') || ' is after the current month' END,
            CASE WHEN amount IS NOT NULL AND _rate IS NULL THEN 'no fx rate for ' || currency_ || ' in ' || strftime(_fx_month, '%Y-%m') || ' (add it to fx_rates.csv)' END,
            CASE WHEN abs(amount) <= 1e15 AND abs(amount * _rate) > 1e15 THEN 'amount ' || '''' || replace(amount__txt, chr(0), '\0') || '''' || ' ' || currency_ || ' at the rate ' || _rate || ' is beyond ±1e15 in the reporting currency (a wrong rate in fx_rates.csv?)' END,
            CASE WHEN amount IS NULL AND amount__txt IS NULL THEN 'no amount' END,
            CASE WHEN category_ IS NULL THEN 'no category (marketing or sales)' END,
            CASE WHEN category_ NOT IN ('marketing', 'sales') THEN 'category ' || '''' || replace(category, chr(0), '\0') || '''' || ' is not marketing or sales' END
        ), '') END AS _problem
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
         THEN to_json(map_from_entries(list_filter([
             {'k': 'spend_id', 'v': (d.spend_id)::VARCHAR},
             {'k': 'month', 'v': (d.month__txt)::VARCHAR},
             {'k': 'category', 'v': (d.category)::VARCHAR},
             {'k': 'channel', 'v': (d.channel)::VARCHAR},
             {'k': 'amount', 'v': (d.amount__txt)::VARCHAR},
             {'k': 'currency', 'v': (d.currency)::VARCHAR},
             {'k': 'is_deleted', 'v': (d.is_deleted__txt)::VARCHAR}
         ], lambda e: e.v IS NOT NULL)))
    END AS _raw,
    -- Signs that a whole file is misread (a date that is not month-first).
    CASE WHEN d._date_format IS NULL THEN CASE WHEN d."month" IS NULL AND regexp_full_match(d."month__txt", '\d{1,2}/\d{1,2}/\d{2,4}.*') THEN 'month' END END AS _misread_date
FROM checked AS d
