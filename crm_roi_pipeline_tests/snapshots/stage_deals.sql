CREATE OR REPLACE TEMP TABLE _staged_deals_csv AS
WITH
-- Deals: won/closed state, the deal class, the account's matching key, the team and the currency.
derived AS (
    SELECT
        r.*,
        coalesce(r.is_won, FALSE) AS is_won_,
        -- A won deal is closed, whatever the closed flag says.
        coalesce(r.is_closed, r.closed_at IS NOT NULL) OR coalesce(r.is_won, FALSE) AS is_closed_,
        -- An amount without a currency is in the reporting currency.
        coalesce(upper(r.currency), 'USD') AS currency_,
        coalesce(r.team, ot.team) AS team_,
        coalesce(r.account_external_id, ak.account_key, r.account_id) AS account_key_,
        -- The class the deal-type map gives the CRM's value (`deal_types` in the assumptions), else the
        -- value itself when it already is one.
        coalesce(
            dt.deal_type,
            CASE WHEN lower(r.deal_type) IN ('new_business', 'expansion', 'renewal') THEN lower(r.deal_type) END
        ) AS deal_type_
    FROM _raw_deals_csv AS r
    LEFT JOIN _account_names AS an ON an.source_system = r.source_system AND an.account_id = r.account_id
    LEFT JOIN _owner_teams AS ot ON ot.source_system = r.source_system AND ot.owner_id = r.owner_id
    LEFT JOIN _deal_type_map AS dt ON dt.crm_value = r.deal_type
    -- The matching key once per distinct account name (three regular expressions), not once per deal.
    LEFT JOIN (
        SELECT account_name, crm_account_key(account_name) AS account_key
        FROM (
            SELECT DISTINCT coalesce(r2.account_name, an2.account_name) AS account_name
            FROM _raw_deals_csv AS r2
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
    SELECT d.*, CASE WHEN d.currency_ = 'USD' THEN 1.0 ELSE x.rate END AS _rate
    FROM (SELECT *, date_trunc('month', coalesce(closed_at_, created_at))::DATE AS _fx_month FROM dated) AS d
    LEFT JOIN _fx_rates AS x ON x.currency = d.currency_ AND x.month = d._fx_month
),
-- Every reason the row cannot be staged, or NULL.
checked AS (
    SELECT *,
        CASE WHEN (deal_id IS NULL)
            OR (is_deleted)
            OR (contains(deal_id, chr(0)))
            OR (contains(account_id, chr(0)))
            OR (contains(account_external_id, chr(0)))
            OR (contains(account_name, chr(0)))
            OR (contains(owner_id, chr(0)))
            OR (contains(team, chr(0)))
            OR (contains(name, chr(0)))
            OR (contains(stage, chr(0)))
            OR (is_closed IS NULL AND is_closed__txt IS NOT NULL)
            OR (is_won IS NULL AND is_won__txt IS NOT NULL)
            OR (amount IS NULL AND amount__txt IS NOT NULL)
            OR (abs(amount) > 1e15)
            OR (contains(currency, chr(0)))
            OR (contains(deal_type, chr(0)))
            OR (contains(lead_source, chr(0)))
            OR (contains(lead_id, chr(0)))
            OR (created_at IS NULL AND created_at__txt IS NOT NULL)
            OR (closed_at IS NULL AND closed_at__txt IS NOT NULL)
            OR (closed_at_ < DATE '1970-01-01')
            OR (closed_at_ >= DATE '2027-05-21')
            OR (is_deleted IS NULL AND is_deleted__txt IS NOT NULL)
            OR (contains(source_system, chr(0)))
            OR (created_at IS NULL AND created_at__txt IS NULL)
            OR (_month < DATE '2021-01-01')
            OR (_month > DATE '2026-05-01')
            OR (amount IS NOT NULL AND _rate IS NULL)
            OR (abs(amount) <= 1e15 AND abs(amount * _rate) > 1e15)
            OR (is_won AND _stage_class = 'lost')
            OR (is_won AND NOT is_closed AND is_closed__txt IS NOT NULL)
        THEN nullif(concat_ws('; ',
            CASE WHEN deal_id IS NULL THEN 'no deal_id' END,
            CASE WHEN is_deleted THEN 'deleted in the source (IsDeleted is true)' END,
            CASE WHEN contains(deal_id, chr(0)) THEN 'deal_id ' || '''' || replace(deal_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(account_id, chr(0)) THEN 'account_id ' || '''' || replace(account_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(account_external_id, chr(0)) THEN 'account_external_id ' || '''' || replace(account_external_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(account_name, chr(0)) THEN 'account_name ' || '''' || replace(account_name, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(owner_id, chr(0)) THEN 'owner_id ' || '''' || replace(owner_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(team, chr(0)) THEN 'team ' || '''' || replace(team, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(name, chr(0)) THEN 'name ' || '''' || replace(name, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(stage, chr(0)) THEN 'stage ' || '''' || replace(stage, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN is_closed IS NULL AND is_closed__txt IS NOT NULL THEN 'is_closed: cannot read ' || '''' || replace(is_closed__txt, chr(0), '\0') || '''' || ' as true/false' END,
            CASE WHEN is_won IS NULL AND is_won__txt IS NOT NULL THEN 'is_won: cannot read ' || '''' || replace(is_won__txt, chr(0), '\0') || '''' || ' as true/false' END,
            CASE WHEN amount IS NULL AND amount__txt IS NOT NULL THEN 'amount: cannot read ' || '''' || replace(amount__txt, chr(0), '\0') || '''' || ' as a number' END,
            CASE WHEN abs(amount) > 1e15 THEN 'amount ' || '''' || replace(amount__txt, chr(0), '\0') || '''' || ' is beyond ±1e15 (a placeholder or a typo?)' END,
            CASE WHEN contains(currency, chr(0)) THEN 'currency ' || '''' || replace(currency, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(deal_type, chr(0)) THEN 'deal_type ' || '''' || replace(deal_type, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(lead_source, chr(0)) THEN 'lead_source ' || '''' || replace(lead_source, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN contains(lead_id, chr(0)) THEN 'lead_id ' || '''' || replace(lead_id, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN created_at IS NULL AND created_at__txt IS NOT NULL THEN 'created_at: cannot read ' || '''' || replace(created_at__txt, chr(0), '\0') || '''' || ' as a date' || coalesce(' (date_format ' || _date_format || ' from the mapping file)', '') END,
            CASE WHEN closed_at IS NULL AND closed_at__txt IS NOT NULL THEN 'closed_at: cannot read ' || '''' || replace(closed_at__txt, chr(0), '\0') || '''' || ' as a date' || coalesce(' (date_format ' || _date_format || ' from the mapping file)', '') END,
            CASE WHEN closed_at_ < DATE '1970-01-01' THEN 'closed_at ' || '''' || replace(closed_at__txt, chr(0), '\0') || '''' || ' is before 1970 (a placeholder for no date?)' END,
            CASE WHEN closed_at_ >= DATE '2027-05-21' THEN 'closed_at ' || '''' || replace(closed_at__txt, chr(0), '\0') || '''' || ' is more than a year after the day of the run (after 2027-05-20)' END,
            CASE WHEN is_deleted IS NULL AND is_deleted__txt IS NOT NULL THEN 'is_deleted: cannot read ' || '''' || replace(is_deleted__txt, chr(0), '\0') || '''' || ' as true/false' END,
            CASE WHEN contains(source_system, chr(0)) THEN 'source_system ' || '''' || replace(source_system, chr(0), '\0') || '''' || ' holds a NUL byte' END,
            CASE WHEN created_at IS NULL AND created_at__txt IS NULL THEN 'no created_at' END,
            CASE WHEN _month < DATE '2021-01-01' THEN 'created_at ' || strftime(_month, '%Y-%m') || ' is before CRM_ROI_HISTORY_START (2021-01-01)' END,
            CASE WHEN _month > DATE '2026-05-01' THEN 'created_at ' || strftime(_month, '%Y-%m') || ' is after the current month' END,
            CASE WHEN amount IS NOT NULL AND _rate IS NULL THEN 'no fx rate for ' || currency_ || ' in ' || strftime(_fx_month, '%Y-%m') || ' (add it to fx_rates.csv)' END,
            CASE WHEN abs(amount) <= 1e15 AND abs(amount * _rate) > 1e15 THEN 'amount ' || '''' || replace(amount__txt, chr(0), '\0') || '''' || ' ' || currency_ || ' at the rate ' || _rate || ' is beyond ±1e15 in the reporting currency (a wrong rate in fx_rates.csv?)' END,
            CASE WHEN is_won AND _stage_class = 'lost' THEN 'is_won ' || '''' || replace(coalesce(is_won__txt, 'true'), chr(0), '\0') || '''' || ' but stage ' || '''' || replace(stage, chr(0), '\0') || '''' || ' is lost' END,
            CASE WHEN is_won AND NOT is_closed AND is_closed__txt IS NOT NULL THEN 'is_won ' || '''' || replace(coalesce(is_won__txt, 'true'), chr(0), '\0') || '''' || ' but is_closed ' || '''' || replace(is_closed__txt, chr(0), '\0') || '''' END
        ), '') END AS _problem
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
              SELECT source_system, deal_id FROM _raw_deals_csv WHERE deal_id IS NOT NULL GROUP BY ALL HAVING count(*) > 1
           )
         THEN to_json(map_from_entries(list_filter([
             {'k': 'deal_id', 'v': (d.deal_id)::VARCHAR},
             {'k': 'account_id', 'v': (d.account_id)::VARCHAR},
             {'k': 'account_external_id', 'v': (d.account_external_id)::VARCHAR},
             {'k': 'account_name', 'v': (d.account_name)::VARCHAR},
             {'k': 'owner_id', 'v': (d.owner_id)::VARCHAR},
             {'k': 'team', 'v': (d.team)::VARCHAR},
             {'k': 'name', 'v': (d.name)::VARCHAR},
             {'k': 'stage', 'v': (d.stage)::VARCHAR},
             {'k': 'is_closed', 'v': (d.is_closed__txt)::VARCHAR},
             {'k': 'is_won', 'v': (d.is_won__txt)::VARCHAR},
             {'k': 'amount', 'v': (d.amount__txt)::VARCHAR},
             {'k': 'currency', 'v': (d.currency)::VARCHAR},
             {'k': 'deal_type', 'v': (d.deal_type)::VARCHAR},
             {'k': 'lead_source', 'v': (d.lead_source)::VARCHAR},
             {'k': 'lead_id', 'v': (d.lead_id)::VARCHAR},
             {'k': 'created_at', 'v': (d.created_at__txt)::VARCHAR},
             {'k': 'closed_at', 'v': (d.closed_at__txt)::VARCHAR},
             {'k': 'is_deleted', 'v': (d.is_deleted__txt)::VARCHAR}
         ], lambda e: e.v IS NOT NULL)))
    END AS _raw,
    -- Signs that a whole file is misread (an unlisted stage, a date that is not month-first).
    CASE WHEN d._has_stage_map AND d.stage IS NOT NULL AND d._stage_class IS NULL THEN d.stage END AS _unmapped_stage,
    CASE WHEN d._date_format IS NULL THEN CASE WHEN d."created_at" IS NULL AND regexp_full_match(d."created_at__txt", '\d{1,2}/\d{1,2}/\d{2,4}.*') THEN 'created_at' WHEN d."closed_at" IS NULL AND regexp_full_match(d."closed_at__txt", '\d{1,2}/\d{1,2}/\d{2,4}.*') THEN 'closed_at' END END AS _misread_date
FROM checked AS d
