-- The MCP endpoint: the JSON-RPC method of each audited MCP request, and
-- the legacy (2025-11-25) sessions, shared by every replica.

ALTER TABLE audit_events ADD COLUMN method TEXT;

CREATE TABLE mcp_sessions (
    id              TEXT PRIMARY KEY,
    -- The client's initialize params (JSON), replayed when another replica
    -- or a restarted process picks the session up.
    init_params     TEXT,
    -- Who opened the session: a request with another principal's token
    -- cannot use it (token rotation keeps the same account and org).
    account_id      TEXT,
    org_id          TEXT,
    log_level       TEXT,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL
);
CREATE INDEX mcp_sessions_last_seen ON mcp_sessions (last_seen_at);
