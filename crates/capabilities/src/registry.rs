//! The registry of capabilities and the one path of a call through it:
//! resolve → authorize → validate → execute → audit. Every surface (`/mcp`
//! in either era, `/mcp/rpc`) calls [`Capabilities::call`]; none of them
//! authorizes or audits a tool call by itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use switchboard_core::{Core, CoreError, Ctx, Outcome, Principal};
use switchboard_domain::Scope;

use crate::capability::{Capability, Denial};

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
    /// Something broke on our side; details are in the server log only.
    Internal,
}

impl CallOutcome {
    fn audit(&self) -> (Outcome, Option<&str>) {
        match self {
            CallOutcome::Done(_) => (Outcome::Ok, None),
            CallOutcome::Refused(m) | CallOutcome::MissingScope { message: m, .. } => {
                (Outcome::Denied, Some(m))
            }
            CallOutcome::UnknownTool(m)
            | CallOutcome::InvalidArguments(m)
            | CallOutcome::Failed(m) => (Outcome::Error, Some(m)),
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
            page_size: page_size.max(1) as usize,
        })
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
        let (cap, _) = self.index.get(name)?;
        cap.authorize(principal).err()
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
        let outcome = self.run(ctx, name, args).await;
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

    async fn run(&self, ctx: Ctx<'_>, name: &str, args: Option<Map<String, Value>>) -> CallOutcome {
        let Some((cap, provider)) = self.index.get(name) else {
            return CallOutcome::UnknownTool(format!(
                "there is no tool named '{name}': list the tools to see the ones you may use"
            ));
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
        let provider = &self.providers[*provider];
        match provider.execute(&self.core, ctx, cap, args).await {
            Ok(v) => CallOutcome::Done(v),
            Err(e) => from_core_error(e),
        }
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
