-- Virtual servers bound to several connections, served at
-- /mcp/servers/{slug} with tools named `{connection-slug}_{tool}`. (A
-- connection is also a virtual server of its own, at its slug, unsaved.)

CREATE TABLE virtual_servers (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    slug        TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (org_id, slug)
);

CREATE TABLE virtual_server_connections (
    virtual_server_id TEXT NOT NULL REFERENCES virtual_servers(id) ON DELETE CASCADE,
    connection_id     TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    PRIMARY KEY (virtual_server_id, connection_id)
);
