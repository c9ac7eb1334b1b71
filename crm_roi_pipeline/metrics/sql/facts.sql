-- What METRICS.md needs to aggregate, written once per ingestion to metrics.fact_*: one row per deal
-- (period months, the won deal's class, whether it acquired its account and when its account did, its
-- resolved lead source), per lead, per spend line, per ticket, and completed activities counted per month. Nothing here depends on the
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
    SELECT source_system, deal_id, account_key, date_trunc('month', closed_at)::DATE AS acquired_month
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
    -- No deal ids: nothing downstream joins on them, and writing a million strings is most of this table's
    -- cost. The account_key is kept: active and repeat customers are distinct accounts, counted per bucket
    -- of months (a window counts an account once, not once per month), and their intervals resample accounts.
    d.account_key IS NOT NULL AS has_account,
    d.account_key,
    -- The month the deal's account became a customer (its acquisition deal's closed month): a repeat customer
    -- of a period is one acquired before the period starts. NULL without an account or before its first win.
    acq.acquired_month,
    -- Retention reads the CRM's own deal_type, not the derived class (lost deals have none): a renewal is a
    -- deal typed `renewal`; a period where no closed deal carries any type cannot say whether renewals happened.
    d.deal_type = 'renewal' AS is_renewal,
    nullif(trim(d.deal_type), '') IS NOT NULL AS has_deal_type,
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
LEFT JOIN acquisition AS acq ON acq.account_key = d.account_key
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

-- One row per ticket: the medians of hours are over tickets, and their intervals resample tickets. Hours are
-- fractional, from the timestamps (microseconds / 3.6e9); a negative time (a reply or close stamped before the
-- ticket's creation) is left out of its median (NULL here), as METRICS.md says.
{{ create }}fact_tickets AS
SELECT
    date_trunc('month', created_at)::DATE AS created_month,
    date_trunc('month', closed_at)::DATE AS closed_month,
    first_response_at IS NOT NULL AS has_first_response,
    CASE WHEN first_response_at >= created_at
         THEN (epoch_us(first_response_at) - epoch_us(created_at)) / 3.6e9 END AS first_response_hours,
    CASE WHEN closed_at >= created_at
         THEN (epoch_us(closed_at) - epoch_us(created_at)) / 3.6e9 END AS resolution_hours,
    -- Rated: a score on its own scale (0 ≤ score ≤ max, max > 0); anything else is unrated. Satisfied: score ≥
    -- 0.8 × max, written as 5 × score ≥ 4 × max so that 4 of 5 or 8 of 10 are not lost to 0.8's binary rounding.
    coalesce(csat_scale_max > 0 AND csat_score >= 0 AND csat_score <= csat_scale_max, false) AS is_rated,
    coalesce(csat_scale_max > 0 AND csat_score >= 0 AND csat_score <= csat_scale_max
             AND 5 * csat_score >= 4 * csat_scale_max, false) AS is_satisfied
FROM crm.tickets;
