//! Capabilities from the gateway's connections. Which connections a caller
//! may use depends on grants, so the registry asks a [`ConnectionSource`]
//! on every request (it answers from the catalog cached in the database,
//! never by asking the upstreams). An upstream tool is the capability
//! `{connection-slug}/{tool}`; slugs have no `/`, so the split is exact.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use switchboard_core::{CoreError, Ctx, Principal};

use crate::capability::{Capability, Hints};

/// One connection the caller is granted, with its upstream tools as
/// capabilities (the allow and deny lists and the admin's overrides
/// already applied). Shared between callers: nothing in it is per caller.
#[derive(Debug)]
pub struct ConnectionCapabilities {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    /// `Some("production")` for a production connection.
    pub environment: Option<String>,
    /// The connection's version (its `updated_at`): a live upstream session
    /// of an older version is replaced.
    pub version: i64,
    /// By upstream tool name.
    pub tools: BTreeMap<String, Arc<Capability>>,
    /// Upstream tools that could not be offered, and why (an input schema
    /// that does not compile, a name too long): shown in the health.
    pub hidden: Vec<(String, String)>,
}

impl ConnectionCapabilities {
    pub fn production(&self) -> bool {
        self.environment.as_deref() == Some("production")
    }
}

/// A tool as the catalog holds it.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub input_schema: Value,
    pub output_schema: Option<Value>,
    /// The upstream's annotations: untrusted hints.
    pub annotations: Option<Value>,
}

/// What a connection is, for [`ConnectionCapabilities::build`].
#[derive(Debug, Clone, Copy)]
pub struct About<'a> {
    pub id: &'a str,
    pub slug: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub environment: Option<&'a str>,
    /// The connection's `updated_at`.
    pub version: i64,
}

/// What an admin decided about a connection's tools.
#[derive(Debug, Clone, Default)]
pub struct ToolRules {
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    /// Tool name → (read_only, replacement description).
    pub overrides: BTreeMap<String, (bool, Option<String>)>,
}

/// Longest name a client is promised (MCP tool names are 1 to 128 characters).
pub const MAX_TOOL_NAME: usize = 128;

impl ConnectionCapabilities {
    /// Builds the capabilities of one connection from its catalog. An
    /// upstream tool is a write unless an admin marked it read-only: its own
    /// `readOnlyHint` is a hint from a party we do not trust.
    pub fn build(about: About<'_>, rules: &ToolRules, catalog: Vec<CatalogEntry>) -> Self {
        let About {
            id,
            slug,
            name,
            description,
            environment,
            version,
        } = about;
        let production = environment == Some("production");
        let mut tools = BTreeMap::new();
        let mut hidden = Vec::new();
        for t in catalog {
            if rules.allow.as_ref().is_some_and(|a| !a.contains(&t.name))
                || rules.deny.as_ref().is_some_and(|d| d.contains(&t.name))
            {
                continue;
            }
            match capability_of(&t, slug, rules, production) {
                Ok(c) => {
                    tools.insert(t.name.clone(), Arc::new(c));
                }
                Err(e) => hidden.push((t.name.clone(), e)),
            }
        }
        ConnectionCapabilities {
            id: id.to_owned(),
            slug: slug.to_owned(),
            name: name.to_owned(),
            description: description.to_owned(),
            environment: environment.map(str::to_owned),
            version,
            tools,
            hidden,
        }
    }
}

/// Why an upstream tool cannot be offered whatever an admin decides (a
/// name no client accepts, an input schema that is not an object or does
/// not compile); `None` when it can. The gateway checks this when it
/// fetches a catalog, so the connection's health can name the tool.
pub fn tool_problem(t: &CatalogEntry) -> Option<String> {
    capability_of(t, "check", &ToolRules::default(), false).err()
}

/// One upstream tool as a capability, or why it cannot be one.
fn capability_of(
    t: &CatalogEntry,
    slug: &str,
    rules: &ToolRules,
    production: bool,
) -> Result<Capability, String> {
    if t.name.is_empty() || t.name.len() > MAX_TOOL_NAME {
        return Err("the name is empty or longer than 128 characters".to_owned());
    }
    let (read_only, description_override) = rules
        .overrides
        .get(&t.name)
        .cloned()
        .unwrap_or((false, None));
    let upstream_hint = |key: &str| {
        t.annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .and_then(Value::as_bool)
    };
    let hints = Hints {
        read_only,
        // A write is treated as destructive unless the upstream says otherwise.
        destructive: !read_only && upstream_hint("destructiveHint").unwrap_or(true),
        idempotent: upstream_hint("idempotentHint").unwrap_or(false),
        open_world: upstream_hint("openWorldHint").unwrap_or(true),
    };
    let Value::Object(input) = &t.input_schema else {
        return Err("its input schema is not a JSON object".to_owned());
    };
    let output = match &t.output_schema {
        Some(Value::Object(m)) => Some(m.clone()),
        _ => None,
    };
    let cap = Capability::new(
        &format!("{slug}/{}", t.name),
        t.title.as_deref().unwrap_or(&t.name),
        description_override.as_deref().unwrap_or(&t.description),
        input.clone(),
        output,
        hints,
        switchboard_core::access::ops::upstream_tool(read_only, production, hints.destructive),
    )?;
    Ok(cap.with_upstream_name(&t.name))
}

/// What an upstream can say changed: one of its lists, or the content of
/// one resource (to those who subscribed to its URI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
    ResourceContent(String),
}

/// An upstream said one of its lists changed. For tools it is announced
/// after the catalog was refreshed, so a caller that lists again sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListChange {
    pub connection_id: String,
    pub kind: ListKind,
}

/// Why a request forwarded to an upstream did not get an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ForwardError {
    /// The upstream answered with a JSON-RPC error: passed on as it is.
    Upstream {
        code: i32,
        message: String,
        data: Option<Value>,
    },
    /// The caller may not do this; the sentence says why.
    Refused(String),
    /// The upstream could not be reached, timed out or broke the protocol;
    /// the sentence says what happened (never a secret).
    Unavailable(String),
}

impl ForwardError {
    /// As a JSON-RPC error object.
    pub fn to_json(&self) -> Value {
        match self {
            ForwardError::Upstream {
                code,
                message,
                data,
            } => {
                let mut e = Map::new();
                e.insert("code".into(), json!(code));
                e.insert("message".into(), json!(message));
                if let Some(d) = data {
                    e.insert("data".into(), d.clone());
                }
                Value::Object(e)
            }
            ForwardError::Refused(m) => json!({"code": -32001, "message": m}),
            ForwardError::Unavailable(m) => json!({"code": -32603, "message": m}),
        }
    }
}

/// The caller's side of a relayed request: what an upstream sends back
/// while it works (progress, log messages) and asks of the client
/// (sampling, elicitation, roots) reaches the caller through it.
/// Implemented by the protocol surface that holds the caller's stream.
#[async_trait::async_trait]
pub trait CallerChannel: Send + Sync {
    /// The progress token the caller put on its request, if any.
    fn progress_token(&self) -> Option<Value>;
    /// Sends a notification (`notifications/progress`, `notifications/message`…).
    async fn notify(&self, method: &str, params: Value);
    /// Sends a request (`sampling/createMessage`, `elicitation/create`,
    /// `roots/list`) and returns the caller's result.
    async fn request(&self, method: &str, params: Value) -> Result<Value, ForwardError>;
    /// Completes when the caller cancels its request.
    async fn cancelled(&self);
    /// Whether the caller speaks 2026-07-28, where input-required results
    /// go back to the caller; an earlier-era caller has them fulfilled on
    /// its stream by the gateway (server-to-client requests) instead.
    fn modern(&self) -> bool {
        false
    }
    /// On a retry of an input-required request: the caller's
    /// `inputResponses` and the upstream's own `requestState` (already
    /// taken out of our sealed envelope).
    fn retry(&self) -> Option<(Value, Option<String>)> {
        None
    }
    /// The capabilities the caller's client declared (sampling, elicitation,
    /// roots…), so an upstream asks only what the caller can answer.
    fn client_capabilities(&self) -> Option<Value> {
        None
    }
    /// The lowest level of log messages the caller wants (`debug`…
    /// `emergency`); a 2026-07-28 upstream sends none without it.
    fn log_level(&self) -> Option<String> {
        None
    }
}

/// Where the gateway's connections come from (implemented by the gateway).
#[async_trait::async_trait]
pub trait ConnectionSource: Send + Sync {
    /// The enabled connections granted to this caller (the org, one of its
    /// teams, or the member), with their cached catalogs, by slug order.
    async fn granted(
        &self,
        principal: &Principal,
    ) -> Result<Vec<Arc<ConnectionCapabilities>>, CoreError>;

    /// Calls `tool` upstream with validated arguments, with the
    /// connection's credential. `Ok` is the upstream's `CallToolResult`
    /// (content, structuredContent, isError) as it came; an upstream's
    /// JSON-RPC error comes back as it was.
    async fn call_tool(
        &self,
        ctx: Ctx<'_>,
        connection: &ConnectionCapabilities,
        tool: &str,
        args: Value,
        channel: Option<Arc<dyn CallerChannel>>,
    ) -> Result<Value, ForwardError>;

    /// Every list change of every connection, as it happens (callers
    /// filter by the connections they use); `None` when the source has no
    /// such feed.
    fn list_changes(&self) -> Option<tokio::sync::broadcast::Receiver<ListChange>> {
        None
    }

    /// What the connection's upstream said of itself when it was connected
    /// (its `InitializeResult`: capabilities, serverInfo, instructions).
    async fn upstream_info(
        &self,
        connection: &ConnectionCapabilities,
    ) -> Result<Value, ForwardError>;

    /// Starts (`on`) or ends one caller's subscription to the resource at
    /// `uri`: the upstream is asked for its updates while any caller of
    /// this replica wants them, and each update comes on
    /// [`Self::list_changes`] as [`ListKind::ResourceContent`].
    async fn watch_resource(
        &self,
        connection: &ConnectionCapabilities,
        uri: &str,
        on: bool,
    ) -> Result<(), ForwardError>;

    /// Forwards any other request (`resources/read`, `prompts/get`,
    /// `completion/complete`…) to the connection's upstream: `params` in,
    /// the upstream's result out.
    async fn forward(
        &self,
        ctx: Ctx<'_>,
        connection: &ConnectionCapabilities,
        method: &str,
        params: Value,
        channel: Option<Arc<dyn CallerChannel>>,
    ) -> Result<Value, ForwardError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, annotations: Option<Value>) -> CatalogEntry {
        CatalogEntry {
            name: name.into(),
            title: None,
            description: format!("{name} upstream"),
            input_schema: json!({"type": "object", "properties": {"x": {"type": "string"}}}),
            output_schema: None,
            annotations,
        }
    }

    #[test]
    fn upstream_tools_are_writes_unless_an_admin_says_read_only() {
        let mut rules = ToolRules::default();
        rules
            .overrides
            .insert("get".into(), (true, Some("Reads a thing".into())));
        let c = ConnectionCapabilities::build(
            About {
                id: "c1",
                slug: "crm",
                name: "CRM",
                description: "",
                environment: None,
                version: 1,
            },
            &rules,
            vec![
                entry("get", None),
                // The upstream claims read-only: not trusted.
                entry("claims", Some(json!({"readOnlyHint": true}))),
            ],
        );
        let get = &c.tools["get"];
        assert_eq!(get.name, "crm/get");
        assert!(!get.operation.writes);
        assert!(get.hints.read_only);
        assert_eq!(get.description, "Reads a thing");
        let claims = &c.tools["claims"];
        assert!(claims.operation.writes);
        assert!(!claims.hints.read_only);
        assert_eq!(claims.upstream_name.as_deref(), Some("claims"));
    }

    #[test]
    fn allow_and_deny_lists_filter_and_bad_schemas_are_hidden() {
        let rules = ToolRules {
            allow: Some(vec!["a".into(), "b".into(), "bad".into()]),
            deny: Some(vec!["b".into()]),
            overrides: BTreeMap::new(),
        };
        let mut bad = entry("bad", None);
        bad.input_schema = json!({"type": 12});
        let c = ConnectionCapabilities::build(
            About {
                id: "c1",
                slug: "x",
                name: "X",
                description: "",
                environment: Some("production"),
                version: 1,
            },
            &rules,
            vec![entry("a", None), entry("b", None), entry("c", None), bad],
        );
        assert_eq!(c.tools.keys().collect::<Vec<_>>(), vec!["a"]);
        assert!(c.tools["a"].operation.production);
        assert_eq!(c.hidden.len(), 1);
        assert_eq!(c.hidden[0].0, "bad");
    }
}
