-- The columns of crm.leads from a typed, checked row `d` but loaded_from (the select list of transform.build_staged).
    d.lead_id, d.source_system, d.owner_id, d.team_ AS team, d.lead_source,
    d.status, d.created_at, d.is_converted_ AS is_converted, d.converted_at, d.converted_deal_id,
    d.converted_account_id
