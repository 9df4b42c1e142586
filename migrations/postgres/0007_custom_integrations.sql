-- Integrations an org's admins add to the shipped catalog: the same shape
-- as a shipped entry (JSON, validated before it is stored).

CREATE TABLE custom_integrations (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    -- The entry's own id ([a-z0-9-]); never a shipped entry's.
    integration_id TEXT NOT NULL,
    definition     TEXT NOT NULL,
    created_by     TEXT REFERENCES accounts(id) ON DELETE SET NULL,
    created_at     BIGINT NOT NULL,
    UNIQUE (org_id, integration_id)
);
