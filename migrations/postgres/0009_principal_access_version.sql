-- The access version (0008) now also covers everything a bearer token's
-- principal is built from, so a replica may keep a token's principal while
-- the org's version stays the same: the token itself (revoked, expiry,
-- scopes, audience), the role behind it (name, permissions), the org's name
-- and MCP policy, and the account's email and display name. A token's
-- last use is not covered: recording it changes nothing a caller may do.

-- A token moved between orgs (never done today) bumps both.
CREATE FUNCTION bump_access_version_by_token() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE organizations SET access_version = access_version + 1 WHERE id = OLD.org_id;
    ELSE
        UPDATE organizations SET access_version = access_version + 1 WHERE id IN (OLD.org_id, NEW.org_id);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- The org's own columns: bumped in the same row write.
CREATE FUNCTION bump_own_access_version() RETURNS trigger AS $$
BEGIN
    NEW.access_version := OLD.access_version + 1;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- An account's name or email: every org it is a member of.
CREATE FUNCTION bump_access_version_by_account() RETURNS trigger AS $$
BEGIN
    UPDATE organizations SET access_version = access_version + 1
    WHERE id IN (SELECT org_id FROM memberships WHERE account_id = NEW.id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tokens_access AFTER UPDATE OF revoked_at, expires_at, scopes, environment, resource, kind, org_id, account_id, token_hash OR DELETE ON tokens
    FOR EACH ROW EXECUTE FUNCTION bump_access_version_by_token();

CREATE TRIGGER roles_access AFTER UPDATE OF name, permissions OR DELETE ON roles
    FOR EACH ROW EXECUTE FUNCTION bump_access_version_by_org();

CREATE TRIGGER organizations_access BEFORE UPDATE OF slug, name, mcp_enabled, allow_production, allow_write ON organizations
    FOR EACH ROW EXECUTE FUNCTION bump_own_access_version();

CREATE TRIGGER accounts_access AFTER UPDATE OF email, display_name ON accounts
    FOR EACH ROW EXECUTE FUNCTION bump_access_version_by_account();

CREATE TRIGGER memberships_access_insert AFTER INSERT ON memberships
    FOR EACH ROW EXECUTE FUNCTION bump_access_version_by_org();
