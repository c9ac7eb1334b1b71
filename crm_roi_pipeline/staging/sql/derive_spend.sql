-- Spend: any date in a month stands for that month.
SELECT
    r.*,
    lower(r.category) AS category_,
    coalesce(upper(r.currency), {reporting_currency}) AS currency_
FROM {raw} AS r
