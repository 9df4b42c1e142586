-- Security fixes.
--
-- A stdio connection is bound to the catalog entry it was published from
-- (built in, the operator's, or the org's own): the entry is the
-- allow-list of its command line and of the variables an org admin may
-- set, and it is checked again whenever the child starts. Connections made
-- before this have none and must be published again from the catalog.
ALTER TABLE connections ADD COLUMN integration_id TEXT;

-- Instance operators (the account made at first setup, and the CLI): who
-- may create organizations when `instance.org_creation` is `operators`.
ALTER TABLE accounts ADD COLUMN instance_operator BIGINT NOT NULL DEFAULT 0;
UPDATE accounts SET instance_operator = 1
 WHERE id = (SELECT id FROM accounts ORDER BY created_at, id LIMIT 1);

-- The token that opened a 2025-11-25 session: a token holds a bounded
-- number of sessions (its oldest idle one is ended to make room).
ALTER TABLE mcp_sessions ADD COLUMN token_id TEXT;
CREATE INDEX mcp_sessions_token ON mcp_sessions (token_id, last_seen_at);
