-- A connection's health with its latency and time: the median latency of
-- the last requests a replica made to the upstream, and when the health was
-- last checked (a request, a probe or a catalog refresh). Written at most
-- every few seconds, never per request; not covered by the access version.

ALTER TABLE connections ADD COLUMN health_latency_ms BIGINT;
ALTER TABLE connections ADD COLUMN health_checked_at BIGINT;
