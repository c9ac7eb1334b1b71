-- The columns of crm.spend from a typed, checked row `d` but loaded_from (the select list of transform.build_staged).
    d._month AS month, d.category_ AS category, d.channel, d.amount, d.currency_ AS currency,
    d.amount * d._rate AS amount_reporting, d.source_system, d.spend_id
