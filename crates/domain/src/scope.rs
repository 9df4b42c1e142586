//! Token scopes, token kinds and environments.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::Permission;

/// What a token lets an agent do, on top of what the caller's role allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    ReadOrg,
    WriteOrg,
    ReadTasks,
    WriteTasks,
    WriteCommits,
    ReadRequirements,
    ConnectionsUse,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::ReadOrg,
        Scope::WriteOrg,
        Scope::ReadTasks,
        Scope::WriteTasks,
        Scope::WriteCommits,
        Scope::ReadRequirements,
        Scope::ConnectionsUse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ReadOrg => "read:org",
            Scope::WriteOrg => "write:org",
            Scope::ReadTasks => "read:tasks",
            Scope::WriteTasks => "write:tasks",
            Scope::WriteCommits => "write:commits",
            Scope::ReadRequirements => "read:requirements",
            Scope::ConnectionsUse => "connections:use",
        }
    }

    /// The role permission a member needs for this scope to be of any use.
    /// Used to refuse minting a token whose scopes the creator could never
    /// exercise (the request-time check still intersects with the role).
    pub fn backing_permission(self) -> Permission {
        match self {
            Scope::ReadOrg => Permission::OrgRead,
            Scope::WriteOrg => Permission::MembersManage,
            Scope::ReadTasks | Scope::ReadRequirements => Permission::TasksRead,
            Scope::WriteTasks | Scope::WriteCommits => Permission::TasksWrite,
            Scope::ConnectionsUse => Permission::ConnectionsUse,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Scope::ALL.iter().map(|x| x.as_str()).collect();
                format!("unknown scope '{s}': valid scopes are {}", known.join(", "))
            })
    }
}

/// Parses a list of scope names (duplicates collapse). At least one is required.
pub fn parse_scopes<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeSet<Scope>, String> {
    let set = names
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<BTreeSet<Scope>, String>>()?;
    if set.is_empty() {
        let known: Vec<&str> = Scope::ALL.iter().map(|x| x.as_str()).collect();
        return Err(format!(
            "at least one scope is required: valid scopes are {}",
            known.join(", ")
        ));
    }
    Ok(set)
}

/// The three kinds of bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// Acts as its member, with the member's current role.
    Personal,
    /// An org-level service principal; its scopes apply org-wide.
    Org,
    /// Short-lived, issued by the authorization server to an MCP client.
    OAuth,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Personal => "personal",
            TokenKind::Org => "org",
            TokenKind::OAuth => "oauth",
        }
    }

    /// The permission the creator's role must hold to mint this kind.
    pub fn required_permission(self) -> Option<Permission> {
        match self {
            TokenKind::Personal => Some(Permission::McpCreate),
            TokenKind::Org => Some(Permission::McpManage),
            TokenKind::OAuth => None,
        }
    }
}

impl FromStr for TokenKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "personal" => Ok(TokenKind::Personal),
            "org" => Ok(TokenKind::Org),
            "oauth" => Ok(TokenKind::OAuth),
            other => Err(format!(
                "unknown token kind '{other}': use 'personal' or 'org'"
            )),
        }
    }
}

/// Where a connection's calls land.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Environment {
    Sandbox,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Sandbox => "sandbox",
            Environment::Production => "production",
        }
    }
}

impl FromStr for Environment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sandbox" => Ok(Environment::Sandbox),
            "production" => Ok(Environment::Production),
            other => Err(format!(
                "unknown environment '{other}': use 'sandbox' or 'production'"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_reject_unknown_by_name() {
        let set = parse_scopes(["read:tasks", " write:tasks", "read:tasks"]).unwrap();
        assert_eq!(set.len(), 2);
        let err = parse_scopes(["read:tasks", "admin:all"]).unwrap_err();
        assert!(err.starts_with("unknown scope 'admin:all'"), "{err}");
        assert!(err.contains("write:commits"));
        assert!(
            parse_scopes(["", " "])
                .unwrap_err()
                .contains("at least one scope")
        );
    }

    #[test]
    fn token_kinds_need_the_declared_permission() {
        assert_eq!(
            TokenKind::Personal.required_permission(),
            Some(Permission::McpCreate)
        );
        assert_eq!(
            TokenKind::Org.required_permission(),
            Some(Permission::McpManage)
        );
        assert!(
            "robot"
                .parse::<TokenKind>()
                .unwrap_err()
                .contains("'robot'")
        );
    }
}
