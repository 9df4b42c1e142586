//! Bearer tokens (personal, org, later OAuth access tokens).

use crate::{Exec, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRow {
    pub id: String,
    pub org_id: String,
    /// The member a personal token acts as; the creator of an org token.
    pub account_id: String,
    pub kind: String,
    pub name: String,
    pub prefix: String,
    pub token_hash: String,
    /// Space-separated scope names.
    pub scopes: String,
    pub environment: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLS: &str = "id, org_id, account_id, kind, name, prefix, token_hash, scopes, environment, created_at, expires_at, last_used_at, revoked_at";

pub async fn insert_token<'c>(e: impl Exec<'c>, t: &TokenRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO tokens (id, org_id, account_id, kind, name, prefix, token_hash, scopes, environment,
             created_at, expires_at, last_used_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&t.id)
    .bind(&t.org_id)
    .bind(&t.account_id)
    .bind(&t.kind)
    .bind(&t.name)
    .bind(&t.prefix)
    .bind(&t.token_hash)
    .bind(&t.scopes)
    .bind(&t.environment)
    .bind(t.created_at)
    .bind(t.expires_at)
    .bind(t.last_used_at)
    .bind(t.revoked_at)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn token_by_id<'c>(e: impl Exec<'c>, id: &str) -> Result<Option<TokenRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM tokens WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(e)
    .await?)
}

pub async fn token_by_org_id<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    id: &str,
) -> Result<Option<TokenRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM tokens WHERE org_id = $1 AND id = $2"
    )))
    .bind(org_id)
    .bind(id)
    .fetch_optional(e)
    .await?)
}

/// Tokens of an org; with `account_id`, only that account's personal tokens.
pub async fn list_tokens<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    account_id: Option<&str>,
    include_org: bool,
) -> Result<Vec<TokenRow>> {
    let sql = match (account_id.is_some(), include_org) {
        (true, true) => format!(
            "SELECT {COLS} FROM tokens WHERE org_id = $1 AND kind <> 'oauth' AND (account_id = $2 OR kind = 'org') ORDER BY id"
        ),
        (true, false) => format!(
            "SELECT {COLS} FROM tokens WHERE org_id = $1 AND kind = 'personal' AND account_id = $2 ORDER BY id"
        ),
        (false, _) => {
            format!("SELECT {COLS} FROM tokens WHERE org_id = $1 AND kind <> 'oauth' ORDER BY id")
        }
    };
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org_id);
    if let Some(a) = account_id {
        q = q.bind(a);
    }
    Ok(q.fetch_all(e).await?)
}

/// Revokes a token; false when it was already revoked (or is not in the org).
pub async fn revoke_token<'c>(e: impl Exec<'c>, org_id: &str, id: &str, now: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND org_id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .bind(org_id)
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Revokes every token a member holds in an org (on removal from the org).
pub async fn revoke_tokens_of_member<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    account_id: &str,
    now: i64,
) -> Result<u64> {
    let r = sqlx::query(
        "UPDATE tokens SET revoked_at = $1 WHERE org_id = $2 AND account_id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(org_id)
    .bind(account_id)
    .execute(e)
    .await?;
    Ok(r.rows_affected())
}

/// Records use at most once per `interval_ms`: the WHERE clause makes the
/// write a no-op (and cheap) when the stored time is recent enough.
pub async fn touch_token<'c>(e: impl Exec<'c>, id: &str, now: i64, interval_ms: i64) -> Result<()> {
    sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)")
        .bind(now)
        .bind(id)
        .bind(now - interval_ms)
        .execute(e)
        .await?;
    Ok(())
}

/// What authentication needs about a bearer token, in one query: the token,
/// its org, its account, and the account's CURRENT membership and role.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenPrincipalRow {
    pub token_id: String,
    pub kind: String,
    pub scopes: String,
    pub environment: Option<String>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub org_id: String,
    pub account_id: String,
    pub email: String,
    pub display_name: String,
    pub membership_id: Option<String>,
    pub membership_status: Option<String>,
    pub role_id: Option<String>,
    pub role_name: Option<String>,
    pub role_permissions: Option<String>,
    /// The org's MCP policy, read with the token so a call needs no second query.
    pub mcp_enabled: i64,
    pub allow_production: i64,
    pub allow_write: i64,
    pub org_slug: String,
    pub org_name: String,
    /// An OAuth access token's audience: the resource it was issued for.
    pub resource: Option<String>,
    /// The org's access version (see migration 0008).
    pub access_version: i64,
}

pub async fn token_principal<'c>(
    e: impl Exec<'c>,
    token_hash: &str,
) -> Result<Option<TokenPrincipalRow>> {
    Ok(sqlx::query_as(
        "SELECT t.id AS token_id, t.kind, t.scopes, t.environment, t.expires_at, t.revoked_at, t.last_used_at,
                t.org_id, a.id AS account_id, a.email, a.display_name,
                m.id AS membership_id, m.status AS membership_status,
                r.id AS role_id, r.name AS role_name, r.permissions AS role_permissions,
                o.mcp_enabled, o.allow_production, o.allow_write,
                o.slug AS org_slug, o.name AS org_name, t.resource, o.access_version
         FROM tokens t
         JOIN accounts a ON a.id = t.account_id
         JOIN organizations o ON o.id = t.org_id
         LEFT JOIN memberships m ON m.org_id = t.org_id AND m.account_id = t.account_id
         LEFT JOIN roles r ON r.id = m.role_id
         WHERE t.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(e)
    .await?)
}
