//! The org's own tools (first-party capabilities): identity, members,
//! invitations and teams, and the work items. Each tool is a thin adapter
//! from its JSON arguments to one core use case; the core re-checks the
//! role and scope, writes the change with its audit event in one
//! transaction, and applies every domain rule (seats, domains, last owner,
//! nobody grants above their own).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_core::access::{Operation, ops};
use switchboard_core::members::{AddTeamMember, ChangeRole, CreateInvitation, CreateTeam};
use switchboard_core::orgs::UpdateOrg;
use switchboard_core::views::{
    CommitEntryView, InvitationView, MemberView, OrgView, Page, ProjectView, RequirementView,
    TaskView, TeamView,
};
use switchboard_core::work::{CreateCommitEntry, TaskQuery, TaskReach, UpdateTask};
use switchboard_core::{Core, CoreError, Ctx, PageRequest};
use switchboard_domain::TokenKind;

use crate::capability::{Capability, Hints, JsonObject};
use crate::registry::Provider;

/// The built-in provider of the org's own tools.
pub struct OrgTools {
    tools: Vec<Arc<Capability>>,
    runs: HashMap<&'static str, Run>,
    /// Page size of list tools when the caller gives no `limit`.
    default_limit: u32,
}

// ---- arguments (their JSON Schemas are the tools' input schemas) ----

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

/// A connection the caller may use.
#[derive(Debug, Serialize, JsonSchema)]
struct UsableConnection {
    slug: String,
    name: String,
    description: String,
    /// Its virtual server: this connection's tools, unprefixed.
    server_url: String,
    /// `connected`, `degraded`, `disconnected` or `unknown`.
    health: String,
    tool_count: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
struct UsableConnections {
    items: Vec<UsableConnection>,
}

/// Paging of a list tool.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    /// `next_cursor` from the previous page; omit for the first page.
    cursor: Option<String>,
    /// Page size, 1 to 200.
    #[schemars(range(min = 1, max = 200))]
    limit: Option<u32>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Status {
    Todo,
    InProgress,
    InReview,
    Done,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Todo => "TODO",
            Status::InProgress => "IN_PROGRESS",
            Status::InReview => "IN_REVIEW",
            Status::Done => "DONE",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum PriorityArg {
    Low,
    Medium,
    High,
    Urgent,
}

impl PriorityArg {
    fn as_str(self) -> &'static str {
        match self {
            PriorityArg::Low => "low",
            PriorityArg::Medium => "medium",
            PriorityArg::High => "high",
            PriorityArg::Urgent => "urgent",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListMyTasksArgs {
    /// Only tasks in this status.
    status: Option<Status>,
    cursor: Option<String>,
    #[schemars(range(min = 1, max = 200))]
    limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListTasksByReqArgs {
    /// The requirement's id.
    #[schemars(length(min = 1, max = 100))]
    requirement_id: String,
    status: Option<Status>,
    cursor: Option<String>,
    #[schemars(range(min = 1, max = 200))]
    limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListTasksArgs {
    /// Only tasks of this project.
    project_id: Option<String>,
    status: Option<Status>,
    /// Only tasks assigned to this membership id (or `me`).
    assignee: Option<String>,
    /// Only tasks linked to this requirement.
    requirement_id: Option<String>,
    cursor: Option<String>,
    #[schemars(range(min = 1, max = 200))]
    limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TaskIdArgs {
    #[schemars(length(min = 1, max = 100))]
    task_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RequirementIdArgs {
    #[schemars(length(min = 1, max = 100))]
    requirement_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListRequirementsArgs {
    /// Only requirements of this project.
    project_id: Option<String>,
    cursor: Option<String>,
    #[schemars(range(min = 1, max = 200))]
    limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UpdateTaskStatusArgs {
    #[schemars(length(min = 1, max = 100))]
    task_id: String,
    /// The new status: one step along TODO → IN_PROGRESS → IN_REVIEW → DONE, or one back.
    status: Status,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UpdateTaskArgs {
    #[schemars(length(min = 1, max = 100))]
    task_id: String,
    #[schemars(length(min = 1, max = 300))]
    title: Option<String>,
    #[schemars(length(max = 20000))]
    description: Option<String>,
    priority: Option<PriorityArg>,
    status: Option<Status>,
    /// Replaces the assignees (membership ids).
    #[schemars(length(max = 50))]
    assignee_ids: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateCommitEntryArgs {
    #[schemars(length(min = 1, max = 100))]
    task_id: String,
    /// The commit message (or a summary of the change).
    #[schemars(length(min = 1, max = 2000))]
    message: String,
    /// The commit's hash: 7 to 64 hex characters.
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{7,64}$"))]
    commit_hash: Option<String>,
    /// Why the change was made.
    #[schemars(length(max = 20000))]
    reason: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct InviteMemberArgs {
    /// The invitee's email address.
    #[schemars(length(min = 3, max = 320))]
    email: String,
    /// A role name (`member` when omitted). Nobody grants a role above their own.
    role: Option<String>,
    /// Teams the invitee joins on acceptance.
    #[schemars(length(max = 50))]
    team_ids: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct InvitationIdArgs {
    #[schemars(length(min = 1, max = 100))]
    invitation_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UpdateAllowedDomainsArgs {
    /// The complete new list of email domains invitations may go to (empty: any domain).
    #[schemars(length(max = 100))]
    domains: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ChangeMemberRoleArgs {
    /// The membership id (from listMembers).
    #[schemars(length(min = 1, max = 100))]
    membership_id: String,
    /// The new role's name, e.g. `admin`, `member`, `viewer`.
    #[schemars(length(min = 1, max = 100))]
    role: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct MembershipIdArgs {
    #[schemars(length(min = 1, max = 100))]
    membership_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateTeamArgs {
    #[schemars(length(min = 1, max = 200))]
    name: String,
    #[schemars(length(max = 2000))]
    description: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TeamMemberArgs {
    #[schemars(length(min = 1, max = 100))]
    team_id: String,
    /// The membership id (from listMembers).
    #[schemars(length(min = 1, max = 100))]
    membership_id: String,
}

// ---- results that are not plain views ----

/// Who the caller is, as the agent acts.
#[derive(Debug, serde::Serialize, JsonSchema)]
struct WhoAmI {
    account: WhoAccount,
    org: WhoOrg,
    membership_id: String,
    /// The caller's role; `null` for an org token, which acts org-wide.
    role: Option<String>,
    /// `personal`, `org` or `oauth`.
    token_kind: Option<String>,
    scopes: Vec<String>,
    /// The environment the token is restricted to, if any.
    environment: Option<String>,
    mcp_policy: WhoPolicy,
}

#[derive(Debug, serde::Serialize, JsonSchema)]
struct WhoAccount {
    id: String,
    email: String,
    display_name: String,
}

#[derive(Debug, serde::Serialize, JsonSchema)]
struct WhoOrg {
    id: String,
    slug: String,
    name: String,
}

#[derive(Debug, serde::Serialize, JsonSchema)]
struct WhoPolicy {
    mcp_enabled: bool,
    allow_write: bool,
    allow_production: bool,
}

/// The invitation created. Its acceptance link is a secret meant for the
/// invitee: it is never shown to an agent.
#[derive(Debug, serde::Serialize, JsonSchema)]
struct InvitedMember {
    invitation: InvitationView,
    note: String,
}

#[derive(Debug, serde::Serialize, JsonSchema)]
struct Done {
    ok: bool,
    message: String,
}

// ---- schemas ----

fn schema<T: JsonSchema>(serialize: bool) -> JsonObject {
    let mut settings = SchemaSettings::draft2020_12();
    settings.inline_subschemas = true;
    let settings = if serialize {
        settings.for_serialize()
    } else {
        settings.for_deserialize()
    };
    let root = settings.into_generator().into_root_schema_for::<T>();
    let mut obj = match root.to_value() {
        Value::Object(o) => o,
        _ => JsonObject::new(),
    };
    // The dialect is MCP's default (2020-12); the Rust type name means
    // nothing to a client.
    obj.remove("$schema");
    obj.remove("title");
    if !obj.contains_key("properties") && obj.get("type") == Some(&json!("object")) {
        obj.insert("properties".into(), json!({}));
    }
    let mut v = Value::Object(obj);
    standard_formats(&mut v);
    match v {
        Value::Object(o) => o,
        _ => JsonObject::new(),
    }
}

/// Keeps only JSON Schema 2020-12's own `format` values: schemars names
/// Rust's integer and float types (`uint32`, `int64`, `double`), which
/// clients flag as unknown. An unsigned one becomes `minimum: 0`.
fn standard_formats(v: &mut Value) {
    const STANDARD: [&str; 19] = [
        "date-time",
        "date",
        "time",
        "duration",
        "email",
        "idn-email",
        "hostname",
        "idn-hostname",
        "ipv4",
        "ipv6",
        "uri",
        "uri-reference",
        "iri",
        "iri-reference",
        "uuid",
        "uri-template",
        "json-pointer",
        "relative-json-pointer",
        "regex",
    ];
    match v {
        Value::Object(m) => {
            if let Some(Value::String(f)) = m.get("format")
                && !STANDARD.contains(&f.as_str())
            {
                let unsigned = f.starts_with("uint");
                m.remove("format");
                if unsigned && !m.contains_key("minimum") {
                    m.insert("minimum".into(), json!(0));
                }
            }
            m.values_mut().for_each(standard_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(standard_formats),
        _ => {}
    }
}

/// What a tool's function gets: the provider (paging), the core and the
/// request's context.
#[derive(Clone, Copy)]
struct Env<'a> {
    tools: &'a OrgTools,
    core: &'a Core,
    ctx: Ctx<'a>,
}

type ToolFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, CoreError>> + Send + 'a>>;
/// Runs one tool with arguments its input schema admitted.
type Run = for<'a> fn(Env<'a>, Value) -> ToolFuture<'a>;

/// One declared tool.
struct Declared {
    operation: Operation,
    name: &'static str,
    title: &'static str,
    description: &'static str,
    input: JsonObject,
    output: JsonObject,
    /// Calling it twice with the same arguments changes nothing more.
    idempotent: bool,
    run: Run,
}

fn tool<I: JsonSchema, O: JsonSchema>(
    operation: Operation,
    name: &'static str,
    title: &'static str,
    description: &'static str,
    idempotent: bool,
    run: Run,
) -> Declared {
    Declared {
        operation,
        name,
        title,
        description,
        input: schema::<I>(false),
        output: schema::<O>(true),
        idempotent,
        run,
    }
}

impl Declared {
    /// The MCP annotations follow the declared rules (hints for clients).
    fn hints(&self) -> Hints {
        Hints {
            read_only: !self.operation.writes,
            destructive: self.operation.destructive,
            idempotent: self.idempotent,
            open_world: false,
        }
    }
}

/// Every first-party tool, declared once: its operation (the access rules
/// the access module decides on), what clients see, and what runs it.
fn declare() -> Vec<Declared> {
    vec![
        tool::<NoArgs, WhoAmI>(
            ops::WHOAMI,
            "whoami",
            "Who am I",
            "Who this agent acts as: the account, the organization, the role, the token kind and scopes, the environment and the org's MCP policy. Always allowed.",
            true,
            |e, _args| {
                Box::pin(async move {
                    let ctx = e.ctx;
                    // Everything is in the principal, rebuilt from the database
                    // for this request: no further query.
                    let p = ctx.principal;
                    let policy = p.mcp_policy.unwrap_or_default();
                    out(WhoAmI {
                        account: WhoAccount {
                            id: p.account_id.clone(),
                            email: p.email.clone(),
                            display_name: p.display_name.clone(),
                        },
                        org: WhoOrg {
                            id: p.org_id.clone(),
                            slug: p.org_slug.clone(),
                            name: p.org_name.clone(),
                        },
                        membership_id: p.membership_id.clone(),
                        role: p.role_name.clone(),
                        token_kind: p.token_kind().map(|k| k.as_str().to_owned()),
                        scopes: p
                            .scopes()
                            .map(|s| s.iter().map(|x| x.as_str().to_owned()).collect())
                            .unwrap_or_default(),
                        environment: p.environment().map(|e| e.as_str().to_owned()),
                        mcp_policy: WhoPolicy {
                            mcp_enabled: policy.enabled,
                            allow_write: policy.allow_write,
                            allow_production: policy.allow_production,
                        },
                    })
                })
            },
        ),
        tool::<ListArgs, Page<MemberView>>(
            ops::MEMBER_LIST,
            "listMembers",
            "List members",
            "Lists the organization's members (active and invited) with their roles and teams, oldest first, one page at a time.",
            true,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: ListArgs = parse(args)?;
                    out(core
                        .list_members(ctx, e.tools.page(a.cursor, a.limit))
                        .await?)
                })
            },
        ),
        tool::<ListArgs, Page<InvitationView>>(
            ops::INVITATION_LIST,
            "listInvitations",
            "List invitations",
            "Lists the organization's invitations with their state (pending, accepted, revoked, expired).",
            true,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: ListArgs = parse(args)?;
                    out(core
                        .list_invitations(ctx, e.tools.page(a.cursor, a.limit))
                        .await?)
                })
            },
        ),
        tool::<InviteMemberArgs, InvitedMember>(
            ops::INVITATION_CREATE,
            "inviteMember",
            "Invite a member",
            "Invites someone by email with a role (default `member`). Refused with the reason when the seat limit is reached or the email's domain is not allowed. The acceptance link goes to people only, never to agents.",
            false,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: InviteMemberArgs = parse(args)?;
                    let created = core
                        .create_invitation(
                            ctx,
                            CreateInvitation {
                                email: a.email,
                                role: a.role,
                                team_ids: a.team_ids.unwrap_or_default(),
                            },
                        )
                        .await?;
                    out(InvitedMember {
                invitation: created.invitation,
                note: "The invitation exists. Its acceptance link is shown only to people (the dashboard or the REST API), never to an agent.".into(),
            })
                })
            },
        ),
        tool::<InvitationIdArgs, Done>(
            ops::INVITATION_REVOKE,
            "revokeInvitation",
            "Revoke an invitation",
            "Revokes a pending invitation; its link stops working at once.",
            true,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: InvitationIdArgs = parse(args)?;
                    core.revoke_invitation(ctx, &a.invitation_id).await?;
                    out(Done {
                        ok: true,
                        message: format!("invitation {} revoked", a.invitation_id),
                    })
                })
            },
        ),
        tool::<UpdateAllowedDomainsArgs, OrgView>(
            ops::ORG_UPDATE,
            "updateAllowedDomains",
            "Update allowed email domains",
            "Replaces the list of email domains invitations may go to (an empty list allows any domain).",
            true,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: UpdateAllowedDomainsArgs = parse(args)?;
                    let input = UpdateOrg {
                        allowed_email_domains: Some(a.domains),
                        ..Default::default()
                    };
                    out(core.update_org(ctx, input).await?)
                })
            },
        ),
        tool::<ChangeMemberRoleArgs, MemberView>(
            ops::MEMBER_CHANGE_ROLE,
            "changeMemberRole",
            "Change a member's role",
            "Gives a member another role. Nobody grants a role above their own, and the last owner cannot be demoted.",
            true,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: ChangeMemberRoleArgs = parse(args)?;
                    out(core
                        .change_member_role(ctx, &a.membership_id, ChangeRole { role: a.role })
                        .await?)
                })
            },
        ),
        tool::<MembershipIdArgs, Done>(
            ops::MEMBER_REMOVE,
            "removeMember",
            "Remove a member",
            "Removes a member from the organization and revokes their tokens. The last owner cannot be removed.",
            true,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: MembershipIdArgs = parse(args)?;
                    core.remove_member(ctx, &a.membership_id).await?;
                    out(Done {
                        ok: true,
                        message: format!(
                            "member {} removed; their tokens are revoked",
                            a.membership_id
                        ),
                    })
                })
            },
        ),
        tool::<NoArgs, UsableConnections>(
            ops::CONNECTION_LIST_USABLE,
            "list_connections",
            "List connections",
            "Lists the external MCP servers (connections) you may use, each with the URL of its virtual server (add it to your MCP client to use its tools directly), its health and how many tools it offers.",
            true,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let _: NoArgs = parse(args)?;
                    let base = core.config().public_url.trim_end_matches('/').to_owned();
                    let items = core
                        .list_connections(
                            ctx,
                            switchboard_core::connections::ConnectionScope::Usable,
                        )
                        .await?
                        .into_iter()
                        .map(|c| UsableConnection {
                            server_url: format!("{base}/mcp/servers/{}", c.slug),
                            slug: c.slug,
                            name: c.name,
                            description: c.description,
                            health: c.health,
                            tool_count: c.tool_count,
                        })
                        .collect();
                    out(UsableConnections { items })
                })
            },
        ),
        tool::<ListArgs, Page<TeamView>>(
            ops::TEAM_LIST,
            "listTeams",
            "List teams",
            "Lists the organization's teams with their member counts.",
            true,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: ListArgs = parse(args)?;
                    out(core
                        .list_teams(ctx, e.tools.page(a.cursor, a.limit))
                        .await?)
                })
            },
        ),
        tool::<CreateTeamArgs, TeamView>(
            ops::TEAM_CREATE,
            "createTeam",
            "Create a team",
            "Creates a team (names are unique within the organization).",
            false,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: CreateTeamArgs = parse(args)?;
                    out(core
                        .create_team(
                            ctx,
                            CreateTeam {
                                name: a.name,
                                description: a.description.unwrap_or_default(),
                            },
                        )
                        .await?)
                })
            },
        ),
        tool::<TeamMemberArgs, Done>(
            ops::TEAM_ADD_MEMBER,
            "addTeamMember",
            "Add a team member",
            "Adds an active member to a team. Someone whose invitation is still pending cannot be added until they accept.",
            true,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: TeamMemberArgs = parse(args)?;
                    core.add_team_member(
                        ctx,
                        &a.team_id,
                        AddTeamMember {
                            membership_id: a.membership_id.clone(),
                        },
                    )
                    .await?;
                    out(Done {
                        ok: true,
                        message: format!("member {} added to team {}", a.membership_id, a.team_id),
                    })
                })
            },
        ),
        tool::<TeamMemberArgs, Done>(
            ops::TEAM_REMOVE_MEMBER,
            "removeTeamMember",
            "Remove a team member",
            "Removes a member from a team (they stay in the organization).",
            true,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: TeamMemberArgs = parse(args)?;
                    core.remove_team_member(ctx, &a.team_id, &a.membership_id)
                        .await?;
                    out(Done {
                        ok: true,
                        message: format!(
                            "member {} removed from team {}",
                            a.membership_id, a.team_id
                        ),
                    })
                })
            },
        ),
        tool::<ListMyTasksArgs, Page<TaskView>>(
            ops::LIST_MY_TASKS,
            "listMyTasks",
            "List my tasks",
            "Lists the tasks assigned to the caller, optionally in one status.",
            true,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: ListMyTasksArgs = parse(args)?;
                    let q = TaskQuery {
                        status: a.status.map(|s| s.as_str().to_owned()),
                        assignee: Some("me".into()),
                        ..Default::default()
                    };
                    out(core
                        .list_tasks(ctx, q, e.tools.page(a.cursor, a.limit))
                        .await?)
                })
            },
        ),
        tool::<ListTasksByReqArgs, Page<TaskView>>(
            ops::TASK_LIST,
            "listTasksByReq",
            "List tasks by requirement",
            "Lists the tasks linked to a requirement. With a personal token: only the caller's own tasks; with an org token: all of them.",
            true,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: ListTasksByReqArgs = parse(args)?;
                    // A requirement that does not exist is an error, not an empty list.
                    core.get_requirement_for_tasks(ctx, &a.requirement_id)
                        .await?;
                    let q = TaskQuery {
                        status: a.status.map(|s| s.as_str().to_owned()),
                        requirement_id: Some(a.requirement_id),
                        assignee: (reach(ctx) == TaskReach::Own).then(|| "me".to_owned()),
                        ..Default::default()
                    };
                    out(core
                        .list_tasks(ctx, q, e.tools.page(a.cursor, a.limit))
                        .await?)
                })
            },
        ),
        tool::<UpdateTaskStatusArgs, TaskView>(
            ops::TASK_UPDATE,
            "updateTaskStatus",
            "Update a task's status",
            "Moves a task one step along TODO → IN_PROGRESS → IN_REVIEW → DONE (or one step back). With a personal token: only the caller's own tasks.",
            true,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: UpdateTaskStatusArgs = parse(args)?;
                    let input = UpdateTask {
                        status: Some(a.status.as_str().to_owned()),
                        ..Default::default()
                    };
                    out(core
                        .update_task_within(ctx, &a.task_id, input, reach(ctx))
                        .await?)
                })
            },
        ),
        tool::<CreateCommitEntryArgs, CommitEntryView>(
            ops::COMMIT_ENTRY_CREATE,
            "createCommitEntry",
            "Record a commit on a task",
            "Records a commit (message, optional hash and reason) against a task. With a personal token: only the caller's own tasks.",
            false,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: CreateCommitEntryArgs = parse(args)?;
                    let input = CreateCommitEntry {
                        message: a.message,
                        commit_hash: a.commit_hash,
                        reason: a.reason,
                    };
                    out(core
                        .create_commit_entry_within(ctx, &a.task_id, input, reach(ctx))
                        .await?)
                })
            },
        ),
        tool::<ListArgs, Page<ProjectView>>(
            ops::PROJECT_LIST,
            "listProjects",
            "List projects",
            "Lists the organization's projects.",
            true,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: ListArgs = parse(args)?;
                    out(core
                        .list_projects(ctx, e.tools.page(a.cursor, a.limit))
                        .await?)
                })
            },
        ),
        tool::<ListTasksArgs, Page<TaskView>>(
            ops::TASK_LIST,
            "listTasks",
            "List tasks",
            "Lists the organization's tasks, filtered by project, status, assignee or requirement.",
            true,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: ListTasksArgs = parse(args)?;
                    let q = TaskQuery {
                        project_id: a.project_id,
                        status: a.status.map(|s| s.as_str().to_owned()),
                        assignee: a.assignee,
                        requirement_id: a.requirement_id,
                    };
                    out(core
                        .list_tasks(ctx, q, e.tools.page(a.cursor, a.limit))
                        .await?)
                })
            },
        ),
        tool::<TaskIdArgs, TaskView>(
            ops::TASK_GET,
            "getTask",
            "Get a task",
            "One task with its assignees and linked requirements.",
            true,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: TaskIdArgs = parse(args)?;
                    out(core.get_task(ctx, &a.task_id).await?)
                })
            },
        ),
        tool::<UpdateTaskArgs, TaskView>(
            ops::TASK_UPDATE,
            "updateTask",
            "Update a task",
            "Changes any task's title, description, priority, status (one step) or assignees.",
            true,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: UpdateTaskArgs = parse(args)?;
                    let input = UpdateTask {
                        title: a.title,
                        description: a.description,
                        priority: a.priority.map(|p| p.as_str().to_owned()),
                        status: a.status.map(|s| s.as_str().to_owned()),
                        assignee_ids: a.assignee_ids,
                    };
                    out(core.update_task(ctx, &a.task_id, input).await?)
                })
            },
        ),
        tool::<ListRequirementsArgs, Page<RequirementView>>(
            ops::REQUIREMENT_LIST,
            "listRequirements",
            "List requirements",
            "Lists requirements (title and full text), optionally of one project.",
            true,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: ListRequirementsArgs = parse(args)?;
                    out(core
                        .list_requirements(
                            ctx,
                            a.project_id.as_deref(),
                            e.tools.page(a.cursor, a.limit),
                        )
                        .await?)
                })
            },
        ),
        tool::<RequirementIdArgs, RequirementView>(
            ops::REQUIREMENT_GET,
            "getRequirement",
            "Get a requirement",
            "One requirement with its full text.",
            true,
            |e, args| {
                Box::pin(async move {
                    let (core, ctx) = (e.core, e.ctx);
                    let a: RequirementIdArgs = parse(args)?;
                    out(core.get_requirement(ctx, &a.requirement_id).await?)
                })
            },
        ),
    ]
}

impl OrgTools {
    pub fn new(default_limit: u32) -> Result<Self, String> {
        let mut tools = Vec::new();
        let mut runs = HashMap::new();
        for d in declare() {
            let capability = Capability::new(
                d.name,
                d.title,
                d.description,
                d.input.clone(),
                Some(d.output.clone()),
                d.hints(),
                d.operation,
            )?;
            tools.push(Arc::new(capability));
            if runs.insert(d.name, d.run).is_some() {
                return Err(format!("the tool '{}' is declared twice", d.name));
            }
        }
        Ok(OrgTools {
            tools,
            runs,
            default_limit,
        })
    }

    fn page(&self, cursor: Option<String>, limit: Option<u32>) -> PageRequest {
        PageRequest {
            cursor,
            limit: Some(limit.unwrap_or(self.default_limit)),
        }
    }
}

fn parse<T: DeserializeOwned>(args: Value) -> Result<T, CoreError> {
    // The schema already admitted the arguments; this only fails if the
    // schema and the type disagree, which is our bug, reported as a field error.
    serde_json::from_value(args).map_err(|e| CoreError::invalid("arguments", e.to_string()))
}

fn out<T: serde::Serialize>(v: T) -> Result<Value, CoreError> {
    serde_json::to_value(v).map_err(|e| CoreError::Internal(e.to_string()))
}

/// Personal and OAuth tokens act as one person: "my tasks" tools reach
/// only that person's tasks. Org tokens act org-wide.
fn reach(ctx: Ctx<'_>) -> TaskReach {
    match ctx.principal.token_kind() {
        Some(TokenKind::Org) => TaskReach::Org,
        _ => TaskReach::Own,
    }
}

#[async_trait::async_trait]
impl Provider for OrgTools {
    fn capabilities(&self) -> Vec<Arc<Capability>> {
        self.tools.clone()
    }

    async fn execute(
        &self,
        core: &Core,
        ctx: Ctx<'_>,
        capability: &Capability,
        args: Value,
    ) -> Result<Value, CoreError> {
        let Some(run) = self.runs.get(capability.name.as_str()) else {
            return Err(CoreError::Internal(format!(
                "the org provider has no tool '{}'",
                capability.name
            )));
        };
        run(
            Env {
                tools: self,
                core,
                ctx,
            },
            args,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_valid_schemas_and_a_unique_name() {
        let tools = OrgTools::new(50).expect("schemas compile");
        let mut names: Vec<&str> = tools.tools.iter().map(|t| t.name.as_str()).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate tool names");
        for t in &tools.tools {
            assert_eq!(t.input_schema["type"], "object", "{}", t.name);
            let out = t.output_schema.as_ref().expect("output schema");
            assert_eq!(out["type"], "object", "{}", t.name);
            assert!(!t.description.is_empty());
            assert!(
                !serde_json::to_string(&*t.input_schema)
                    .unwrap()
                    .contains("$ref"),
                "{} input schema is inlined",
                t.name
            );
            // Unknown arguments are refused.
            assert_eq!(t.input_schema["additionalProperties"], false, "{}", t.name);
        }
        for required in [
            "listMyTasks",
            "listTasksByReq",
            "updateTaskStatus",
            "createCommitEntry",
            "listProjects",
            "listTasks",
            "getTask",
            "updateTask",
            "listRequirements",
            "getRequirement",
            "whoami",
        ] {
            assert!(names.contains(&required), "{required} missing");
        }
    }

    #[test]
    fn schemas_use_only_standard_formats() {
        let tools = OrgTools::new(50).expect("schemas compile");
        for t in &tools.tools {
            for schema in [Some(&t.input_schema), t.output_schema.as_ref()]
                .into_iter()
                .flatten()
            {
                let text = serde_json::to_string(&**schema).unwrap();
                for bad in ["\"uint", "\"int32", "\"int64", "\"double\"", "\"float\""] {
                    assert!(
                        !text.contains(&format!("\"format\":{bad}")),
                        "{}: {text}",
                        t.name
                    );
                }
            }
        }
        let list = tools
            .tools
            .iter()
            .find(|t| t.name == "listMembers")
            .unwrap();
        assert_eq!(list.input_schema["properties"]["limit"]["minimum"], 1);
    }

    #[test]
    fn arguments_are_validated_against_the_schema() {
        let tools = OrgTools::new(50).unwrap();
        let t = tools
            .tools
            .iter()
            .find(|t| t.name == "updateTaskStatus")
            .unwrap();
        assert!(
            t.validate(&json!({"task_id": "x", "status": "DONE"}))
                .is_ok()
        );
        let err = t
            .validate(&json!({"task_id": "x", "status": "FINISHED"}))
            .unwrap_err();
        assert!(err.contains("/status"), "{err}");
        let err = t.validate(&json!({"status": "DONE"})).unwrap_err();
        assert!(err.contains("task_id"), "{err}");
        let err = t
            .validate(&json!({"task_id": "x", "status": "DONE", "extra": 1}))
            .unwrap_err();
        assert!(err.contains("extra"), "{err}");
        let commit = tools
            .tools
            .iter()
            .find(|t| t.name == "createCommitEntry")
            .unwrap();
        assert!(
            commit
                .validate(&json!({"task_id": "x", "message": "m", "commit_hash": "zz"}))
                .is_err()
        );
    }
}
