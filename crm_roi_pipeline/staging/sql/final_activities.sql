-- The columns of crm.activities from a typed, checked row `d` but loaded_from (the select list of transform.build_staged).
    d.activity_id, d.source_system, d.type_ AS type, d.status_ AS status,
    d.occurred_at, d.owner_id, d.deal_id_ AS deal_id, d.lead_id_ AS lead_id, d.contact_id_ AS contact_id,
    d.account_id_ AS account_id, d.duration_minutes_ AS duration_minutes
