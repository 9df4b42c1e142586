-- The gateway: connections to upstream MCP servers published by an org's
-- admins, their sealed shared credentials, and who may use them.

CREATE TABLE connections (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    -- [a-z0-9-]: no underscore, so `{slug}_{tool}` splits unambiguously.
    slug            TEXT NOT NULL,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    transport       TEXT NOT NULL CHECK (transport IN ('streamable_http', 'stdio')),
    -- streamable_http: the upstream URL.
    url             TEXT,
    -- stdio: a command on the operator's allow-list (never a free command line) and its arguments (JSON array).
    command         TEXT,
    args            TEXT NOT NULL DEFAULT '[]',
    credential_mode TEXT NOT NULL CHECK (credential_mode IN ('none', 'shared', 'per_member')),
    environment     TEXT CHECK (environment IN ('sandbox', 'production')),
    -- JSON arrays of tool names, or NULL for no list.
    tool_allow      TEXT,
    tool_deny       TEXT,
    -- JSON object: tool name -> {"read_only": bool, "description": "..."}.
    tool_overrides  TEXT NOT NULL DEFAULT '{}',
    enabled         BIGINT NOT NULL DEFAULT 1,
    created_by      TEXT REFERENCES accounts(id) ON DELETE SET NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (org_id, slug)
);

-- Shared header and environment values, sealed (never stored in the clear).
CREATE TABLE connection_secrets (
    id            TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('header', 'env')),
    name          TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    sealed        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (connection_id, kind, name)
);
CREATE INDEX connection_secrets_key ON connection_secrets (key_id);

-- Who may use a connection: the whole org, a team, or one member.
CREATE TABLE connection_grants (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    grantee_kind  TEXT NOT NULL CHECK (grantee_kind IN ('org', 'team', 'member')),
    -- The org id, a team id or a membership id.
    grantee_id    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (connection_id, grantee_kind, grantee_id)
);
CREATE INDEX connection_grants_grantee ON connection_grants (org_id, grantee_kind, grantee_id);
