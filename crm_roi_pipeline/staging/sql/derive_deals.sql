-- Deals: won/closed state, CloseDate only once closed, deal class, account key, amount in reporting currency.
SELECT
    r.*,
    coalesce(r.is_won, FALSE) AS is_won_,
    coalesce(r.is_closed, r.closed_at IS NOT NULL) OR coalesce(r.is_won, FALSE) AS is_closed_,
    coalesce(upper(r.currency), {reporting_currency}) AS currency_,
    coalesce(r.team, ot.team) AS team_,
    coalesce(r.account_external_id, ak.account_key, r.account_id) AS account_key_,
    coalesce(
        dt.deal_type,
        CASE WHEN lower(r.deal_type) IN ('new_business', 'expansion', 'renewal') THEN lower(r.deal_type) END
    ) AS deal_type_
FROM {raw} AS r
LEFT JOIN _account_names AS an ON an.source_system = r.source_system AND an.account_id = r.account_id
LEFT JOIN _owner_teams AS ot ON ot.source_system = r.source_system AND ot.owner_id = r.owner_id
LEFT JOIN _deal_type_map AS dt ON dt.crm_value = r.deal_type
-- The matching key once per distinct account name (three regular expressions), not once per deal.
LEFT JOIN (
    SELECT account_name, crm_account_key(account_name) AS account_key
    FROM (
        SELECT DISTINCT coalesce(r2.account_name, an2.account_name) AS account_name
        FROM {raw} AS r2
        LEFT JOIN _account_names AS an2 ON an2.source_system = r2.source_system AND an2.account_id = r2.account_id
    )
) AS ak ON ak.account_name = coalesce(r.account_name, an.account_name)
