//! Who may do what: the one place where authorization is decided.
//!
//! Every operation (each REST use case and each tool) is declared once, as
//! data, in [`ops`]: the permission its caller's role needs, the token
//! scope, whether it writes, who it is for, whether it reaches production,
//! whether it destroys something, and whether a bearer token may do it at
//! all. [`decide`] is a pure function of the principal, the operation and
//! the facts the caller loaded; surfaces and use cases ask, they never
//! decide themselves. A fact that was not loaded denies.
//!
//! The order is fixed, so the answer names the obstacle a person can act
//! on: the credential (some things are for a person at a dashboard only),
//! the org's MCP policy (on MCP surfaces), the role's permission, the
//! production rules, the audience, then the token's scopes (only then can
//! the client step up: asking for a scope would not help if the role
//! forbids it anyway).
//!
//! Seams for what comes next (environments, destructive confirmation,
//! rate limits): [`Operation::production`] and [`Operation::destructive`]
//! are declared here and read by the call path.

pub mod ops;

use switchboard_domain::{Environment, McpPolicy, Permission, Scope, TokenKind};

use crate::{CoreError, Credential, Principal, Surface};

/// Who an operation is for, beyond permissions and scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Any caller the permission and scope admit.
    Anyone,
    /// Only a caller acting as one person (a session, a personal or OAuth
    /// token): an org token has no "me", so "my tasks" means nothing for it.
    Person,
}

/// Which credentials may perform an operation at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialRule {
    /// Any credential the other rules admit.
    Any,
    /// A signed-in person or the operator's CLI, never a bearer token: a
    /// leaked token must not mint tokens or change the MCP policy.
    Interactive,
}

/// One operation, declared once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// Its name in the audit log (`team.create`), or a tool's own name.
    pub id: &'static str,
    /// What it does, for sentences: "create a team".
    pub summary: &'static str,
    /// The role permission it needs (`None`: any member).
    pub permission: Option<Permission>,
    /// The token scope it needs (`None`: any token).
    pub scope: Option<Scope>,
    /// Whether it changes anything (the MCP policy can forbid writes).
    pub writes: bool,
    pub audience: Audience,
    /// Reaches a production system: the org must allow production, the
    /// role must have `production.access`, and a token restricted to the
    /// sandbox may not.
    pub production: bool,
    /// Removes or revokes something that cannot simply be undone.
    pub destructive: bool,
    pub credential: CredentialRule,
}

impl Operation {
    /// A read with `permission` and `scope`.
    pub const fn read(
        id: &'static str,
        summary: &'static str,
        permission: Permission,
        scope: Scope,
    ) -> Self {
        Operation {
            id,
            summary,
            permission: Some(permission),
            scope: Some(scope),
            writes: false,
            audience: Audience::Anyone,
            production: false,
            destructive: false,
            credential: CredentialRule::Any,
        }
    }

    /// A change with `permission` and `scope`.
    pub const fn write(
        id: &'static str,
        summary: &'static str,
        permission: Permission,
        scope: Scope,
    ) -> Self {
        Operation {
            writes: true,
            ..Operation::read(id, summary, permission, scope)
        }
    }

    pub const fn destructive(self) -> Self {
        Operation {
            destructive: true,
            ..self
        }
    }

    pub const fn for_a_person(self) -> Self {
        Operation {
            audience: Audience::Person,
            ..self
        }
    }

    pub const fn interactive(self) -> Self {
        Operation {
            credential: CredentialRule::Interactive,
            ..self
        }
    }

    pub const fn in_production(self) -> Self {
        Operation {
            production: true,
            ..self
        }
    }

    /// The same rules under another name (a tool, an upstream's tool).
    pub const fn named(self, id: &'static str) -> Self {
        Operation { id, ..self }
    }
}

/// A fact the caller loaded, or says it did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact<T> {
    Known(T),
    /// Not loaded: any rule that needs it denies.
    Unknown,
}

/// What [`decide`] knows besides the principal and the operation.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The surface the request came through: the MCP policy governs the
    /// MCP surfaces only.
    pub surface: Surface,
    /// The org's MCP policy as read with the principal.
    pub mcp_policy: Fact<McpPolicy>,
    /// What the caller asked for, named in sentences (a tool's name);
    /// defaults to the operation's summary.
    pub subject: Option<&'a str>,
}

impl<'a> Facts<'a> {
    /// The facts a principal carries for a request on `surface`.
    pub fn of(principal: &Principal, surface: Surface) -> Self {
        Facts {
            surface,
            mcp_policy: match principal.mcp_policy {
                Some(p) => Fact::Known(p),
                None => Fact::Unknown,
            },
            subject: None,
        }
    }

    pub fn about(mut self, subject: &'a str) -> Self {
        self.subject = Some(subject);
        self
    }
}

/// Why an operation was refused: a stable code and a sentence that says
/// what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: RefusalCode,
    pub message: String,
}

/// The kinds of refusal, in the order [`decide`] checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCode {
    /// A bearer token for what only a person or the CLI may do.
    Interactive,
    /// The org's MCP policy could not be read.
    PolicyUnknown,
    /// MCP is off for the org.
    McpDisabled,
    /// The org's MCP policy allows reads only.
    WritesDisabled,
    /// The role lacks the permission (or an org token cannot have it).
    Role,
    /// A production rule.
    Production,
    /// The operation is for a person, and an org token acts for no one.
    Audience,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(Refusal),
    /// Only the token's scopes are missing: the client can ask for these.
    StepUp {
        scopes: Vec<Scope>,
        message: String,
    },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// As the core's error: `Forbidden` or `InsufficientScope`.
    pub fn into_result(self) -> Result<(), CoreError> {
        match self {
            Decision::Allow => Ok(()),
            Decision::Deny(r) => Err(CoreError::Forbidden(r.message)),
            Decision::StepUp { scopes, message } => Err(CoreError::InsufficientScope {
                scope: scopes.first().copied().unwrap_or(Scope::ReadOrg),
                message,
            }),
        }
    }
}

fn deny(code: RefusalCode, message: String) -> Decision {
    Decision::Deny(Refusal { code, message })
}

/// Whether `principal` may perform `op`, given `facts`.
pub fn decide(principal: &Principal, op: &Operation, facts: &Facts<'_>) -> Decision {
    let what = facts.subject.unwrap_or(op.summary);
    let token = matches!(principal.credential, Credential::Token { .. });
    if op.credential == CredentialRule::Interactive && token {
        return deny(
            RefusalCode::Interactive,
            format!("'{what}' needs a signed-in session or the CLI, not a bearer token"),
        );
    }
    let policy = match (facts.surface, facts.mcp_policy) {
        (Surface::Mcp | Surface::Rpc, Fact::Unknown) => {
            return deny(
                RefusalCode::PolicyUnknown,
                "the organization's MCP policy could not be read, so nothing is allowed over MCP: try again".into(),
            );
        }
        (Surface::Mcp | Surface::Rpc, Fact::Known(p)) => Some(p),
        _ => None,
    };
    if let Some(p) = policy {
        if !p.enabled {
            return deny(
                RefusalCode::McpDisabled,
                "MCP access is turned off for this organization: an owner can turn it on in the organization's MCP policy".into(),
            );
        }
        if op.writes && !p.allow_write {
            return deny(
                RefusalCode::WritesDisabled,
                format!(
                    "'{what}' changes data, and this organization's MCP policy allows read-only tools only: an owner can allow writes in the MCP policy"
                ),
            );
        }
    }
    if let Some(permission) = op.permission
        && !principal.permissions.contains(permission)
    {
        return deny(
            RefusalCode::Role,
            match &principal.role_name {
                Some(role) => format!(
                    "your role '{role}' does not include the permission '{permission}' that '{what}' needs; ask an admin if you need it"
                ),
                None => format!(
                    "org tokens cannot use the permission '{permission}' that '{what}' needs"
                ),
            },
        );
    }
    if op.production {
        if policy.is_some_and(|p| !p.allow_production) {
            return deny(
                RefusalCode::Production,
                format!(
                    "'{what}' reaches a production system, and this organization's MCP policy does not allow production: an owner can allow it in the MCP policy"
                ),
            );
        }
        if !principal.permissions.contains(Permission::ProductionAccess) {
            return deny(
                RefusalCode::Production,
                format!(
                    "'{what}' reaches a production system, and your role does not include the permission 'production.access'; ask an admin if you need it"
                ),
            );
        }
        if principal.environment() == Some(Environment::Sandbox) {
            return deny(
                RefusalCode::Production,
                format!(
                    "'{what}' reaches a production system, and this token is restricted to the sandbox: use a token for production"
                ),
            );
        }
    }
    if op.audience == Audience::Person && principal.token_kind() == Some(TokenKind::Org) {
        return deny(
            RefusalCode::Audience,
            format!(
                "'{what}' works on the caller's own tasks, and an org token acts for no one person: use a personal token, or the org-wide task tools"
            ),
        );
    }
    if let (Some(scope), Some(scopes)) = (op.scope, principal.scopes())
        && !scopes.contains(&scope)
    {
        return Decision::StepUp {
            scopes: vec![scope],
            message: format!(
                "'{what}' needs the token scope '{scope}', which this token lacks: authorize again (or create a token) with that scope"
            ),
        };
    }
    Decision::Allow
}

/// The scopes a token (or an OAuth consent) may carry for someone with
/// these permissions: those backed by a permission the role holds. A
/// token with a scope its member could never use is refused at creation;
/// a consent grants only these. The one place this rule lives.
pub fn grantable_scopes(
    permissions: &switchboard_domain::PermissionSet,
) -> std::collections::BTreeSet<Scope> {
    Scope::ALL
        .into_iter()
        .filter(|scope| permissions.contains(scope.backing_permission()))
        .collect()
}

#[cfg(test)]
mod tests;
