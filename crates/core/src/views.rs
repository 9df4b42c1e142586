//! What the use cases return: plain serializable views with their schema
//! (for the OpenAPI document now, and tool output schemas later). Times are
//! RFC 3339 strings in UTC.

use serde::Serialize;
use switchboard_storage as storage;
use utoipa::ToSchema;

/// Epoch milliseconds as an RFC 3339 UTC time.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub(crate) fn json_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

/// A page of results in id order; pass `next_cursor` back as `cursor` for the next page.
#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Splits rows fetched with `fetched_limit` (one more than the page size,
/// see `Core::page`) into the page's rows and whether a next page exists.
pub(crate) fn split_page<R>(mut rows: Vec<R>, fetched_limit: i64) -> (Vec<R>, bool) {
    let size = usize::try_from(fetched_limit - 1).unwrap_or(0);
    let more = rows.len() > size;
    rows.truncate(size);
    (rows, more)
}

impl<T> Page<T> {
    /// A page of items; the cursor is the last item's id when more follow.
    pub(crate) fn new(items: Vec<T>, more: bool, id: impl Fn(&T) -> String) -> Self {
        let next_cursor = if more { items.last().map(id) } else { None };
        Page { items, next_cursor }
    }

    /// Rows fetched with `fetched_limit`, turned into views.
    pub(crate) fn from_rows<R>(
        rows: Vec<R>,
        fetched_limit: i64,
        id: impl Fn(&R) -> String,
        view: impl Fn(R) -> T,
    ) -> Self {
        let (rows, more) = split_page(rows, fetched_limit);
        let next_cursor = if more { rows.last().map(id) } else { None };
        Page {
            items: rows.into_iter().map(view).collect(),
            next_cursor,
        }
    }
}

#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct AccountView {
    pub id: String,
    pub email: String,
    pub display_name: String,
}

/// The caller: account, organization, role and credential.
#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct MeView {
    pub account: AccountView,
    pub org: OrgView,
    pub membership_id: String,
    /// `null` for org tokens, which act org-wide without a role.
    pub role: Option<String>,
    pub permissions: Vec<String>,
    /// `session`, `personal`, `org`, `oauth` or `cli`.
    pub credential: String,
    pub token_id: Option<String>,
    /// Scopes of the token; `null` for sessions (which carry the role's full rights).
    pub scopes: Option<Vec<String>>,
    /// For sessions: send this in `X-CSRF-Token` on every state-changing request.
    pub csrf_token: Option<String>,
    /// Other organizations this account can switch to.
    pub orgs: Vec<OrgSummary>,
}

#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct OrgSummary {
    pub id: String,
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct McpPolicy {
    pub mcp_enabled: bool,
    pub allow_production: bool,
    pub allow_write: bool,
}

#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct OrgView {
    pub id: String,
    pub slug: String,
    pub name: String,
    /// `null` means no limit.
    pub seat_limit: Option<i64>,
    pub seats_taken: i64,
    pub allowed_email_domains: Vec<String>,
    pub feature_flags: serde_json::Map<String, serde_json::Value>,
    pub mcp_policy: McpPolicy,
    pub created_at: String,
}

impl OrgView {
    pub(crate) fn new(o: storage::OrgRow, seats_taken: i64) -> Self {
        OrgView {
            allowed_email_domains: json_list(&o.allowed_domains),
            feature_flags: serde_json::from_str(&o.feature_flags).unwrap_or_default(),
            mcp_policy: McpPolicy {
                mcp_enabled: o.mcp_enabled != 0,
                allow_production: o.allow_production != 0,
                allow_write: o.allow_write != 0,
            },
            created_at: rfc3339(o.created_at),
            id: o.id,
            slug: o.slug,
            name: o.name,
            seat_limit: o.seat_limit,
            seats_taken,
        }
    }
}

#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct TeamRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct MemberView {
    /// The membership id (used in member and team paths).
    pub id: String,
    pub account_id: String,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub role_id: String,
    /// `active`, or `invited` until the invitation is accepted.
    pub status: String,
    pub teams: Vec<TeamRef>,
    pub joined_at: String,
}

impl MemberView {
    pub(crate) fn new(m: storage::MemberView, teams: Vec<(String, String)>) -> Self {
        MemberView {
            id: m.id,
            account_id: m.account_id,
            email: m.email,
            display_name: m.display_name,
            role: m.role_name,
            role_id: m.role_id,
            status: m.status,
            teams: teams
                .into_iter()
                .map(|(id, name)| TeamRef { id, name })
                .collect(),
            joined_at: rfc3339(m.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct RoleView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub permissions: Vec<String>,
}

impl From<storage::RoleRow> for RoleView {
    fn from(r: storage::RoleRow) -> Self {
        RoleView {
            permissions: json_list(&r.permissions),
            id: r.id,
            name: r.name,
            description: r.description,
            builtin: r.builtin != 0,
        }
    }
}

#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct TeamView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_at: String,
}

impl From<storage::TeamRow> for TeamView {
    fn from(t: storage::TeamRow) -> Self {
        TeamView {
            id: t.id,
            name: t.name,
            description: t.description,
            created_at: rfc3339(t.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct InvitationView {
    pub id: String,
    pub email: String,
    pub role_id: Option<String>,
    pub team_ids: Vec<String>,
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub status: String,
    pub created_at: String,
    pub expires_at: String,
}

impl InvitationView {
    pub(crate) fn new(i: storage::InvitationRow, now: i64) -> Self {
        let status = if i.accepted_at.is_some() {
            "accepted"
        } else if i.revoked_at.is_some() {
            "revoked"
        } else if i.expires_at <= now {
            "expired"
        } else {
            "pending"
        };
        InvitationView {
            team_ids: json_list(&i.team_ids),
            status: status.to_owned(),
            created_at: rfc3339(i.created_at),
            expires_at: rfc3339(i.expires_at),
            id: i.id,
            email: i.email,
            role_id: i.role_id,
        }
    }
}

/// A new invitation. `accept_url` and `invitation_token` are shown only
/// here, once: hand them to the invitee.
#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct CreatedInvitation {
    pub invitation: InvitationView,
    pub invitation_token: String,
    pub accept_url: String,
}

#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    /// `personal` or `org`.
    pub kind: String,
    /// The first 8 characters, to recognise the token.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub environment: Option<String>,
    /// The account it acts as (personal) or that created it (org).
    pub account_id: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked: bool,
}

impl From<storage::TokenRow> for TokenView {
    fn from(t: storage::TokenRow) -> Self {
        TokenView {
            scopes: t.scopes.split_whitespace().map(str::to_owned).collect(),
            created_at: rfc3339(t.created_at),
            expires_at: t.expires_at.map(rfc3339),
            last_used_at: t.last_used_at.map(rfc3339),
            revoked: t.revoked_at.is_some(),
            id: t.id,
            name: t.name,
            kind: t.kind,
            prefix: t.prefix,
            environment: t.environment,
            account_id: t.account_id,
        }
    }
}

/// A new token: `token` is shown here once and never again.
#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct CreatedToken {
    pub token: String,
    #[serde(flatten)]
    pub info: TokenView,
}

#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct ProjectView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<storage::ProjectRow> for ProjectView {
    fn from(p: storage::ProjectRow) -> Self {
        ProjectView {
            id: p.id,
            name: p.name,
            description: p.description,
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct RequirementView {
    pub id: String,
    pub project_id: String,
    pub title: String,
    /// The requirement's full text.
    pub body: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<storage::RequirementRow> for RequirementView {
    fn from(r: storage::RequirementRow) -> Self {
        RequirementView {
            id: r.id,
            project_id: r.project_id,
            title: r.title,
            body: r.body,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct AssigneeView {
    pub membership_id: String,
    pub email: String,
    pub display_name: String,
}

#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct TaskView {
    pub id: String,
    pub project_id: String,
    pub title: String,
    pub description: String,
    /// TODO, IN_PROGRESS, IN_REVIEW or DONE.
    pub status: String,
    /// low, medium, high or urgent.
    pub priority: String,
    pub assignees: Vec<AssigneeView>,
    pub requirement_ids: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct CommentView {
    pub id: String,
    pub task_id: String,
    pub author_id: Option<String>,
    pub body: String,
    pub created_at: String,
}

impl From<storage::CommentRow> for CommentView {
    fn from(c: storage::CommentRow) -> Self {
        CommentView {
            id: c.id,
            task_id: c.task_id,
            author_id: c.author_id,
            body: c.body,
            created_at: rfc3339(c.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct CommitEntryView {
    pub id: String,
    pub task_id: String,
    pub message: String,
    pub commit_hash: Option<String>,
    pub reason: Option<String>,
    pub author_id: Option<String>,
    pub created_at: String,
}

impl From<storage::CommitEntryRow> for CommitEntryView {
    fn from(c: storage::CommitEntryRow) -> Self {
        CommitEntryView {
            id: c.id,
            task_id: c.task_id,
            message: c.message,
            commit_hash: c.commit_hash,
            reason: c.reason,
            author_id: c.author_id,
            created_at: rfc3339(c.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema, schemars::JsonSchema)]
pub struct AuditEventView {
    pub id: String,
    pub at: String,
    pub actor_id: Option<String>,
    pub actor: String,
    pub token_id: Option<String>,
    pub token_kind: Option<String>,
    pub client: Option<String>,
    pub surface: String,
    pub action: String,
    pub target: Option<String>,
    /// The redacted argument summary.
    pub args: serde_json::Value,
    /// ok, denied, error, confirmation_required or confirmed.
    pub outcome: String,
    pub latency_ms: Option<i64>,
    pub environment: Option<String>,
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
}

impl From<storage::AuditRow> for AuditEventView {
    fn from(a: storage::AuditRow) -> Self {
        AuditEventView {
            args: serde_json::from_str(&a.args).unwrap_or(serde_json::Value::Null),
            at: rfc3339(a.at),
            id: a.id,
            actor_id: a.actor_id,
            actor: a.actor,
            token_id: a.token_id,
            token_kind: a.token_kind,
            client: a.client,
            surface: a.surface,
            action: a.action,
            target: a.target,
            outcome: a.outcome,
            latency_ms: a.latency_ms,
            environment: a.environment,
            request_id: a.request_id,
            client_ip: a.client_ip,
        }
    }
}
