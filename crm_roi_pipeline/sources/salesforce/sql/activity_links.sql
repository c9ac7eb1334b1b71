{#
  Select-list lines over a raw activities row `r` (the ids as the input wrote them): included by
  staging/sql/stage_activities.sql. Salesforce's own SQL, so it lives with the Salesforce source.
#}
-- What a Salesforce activity is about and whom it is with: Tasks and Events name them in two polymorphic
-- fields, WhatId (an opportunity or an account) and WhoId (a lead or a contact), whose object only the key
-- prefix every Salesforce id starts with tells: 006 opportunity, 001 account, 00Q lead, 003 contact.
-- An id the input gives in a column of its own comes first.
coalesce(r.deal_id, CASE WHEN r.what_id LIKE '006%' THEN r.what_id END) AS deal_id_,
coalesce(r.account_id, CASE WHEN r.what_id LIKE '001%' THEN r.what_id END) AS account_id_,
coalesce(r.lead_id, CASE WHEN r.who_id LIKE '00Q%' THEN r.who_id END) AS lead_id_,
coalesce(r.contact_id, CASE WHEN r.who_id LIKE '003%' THEN r.who_id END) AS contact_id_
