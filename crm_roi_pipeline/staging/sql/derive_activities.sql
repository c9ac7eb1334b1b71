-- Activities: Salesforce's polymorphic WhatId/WhoId typed by key prefix (006 opportunity, 001 account,
-- 00Q lead, 003 contact); type and status normalised; duration in minutes from whichever unit was given.
SELECT
    r.*,
    crm_activity_type(
        CASE WHEN lower(r.subtype) IN ('call', 'email', 'listemail', 'cadence', 'linkedin') THEN r.subtype
             ELSE coalesce(r.type, r.subtype) END
    ) AS type_,
    CASE
        WHEN r.is_closed IS NOT NULL THEN CASE WHEN r.is_closed THEN 'completed' ELSE 'open' END
        WHEN crm_activity_open(r.status) THEN 'open'
        ELSE 'completed'
    END AS status_,
    coalesce(r.deal_id, CASE WHEN r.what_id LIKE '006%' THEN r.what_id END) AS deal_id_,
    coalesce(r.account_id, CASE WHEN r.what_id LIKE '001%' THEN r.what_id END) AS account_id_,
    coalesce(r.lead_id, CASE WHEN r.who_id LIKE '00Q%' THEN r.who_id END) AS lead_id_,
    coalesce(r.contact_id, CASE WHEN r.who_id LIKE '003%' THEN r.who_id END) AS contact_id_,
    coalesce(
        r.duration_minutes,
        r.duration_seconds / 60.0,
        r.duration_ms / 60000.0,
        epoch(TRY_CAST(r.duration_hms AS INTERVAL)) / 60.0
    ) AS duration_minutes_
FROM {raw} AS r
