//! The registry of capabilities and the one path of a call through it:
//! resolve → authorize → validate → execute → audit. Every surface (`/mcp`
//! in either era, `/mcp/rpc`) calls [`Capabilities::call`]; none of them
//! authorizes or audits a tool call by itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use switchboard_core::connections::Listing;
use switchboard_core::{Core, CoreError, Ctx, Outcome, Principal};
use switchboard_domain::Scope;

use crate::capability::{Capability, Denial};
use crate::connections::{
    CallerChannel, ConnectionCapabilities, ConnectionSource, ForwardError, ListChange,
};

/// A source of capabilities: the built-in org tools, later one provider per
/// external connection. Adding one never touches the call path.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// The provider's capabilities, in the order it declares them.
    fn capabilities(&self) -> Vec<Arc<Capability>>;

    /// Runs one of this provider's capabilities for an authorized caller,
    /// with arguments already validated against its input schema. Returns
    /// the structured result (a JSON object).
    async fn execute(
        &self,
        core: &Core,
        ctx: Ctx<'_>,
        capability: &Capability,
        args: Value,
    ) -> Result<Value, CoreError>;
}

/// How a call ended; each surface maps it to its own wire form (see
/// `docs/mcp.md` for the table).
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    /// The structured result.
    Done(Value),
    /// An upstream tool's `CallToolResult`, passed on as it came (its
    /// content blocks, structured content and `isError`).
    Relayed(Value),
    /// Policy, role, audience or a domain rule said no; the sentence says why.
    Refused(String),
    /// Only token scopes are missing: the client can step up.
    MissingScope { scopes: Vec<Scope>, message: String },
    /// No capability by that name.
    UnknownTool(String),
    /// The arguments do not match the input schema (or a field is malformed).
    InvalidArguments(String),
    /// The call ran and failed: nothing found, a conflict. The sentence says what.
    Failed(String),
    /// An upstream answered the call with a JSON-RPC error (a missing
    /// client capability, invalid params…): passed on as it came.
    UpstreamError {
        code: i32,
        message: String,
        data: Option<Value>,
    },
    /// Something broke on our side; details are in the server log only.
    Internal,
}

impl CallOutcome {
    fn audit(&self) -> (Outcome, Option<&str>) {
        match self {
            CallOutcome::Done(_) => (Outcome::Ok, None),
            CallOutcome::Relayed(v) if v.get("isError").and_then(Value::as_bool) == Some(true) => {
                (Outcome::Error, Some("the upstream tool reported an error"))
            }
            CallOutcome::Relayed(_) => (Outcome::Ok, None),
            CallOutcome::Refused(m) | CallOutcome::MissingScope { message: m, .. } => {
                (Outcome::Denied, Some(m))
            }
            CallOutcome::UnknownTool(m)
            | CallOutcome::InvalidArguments(m)
            | CallOutcome::Failed(m)
            | CallOutcome::UpstreamError { message: m, .. } => (Outcome::Error, Some(m)),
            CallOutcome::Internal => (Outcome::Error, Some("internal error")),
        }
    }
}

/// A page of the capabilities a caller may use.
#[derive(Debug)]
pub struct CapabilityPage {
    pub items: Vec<Arc<Capability>>,
    pub next_cursor: Option<String>,
}

/// The registry and the call path. Cheap to clone.
#[derive(Clone)]
pub struct Capabilities {
    core: Core,
    /// By name (ordered: lists are paginated in name order).
    index: Arc<BTreeMap<String, (Arc<Capability>, usize)>>,
    providers: Arc<Vec<Arc<dyn Provider>>>,
    /// The gateway's connections (per caller), when the gateway is on.
    connections: Option<Arc<dyn ConnectionSource>>,
    page_size: usize,
}

impl std::fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capabilities")
            .field("count", &self.index.len())
            .finish_non_exhaustive()
    }
}

impl Capabilities {
    /// Builds the registry; capability names must be unique across providers.
    pub fn new(
        core: Core,
        providers: Vec<Arc<dyn Provider>>,
        page_size: u32,
    ) -> Result<Self, String> {
        let mut index = BTreeMap::new();
        for (i, provider) in providers.iter().enumerate() {
            for cap in provider.capabilities() {
                if index.insert(cap.name.clone(), (cap.clone(), i)).is_some() {
                    return Err(format!("two capabilities are named '{}'", cap.name));
                }
            }
        }
        Ok(Capabilities {
            core,
            index: Arc::new(index),
            providers: Arc::new(providers),
            connections: None,
            page_size: page_size.max(1) as usize,
        })
    }

    /// Adds the gateway's connections: their tools become the capabilities
    /// `{connection-slug}/{tool}`, resolved per caller.
    pub fn with_connections(mut self, source: Arc<dyn ConnectionSource>) -> Self {
        self.connections = Some(source);
        self
    }

    /// Every connection's list changes as they happen (`None` without the
    /// gateway).
    pub fn list_changes(&self) -> Option<tokio::sync::broadcast::Receiver<ListChange>> {
        self.connections.as_ref().and_then(|s| s.list_changes())
    }

    /// The connections this caller is granted.
    pub async fn granted_connections(
        &self,
        principal: &Principal,
    ) -> Result<Vec<Arc<ConnectionCapabilities>>, CoreError> {
        match &self.connections {
            Some(src) => src.granted(principal).await,
            None => Ok(Vec::new()),
        }
    }

    /// The granted connection `slug`, if the caller has one by that name.
    pub async fn granted_connection(
        &self,
        principal: &Principal,
        slug: &str,
    ) -> Result<Option<Arc<ConnectionCapabilities>>, CoreError> {
        Ok(self
            .granted_connections(principal)
            .await?
            .into_iter()
            .find(|c| c.slug == slug))
    }

    /// Forwards a request other than a tool call to a granted connection's
    /// upstream, after the checks every use of a connection needs (the
    /// org's MCP policy, `connections.use`, production), and audits it.
    pub async fn forward(
        &self,
        ctx: Ctx<'_>,
        connection: &ConnectionCapabilities,
        method: &str,
        params: Value,
        channel: Option<Arc<dyn CallerChannel>>,
    ) -> Result<Value, ForwardError> {
        let result = match self.usable_source(ctx.principal, connection) {
            Ok(src) => src.forward(ctx, connection, method, params, channel).await,
            Err(e) => Err(e),
        };
        self.audited(ctx, result).await
    }

    /// The gateway's connections, when there is one.
    fn source(&self) -> Result<&dyn ConnectionSource, ForwardError> {
        self.connections
            .as_deref()
            .ok_or_else(|| ForwardError::Refused("the gateway is off".into()))
    }

    /// The source of `connection`, once the caller may use it at all.
    fn usable_source(
        &self,
        principal: &Principal,
        connection: &ConnectionCapabilities,
    ) -> Result<&dyn ConnectionSource, ForwardError> {
        self.check_connection_use(principal, connection)
            .map_err(ForwardError::Refused)?;
        self.source()
    }

    /// Records a request that is not a tool call with its outcome; the
    /// answer is withheld when the record cannot be written.
    async fn audited<T>(
        &self,
        ctx: Ctx<'_>,
        result: Result<T, ForwardError>,
    ) -> Result<T, ForwardError> {
        let (outcome, message) = match &result {
            Ok(_) => (Outcome::Ok, None),
            Err(ForwardError::Refused(m)) => (Outcome::Denied, Some(m.clone())),
            Err(ForwardError::Unavailable(m)) => (Outcome::Error, Some(m.clone())),
            Err(ForwardError::Upstream { message, .. }) => (Outcome::Error, Some(message.clone())),
        };
        if let Err(e) = self
            .core
            .record_request(ctx, None, outcome, message.as_deref())
            .await
        {
            tracing::error!(error = %e, "could not audit a request to a connection");
            return Err(ForwardError::Unavailable(
                "the server could not record this request".into(),
            ));
        }
        result
    }

    /// One of a granted connection's cached lists (resources, resource
    /// templates, prompts): answered from the catalog, never by the
    /// upstream. `None` when the upstream does not offer that list. Audited
    /// like a forwarded request.
    pub async fn listing(
        &self,
        ctx: Ctx<'_>,
        connection: &ConnectionCapabilities,
        kind: Listing,
    ) -> Result<Option<Vec<Value>>, ForwardError> {
        let result = match self.check_connection_use(ctx.principal, connection) {
            Err(m) => Err(ForwardError::Refused(m)),
            Ok(()) => self
                .core
                .connection_listing(&connection.id, kind)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "could not read a cached list");
                    ForwardError::Unavailable(
                        "the server could not read this connection's catalog".into(),
                    )
                }),
        };
        self.audited(ctx, result).await
    }

    /// A caller subscribes to (`on`) or unsubscribes from the resource at
    /// `uri` of a granted connection. Audited like a forwarded request
    /// (`meta` names `resources/subscribe` or `resources/unsubscribe`).
    pub async fn watch_resource(
        &self,
        ctx: Ctx<'_>,
        connection: &ConnectionCapabilities,
        uri: &str,
        on: bool,
    ) -> Result<(), ForwardError> {
        let result = match self.usable_source(ctx.principal, connection) {
            Ok(src) => src.watch_resource(connection, uri, on).await,
            Err(e) => Err(e),
        };
        self.audited(ctx, result).await
    }

    /// Takes up again a subscription a session made on another replica
    /// (checked and audited there): the upstream is subscribed here too.
    pub async fn resume_resource_watch(
        &self,
        connection: &ConnectionCapabilities,
        uri: &str,
    ) -> Result<(), ForwardError> {
        self.source()?.watch_resource(connection, uri, true).await
    }

    /// Ends a subscription whose caller is gone (a closed session or
    /// stream): nothing to check or audit, the upstream is told if no other
    /// caller still wants its updates.
    pub async fn drop_resource_watch(&self, connection: &ConnectionCapabilities, uri: &str) {
        if let Ok(src) = self.source()
            && let Err(e) = src.watch_resource(connection, uri, false).await
        {
            tracing::debug!(error = ?e, "could not end an upstream resource subscription");
        }
    }

    /// What a granted connection's upstream said of itself.
    pub async fn upstream_info(
        &self,
        principal: &Principal,
        connection: &ConnectionCapabilities,
    ) -> Result<Value, ForwardError> {
        self.usable_source(principal, connection)?
            .upstream_info(connection)
            .await
    }

    /// What using a connection at all needs, for requests that are not tool
    /// calls (a read is not a write, so `allow_write` does not apply).
    fn check_connection_use(
        &self,
        principal: &Principal,
        connection: &ConnectionCapabilities,
    ) -> Result<(), String> {
        if let Some(policy) = &principal.mcp_policy {
            policy.check_tool(false).map_err(|r| r.message)?;
        }
        if !principal
            .permissions
            .contains(switchboard_domain::Permission::ConnectionsUse)
        {
            return Err("your role does not include the permission 'connections.use'; ask an admin if you need it".into());
        }
        if let Some(scopes) = principal.scopes()
            && !scopes.contains(&Scope::ConnectionsUse)
        {
            return Err(
                "this token lacks the scope 'connections:use': authorize again with it".into(),
            );
        }
        if connection.production() {
            if principal
                .mcp_policy
                .as_ref()
                .is_some_and(|p| !p.allow_production)
            {
                return Err(format!(
                    "'{}' is a production connection, and this organization's MCP policy does not allow production",
                    connection.slug
                ));
            }
            if !principal
                .permissions
                .contains(switchboard_domain::Permission::ProductionAccess)
            {
                return Err(format!(
                    "'{}' is a production connection, and your role does not include 'production.access'",
                    connection.slug
                ));
            }
            if principal.environment() == Some(switchboard_domain::Environment::Sandbox) {
                return Err(format!(
                    "'{}' is a production connection, and this token is restricted to the sandbox",
                    connection.slug
                ));
            }
        }
        Ok(())
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Any capability by name, whoever asks (for schema lookups).
    pub fn find(&self, name: &str) -> Option<Arc<Capability>> {
        self.index.get(name).map(|(c, _)| c.clone())
    }

    /// One page of the capabilities this caller may use, in name order. A
    /// capability the caller may not use is not listed. The cursor is
    /// opaque to clients; a malformed one is an error, not page one.
    pub fn list(
        &self,
        principal: &Principal,
        cursor: Option<&str>,
    ) -> Result<CapabilityPage, String> {
        let after = match cursor {
            None => None,
            Some(c) => Some(
                hex::decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        "the cursor is not one this server handed out: pass back nextCursor unchanged, or omit it for the first page".to_owned()
                    })?,
            ),
        };
        let visible = self
            .index
            .iter()
            .filter(|(name, _)| after.as_deref().is_none_or(|a| name.as_str() > a))
            .filter(|(_, (cap, _))| cap.authorize(principal).is_ok())
            .map(|(_, (cap, _))| cap.clone());
        let mut items: Vec<Arc<Capability>> = visible.take(self.page_size + 1).collect();
        let more = items.len() > self.page_size;
        items.truncate(self.page_size);
        let next_cursor = if more {
            items.last().map(|c| hex::encode(c.name.as_bytes()))
        } else {
            None
        };
        Ok(CapabilityPage { items, next_cursor })
    }

    /// The refusal a call would meet before running, if any (for surfaces
    /// that must answer some refusals at the HTTP level, such as `/mcp`'s
    /// 403 `insufficient_scope`). Unknown names pass: the call reports them.
    pub fn precheck(&self, principal: &Principal, name: &str) -> Option<Denial> {
        if let Some((cap, _)) = self.index.get(name) {
            return cap.authorize(principal).err();
        }
        // A connection's tool (`{slug}/{tool}`): using any connection needs
        // `connections:use`, whatever the tool does (asked as a read; the
        // call path decides the rest once it knows the tool).
        if self.connections.is_some() && name.contains('/') && name.len() <= 256 {
            let op = switchboard_core::access::ops::upstream_tool(true, false, false);
            let facts =
                switchboard_core::access::Facts::of(principal, switchboard_core::Surface::Mcp)
                    .about(name);
            return match switchboard_core::access::decide(principal, &op, &facts) {
                switchboard_core::access::Decision::StepUp { scopes, message } => {
                    Some(Denial::MissingScope { scopes, message })
                }
                _ => None,
            };
        }
        None
    }

    /// The one path of a call: resolve → authorize → validate → execute →
    /// audit. The request's audit event is written exactly once: by the
    /// change's own transaction for a write, otherwise group-committed here.
    pub async fn call(
        &self,
        ctx: Ctx<'_>,
        name: &str,
        args: Option<Map<String, Value>>,
    ) -> CallOutcome {
        self.call_relayed(ctx, name, args, None).await
    }

    /// [`Self::call`], with the caller's channel for what an upstream tool
    /// sends back while it runs (progress, log messages, sampling and
    /// elicitation requests).
    pub async fn call_relayed(
        &self,
        ctx: Ctx<'_>,
        name: &str,
        args: Option<Map<String, Value>>,
        channel: Option<Arc<dyn CallerChannel>>,
    ) -> CallOutcome {
        let outcome = self.run(ctx, name, args, channel).await;
        let (audit_outcome, message) = outcome.audit();
        match self
            .core
            .record_request(ctx, None, audit_outcome, message)
            .await
        {
            Ok(()) => outcome,
            Err(e) => {
                tracing::error!(error = %e, tool = name, "could not audit a call");
                CallOutcome::Internal
            }
        }
    }

    async fn run(
        &self,
        ctx: Ctx<'_>,
        name: &str,
        args: Option<Map<String, Value>>,
        channel: Option<Arc<dyn CallerChannel>>,
    ) -> CallOutcome {
        let unknown = || {
            CallOutcome::UnknownTool(format!(
                "there is no tool named '{}': list the tools to see the ones you may use",
                switchboard_core::cut_for_display(name, 128)
            ))
        };
        // No tool is named with more than a slug, a slash and 128 characters.
        if name.len() > 256 {
            return unknown();
        }
        let Some((cap, provider)) = self.index.get(name) else {
            return match name.split_once('/') {
                Some((slug, tool)) if self.connections.is_some() => self
                    .run_upstream(ctx, slug, tool, args, channel)
                    .await
                    .unwrap_or_else(unknown),
                _ => unknown(),
            };
        };
        // A tool the caller may not see is refused the same way, listed or not.
        match cap.authorize(ctx.principal) {
            Ok(()) => {}
            Err(Denial::Refused(m)) => return CallOutcome::Refused(m),
            Err(Denial::MissingScope { scopes, message }) => {
                return CallOutcome::MissingScope { scopes, message };
            }
        }
        let args = Value::Object(args.unwrap_or_default());
        if let Err(m) = cap.validate(&args) {
            return CallOutcome::InvalidArguments(m);
        }
        let Some(provider) = self.providers.get(*provider) else {
            return CallOutcome::Internal;
        };
        match provider.execute(&self.core, ctx, cap, args).await {
            Ok(v) => CallOutcome::Done(v),
            Err(e) => from_core_error(e),
        }
    }
}

impl Capabilities {
    /// The call path for an upstream tool; `None` when the caller has no
    /// such tool (not granted and nonexistent look the same).
    async fn run_upstream(
        &self,
        ctx: Ctx<'_>,
        slug: &str,
        tool: &str,
        args: Option<Map<String, Value>>,
        channel: Option<Arc<dyn CallerChannel>>,
    ) -> Option<CallOutcome> {
        let src = self.connections.as_ref()?;
        let connection = match self.granted_connection(ctx.principal, slug).await {
            Ok(c) => c?,
            Err(e) => return Some(from_core_error(e)),
        };
        let cap = connection.tools.get(tool)?;
        match cap.authorize(ctx.principal) {
            Ok(()) => {}
            Err(Denial::Refused(m)) => return Some(CallOutcome::Refused(m)),
            Err(Denial::MissingScope { scopes, message }) => {
                return Some(CallOutcome::MissingScope { scopes, message });
            }
        }
        let args = Value::Object(args.unwrap_or_default());
        if let Err(m) = cap.validate(&args) {
            return Some(CallOutcome::InvalidArguments(m));
        }
        Some(
            match src.call_tool(ctx, &connection, tool, args, channel).await {
                Ok(v) => CallOutcome::Relayed(v),
                Err(ForwardError::Upstream {
                    code,
                    message,
                    data,
                }) => CallOutcome::UpstreamError {
                    code,
                    message,
                    data,
                },
                Err(ForwardError::Refused(m) | ForwardError::Unavailable(m)) => {
                    CallOutcome::Failed(m)
                }
            },
        )
    }
}

fn from_core_error(e: CoreError) -> CallOutcome {
    match e {
        CoreError::Forbidden(m) => CallOutcome::Refused(m),
        CoreError::Rule(r) => CallOutcome::Refused(r.message),
        CoreError::InsufficientScope { scope, message } => CallOutcome::MissingScope {
            scopes: vec![scope],
            message,
        },
        CoreError::Invalid(f) => CallOutcome::InvalidArguments(f.to_string()),
        e @ (CoreError::NotFound(_) | CoreError::Conflict { .. } | CoreError::Throttled { .. }) => {
            CallOutcome::Failed(e.to_string())
        }
        CoreError::Unauthenticated(m) => CallOutcome::Refused(m),
        CoreError::Internal(m) => {
            tracing::error!(error = %m, "a capability failed");
            CallOutcome::Internal
        }
    }
}
