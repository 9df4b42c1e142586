//! What a capability is: a named tool with its schemas, hints and the access
//! it needs, declared once by its provider and enforced by the call path.

use std::sync::Arc;

use serde_json::{Map, Value};
use switchboard_core::access::{Decision, Facts, Operation, decide};
use switchboard_core::{Principal, Surface};
use switchboard_domain::Scope;

/// The JSON object type of schemas.
pub type JsonObject = Map<String, Value>;

/// MCP tool annotations: hints for clients, not guarantees.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hints {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

/// One capability: what clients see (name, description, schemas, hints) and
/// what the call path enforces (access, the compiled input schema).
pub struct Capability {
    pub name: String,
    pub title: String,
    pub description: String,
    pub input_schema: Arc<JsonObject>,
    pub output_schema: Option<Arc<JsonObject>>,
    pub hints: Hints,
    /// Its rules, as declared (first-party) or synthesized (an upstream's
    /// tool): what the access module decides on.
    pub operation: Operation,
    /// For an upstream connection's tool: its name upstream (the capability
    /// is named `{connection-slug}/{tool}`).
    pub upstream_name: Option<String>,
    pub(crate) validator: jsonschema::Validator,
}

impl std::fmt::Debug for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capability")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why a caller may not use a capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The org's policy, the caller's role or the audience rule: asking for
    /// another scope would not help. The sentence says why.
    Refused(String),
    /// Only the token's scopes are missing: the client can step up.
    MissingScope { scopes: Vec<Scope>, message: String },
}

impl Capability {
    /// Builds a capability, compiling its input schema (JSON Schema 2020-12).
    pub fn new(
        name: &str,
        title: &str,
        description: &str,
        input_schema: JsonObject,
        output_schema: Option<JsonObject>,
        hints: Hints,
        operation: Operation,
    ) -> Result<Self, String> {
        let validator = jsonschema::draft202012::new(&Value::Object(input_schema.clone()))
            .map_err(|e| format!("the input schema of '{name}' is invalid: {e}"))?;
        Ok(Capability {
            name: name.to_owned(),
            title: title.to_owned(),
            description: description.to_owned(),
            input_schema: Arc::new(input_schema),
            output_schema: output_schema.map(Arc::new),
            hints,
            operation,
            upstream_name: None,
            validator,
        })
    }

    /// Marks this capability as the upstream tool `name`.
    pub fn with_upstream_name(mut self, name: &str) -> Self {
        self.upstream_name = Some(name.to_owned());
        self
    }

    /// Whether `principal` may use this capability over MCP: the access
    /// module decides (policy, role, production, audience, then scopes).
    pub fn authorize(&self, principal: &Principal) -> Result<(), Denial> {
        let facts = Facts::of(principal, Surface::Mcp).about(&self.name);
        match decide(principal, &self.operation, &facts) {
            Decision::Allow => Ok(()),
            Decision::Deny(r) => Err(Denial::Refused(r.message)),
            Decision::StepUp { scopes, message } => Err(Denial::MissingScope { scopes, message }),
        }
    }

    /// Validates arguments against the input schema. The message names every
    /// offending place, so an agent can correct its call.
    pub fn validate(&self, args: &Value) -> Result<(), String> {
        let problems: Vec<String> = self
            .validator
            .iter_errors(args)
            .take(10)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("at '{at}': {e}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the arguments of '{}' do not match its input schema: {}",
                self.name,
                problems.join("; ")
            ))
        }
    }
}
