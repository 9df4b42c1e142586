//! The capability layer: a registry of capabilities fed by providers (the
//! org's own tools; one provider per external connection) and the one path
//! of a call: resolve → authorize → confirm → validate → execute → redact →
//! audit.
//!
//! Empty until the MCP endpoint issue lands; authentication, authorization
//! checks and audit already live in `switchboard-core` for it to call.
