//! Permissions and the built-in roles' permission sets.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// One thing a role may allow. The wire form is the dotted name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    OrgRead,
    TasksRead,
    TasksWrite,
    MembersInvite,
    MembersManage,
    TeamsManage,
    McpCreate,
    McpManage,
    ConnectionsPublish,
    ConnectionsUse,
    AuditRead,
    ProductionAccess,
}

impl Permission {
    pub const ALL: [Permission; 12] = [
        Permission::OrgRead,
        Permission::TasksRead,
        Permission::TasksWrite,
        Permission::MembersInvite,
        Permission::MembersManage,
        Permission::TeamsManage,
        Permission::McpCreate,
        Permission::McpManage,
        Permission::ConnectionsPublish,
        Permission::ConnectionsUse,
        Permission::AuditRead,
        Permission::ProductionAccess,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::OrgRead => "org.read",
            Permission::TasksRead => "tasks.read",
            Permission::TasksWrite => "tasks.write",
            Permission::MembersInvite => "members.invite",
            Permission::MembersManage => "members.manage",
            Permission::TeamsManage => "teams.manage",
            Permission::McpCreate => "mcp.create",
            Permission::McpManage => "mcp.manage",
            Permission::ConnectionsPublish => "connections.publish",
            Permission::ConnectionsUse => "connections.use",
            Permission::AuditRead => "audit.read",
            Permission::ProductionAccess => "production.access",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
                format!(
                    "unknown permission '{s}': known permissions are {}",
                    known.join(", ")
                )
            })
    }
}

/// A set of permissions: what a role allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSet(BTreeSet<Permission>);

impl PermissionSet {
    pub fn new(perms: impl IntoIterator<Item = Permission>) -> Self {
        PermissionSet(perms.into_iter().collect())
    }

    pub fn all() -> Self {
        Self::new(Permission::ALL)
    }

    pub fn contains(&self, p: Permission) -> bool {
        self.0.contains(&p)
    }

    pub fn is_subset(&self, other: &PermissionSet) -> bool {
        self.0.is_subset(&other.0)
    }

    /// Permissions in `self` that `other` lacks, in order.
    pub fn missing_from(&self, other: &PermissionSet) -> Vec<Permission> {
        self.0.difference(&other.0).copied().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = Permission> + '_ {
        self.0.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses dotted names; an unknown name is an error naming it.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        names
            .into_iter()
            .map(|n| n.trim().parse::<Permission>())
            .collect::<Result<BTreeSet<_>, _>>()
            .map(PermissionSet)
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|p| p.as_str().to_owned()).collect()
    }
}

/// The four roles every organization has. Their permission sets are fixed
/// here; "sync roles" re-applies them to an organization's stored copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BuiltinRole {
    Owner,
    Admin,
    Member,
    Viewer,
}

impl BuiltinRole {
    pub const ALL: [BuiltinRole; 4] = [
        BuiltinRole::Owner,
        BuiltinRole::Admin,
        BuiltinRole::Member,
        BuiltinRole::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BuiltinRole::Owner => "owner",
            BuiltinRole::Admin => "admin",
            BuiltinRole::Member => "member",
            BuiltinRole::Viewer => "viewer",
        }
    }

    pub fn from_name(name: &str) -> Option<BuiltinRole> {
        BuiltinRole::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The declared table of DESIGN.md, "Permissions, scopes and environments".
    pub fn permissions(self) -> PermissionSet {
        use Permission::*;
        let everyone = [OrgRead, TasksRead];
        let member = [ConnectionsUse, McpCreate, TasksWrite];
        let admin = [
            MembersInvite,
            MembersManage,
            TeamsManage,
            ConnectionsPublish,
            AuditRead,
        ];
        let owner = [McpManage, ProductionAccess];
        let mut set: Vec<Permission> = everyone.to_vec();
        if self <= BuiltinRole::Member {
            set.extend(member);
        }
        if self <= BuiltinRole::Admin {
            set.extend(admin);
        }
        if self == BuiltinRole::Owner {
            set.extend(owner);
        }
        PermissionSet::new(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_roles_match_the_declared_table() {
        use Permission::*;
        let table: [(Permission, [bool; 4]); 12] = [
            (OrgRead, [true, true, true, true]),
            (TasksRead, [true, true, true, true]),
            (ConnectionsUse, [true, true, true, false]),
            (McpCreate, [true, true, true, false]),
            (TasksWrite, [true, true, true, false]),
            (MembersInvite, [true, true, false, false]),
            (MembersManage, [true, true, false, false]),
            (TeamsManage, [true, true, false, false]),
            (ConnectionsPublish, [true, true, false, false]),
            (AuditRead, [true, true, false, false]),
            (McpManage, [true, false, false, false]),
            (ProductionAccess, [true, false, false, false]),
        ];
        for (perm, expected) in table {
            for (role, want) in BuiltinRole::ALL.into_iter().zip(expected) {
                assert_eq!(
                    role.permissions().contains(perm),
                    want,
                    "{} having {}",
                    role.as_str(),
                    perm
                );
            }
        }
    }

    #[test]
    fn roles_are_nested() {
        let sets: Vec<_> = BuiltinRole::ALL.iter().map(|r| r.permissions()).collect();
        for pair in sets.windows(2) {
            assert!(pair[1].is_subset(&pair[0]));
            assert_ne!(pair[1], pair[0]);
        }
        assert_eq!(BuiltinRole::Owner.permissions(), PermissionSet::all());
    }

    #[test]
    fn permission_names_round_trip_and_unknown_is_named() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(p));
        }
        let err = PermissionSet::parse(["org.read", "org.destroy"]).unwrap_err();
        assert!(err.contains("'org.destroy'"), "{err}");
        assert!(err.contains("tasks.read"), "{err}");
    }
}
