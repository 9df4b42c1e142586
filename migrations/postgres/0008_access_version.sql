-- A per-org counter of everything that decides which connections a member
-- may use and how a virtual server is made up: connections (not their
-- health), grants, teams and their members, memberships, virtual servers.
-- Triggers bump it in the same transaction as the change, whoever makes it,
-- and the token lookup reads it with the principal: a replica may cache a
-- member's granted connections for as long as the counter stays the same,
-- and sees a revocation made on any replica on the very next request.

ALTER TABLE organizations ADD COLUMN access_version BIGINT NOT NULL DEFAULT 0;

-- Rows that carry their org.
CREATE FUNCTION bump_access_version_by_org() RETURNS trigger AS $$
BEGIN
    UPDATE organizations SET access_version = access_version + 1
    WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.org_id ELSE NEW.org_id END;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- Team members: their team's org.
CREATE FUNCTION bump_access_version_by_team() RETURNS trigger AS $$
BEGIN
    UPDATE organizations SET access_version = access_version + 1
    WHERE id = (SELECT org_id FROM teams
                WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.team_id ELSE NEW.team_id END);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- A virtual server's connections: its org.
CREATE FUNCTION bump_access_version_by_virtual_server() RETURNS trigger AS $$
BEGIN
    UPDATE organizations SET access_version = access_version + 1
    WHERE id = (SELECT org_id FROM virtual_servers
                WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.virtual_server_id ELSE NEW.virtual_server_id END);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER connections_access_insert_delete AFTER INSERT OR DELETE ON connections
    FOR EACH ROW EXECUTE FUNCTION bump_access_version_by_org();

CREATE TRIGGER connections_access_update AFTER UPDATE OF slug, name, description, transport, url, command, args, credential_mode, environment, tool_allow, tool_deny, tool_overrides, enabled, updated_at, catalog_refreshed_at ON connections
    FOR EACH ROW EXECUTE FUNCTION bump_access_version_by_org();

CREATE TRIGGER connection_grants_access AFTER INSERT OR UPDATE OR DELETE ON connection_grants
    FOR EACH ROW EXECUTE FUNCTION bump_access_version_by_org();

CREATE TRIGGER virtual_servers_access AFTER INSERT OR UPDATE OR DELETE ON virtual_servers
    FOR EACH ROW EXECUTE FUNCTION bump_access_version_by_org();

CREATE TRIGGER teams_access_delete AFTER DELETE ON teams
    FOR EACH ROW EXECUTE FUNCTION bump_access_version_by_org();

CREATE TRIGGER memberships_access AFTER UPDATE OF role_id, status OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION bump_access_version_by_org();

CREATE TRIGGER team_members_access AFTER INSERT OR DELETE ON team_members
    FOR EACH ROW EXECUTE FUNCTION bump_access_version_by_team();

CREATE TRIGGER virtual_server_connections_access AFTER INSERT OR DELETE ON virtual_server_connections
    FOR EACH ROW EXECUTE FUNCTION bump_access_version_by_virtual_server();
