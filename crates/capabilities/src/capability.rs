//! What a capability is: a named tool with its schemas, hints and the access
//! it needs, declared once by its provider and enforced by the call path.

use std::sync::Arc;

use serde_json::{Map, Value};
use switchboard_core::Principal;
use switchboard_domain::{Environment, Permission, Scope, TokenKind};

/// The JSON object type of schemas.
pub type JsonObject = Map<String, Value>;

/// Who a capability is for, beyond permissions and scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Any caller the permission and scope admit.
    Anyone,
    /// Only callers acting as one person (personal and OAuth tokens): an org
    /// token has no "me", so "my tasks" means nothing for it.
    Person,
}

/// The role permission and token scope a capability needs, and whether it
/// changes anything (the org's MCP policy can forbid writes).
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// `None`: no permission needed (`whoami`).
    pub permission: Option<Permission>,
    /// `None`: no scope needed.
    pub scope: Option<Scope>,
    pub writes: bool,
    pub audience: Audience,
    /// Reaches a production system: the org's policy must allow production,
    /// the role must have `production.access`, and a token restricted to
    /// the sandbox may not use it.
    pub production: bool,
}

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
    pub access: Access,
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
        access: Access,
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
            access,
            upstream_name: None,
            validator,
        })
    }

    /// Marks this capability as the upstream tool `name`.
    pub fn with_upstream_name(mut self, name: &str) -> Self {
        self.upstream_name = Some(name.to_owned());
        self
    }

    /// Checks the org's MCP policy, the caller's CURRENT role permissions,
    /// the audience and the token's scopes, in that order: a refusal that a
    /// new scope would not cure is reported before a missing scope.
    pub fn authorize(&self, principal: &Principal) -> Result<(), Denial> {
        if let Some(policy) = &principal.mcp_policy {
            policy
                .check_tool(self.access.writes)
                .map_err(|r| Denial::Refused(r.message))?;
        }
        if let Some(permission) = self.access.permission
            && !principal.permissions.contains(permission)
        {
            return Err(Denial::Refused(match &principal.role_name {
                Some(role) => format!(
                    "your role '{role}' does not include the permission '{permission}' that '{}' needs; ask an admin if you need it",
                    self.name
                ),
                None => format!(
                    "org tokens cannot use the permission '{permission}' that '{}' needs",
                    self.name
                ),
            }));
        }
        if self.access.production {
            self.authorize_production(principal)?;
        }
        if self.access.audience == Audience::Person
            && principal.token_kind() == Some(TokenKind::Org)
        {
            return Err(Denial::Refused(format!(
                "'{}' works on the caller's own tasks, and an org token acts for no one person: use a personal token, or the org-wide task tools",
                self.name
            )));
        }
        if let (Some(scope), Some(scopes)) = (self.access.scope, principal.scopes())
            && !scopes.contains(&scope)
        {
            return Err(Denial::MissingScope {
                scopes: vec![scope],
                message: format!(
                    "'{}' needs the token scope '{scope}', which this token lacks: authorize again (or create a token) with that scope",
                    self.name
                ),
            });
        }
        Ok(())
    }

    fn authorize_production(&self, principal: &Principal) -> Result<(), Denial> {
        if principal
            .mcp_policy
            .as_ref()
            .is_some_and(|p| !p.allow_production)
        {
            return Err(Denial::Refused(format!(
                "'{}' reaches a production system, and this organization's MCP policy does not allow production: an owner can allow it in the MCP policy",
                self.name
            )));
        }
        if !principal.permissions.contains(Permission::ProductionAccess) {
            return Err(Denial::Refused(format!(
                "'{}' reaches a production system, and your role does not include the permission 'production.access'; ask an admin if you need it",
                self.name
            )));
        }
        if principal.environment() == Some(Environment::Sandbox) {
            return Err(Denial::Refused(format!(
                "'{}' reaches a production system, and this token is restricted to the sandbox: use a token for production",
                self.name
            )));
        }
        Ok(())
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
