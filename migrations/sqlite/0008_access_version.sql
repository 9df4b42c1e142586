-- A per-org counter of everything that decides which connections a member
-- may use and how a virtual server is made up: connections (not their
-- health), grants, teams and their members, memberships, virtual servers.
-- Triggers bump it in the same transaction as the change, whoever makes it,
-- and the token lookup reads it with the principal: a replica may cache a
-- member's granted connections for as long as the counter stays the same,
-- and sees a revocation made on any replica on the very next request.

ALTER TABLE organizations ADD COLUMN access_version BIGINT NOT NULL DEFAULT 0;

CREATE TRIGGER connections_access_insert AFTER INSERT ON connections
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = NEW.org_id;
END;

CREATE TRIGGER connections_access_update AFTER UPDATE OF slug, name, description, transport, url, command, args, credential_mode, environment, tool_allow, tool_deny, tool_overrides, enabled, updated_at, catalog_refreshed_at ON connections
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = NEW.org_id;
END;

CREATE TRIGGER connections_access_delete AFTER DELETE ON connections
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = OLD.org_id;
END;

CREATE TRIGGER connection_grants_access_insert AFTER INSERT ON connection_grants
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = NEW.org_id;
END;

CREATE TRIGGER connection_grants_access_update AFTER UPDATE ON connection_grants
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = NEW.org_id;
END;

CREATE TRIGGER connection_grants_access_delete AFTER DELETE ON connection_grants
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = OLD.org_id;
END;

CREATE TRIGGER virtual_servers_access_insert AFTER INSERT ON virtual_servers
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = NEW.org_id;
END;

CREATE TRIGGER virtual_servers_access_update AFTER UPDATE ON virtual_servers
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = NEW.org_id;
END;

CREATE TRIGGER virtual_servers_access_delete AFTER DELETE ON virtual_servers
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = OLD.org_id;
END;

CREATE TRIGGER teams_access_delete AFTER DELETE ON teams
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = OLD.org_id;
END;

CREATE TRIGGER memberships_access_update AFTER UPDATE OF role_id, status ON memberships
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = NEW.org_id;
END;

CREATE TRIGGER memberships_access_delete AFTER DELETE ON memberships
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = OLD.org_id;
END;

CREATE TRIGGER team_members_access_insert AFTER INSERT ON team_members
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = (SELECT org_id FROM teams WHERE id = NEW.team_id);
END;

CREATE TRIGGER team_members_access_delete AFTER DELETE ON team_members
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = (SELECT org_id FROM teams WHERE id = OLD.team_id);
END;

CREATE TRIGGER virtual_server_connections_access_insert AFTER INSERT ON virtual_server_connections
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = (SELECT org_id FROM virtual_servers WHERE id = NEW.virtual_server_id);
END;

CREATE TRIGGER virtual_server_connections_access_delete AFTER DELETE ON virtual_server_connections
BEGIN
    UPDATE organizations SET access_version = access_version + 1 WHERE id = (SELECT org_id FROM virtual_servers WHERE id = OLD.virtual_server_id);
END;
