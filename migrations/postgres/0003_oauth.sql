-- The OAuth 2.1 authorization server: registered clients (pre-registered,
-- dynamically registered, or known by their metadata document URL),
-- authorization requests in progress, consents (grants), single-use codes
-- and rotating refresh tokens. Access tokens are rows of `tokens` (kind
-- 'oauth'), so the bearer path stays one lookup by hash.

CREATE TABLE oauth_clients (
    -- 'sbc_' + random for registered clients; the https URL itself for a
    -- client known by its metadata document.
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('registered', 'dynamic', 'metadata_document')),
    name             TEXT NOT NULL,
    client_uri       TEXT,
    redirect_uris    TEXT NOT NULL,
    application_type TEXT NOT NULL CHECK (application_type IN ('native', 'web')),
    auth_method      TEXT NOT NULL CHECK (auth_method IN ('none', 'client_secret_basic', 'client_secret_post')),
    secret_hash      TEXT,
    created_at       BIGINT NOT NULL,
    created_ip       TEXT,
    -- A metadata document's copy is refetched after this time.
    refresh_after    BIGINT,
    revoked_at       BIGINT
);

CREATE TABLE oauth_requests (
    id             TEXT PRIMARY KEY,
    -- Hash of the browser cookie that started the flow: only that browser can continue it.
    browser_hash   TEXT NOT NULL,
    client_id      TEXT NOT NULL REFERENCES oauth_clients(id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    redirect_given BIGINT NOT NULL,
    state          TEXT,
    code_challenge TEXT NOT NULL,
    resource       TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    scope_given    BIGINT NOT NULL,
    account_id     TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    org_id         TEXT REFERENCES organizations(id) ON DELETE CASCADE,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX oauth_requests_expiry ON oauth_requests (expires_at);

-- One consent: a member let a client act in one organization with these scopes.
CREATE TABLE oauth_grants (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    org_id       TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    client_id    TEXT NOT NULL REFERENCES oauth_clients(id) ON DELETE CASCADE,
    scopes       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT,
    UNIQUE (account_id, client_id, org_id)
);
CREATE INDEX oauth_grants_org ON oauth_grants (org_id, client_id);

CREATE TABLE oauth_codes (
    code_hash      TEXT PRIMARY KEY,
    grant_id       TEXT NOT NULL REFERENCES oauth_grants(id) ON DELETE CASCADE,
    client_id      TEXT NOT NULL,
    account_id     TEXT NOT NULL,
    org_id         TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    redirect_given BIGINT NOT NULL,
    code_challenge TEXT NOT NULL,
    resource       TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    -- The token family this code starts; a replayed code revokes it.
    family_id      TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);
CREATE INDEX oauth_codes_expiry ON oauth_codes (expires_at);

CREATE TABLE oauth_refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    family_id  TEXT NOT NULL,
    grant_id   TEXT NOT NULL REFERENCES oauth_grants(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    account_id TEXT NOT NULL,
    org_id     TEXT NOT NULL,
    resource   TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT
);
CREATE INDEX oauth_refresh_family ON oauth_refresh_tokens (family_id);
CREATE INDEX oauth_refresh_grant ON oauth_refresh_tokens (grant_id);

-- Access tokens: the audience (resource) they were issued for, and where they came from.
ALTER TABLE tokens ADD COLUMN resource TEXT;
ALTER TABLE tokens ADD COLUMN client_id TEXT;
ALTER TABLE tokens ADD COLUMN grant_id TEXT;
ALTER TABLE tokens ADD COLUMN family_id TEXT;
CREATE INDEX tokens_family ON tokens (family_id);
CREATE INDEX tokens_grant ON tokens (grant_id);
