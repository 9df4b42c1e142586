//! The capability layer: a registry of capabilities fed by providers (the
//! org's own tools now; one provider per external connection later) and the
//! one path of a call: resolve → authorize (org MCP policy ∩ role
//! permissions ∩ token scopes) → validate the arguments against the input
//! schema (JSON Schema 2020-12) → execute → audit.
//!
//! Architecture Invariant: surfaces (`/mcp` in either era, `/mcp/rpc`) never
//! authorize, validate or audit a tool call themselves; they call
//! [`Capabilities::call`] and map its [`CallOutcome`] to their wire form.
//! Confirmation of destructive calls and redaction of results slot into
//! [`Capabilities::call`] without touching any surface.

mod capability;
mod connections;
mod org;
mod registry;

pub use capability::{Capability, Denial, Hints, JsonObject};
pub use connections::{
    About, CallerChannel, CatalogEntry, ConnectionCapabilities, ConnectionSource, ForwardError,
    ListChange, ListKind, MAX_TOOL_NAME, ToolRules, tool_problem,
};
pub use org::OrgTools;
pub use registry::{CallOutcome, Capabilities, CapabilityPage, Provider};
