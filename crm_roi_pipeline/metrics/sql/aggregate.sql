-- Every figure of METRICS.md for each bucket of months (`_buckets`: month -> bucket) and, when
-- {{ by_source }}, each lead source. Counts and sums are totals over the bucket; rates are pooled.
-- Presence of leads, activities and spend decides NULL versus 0: per bucket when {{ presence_per_bucket }}
-- (comparison windows), else for the whole table (the monthly series); tickets likewise.
-- Renewal figures are NULL in every bucket when no deal is typed `renewal`, and in a bucket where no deal
-- closed in it carries any deal_type (METRICS.md, "Retention and customer value"), whatever the grouping.
-- Distinct accounts (active, repeat customers) are counted once per bucket, so a window counts an account
-- once however many of its months it won in; a bucket may share months with another (the 12-month spans
-- of customer_lifetime_value overlap the windows), each bucket is aggregated on its own.
WITH
starts AS (SELECT bucket, min(month) AS first_month FROM _buckets GROUP BY bucket),
closed AS (
    SELECT b.bucket, CASE WHEN {{ by_source }} THEN d.lead_source ELSE 'all' END AS dim, s.first_month, d.*
    FROM _deals AS d JOIN _buckets AS b ON b.month = d.closed_month JOIN starts AS s ON s.bucket = b.bucket
    WHERE d.is_closed
),
deal_figures AS (
    SELECT bucket, dim,
        count(*) FILTER (WHERE is_won) AS win_count,
        count(*) FILTER (WHERE NOT is_won) AS loss_count,
        coalesce(sum(amount) FILTER (WHERE is_won), 0) AS won_revenue,
        median(days_to_close) FILTER (WHERE is_won) AS median_days_to_close,
        count(*) FILTER (WHERE is_won AND (is_acquisition OR (NOT has_account AND class = 'new_business')))
            AS new_customers,
        coalesce(sum(amount) FILTER (WHERE is_won AND class = 'new_business'), 0) AS new_business_revenue,
        coalesce(sum(amount) FILTER (WHERE is_won AND class = 'expansion'), 0) AS expansion_revenue,
        count(*) FILTER (WHERE is_won AND class = 'expansion') AS expansion_wins,
        count(*) FILTER (WHERE is_won AND class <> 'renewal') AS non_renewal_wins,
        count(*) FILTER (WHERE is_won AND is_renewal) AS renewals_won,
        count(*) FILTER (WHERE NOT is_won AND is_renewal) AS renewals_lost,
        coalesce(sum(amount) FILTER (WHERE is_won AND is_renewal), 0) AS renewal_won_amount,
        coalesce(sum(amount) FILTER (WHERE is_renewal), 0) AS renewal_closed_amount,
        count(DISTINCT account_key) FILTER (WHERE is_won) AS active_customers,
        -- acquired before the bucket starts: the account was a customer already when the period began
        count(DISTINCT account_key) FILTER (WHERE is_won AND acquired_month < first_month) AS repeat_customers,
        coalesce(sum(amount) FILTER (WHERE is_won AND has_account), 0) AS account_revenue
    FROM closed GROUP BY ALL
),
created AS (
    SELECT b.bucket, CASE WHEN {{ by_source }} THEN d.lead_source ELSE 'all' END AS dim, count(*) AS deals_created
    FROM _deals AS d JOIN _buckets AS b ON b.month = d.created_month GROUP BY ALL
),
lead_figures AS (
    SELECT b.bucket, CASE WHEN {{ by_source }} THEN l.lead_source ELSE 'all' END AS dim,
           count(*) AS leads_created, count(*) FILTER (WHERE l.converted_in_window) AS leads_converted
    FROM _leads AS l JOIN _buckets AS b ON b.month = l.created_month GROUP BY ALL
),
activity_figures AS (
    SELECT b.bucket, 'all' AS dim, sum(a.completed) AS activities
    FROM _activities AS a JOIN _buckets AS b ON b.month = a.month GROUP BY ALL
),
tickets_created AS (
    SELECT b.bucket, 'all' AS dim, count(*) AS tickets_created,
           count(*) FILTER (WHERE t.has_first_response) AS answered_tickets,
           -- over answered tickets; first_response_hours is NULL for a negative time, which median skips
           median(t.first_response_hours) AS median_first_response_hours
    FROM _tickets AS t JOIN _buckets AS b ON b.month = t.created_month GROUP BY ALL
),
tickets_closed AS (
    SELECT b.bucket, 'all' AS dim, count(*) AS tickets_closed,
           median(t.resolution_hours) AS median_resolution_hours,
           count(*) FILTER (WHERE t.is_rated) AS rated_tickets,
           count(*) FILTER (WHERE t.is_satisfied) AS satisfied_tickets
    FROM _tickets AS t JOIN _buckets AS b ON b.month = t.closed_month GROUP BY ALL
),
spend_figures AS (
    -- By source, only spend whose channel is that source; spend with no channel is in no source's row.
    SELECT b.bucket, CASE WHEN {{ by_source }} THEN s.channel ELSE 'all' END AS dim, sum(s.amount) AS spend
    FROM _spend AS s JOIN _buckets AS b ON b.month = s.month
    WHERE NOT {{ by_source }} OR s.channel IS NOT NULL
    GROUP BY ALL
),
presence AS (
    SELECT bucket,
        CASE WHEN {{ presence_per_bucket }}
             THEN EXISTS (SELECT 1 FROM _leads AS l JOIN _buckets AS x ON x.month = l.created_month WHERE x.bucket = b.bucket)
             ELSE EXISTS (SELECT 1 FROM _leads) END AS has_leads,
        CASE WHEN {{ presence_per_bucket }}
             THEN EXISTS (SELECT 1 FROM _activities AS a JOIN _buckets AS x ON x.month = a.month WHERE x.bucket = b.bucket)
             ELSE EXISTS (SELECT 1 FROM _activities) END AS has_activities,
        CASE WHEN {{ presence_per_bucket }}
             THEN EXISTS (SELECT 1 FROM _spend AS s JOIN _buckets AS x ON x.month = s.month WHERE x.bucket = b.bucket)
             ELSE EXISTS (SELECT 1 FROM _spend) END AS has_spend,
        CASE WHEN {{ presence_per_bucket }}
             THEN EXISTS (SELECT 1 FROM _tickets AS t JOIN _buckets AS x ON x.month = t.created_month WHERE x.bucket = b.bucket)
             ELSE EXISTS (SELECT 1 FROM _tickets) END AS has_tickets,
        EXISTS (SELECT 1 FROM _deals WHERE is_renewal)
            AND EXISTS (SELECT 1 FROM _deals AS d JOIN _buckets AS x ON x.month = d.closed_month
                        WHERE x.bucket = b.bucket AND d.is_closed AND d.has_deal_type) AS has_renewal_data
    FROM (SELECT DISTINCT bucket FROM _buckets) AS b
),
dims AS (
    SELECT 'all' AS dim WHERE NOT {{ by_source }}
    UNION SELECT dim FROM deal_figures WHERE {{ by_source }}
    UNION SELECT dim FROM created WHERE {{ by_source }}
    UNION SELECT dim FROM lead_figures WHERE {{ by_source }}
    UNION SELECT dim FROM spend_figures WHERE {{ by_source }}
),
totals AS (
    SELECT
        p.bucket, g.dim,
        coalesce(df.win_count, 0) AS win_count,
        coalesce(df.loss_count, 0) AS loss_count,
        coalesce(df.won_revenue, 0) AS won_revenue,
        df.median_days_to_close,
        coalesce(df.new_customers, 0) AS new_customers,
        coalesce(df.new_business_revenue, 0) AS new_business_revenue,
        coalesce(df.expansion_revenue, 0) AS expansion_revenue,
        coalesce(df.expansion_wins, 0) AS expansion_wins,
        coalesce(df.non_renewal_wins, 0) AS non_renewal_wins,
        coalesce(c.deals_created, 0) AS deals_created,
        CASE WHEN p.has_leads THEN coalesce(lf.leads_created, 0) END AS leads_created,
        CASE WHEN p.has_leads THEN coalesce(lf.leads_converted, 0) END AS leads_converted,
        CASE WHEN p.has_activities THEN coalesce(af.activities, 0) END AS activities,
        CASE WHEN p.has_spend THEN coalesce(sf.spend, 0) END AS spend,
        CASE WHEN p.has_renewal_data THEN coalesce(df.renewals_won, 0) END AS renewals_won,
        CASE WHEN p.has_renewal_data THEN coalesce(df.renewals_lost, 0) END AS renewals_lost,
        CASE WHEN p.has_renewal_data THEN coalesce(df.renewal_won_amount, 0) END AS renewal_won_amount,
        CASE WHEN p.has_renewal_data THEN coalesce(df.renewal_closed_amount, 0) END AS renewal_closed_amount,
        coalesce(df.active_customers, 0) AS active_customers,
        coalesce(df.repeat_customers, 0) AS repeat_customers,
        coalesce(df.account_revenue, 0) AS account_revenue,
        CASE WHEN p.has_tickets THEN coalesce(tc.tickets_created, 0) END AS tickets_created,
        CASE WHEN p.has_tickets THEN coalesce(tc.answered_tickets, 0) END AS answered_tickets,
        CASE WHEN p.has_tickets THEN tc.median_first_response_hours END AS median_first_response_hours,
        CASE WHEN p.has_tickets THEN coalesce(tx.tickets_closed, 0) END AS tickets_closed,
        CASE WHEN p.has_tickets THEN tx.median_resolution_hours END AS median_resolution_hours,
        CASE WHEN p.has_tickets THEN coalesce(tx.rated_tickets, 0) END AS rated_tickets,
        CASE WHEN p.has_tickets THEN coalesce(tx.satisfied_tickets, 0) END AS satisfied_tickets
    FROM presence AS p
    CROSS JOIN dims AS g
    LEFT JOIN deal_figures AS df ON df.bucket = p.bucket AND df.dim = g.dim
    LEFT JOIN created AS c ON c.bucket = p.bucket AND c.dim = g.dim
    LEFT JOIN lead_figures AS lf ON lf.bucket = p.bucket AND lf.dim = g.dim
    LEFT JOIN activity_figures AS af ON af.bucket = p.bucket AND af.dim = g.dim
    LEFT JOIN spend_figures AS sf ON sf.bucket = p.bucket AND sf.dim = g.dim
    LEFT JOIN tickets_created AS tc ON tc.bucket = p.bucket AND tc.dim = g.dim
    LEFT JOIN tickets_closed AS tx ON tx.bucket = p.bucket AND tx.dim = g.dim
)
SELECT
    bucket, dim,
    win_count, loss_count,
    win_count / nullif(win_count + loss_count, 0) AS win_rate,
    won_revenue,
    won_revenue / nullif(win_count, 0) AS avg_deal_size,
    median_days_to_close,
    new_customers, new_business_revenue, expansion_revenue,
    new_business_revenue + expansion_revenue AS net_new_revenue,
    expansion_wins / nullif(non_renewal_wins, 0) AS upsell_rate,
    expansion_wins, non_renewal_wins,  -- upsell_rate's counts, for its interval
    spend,
    spend / nullif(new_customers, 0) AS cac,
    leads_created, leads_converted,
    leads_converted / nullif(leads_created, 0) AS lead_conversion_rate,
    deals_created,
    activities,
    activities / nullif(win_count, 0) AS activities_per_win,
    renewals_won, renewals_lost,
    renewals_won / nullif(renewals_won + renewals_lost, 0) AS renewal_rate,
    1 - renewals_won / nullif(renewals_won + renewals_lost, 0) AS churn_rate,
    renewal_won_amount / nullif(renewal_closed_amount, 0) AS renewal_revenue_rate,
    active_customers, repeat_customers,
    repeat_customers / nullif(active_customers, 0) AS repeat_customer_rate,
    account_revenue / nullif(active_customers, 0) AS revenue_per_customer,
    tickets_created, tickets_closed,
    answered_tickets / nullif(tickets_created, 0) AS first_response_rate,
    median_first_response_hours, median_resolution_hours,
    satisfied_tickets / nullif(rated_tickets, 0) AS csat_rate,
    -- the counts behind the rates, for their intervals
    renewals_won + renewals_lost AS renewal_decisions, answered_tickets, rated_tickets, satisfied_tickets
FROM totals
