-- The resources a 2025-11-25 session of a virtual server subscribed to (a
-- JSON array of URIs), so a replica that picks the session up subscribes
-- to them again.

ALTER TABLE mcp_sessions ADD COLUMN resource_subscriptions TEXT;
