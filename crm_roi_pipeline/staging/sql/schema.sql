-- The canonical tables of CONTRACT.md. Timestamps are UTC, stored without a zone.
CREATE SCHEMA IF NOT EXISTS crm;

CREATE TABLE IF NOT EXISTS crm.deals (
    deal_id          VARCHAR NOT NULL,
    source_system    VARCHAR NOT NULL,
    loaded_from      VARCHAR NOT NULL,
    account_id       VARCHAR,
    account_key      VARCHAR,
    owner_id         VARCHAR,
    team             VARCHAR,
    name             VARCHAR,
    stage            VARCHAR,
    is_closed        BOOLEAN NOT NULL,
    is_won           BOOLEAN NOT NULL,
    amount           DOUBLE,
    currency         VARCHAR,
    amount_reporting DOUBLE,
    deal_type        VARCHAR,   -- new_business | expansion | renewal | NULL
    crm_deal_type    VARCHAR,   -- the CRM's own value, as written (what deal_type was mapped from)
    lead_source      VARCHAR,
    lead_id          VARCHAR,
    created_at       TIMESTAMP NOT NULL,
    closed_at        TIMESTAMP  -- NULL while open
);

CREATE TABLE IF NOT EXISTS crm.leads (
    lead_id              VARCHAR NOT NULL,
    source_system        VARCHAR NOT NULL,
    loaded_from          VARCHAR NOT NULL,
    owner_id             VARCHAR,
    team                 VARCHAR,
    lead_source          VARCHAR,
    status               VARCHAR,
    created_at           TIMESTAMP NOT NULL,
    is_converted         BOOLEAN NOT NULL,
    converted_at         TIMESTAMP,
    converted_deal_id    VARCHAR,
    converted_account_id VARCHAR
);

CREATE TABLE IF NOT EXISTS crm.activities (
    activity_id      VARCHAR NOT NULL,
    source_system    VARCHAR NOT NULL,
    loaded_from      VARCHAR NOT NULL,
    type             VARCHAR NOT NULL,  -- call | email | meeting | task | note | other
    status           VARCHAR NOT NULL,  -- completed | open
    occurred_at      TIMESTAMP NOT NULL,
    owner_id         VARCHAR,
    deal_id          VARCHAR,
    lead_id          VARCHAR,
    contact_id       VARCHAR,
    account_id       VARCHAR,
    duration_minutes DOUBLE
);

CREATE TABLE IF NOT EXISTS crm.spend (
    month            DATE NOT NULL,     -- first day of the month
    category         VARCHAR NOT NULL,  -- marketing | sales
    channel          VARCHAR,           -- a lead source, or NULL
    amount           DOUBLE NOT NULL,
    currency         VARCHAR NOT NULL,
    amount_reporting DOUBLE NOT NULL,
    source_system    VARCHAR NOT NULL,
    loaded_from      VARCHAR NOT NULL,
    spend_id         VARCHAR            -- the source's id (a Salesforce campaign), when it has one
);

CREATE TABLE IF NOT EXISTS crm.tickets (
    ticket_id         VARCHAR NOT NULL,
    source_system     VARCHAR NOT NULL,
    loaded_from       VARCHAR NOT NULL,
    account_id        VARCHAR,
    account_key       VARCHAR,
    owner_id          VARCHAR,
    team              VARCHAR,
    status            VARCHAR NOT NULL,  -- open | closed
    priority          VARCHAR,
    channel           VARCHAR,
    created_at        TIMESTAMP NOT NULL,
    first_response_at TIMESTAMP,         -- NULL when unanswered, or when the source does not record it
    closed_at         TIMESTAMP,         -- NULL while open
    csat_score        DOUBLE,            -- as the survey wrote it, on 0 … csat_scale_max
    csat_scale_max    DOUBLE             -- the survey's top score (5, 10, or 2 for HubSpot's 0/1/2)
);

CREATE TABLE IF NOT EXISTS crm.rejects (
    entity          VARCHAR NOT NULL,
    source_system   VARCHAR,
    loaded_from     VARCHAR NOT NULL,
    partition_month DATE,     -- NULL when the row's date could not be read
    source_id       VARCHAR,
    reason          VARCHAR NOT NULL,
    raw             JSON,     -- the mapped fields only, never the whole input row
    run_id          VARCHAR,
    source_file     VARCHAR,
    source_row      BIGINT
);

-- What each staging write of a CSV source read, per entity and month (staging/fingerprints.py): a run plans only
-- the months whose fingerprint moved.
CREATE TABLE IF NOT EXISTS crm.fingerprints (
    source      VARCHAR NOT NULL,
    entity      VARCHAR NOT NULL,
    month       VARCHAR NOT NULL,   -- YYYY-MM, or 'none' for the rows of no partition
    fingerprint VARCHAR NOT NULL,
    staged_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (source, entity, month)
);

-- Change-sync cursors of the API sources: records modified after `cursor` are pulled by the next sync.
CREATE TABLE IF NOT EXISTS crm.sync_state (
    source     VARCHAR NOT NULL,
    object     VARCHAR NOT NULL,
    cursor     TIMESTAMP NOT NULL,
    synced_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (source, object)
);
