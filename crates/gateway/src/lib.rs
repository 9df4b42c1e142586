//! The gateway to external MCP servers: connections, sealed credentials,
//! upstream Streamable HTTP and supervised stdio clients, catalog cache,
//! health.
//!
//! Empty until the gateway issue lands. Architecture Invariant (to keep):
//! the client's own token is never passed upstream.
