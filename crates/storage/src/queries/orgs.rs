//! Organizations and their roles.

use crate::{Exec, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub seat_limit: Option<i64>,
    /// JSON array of lower-case domains.
    pub allowed_domains: String,
    /// JSON object of flag name → bool.
    pub feature_flags: String,
    pub mcp_enabled: i64,
    pub allow_production: i64,
    pub allow_write: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const ORG_COLS: &str = "id, slug, name, seat_limit, allowed_domains, feature_flags, mcp_enabled, allow_production, allow_write, created_at, updated_at";

pub async fn insert_org<'c>(e: impl Exec<'c>, o: &OrgRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO organizations (id, slug, name, seat_limit, allowed_domains, feature_flags,
             mcp_enabled, allow_production, allow_write, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&o.id)
    .bind(&o.slug)
    .bind(&o.name)
    .bind(o.seat_limit)
    .bind(&o.allowed_domains)
    .bind(&o.feature_flags)
    .bind(o.mcp_enabled)
    .bind(o.allow_production)
    .bind(o.allow_write)
    .bind(o.created_at)
    .bind(o.updated_at)
    .execute(e)
    .await?;
    Ok(())
}

/// Writes every mutable column of an organization back.
pub async fn update_org<'c>(e: impl Exec<'c>, o: &OrgRow) -> Result<()> {
    sqlx::query(
        "UPDATE organizations SET name = $1, seat_limit = $2, allowed_domains = $3, feature_flags = $4,
             mcp_enabled = $5, allow_production = $6, allow_write = $7, updated_at = $8
         WHERE id = $9",
    )
    .bind(&o.name)
    .bind(o.seat_limit)
    .bind(&o.allowed_domains)
    .bind(&o.feature_flags)
    .bind(o.mcp_enabled)
    .bind(o.allow_production)
    .bind(o.allow_write)
    .bind(o.updated_at)
    .bind(&o.id)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn org_by_id<'c>(e: impl Exec<'c>, id: &str) -> Result<Option<OrgRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORG_COLS} FROM organizations WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(e)
    .await?)
}

pub async fn org_by_slug<'c>(e: impl Exec<'c>, slug: &str) -> Result<Option<OrgRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORG_COLS} FROM organizations WHERE slug = $1"
    )))
    .bind(slug)
    .fetch_optional(e)
    .await?)
}

/// Organizations where the account has an active membership, by slug.
pub async fn orgs_of_account<'c>(e: impl Exec<'c>, account_id: &str) -> Result<Vec<OrgRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM organizations o JOIN memberships m ON m.org_id = o.id
         WHERE m.account_id = $1 AND m.status = 'active' ORDER BY o.slug",
        ORG_COLS
            .split(", ")
            .map(|c| format!("o.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    )))
    .bind(account_id)
    .fetch_all(e)
    .await?)
}

/// True once any organization has an active member holding `mcp.manage`
/// (an owner): the one-time setup URL is offered only before that.
pub async fn any_owner_exists<'c>(e: impl Exec<'c>) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM memberships m JOIN roles r ON r.id = m.role_id
         WHERE m.status = 'active' AND r.permissions LIKE '%\"mcp.manage\"%'",
    )
    .fetch_one(e)
    .await?;
    Ok(n > 0)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoleRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub description: String,
    pub builtin: i64,
    /// JSON array of permission names.
    pub permissions: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const ROLE_COLS: &str =
    "id, org_id, name, description, builtin, permissions, created_at, updated_at";

pub async fn insert_role<'c>(e: impl Exec<'c>, r: &RoleRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO roles (id, org_id, name, description, builtin, permissions, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&r.id)
    .bind(&r.org_id)
    .bind(&r.name)
    .bind(&r.description)
    .bind(r.builtin)
    .bind(&r.permissions)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn update_role<'c>(e: impl Exec<'c>, r: &RoleRow) -> Result<()> {
    sqlx::query(
        "UPDATE roles SET name = $1, description = $2, permissions = $3, updated_at = $4
         WHERE id = $5 AND org_id = $6",
    )
    .bind(&r.name)
    .bind(&r.description)
    .bind(&r.permissions)
    .bind(r.updated_at)
    .bind(&r.id)
    .bind(&r.org_id)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn delete_role<'c>(e: impl Exec<'c>, org_id: &str, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM roles WHERE id = $1 AND org_id = $2")
        .bind(id)
        .bind(org_id)
        .execute(e)
        .await?;
    Ok(())
}

pub async fn roles_of_org<'c>(e: impl Exec<'c>, org_id: &str) -> Result<Vec<RoleRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ROLE_COLS} FROM roles WHERE org_id = $1 ORDER BY builtin DESC, name"
    )))
    .bind(org_id)
    .fetch_all(e)
    .await?)
}

pub async fn role_by_id<'c>(e: impl Exec<'c>, org_id: &str, id: &str) -> Result<Option<RoleRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ROLE_COLS} FROM roles WHERE org_id = $1 AND id = $2"
    )))
    .bind(org_id)
    .bind(id)
    .fetch_optional(e)
    .await?)
}

pub async fn role_by_name<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    name: &str,
) -> Result<Option<RoleRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ROLE_COLS} FROM roles WHERE org_id = $1 AND name = $2"
    )))
    .bind(org_id)
    .bind(name)
    .fetch_optional(e)
    .await?)
}

/// Memberships (active or invited) and pending invitations that hold a role.
pub async fn role_usage<'c>(e: impl Exec<'c>, org_id: &str, role_id: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role_id = $2)
              + (SELECT COUNT(*) FROM invitations WHERE org_id = $1 AND role_id = $2
                   AND accepted_at IS NULL AND revoked_at IS NULL)",
    )
    .bind(org_id)
    .bind(role_id)
    .fetch_one(e)
    .await?)
}

/// The org's access version alone (migration 0008): what a replica checks
/// a cached principal against. `None` when the org no longer exists.
pub async fn org_access_version<'c>(e: impl Exec<'c>, org_id: &str) -> Result<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT access_version FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_optional(e)
            .await?,
    )
}
