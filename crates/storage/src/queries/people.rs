//! Memberships, teams and invitations.

use crate::{Exec, Page, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MembershipRow {
    pub id: String,
    pub org_id: String,
    pub account_id: String,
    pub role_id: String,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A membership with what a listing shows of its account and role.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberView {
    pub id: String,
    pub account_id: String,
    pub email: String,
    pub display_name: String,
    pub role_id: String,
    pub role_name: String,
    pub role_permissions: String,
    pub status: String,
    pub created_at: i64,
}

const MEMBER_VIEW: &str =
    "SELECT m.id, m.account_id, a.email, a.display_name, m.role_id, r.name AS role_name,
        r.permissions AS role_permissions, m.status, m.created_at
     FROM memberships m JOIN accounts a ON a.id = m.account_id JOIN roles r ON r.id = m.role_id";

pub async fn insert_membership<'c>(e: impl Exec<'c>, m: &MembershipRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO memberships (id, org_id, account_id, role_id, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&m.id)
    .bind(&m.org_id)
    .bind(&m.account_id)
    .bind(&m.role_id)
    .bind(&m.status)
    .bind(m.created_at)
    .bind(m.updated_at)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn member_by_id<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    id: &str,
) -> Result<Option<MemberView>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MEMBER_VIEW} WHERE m.org_id = $1 AND m.id = $2"
    )))
    .bind(org_id)
    .bind(id)
    .fetch_optional(e)
    .await?)
}

pub async fn member_by_account<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    account_id: &str,
) -> Result<Option<MemberView>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MEMBER_VIEW} WHERE m.org_id = $1 AND m.account_id = $2"
    )))
    .bind(org_id)
    .bind(account_id)
    .fetch_optional(e)
    .await?)
}

pub async fn member_by_email<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    email: &str,
) -> Result<Option<MemberView>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MEMBER_VIEW} WHERE m.org_id = $1 AND a.email = $2"
    )))
    .bind(org_id)
    .bind(email)
    .fetch_optional(e)
    .await?)
}

pub async fn list_members<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    page: &Page,
) -> Result<Vec<MemberView>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MEMBER_VIEW} WHERE m.org_id = $1 AND m.id > $2 ORDER BY m.id LIMIT $3"
    )))
    .bind(org_id)
    .bind(page.cursor.clone().unwrap_or_default())
    .bind(page.limit)
    .fetch_all(e)
    .await?)
}

pub async fn set_member_role<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    id: &str,
    role_id: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE memberships SET role_id = $1, updated_at = $2 WHERE id = $3 AND org_id = $4",
    )
    .bind(role_id)
    .bind(now)
    .bind(id)
    .bind(org_id)
    .execute(e)
    .await?;
    Ok(())
}

/// Activates an invited membership; false when it was not (or no longer) invited.
pub async fn activate_member<'c>(e: impl Exec<'c>, id: &str, now: i64) -> Result<bool> {
    let r = sqlx::query("UPDATE memberships SET status = 'active', updated_at = $1 WHERE id = $2 AND status = 'invited'")
        .bind(now)
        .bind(id)
        .execute(e)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn delete_member<'c>(e: impl Exec<'c>, org_id: &str, id: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM memberships WHERE id = $1 AND org_id = $2")
        .bind(id)
        .bind(org_id)
        .execute(e)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Active memberships whose role holds `mcp.manage` (owners, for the last-owner rule).
pub async fn count_owners<'c>(e: impl Exec<'c>, org_id: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM memberships m JOIN roles r ON r.id = m.role_id
         WHERE m.org_id = $1 AND m.status = 'active' AND r.permissions LIKE '%\"mcp.manage\"%'",
    )
    .bind(org_id)
    .fetch_one(e)
    .await?)
}

/// Seats taken: active members plus invitations still pending at `now`.
pub async fn seats_taken<'c>(e: impl Exec<'c>, org_id: &str, now: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND status = 'active')
              + (SELECT COUNT(*) FROM invitations WHERE org_id = $1 AND accepted_at IS NULL
                   AND revoked_at IS NULL AND expires_at > $2)",
    )
    .bind(org_id)
    .bind(now)
    .fetch_one(e)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TeamRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub description: String,
    pub created_at: i64,
}

pub async fn insert_team<'c>(e: impl Exec<'c>, t: &TeamRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO teams (id, org_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&t.id)
    .bind(&t.org_id)
    .bind(&t.name)
    .bind(&t.description)
    .bind(t.created_at)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn list_teams<'c>(e: impl Exec<'c>, org_id: &str, page: &Page) -> Result<Vec<TeamRow>> {
    Ok(sqlx::query_as(
        "SELECT id, org_id, name, description, created_at FROM teams
         WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(org_id)
    .bind(page.cursor.clone().unwrap_or_default())
    .bind(page.limit)
    .fetch_all(e)
    .await?)
}

pub async fn team_by_id<'c>(e: impl Exec<'c>, org_id: &str, id: &str) -> Result<Option<TeamRow>> {
    Ok(sqlx::query_as(
        "SELECT id, org_id, name, description, created_at FROM teams WHERE org_id = $1 AND id = $2",
    )
    .bind(org_id)
    .bind(id)
    .fetch_optional(e)
    .await?)
}

pub async fn delete_team<'c>(e: impl Exec<'c>, org_id: &str, id: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM teams WHERE id = $1 AND org_id = $2")
        .bind(id)
        .bind(org_id)
        .execute(e)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Adds a member to a team; false when they already were in it.
pub async fn add_team_member<'c>(
    e: impl Exec<'c>,
    team_id: &str,
    membership_id: &str,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO team_members (team_id, membership_id, added_at) VALUES ($1, $2, $3)
         ON CONFLICT (team_id, membership_id) DO NOTHING",
    )
    .bind(team_id)
    .bind(membership_id)
    .bind(now)
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn remove_team_member<'c>(
    e: impl Exec<'c>,
    team_id: &str,
    membership_id: &str,
) -> Result<bool> {
    let r = sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND membership_id = $2")
        .bind(team_id)
        .bind(membership_id)
        .execute(e)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn team_members<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    team_id: &str,
) -> Result<Vec<MemberView>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MEMBER_VIEW} JOIN team_members tm ON tm.membership_id = m.id
         WHERE m.org_id = $1 AND tm.team_id = $2 ORDER BY m.id"
    )))
    .bind(org_id)
    .bind(team_id)
    .fetch_all(e)
    .await?)
}

/// Team ids and names a membership belongs to.
pub async fn teams_of_member<'c>(
    e: impl Exec<'c>,
    membership_id: &str,
) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT t.id, t.name FROM teams t JOIN team_members tm ON tm.team_id = t.id
         WHERE tm.membership_id = $1 ORDER BY t.name",
    )
    .bind(membership_id)
    .fetch_all(e)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    pub id: String,
    pub org_id: String,
    pub membership_id: Option<String>,
    pub email: String,
    pub role_id: Option<String>,
    /// JSON array of team ids joined on acceptance.
    pub team_ids: String,
    pub token_hash: String,
    pub invited_by: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const INV_COLS: &str = "id, org_id, membership_id, email, role_id, team_ids, token_hash, invited_by, created_at, expires_at, accepted_at, revoked_at";

pub async fn insert_invitation<'c>(e: impl Exec<'c>, i: &InvitationRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO invitations (id, org_id, membership_id, email, role_id, team_ids, token_hash,
             invited_by, created_at, expires_at, accepted_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&i.id)
    .bind(&i.org_id)
    .bind(&i.membership_id)
    .bind(&i.email)
    .bind(&i.role_id)
    .bind(&i.team_ids)
    .bind(&i.token_hash)
    .bind(&i.invited_by)
    .bind(i.created_at)
    .bind(i.expires_at)
    .bind(i.accepted_at)
    .bind(i.revoked_at)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn invitation_by_id<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    id: &str,
) -> Result<Option<InvitationRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INV_COLS} FROM invitations WHERE org_id = $1 AND id = $2"
    )))
    .bind(org_id)
    .bind(id)
    .fetch_optional(e)
    .await?)
}

pub async fn invitation_by_token_hash<'c>(
    e: impl Exec<'c>,
    hash: &str,
) -> Result<Option<InvitationRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INV_COLS} FROM invitations WHERE token_hash = $1"
    )))
    .bind(hash)
    .fetch_optional(e)
    .await?)
}

/// The pending invitation for an email in an org, if any.
pub async fn pending_invitation_for<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    email: &str,
    now: i64,
) -> Result<Option<InvitationRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INV_COLS} FROM invitations WHERE org_id = $1 AND email = $2
           AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $3"
    )))
    .bind(org_id)
    .bind(email)
    .bind(now)
    .fetch_optional(e)
    .await?)
}

pub async fn list_invitations<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    page: &Page,
) -> Result<Vec<InvitationRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INV_COLS} FROM invitations WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    )))
    .bind(org_id)
    .bind(page.cursor.clone().unwrap_or_default())
    .bind(page.limit)
    .fetch_all(e)
    .await?)
}

/// Marks an invitation accepted: one conditional update, so two racing
/// acceptances give exactly one winner.
pub async fn mark_invitation_accepted<'c>(e: impl Exec<'c>, id: &str, now: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE invitations SET accepted_at = $1
         WHERE id = $2 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(id)
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn mark_invitation_revoked<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    id: &str,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE invitations SET revoked_at = $1
         WHERE id = $2 AND org_id = $3 AND accepted_at IS NULL AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .bind(org_id)
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}
