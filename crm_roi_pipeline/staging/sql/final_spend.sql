SELECT
    d._month AS month, d.category_ AS category, d.channel, d.amount, d.currency_ AS currency,
    d.amount * d._rate AS amount_reporting, d.source_system, {loaded_from} AS loaded_from, d.spend_id
