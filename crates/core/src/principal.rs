//! The principal: who is calling, as what, in which organization, with
//! which CURRENT permissions and which token scopes. Built fresh for every
//! request from the database, so a revocation, removal or demotion takes
//! effect on the next request on every replica.

use std::collections::BTreeSet;

use switchboard_domain::{Environment, McpPolicy, Permission, PermissionSet, Scope, TokenKind};

use crate::CoreError;

#[derive(Debug, Clone)]
pub struct Principal {
    pub account_id: String,
    pub email: String,
    pub display_name: String,
    pub org_id: String,
    /// The organization's slug and name, for answers like `whoami`.
    pub org_slug: String,
    pub org_name: String,
    /// The caller's membership (for an org token: its creator's).
    pub membership_id: String,
    /// The role's name, for messages and `/me`; `None` for org tokens, which have no role.
    pub role_name: Option<String>,
    /// What the caller may do at most (role permissions, or an org token's ceiling).
    pub permissions: PermissionSet,
    pub credential: Credential,
    /// The org's MCP policy, read with a bearer token (the MCP surfaces need
    /// it on every call); `None` where it was not loaded.
    pub mcp_policy: Option<McpPolicy>,
    /// The org's access version when this principal was read with a bearer
    /// token: what a cache of the member's granted connections is checked
    /// against; `None` where it was not loaded (then nothing is cached).
    pub access_version: Option<i64>,
}

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A signed-in person in a browser or script with a session cookie.
    Session {
        session_id: String,
        csrf_token: String,
    },
    /// A bearer token: personal, org, or an OAuth access token.
    Token {
        id: String,
        kind: TokenKind,
        scopes: BTreeSet<Scope>,
        environment: Option<Environment>,
        /// The resource (audience) an OAuth access token was issued for;
        /// `None` for personal and org tokens, which are valid on every
        /// surface. The MCP surfaces refuse a token of another resource.
        resource: Option<String>,
    },
    /// The operator on this machine, acting for the named account.
    Cli,
}

impl Principal {
    /// Allowed when the role (or org-token ceiling) has `permission` and, for
    /// a token, the token carries `scope`. The role is checked first: when
    /// the role forbids it, asking the client to step up a scope is useless.
    pub fn require(&self, permission: Permission, scope: Scope) -> Result<(), CoreError> {
        if !self.permissions.contains(permission) {
            return Err(CoreError::Forbidden(match &self.role_name {
                Some(role) => format!(
                    "your role '{role}' does not include the permission '{permission}'; ask an admin if you need it"
                ),
                None => format!("org tokens cannot use the permission '{permission}'"),
            }));
        }
        if let Credential::Token { scopes, .. } = &self.credential
            && !scopes.contains(&scope)
        {
            return Err(CoreError::InsufficientScope {
                scope,
                message: format!(
                    "this action needs the scope '{scope}'; create or authorize a token that includes it"
                ),
            });
        }
        Ok(())
    }

    /// Some actions (minting tokens, changing passwords) are only for a
    /// person at a dashboard or the operator's CLI, never for a bearer token:
    /// a leaked token must not be able to mint more tokens.
    pub fn require_interactive(&self, what: &str) -> Result<(), CoreError> {
        match self.credential {
            Credential::Session { .. } | Credential::Cli => Ok(()),
            Credential::Token { .. } => Err(CoreError::Forbidden(format!(
                "{what} needs a signed-in session or the CLI, not a bearer token"
            ))),
        }
    }

    pub fn token_id(&self) -> Option<&str> {
        match &self.credential {
            Credential::Token { id, .. } => Some(id),
            _ => None,
        }
    }

    pub fn token_kind(&self) -> Option<TokenKind> {
        match &self.credential {
            Credential::Token { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The environment the token is restricted to, if any.
    pub fn environment(&self) -> Option<Environment> {
        match &self.credential {
            Credential::Token { environment, .. } => *environment,
            _ => None,
        }
    }

    /// The audience of an OAuth access token (`None` for other credentials).
    pub fn token_resource(&self) -> Option<&str> {
        match &self.credential {
            Credential::Token { resource, .. } => resource.as_deref(),
            _ => None,
        }
    }

    pub fn scopes(&self) -> Option<&BTreeSet<Scope>> {
        match &self.credential {
            Credential::Token { scopes, .. } => Some(scopes),
            _ => None,
        }
    }

    /// The permission ceiling of an org token: everything but managing
    /// tokens and the org's MCP policy (owner business, done interactively).
    pub fn org_token_permissions() -> PermissionSet {
        PermissionSet::new(
            Permission::ALL
                .into_iter()
                .filter(|p| *p != Permission::McpManage),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_domain::BuiltinRole;

    fn principal(role: BuiltinRole, credential: Credential) -> Principal {
        Principal {
            account_id: "a".into(),
            email: "a@x.io".into(),
            display_name: "A".into(),
            org_id: "o".into(),
            org_slug: "o".into(),
            org_name: "O".into(),
            membership_id: "m".into(),
            role_name: Some(role.as_str().into()),
            permissions: role.permissions(),
            credential,
            mcp_policy: None,
            access_version: None,
        }
    }

    fn token(scopes: &[Scope]) -> Credential {
        Credential::Token {
            id: "t".into(),
            kind: TokenKind::Personal,
            scopes: scopes.iter().copied().collect(),
            environment: None,
            resource: None,
        }
    }

    #[test]
    fn role_and_scope_must_both_allow() {
        let viewer = principal(BuiltinRole::Viewer, token(&[Scope::WriteTasks]));
        let err = viewer
            .require(Permission::TasksWrite, Scope::WriteTasks)
            .unwrap_err();
        assert!(
            matches!(err, CoreError::Forbidden(ref m) if m.contains("'viewer'")),
            "{err}"
        );

        let member = principal(BuiltinRole::Member, token(&[Scope::ReadTasks]));
        assert!(
            member
                .require(Permission::TasksRead, Scope::ReadTasks)
                .is_ok()
        );
        let err = member
            .require(Permission::TasksWrite, Scope::WriteTasks)
            .unwrap_err();
        assert!(matches!(
            err,
            CoreError::InsufficientScope {
                scope: Scope::WriteTasks,
                ..
            }
        ));

        let session = principal(
            BuiltinRole::Member,
            Credential::Session {
                session_id: "s".into(),
                csrf_token: "c".into(),
            },
        );
        assert!(
            session
                .require(Permission::TasksWrite, Scope::WriteTasks)
                .is_ok()
        );
        assert!(session.require_interactive("creating a token").is_ok());
        assert!(member.require_interactive("creating a token").is_err());
    }

    #[test]
    fn org_tokens_never_manage_tokens_or_policy() {
        let p = Principal::org_token_permissions();
        assert!(!p.contains(Permission::McpManage));
        assert!(p.contains(Permission::TasksRead));
    }
}
