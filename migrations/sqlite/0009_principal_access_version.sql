-- The access version (0008) now also covers everything a bearer token's
-- principal is built from, so a replica may keep a token's principal while
-- the org's version stays the same: the token itself (revoked, expiry,
-- scopes, audience), the role behind it (name, permissions), the org's name
-- and MCP policy, and the account's email and display name. A token's
-- last use is not covered: recording it changes nothing a caller may do.

CREATE TRIGGER tokens_access_update AFTER UPDATE OF revoked_at, expires_at, scopes, environment, resource, kind, org_id, account_id, token_hash ON tokens
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id IN (OLD.org_id, NEW.org_id);
END;

CREATE TRIGGER tokens_access_delete AFTER DELETE ON tokens
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = OLD.org_id;
END;

CREATE TRIGGER roles_access_update AFTER UPDATE OF name, permissions ON roles
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = NEW.org_id;
END;

CREATE TRIGGER roles_access_delete AFTER DELETE ON roles
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = OLD.org_id;
END;

-- The bump writes only access_version, which is not in the column list, so
-- the trigger does not fire itself.
CREATE TRIGGER organizations_access_update AFTER UPDATE OF slug, name, mcp_enabled, allow_production, allow_write ON organizations
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = NEW.id;
END;

CREATE TRIGGER accounts_access_update AFTER UPDATE OF email, display_name ON accounts
BEGIN
    UPDATE organizations SET access_version = access_version + 1
    WHERE id IN (SELECT org_id FROM memberships WHERE account_id = NEW.id);
END;

CREATE TRIGGER memberships_access_insert AFTER INSERT ON memberships
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = NEW.org_id;
END;
