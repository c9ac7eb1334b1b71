-- Leads: a lead is converted when its flag says so or, without a flag column, when it has a conversion date.
SELECT
    r.*,
    coalesce(r.is_converted, r.converted_at IS NOT NULL) AS is_converted_,
    coalesce(r.team, ot.team) AS team_
FROM {raw} AS r
LEFT JOIN _owner_teams AS ot ON ot.source_system = r.source_system AND ot.owner_id = r.owner_id
