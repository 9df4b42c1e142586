-- The gateway's catalog: each connection's upstream tools, cached per
-- credential (per-member credentials may see different lists), and the
-- connection's health.

CREATE TABLE connection_tools (
    connection_id  TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    -- 'shared' for the connection's shared (or no) credential.
    credential_key TEXT NOT NULL,
    name           TEXT NOT NULL,
    title          TEXT,
    description    TEXT NOT NULL DEFAULT '',
    input_schema   TEXT NOT NULL,
    output_schema  TEXT,
    -- The upstream's annotations (untrusted hints), JSON.
    annotations    TEXT,
    fetched_at     BIGINT NOT NULL,
    PRIMARY KEY (connection_id, credential_key, name)
);

ALTER TABLE connections ADD COLUMN health TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE connections ADD COLUMN last_error TEXT;
ALTER TABLE connections ADD COLUMN catalog_refreshed_at BIGINT;
