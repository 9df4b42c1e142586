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

/// The table of tools in `docs/mcp.md`, made from the declarations (the
/// tidy test keeps the document equal to it): each tool's permission,
/// scope, whether it changes data, whether it destroys, and who it is for.
pub fn tool_table_markdown(tools: &[std::sync::Arc<Capability>]) -> String {
    use switchboard_core::access::Audience;
    let mut out = String::from(
        "| tool | permission | scope | changes data | destructive | for |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for t in tools {
        let op = &t.operation;
        let yes = |b: bool| if b { "yes" } else { "" };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            t.name,
            op.permission
                .map_or("—".to_owned(), |p| p.as_str().to_owned()),
            op.scope.map_or("—".to_owned(), |s| s.as_str().to_owned()),
            yes(op.writes),
            yes(op.destructive),
            match op.audience {
                Audience::Anyone => "any caller",
                Audience::Person => "a person (not an org token)",
            }
        ));
    }
    out
}
