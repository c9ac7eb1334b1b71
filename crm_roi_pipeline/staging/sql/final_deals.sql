-- The columns of crm.deals from a typed, checked row `d` but loaded_from (the select list of transform.build_staged).
    d.deal_id, d.source_system, d.account_id, d.account_key_ AS account_key,
    d.owner_id, d.team_ AS team, d.name, d.stage, d.is_closed_ AS is_closed, d.is_won_ AS is_won,
    d.amount, d.currency_ AS currency, d.amount * d._rate AS amount_reporting,
    d.deal_type_ AS deal_type, d.deal_type AS crm_deal_type, d.lead_source, d.lead_id,
    d.created_at, d.closed_at_ AS closed_at
