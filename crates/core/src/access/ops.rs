//! Every operation, declared once: its audit name, the permission and scope
//! it needs, whether it writes or destroys, who it is for. Use cases and
//! tools name these; [`super::decide`] reads them. Tests walk [`ALL`].

use switchboard_domain::{Permission as P, Scope as S};

use super::{Audience, CredentialRule, Operation};

/// Anyone signed in to the org, with any credential: no permission, no scope.
const fn open(id: &'static str, summary: &'static str) -> Operation {
    Operation {
        id,
        summary,
        permission: None,
        scope: None,
        writes: false,
        audience: Audience::Anyone,
        production: false,
        destructive: false,
        credential: CredentialRule::Any,
    }
}

// ---- the organization, roles, the audit log ----
pub const WHOAMI: Operation = open("whoami", "who am I");
pub const ORG_GET: Operation =
    Operation::read("org.get", "read the organization", P::OrgRead, S::ReadOrg);
pub const ORG_UPDATE: Operation = Operation::write(
    "org.update",
    "change the organization's name or allowed email domains",
    P::MembersManage,
    S::WriteOrg,
);
pub const ORG_UPDATE_POLICY: Operation = Operation::write(
    "org.update_policy",
    "change the seat limit, feature flags or MCP policy",
    P::McpManage,
    S::WriteOrg,
)
.interactive();
pub const ORG_CREATE: Operation = Operation {
    writes: true,
    ..open("org.create", "create an organization")
}
.interactive();
pub const ROLE_LIST: Operation =
    Operation::read("roles.list", "list roles", P::OrgRead, S::ReadOrg);
pub const ROLE_CREATE: Operation = Operation::write(
    "role.create",
    "create a role",
    P::MembersManage,
    S::WriteOrg,
);
pub const ROLE_UPDATE: Operation = Operation::write(
    "role.update",
    "change a role",
    P::MembersManage,
    S::WriteOrg,
);
pub const ROLE_DELETE: Operation = Operation::write(
    "role.delete",
    "delete a role",
    P::MembersManage,
    S::WriteOrg,
)
.destructive();
pub const ROLES_SYNC: Operation = Operation::write(
    "roles.sync",
    "re-apply the built-in roles' permissions",
    P::MembersManage,
    S::WriteOrg,
);
pub const AUDIT_LIST: Operation =
    Operation::read("audit.list", "read the audit log", P::AuditRead, S::ReadOrg);

// ---- members, invitations, teams ----
pub const MEMBER_LIST: Operation =
    Operation::read("members.list", "list members", P::OrgRead, S::ReadOrg);
pub const MEMBER_GET: Operation =
    Operation::read("members.get", "read a member", P::OrgRead, S::ReadOrg);
pub const MEMBER_CHANGE_ROLE: Operation = Operation::write(
    "member.change_role",
    "change a member's role",
    P::MembersManage,
    S::WriteOrg,
);
pub const MEMBER_REMOVE: Operation = Operation::write(
    "member.remove",
    "remove a member",
    P::MembersManage,
    S::WriteOrg,
)
.destructive();
pub const INVITATION_LIST: Operation = Operation::read(
    "invitations.list",
    "list invitations",
    P::MembersInvite,
    S::ReadOrg,
);
pub const INVITATION_CREATE: Operation = Operation::write(
    "invitation.create",
    "invite a member",
    P::MembersInvite,
    S::WriteOrg,
);
pub const INVITATION_REVOKE: Operation = Operation::write(
    "invitation.revoke",
    "revoke an invitation",
    P::MembersInvite,
    S::WriteOrg,
)
.destructive();
pub const TEAM_LIST: Operation =
    Operation::read("teams.list", "list teams", P::OrgRead, S::ReadOrg);
pub const TEAM_MEMBERS: Operation = Operation::read(
    "team.members",
    "list a team's members",
    P::OrgRead,
    S::ReadOrg,
);
pub const TEAM_CREATE: Operation =
    Operation::write("team.create", "create a team", P::TeamsManage, S::WriteOrg);
pub const TEAM_DELETE: Operation =
    Operation::write("team.delete", "delete a team", P::TeamsManage, S::WriteOrg).destructive();
pub const TEAM_ADD_MEMBER: Operation = Operation::write(
    "team.add_member",
    "add a team member",
    P::TeamsManage,
    S::WriteOrg,
);
pub const TEAM_REMOVE_MEMBER: Operation = Operation::write(
    "team.remove_member",
    "remove a team member",
    P::TeamsManage,
    S::WriteOrg,
)
.destructive();

// ---- the caller's own credentials ----
pub const TOKEN_CREATE_PERSONAL: Operation = Operation {
    writes: true,
    permission: Some(P::McpCreate),
    ..open("token.create", "create a personal token")
}
.interactive();
pub const TOKEN_CREATE_ORG: Operation = Operation {
    writes: true,
    permission: Some(P::McpManage),
    ..open("token.create_org", "create an org token")
}
.interactive();
pub const TOKEN_LIST: Operation = open("tokens.list", "list tokens").interactive();
pub const TOKEN_REVOKE: Operation = Operation {
    writes: true,
    ..open("token.revoke", "revoke a token")
}
.interactive()
.destructive();
pub const PASSWORD_CHANGE: Operation = Operation {
    writes: true,
    ..open("account.change_password", "change a password")
}
.interactive();
pub const SWITCH_ORG: Operation = Operation {
    writes: true,
    ..open("session.switch_org", "switch organization")
}
.interactive();
pub const SIGN_OUT: Operation = Operation {
    writes: true,
    ..open("session.sign_out", "sign out")
}
.interactive();
pub const APPS_LIST: Operation = Operation::read(
    "oauth.grants.list",
    "list the organization's connected apps",
    P::McpManage,
    S::ReadOrg,
);
pub const APP_REVOKE_OWN: Operation = Operation {
    writes: true,
    destructive: true,
    ..open("oauth.grant_revoked", "disconnect your own app")
};
pub const APP_REVOKE: Operation = Operation::write(
    "oauth.member_grant_revoked",
    "disconnect another member's app",
    P::McpManage,
    S::WriteOrg,
)
.destructive();
pub const CLIENT_DISCONNECT: Operation = Operation::write(
    "oauth.client_disconnected",
    "disconnect an app from the organization",
    P::McpManage,
    S::WriteOrg,
)
.destructive();

// ---- work items ----
pub const PROJECT_LIST: Operation =
    Operation::read("projects.list", "list projects", P::TasksRead, S::ReadTasks);
pub const PROJECT_GET: Operation =
    Operation::read("projects.get", "read a project", P::TasksRead, S::ReadTasks);
pub const PROJECT_CREATE: Operation = Operation::write(
    "project.create",
    "create a project",
    P::TasksWrite,
    S::WriteTasks,
);
pub const PROJECT_UPDATE: Operation = Operation::write(
    "project.update",
    "change a project",
    P::TasksWrite,
    S::WriteTasks,
);
pub const REQUIREMENT_LIST: Operation = Operation::read(
    "requirements.list",
    "list requirements",
    P::TasksRead,
    S::ReadRequirements,
);
pub const REQUIREMENT_GET: Operation = Operation::read(
    "requirements.get",
    "read a requirement",
    P::TasksRead,
    S::ReadRequirements,
);
/// A requirement's existence, for listing its tasks (no text is read).
pub const REQUIREMENT_TASKS: Operation = Operation::read(
    "requirements.tasks",
    "list a requirement's tasks",
    P::TasksRead,
    S::ReadTasks,
);
pub const REQUIREMENT_CREATE: Operation = Operation::write(
    "requirement.create",
    "create a requirement",
    P::TasksWrite,
    S::WriteTasks,
);
pub const REQUIREMENT_UPDATE: Operation = Operation::write(
    "requirement.update",
    "change a requirement",
    P::TasksWrite,
    S::WriteTasks,
);
pub const TASK_LIST: Operation =
    Operation::read("tasks.list", "list tasks", P::TasksRead, S::ReadTasks);
pub const TASK_GET: Operation =
    Operation::read("tasks.get", "read a task", P::TasksRead, S::ReadTasks);
pub const TASK_CREATE: Operation =
    Operation::write("task.create", "create a task", P::TasksWrite, S::WriteTasks);
pub const TASK_UPDATE: Operation =
    Operation::write("task.update", "change a task", P::TasksWrite, S::WriteTasks);
pub const TASK_LINK: Operation = Operation::write(
    "task.link_requirement",
    "link a task to a requirement",
    P::TasksWrite,
    S::WriteTasks,
);
pub const TASK_UNLINK: Operation = Operation::write(
    "task.unlink_requirement",
    "unlink a task from a requirement",
    P::TasksWrite,
    S::WriteTasks,
);
pub const TASK_COMMENT: Operation = Operation::write(
    "task.comment",
    "comment on a task",
    P::TasksWrite,
    S::WriteTasks,
);
pub const TASK_COMMENTS: Operation = Operation::read(
    "task.comments",
    "read a task's comments",
    P::TasksRead,
    S::ReadTasks,
);
pub const COMMIT_ENTRY_CREATE: Operation = Operation::write(
    "task.commit_entry",
    "record a commit on a task",
    P::TasksWrite,
    S::WriteCommits,
);
pub const COMMIT_ENTRY_LIST: Operation = Operation::read(
    "task.commit_entries",
    "read a task's commit entries",
    P::TasksRead,
    S::ReadTasks,
);

// ---- connections and the gateway ----
pub const CONNECTION_LIST_USABLE: Operation = Operation::read(
    "connection.list",
    "list the connections you may use",
    P::ConnectionsUse,
    S::ConnectionsUse,
);
pub const CONNECTION_GET: Operation = Operation::read(
    "connection.get",
    "read a connection",
    P::ConnectionsUse,
    S::ConnectionsUse,
);
pub const CONNECTION_LIST_MANAGEABLE: Operation = Operation::read(
    "connection.list_manageable",
    "list every connection of the organization",
    P::ConnectionsPublish,
    S::ReadOrg,
);
pub const CONNECTION_CREATE: Operation = Operation::write(
    "connection.create",
    "publish a connection",
    P::ConnectionsPublish,
    S::WriteOrg,
);
pub const CONNECTION_UPDATE: Operation = Operation::write(
    "connection.update",
    "change a connection",
    P::ConnectionsPublish,
    S::WriteOrg,
);
pub const CONNECTION_DELETE: Operation = Operation::write(
    "connection.delete",
    "delete a connection",
    P::ConnectionsPublish,
    S::WriteOrg,
)
.destructive();
pub const CONNECTION_GRANT: Operation = Operation::write(
    "connection.grant",
    "grant a connection",
    P::ConnectionsPublish,
    S::WriteOrg,
);
pub const CONNECTION_UNGRANT: Operation = Operation::write(
    "connection.ungrant",
    "remove a connection's grant",
    P::ConnectionsPublish,
    S::WriteOrg,
)
.destructive();
pub const CONNECTION_REFRESH: Operation = Operation::write(
    "connection.refresh",
    "refresh a connection's catalog",
    P::ConnectionsPublish,
    S::WriteOrg,
);
pub const CONNECTION_PROCESS: Operation = Operation::read(
    "connection.process",
    "read a connection's process",
    P::ConnectionsPublish,
    S::ReadOrg,
);
pub const INTEGRATION_LIST: Operation = Operation::read(
    "integration.list",
    "list the integration catalog",
    P::ConnectionsUse,
    S::ConnectionsUse,
);
pub const INTEGRATION_ADD: Operation = Operation::write(
    "integration.add",
    "add an integration",
    P::ConnectionsPublish,
    S::WriteOrg,
);
pub const INTEGRATION_DELETE: Operation = Operation::write(
    "integration.delete",
    "delete an integration",
    P::ConnectionsPublish,
    S::WriteOrg,
)
.destructive();
pub const VIRTUAL_SERVER_LIST: Operation = Operation::read(
    "virtual_server.list",
    "list virtual servers",
    P::ConnectionsUse,
    S::ConnectionsUse,
);
pub const VIRTUAL_SERVER_SAVE: Operation = Operation::write(
    "virtual_server.create",
    "save a virtual server",
    P::ConnectionsPublish,
    S::WriteOrg,
);
pub const VIRTUAL_SERVER_DELETE: Operation = Operation::write(
    "virtual_server.delete",
    "delete a virtual server",
    P::ConnectionsPublish,
    S::WriteOrg,
)
.destructive();
/// A tool of a connection (or any request to a virtual server). Its
/// `writes` and `production` come from the connection and the tool when
/// the call path synthesizes it (see [`upstream_tool`]).
pub const CONNECTION_CALL: Operation = Operation::write(
    "connection.call",
    "use a connection",
    P::ConnectionsUse,
    S::ConnectionsUse,
);

/// The operation of one upstream tool: a write unless marked read-only,
/// in production when the connection is.
pub const fn upstream_tool(read_only: bool, production: bool, destructive: bool) -> Operation {
    Operation {
        writes: !read_only,
        production,
        destructive,
        ..CONNECTION_CALL
    }
}

// ---- tools whose rules differ from the use case they run ----
/// The caller's own tasks: meaningless for an org token.
pub const LIST_MY_TASKS: Operation = TASK_LIST.named("listMyTasks").for_a_person();

/// Every declared operation.
pub const ALL: &[Operation] = &[
    WHOAMI,
    ORG_GET,
    ORG_UPDATE,
    ORG_UPDATE_POLICY,
    ORG_CREATE,
    ROLE_LIST,
    ROLE_CREATE,
    ROLE_UPDATE,
    ROLE_DELETE,
    ROLES_SYNC,
    AUDIT_LIST,
    MEMBER_LIST,
    MEMBER_GET,
    MEMBER_CHANGE_ROLE,
    MEMBER_REMOVE,
    INVITATION_LIST,
    INVITATION_CREATE,
    INVITATION_REVOKE,
    TEAM_LIST,
    TEAM_MEMBERS,
    TEAM_CREATE,
    TEAM_DELETE,
    TEAM_ADD_MEMBER,
    TEAM_REMOVE_MEMBER,
    TOKEN_CREATE_PERSONAL,
    TOKEN_CREATE_ORG,
    TOKEN_LIST,
    TOKEN_REVOKE,
    PASSWORD_CHANGE,
    SWITCH_ORG,
    SIGN_OUT,
    APPS_LIST,
    APP_REVOKE_OWN,
    APP_REVOKE,
    CLIENT_DISCONNECT,
    PROJECT_LIST,
    PROJECT_GET,
    PROJECT_CREATE,
    PROJECT_UPDATE,
    REQUIREMENT_LIST,
    REQUIREMENT_GET,
    REQUIREMENT_TASKS,
    REQUIREMENT_CREATE,
    REQUIREMENT_UPDATE,
    TASK_LIST,
    TASK_GET,
    TASK_CREATE,
    TASK_UPDATE,
    TASK_LINK,
    TASK_UNLINK,
    TASK_COMMENT,
    TASK_COMMENTS,
    COMMIT_ENTRY_CREATE,
    COMMIT_ENTRY_LIST,
    CONNECTION_LIST_USABLE,
    CONNECTION_GET,
    CONNECTION_LIST_MANAGEABLE,
    CONNECTION_CREATE,
    CONNECTION_UPDATE,
    CONNECTION_DELETE,
    CONNECTION_GRANT,
    CONNECTION_UNGRANT,
    CONNECTION_REFRESH,
    CONNECTION_PROCESS,
    INTEGRATION_LIST,
    INTEGRATION_ADD,
    INTEGRATION_DELETE,
    VIRTUAL_SERVER_LIST,
    VIRTUAL_SERVER_SAVE,
    VIRTUAL_SERVER_DELETE,
    CONNECTION_CALL,
    LIST_MY_TASKS,
];

/// The declared operation with this id.
pub fn by_id(id: &str) -> Option<&'static Operation> {
    ALL.iter().find(|op| op.id == id)
}
