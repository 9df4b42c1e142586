//! The OAuth 2.1 authorization server for MCP clients: metadata,
//! registration, authorize (sign in, pick ONE organization, consent), token,
//! revocation.
//!
//! Empty until the authorization-server issue lands. Sessions, sign-in
//! throttling and token hashing it will reuse live in `switchboard-core`.
