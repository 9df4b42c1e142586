-- The rest of a connection's catalog: the resources, resource templates and
-- prompts its upstream lists, cached per credential like its tools, so a
-- list request is answered from here, never by a live call upstream. Each
-- list is kept whole, as the upstream sent its items (all pages joined).

CREATE TABLE connection_listings (
    connection_id  TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    credential_key TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('resources', 'resource_templates', 'prompts')),
    -- A JSON array of the upstream's items.
    items          TEXT NOT NULL,
    fetched_at     BIGINT NOT NULL,
    PRIMARY KEY (connection_id, credential_key, kind)
);

-- Why a fetched tool is not offered (a name that is empty or over 128
-- characters, an input schema that is not a JSON object or does not
-- compile); NULL for a tool that is. Shown with the connection's health.
ALTER TABLE connection_tools ADD COLUMN problem TEXT;
