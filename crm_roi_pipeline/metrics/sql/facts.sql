-- One row per deal, lead, activity and spend line, with what METRICS.md needs to aggregate them:
-- period months, the won deal's class, whether it acquired its account, and its resolved lead source.
-- {conversion_window_days} is an integer from the validated assumptions.

CREATE OR REPLACE TEMP TABLE _deals AS
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
named_lead AS (
    SELECT source_system, lead_id, nullif(trim(lead_source), '') AS source FROM crm.leads
)
SELECT
    d.source_system,
    d.deal_id,
    d.account_key,
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

CREATE OR REPLACE TEMP TABLE _leads AS
SELECT
    date_trunc('month', created_at)::DATE AS created_month,
    coalesce(nullif(trim(lead_source), ''), 'Unknown') AS lead_source,
    created_at,
    is_converted AND converted_at IS NOT NULL
        AND converted_at <= created_at + INTERVAL ({conversion_window_days}) DAY AS converted_in_window
FROM crm.leads;

CREATE OR REPLACE TEMP TABLE _activities AS
SELECT date_trunc('month', occurred_at)::DATE AS month, status = 'completed' AS is_completed
FROM crm.activities;

CREATE OR REPLACE TEMP TABLE _spend AS
SELECT month, coalesce(amount_reporting, 0) AS amount, nullif(trim(channel), '') AS channel
FROM crm.spend;
