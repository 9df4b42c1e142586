-- Foundation schema. Portable across SQLite and PostgreSQL through sqlx::Any:
-- ids and JSON are TEXT, times are BIGINT epoch milliseconds, flags are BIGINT 0/1.

CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE organizations (
    id               TEXT PRIMARY KEY,
    slug             TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    seat_limit       BIGINT,
    allowed_domains  TEXT NOT NULL DEFAULT '[]',
    feature_flags    TEXT NOT NULL DEFAULT '{}',
    mcp_enabled      BIGINT NOT NULL DEFAULT 1,
    allow_production BIGINT NOT NULL DEFAULT 0,
    allow_write      BIGINT NOT NULL DEFAULT 1,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    builtin     BIGINT NOT NULL DEFAULT 0,
    permissions TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE memberships (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    role_id    TEXT NOT NULL REFERENCES roles(id),
    status     TEXT NOT NULL CHECK (status IN ('active', 'invited')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (org_id, account_id)
);
CREATE INDEX memberships_account ON memberships (account_id);

CREATE TABLE teams (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE team_members (
    team_id       TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    membership_id TEXT NOT NULL REFERENCES memberships(id) ON DELETE CASCADE,
    added_at      BIGINT NOT NULL,
    PRIMARY KEY (team_id, membership_id)
);
CREATE INDEX team_members_membership ON team_members (membership_id);

CREATE TABLE invitations (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    membership_id TEXT REFERENCES memberships(id) ON DELETE SET NULL,
    email         TEXT NOT NULL,
    -- NULL once the role is deleted (only possible after the invitation closed).
    role_id       TEXT REFERENCES roles(id) ON DELETE SET NULL,
    team_ids      TEXT NOT NULL DEFAULT '[]',
    token_hash    TEXT NOT NULL UNIQUE,
    invited_by    TEXT REFERENCES accounts(id) ON DELETE SET NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    accepted_at   BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX invitations_org ON invitations (org_id, id);

CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('personal', 'org', 'oauth')),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    environment  TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX tokens_owner ON tokens (org_id, account_id);

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    token_hash    TEXT NOT NULL UNIQUE,
    account_id    TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    active_org_id TEXT REFERENCES organizations(id) ON DELETE SET NULL,
    csrf_token    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);

CREATE TABLE sign_in_throttle (
    throttle_key      TEXT PRIMARY KEY,
    failures          BIGINT NOT NULL,
    window_started_at BIGINT NOT NULL,
    locked_until      BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_by  TEXT REFERENCES accounts(id) ON DELETE SET NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE requirements (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL DEFAULT '',
    created_by TEXT REFERENCES accounts(id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX requirements_project ON requirements (org_id, project_id, id);

CREATE TABLE tasks (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL CHECK (status IN ('TODO', 'IN_PROGRESS', 'IN_REVIEW', 'DONE')),
    priority    TEXT NOT NULL CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    created_by  TEXT REFERENCES accounts(id) ON DELETE SET NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX tasks_project ON tasks (org_id, project_id, id);

CREATE TABLE task_assignees (
    task_id       TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    membership_id TEXT NOT NULL REFERENCES memberships(id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, membership_id)
);
CREATE INDEX task_assignees_membership ON task_assignees (membership_id);

CREATE TABLE task_requirements (
    task_id        TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    requirement_id TEXT NOT NULL REFERENCES requirements(id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, requirement_id)
);
CREATE INDEX task_requirements_requirement ON task_requirements (requirement_id);

CREATE TABLE task_comments (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    task_id    TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    author_id  TEXT REFERENCES accounts(id) ON DELETE SET NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX task_comments_task ON task_comments (task_id, id);

CREATE TABLE commit_entries (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    task_id     TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    message     TEXT NOT NULL,
    commit_hash TEXT,
    reason      TEXT,
    author_id   TEXT REFERENCES accounts(id) ON DELETE SET NULL,
    token_id    TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX commit_entries_task ON commit_entries (task_id, id);

-- Audit events are never updated or deleted by the application.
CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY,
    org_id      TEXT,
    at          BIGINT NOT NULL,
    actor_id    TEXT,
    actor       TEXT NOT NULL,
    token_id    TEXT,
    token_kind  TEXT,
    client      TEXT,
    surface     TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT,
    args        TEXT NOT NULL DEFAULT '{}',
    outcome     TEXT NOT NULL,
    latency_ms  BIGINT,
    environment TEXT,
    request_id  TEXT,
    client_ip   TEXT
);
CREATE INDEX audit_events_org ON audit_events (org_id, id);
CREATE INDEX audit_events_actor ON audit_events (org_id, actor_id, id);
CREATE INDEX audit_events_action ON audit_events (org_id, action, id);
