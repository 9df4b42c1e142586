//! The MCP protocol surfaces: `/mcp` (Streamable HTTP, both protocol eras,
//! on rmcp) and `/mcp/rpc` (plain JSON-RPC 2.0 with batches).
//!
//! Empty until the MCP endpoint issue lands. Architecture Invariant (to
//! keep): only this crate knows MCP and JSON-RPC wire formats; it turns a
//! request into a call on the capability layer and back.
