-- What METRICS.md needs to aggregate, written once per ingestion to metrics.fact_*: one row per deal
-- (period months, the won deal's class, whether it acquired its account, its resolved lead source), per
-- lead, per spend line, and completed activities counted per month. Nothing here depends on the
-- assumptions, so changing them never leaves these tables stale; the conversion window applies on reading.

{{ create }}fact_deals AS
WITH d AS (
    SELECT *,
           nullif(trim(lead_source), '') AS own_source,
           CASE WHEN deal_type IN ('new_business', 'expansion', 'renewal') THEN deal_type END AS given_class
    FROM crm.deals
),
-- An account's acquisition deal: its first won deal of any class, by closed_at then deal_id.
acquisition AS (
    SELECT source_system, deal_id
    FROM d
    WHERE is_won AND closed_at IS NOT NULL AND account_key IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY account_key ORDER BY closed_at, deal_id) = 1
),
-- The earliest created lead converted into each deal.
converting_lead AS (
    SELECT source_system, converted_deal_id AS deal_id, nullif(trim(lead_source), '') AS source
    FROM crm.leads
    WHERE converted_deal_id IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY source_system, converted_deal_id ORDER BY created_at, lead_id) = 1
),
-- The lead a deal names, for deals without a source of their own: only those leads are looked up, since a
-- hash table of every lead costs more than the join saves.
named_lead AS (
    SELECT source_system, lead_id, nullif(trim(lead_source), '') AS source FROM crm.leads
    WHERE (source_system, lead_id) IN (SELECT source_system, lead_id FROM d WHERE own_source IS NULL AND lead_id IS NOT NULL)
)
SELECT
    -- No ids: nothing downstream joins on them, and writing a million strings is most of this table's cost.
    d.account_key IS NOT NULL AS has_account,
    d.is_won,
    d.is_closed OR d.is_won AS is_closed,
    d.created_at,
    d.closed_at,
    date_trunc('month', d.created_at)::DATE AS created_month,
    date_trunc('month', d.closed_at)::DATE AS closed_month,
    coalesce(d.amount_reporting, 0) AS amount,
    CASE
        WHEN d.given_class IS NOT NULL THEN d.given_class
        WHEN a.deal_id IS NOT NULL THEN 'new_business'
        WHEN d.account_key IS NULL THEN 'new_business'
        ELSE 'expansion'
    END AS class,
    a.deal_id IS NOT NULL AS is_acquisition,
    coalesce(d.own_source, cl.source, nl.source, 'Unknown') AS lead_source,
    -- Days from the created_at date to the closed_at date; a close before creation is left out.
    CASE WHEN d.closed_at::DATE >= d.created_at::DATE
         THEN date_diff('day', d.created_at::DATE, d.closed_at::DATE) END AS days_to_close
FROM d
LEFT JOIN acquisition AS a ON a.source_system = d.source_system AND a.deal_id = d.deal_id
LEFT JOIN converting_lead AS cl ON cl.source_system = d.source_system AND cl.deal_id = d.deal_id
LEFT JOIN named_lead AS nl ON nl.source_system = d.source_system AND nl.lead_id = d.lead_id;

{{ create }}fact_leads AS
SELECT
    date_trunc('month', created_at)::DATE AS created_month,
    coalesce(nullif(trim(lead_source), ''), 'Unknown') AS lead_source,
    created_at,
    is_converted AND converted_at IS NOT NULL AS is_converted,
    converted_at
FROM crm.leads;

-- Per month, not per activity: the figures only count them, and five million rows would be copied for that.
{{ create }}fact_activities AS
SELECT date_trunc('month', occurred_at)::DATE AS month, count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) AS activities
FROM crm.activities
GROUP BY ALL;

{{ create }}fact_spend AS
SELECT month, coalesce(amount_reporting, 0) AS amount, nullif(trim(channel), '') AS channel
FROM crm.spend;
