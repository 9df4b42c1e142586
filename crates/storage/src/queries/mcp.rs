//! Legacy (2025-11-25) MCP sessions, shared by every replica: the client's
//! initialize params (replayed to rebuild the session elsewhere) and who
//! opened it.

use super::Exec;
use crate::Result;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct McpSessionRow {
    pub id: String,
    pub init_params: Option<String>,
    pub account_id: Option<String>,
    pub org_id: Option<String>,
    pub log_level: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
}

/// Records the initialize params (the transport's session store calls this).
pub async fn save_mcp_session_params<'c>(
    e: impl Exec<'c>,
    id: &str,
    init_params: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO mcp_sessions (id, init_params, created_at, last_seen_at) VALUES ($1, $2, $3, $3)
         ON CONFLICT (id) DO UPDATE SET init_params = excluded.init_params",
    )
    .bind(id)
    .bind(init_params)
    .bind(now)
    .execute(e)
    .await?;
    Ok(())
}

/// Binds a new session to the principal that opened it.
pub async fn bind_mcp_session<'c>(
    e: impl Exec<'c>,
    id: &str,
    account_id: &str,
    org_id: &str,
    token_id: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO mcp_sessions (id, account_id, org_id, token_id, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (id) DO UPDATE SET account_id = excluded.account_id, org_id = excluded.org_id, token_id = excluded.token_id",
    )
    .bind(id)
    .bind(account_id)
    .bind(org_id)
    .bind(token_id)
    .bind(now)
    .execute(e)
    .await?;
    Ok(())
}

/// How many live sessions a token holds, and how many the instance holds.
pub async fn count_mcp_sessions<'c>(
    e: impl Exec<'c>,
    token_id: &str,
    alive_since: i64,
) -> Result<(i64, i64)> {
    let row: (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(CASE WHEN token_id = $1 THEN 1 ELSE 0 END), 0), COUNT(*)
           FROM mcp_sessions WHERE last_seen_at >= $2",
    )
    .bind(token_id)
    .bind(alive_since)
    .fetch_one(e)
    .await?;
    Ok(row)
}

/// Up to `limit` session ids, oldest activity first, idle since before
/// `idle_before`: of one token, or (`None`) of anyone.
pub async fn idle_mcp_sessions<'c>(
    e: impl Exec<'c>,
    token_id: Option<&str>,
    idle_before: i64,
    limit: i64,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM mcp_sessions
          WHERE ($1 IS NULL OR token_id = $1) AND last_seen_at < $2
          ORDER BY last_seen_at LIMIT $3",
    )
    .bind(token_id)
    .bind(idle_before)
    .bind(limit)
    .fetch_all(e)
    .await?)
}

pub async fn mcp_session<'c>(e: impl Exec<'c>, id: &str) -> Result<Option<McpSessionRow>> {
    Ok(sqlx::query_as(
        "SELECT id, init_params, account_id, org_id, log_level, created_at, last_seen_at FROM mcp_sessions WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(e)
    .await?)
}

/// Records activity, at most once per `interval` (no write on every request).
pub async fn touch_mcp_session<'c>(
    e: impl Exec<'c>,
    id: &str,
    now: i64,
    interval: i64,
) -> Result<()> {
    sqlx::query("UPDATE mcp_sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at <= $3")
        .bind(id)
        .bind(now)
        .bind(now - interval)
        .execute(e)
        .await?;
    Ok(())
}

pub async fn set_mcp_session_log_level<'c>(e: impl Exec<'c>, id: &str, level: &str) -> Result<()> {
    sqlx::query("UPDATE mcp_sessions SET log_level = $2 WHERE id = $1")
        .bind(id)
        .bind(level)
        .execute(e)
        .await?;
    Ok(())
}

/// The resources a session subscribed to (a JSON array), replaced whole.
pub async fn set_mcp_session_resources<'c>(e: impl Exec<'c>, id: &str, uris: &str) -> Result<()> {
    sqlx::query("UPDATE mcp_sessions SET resource_subscriptions = $2 WHERE id = $1")
        .bind(id)
        .bind(uris)
        .execute(e)
        .await?;
    Ok(())
}

/// The resources a session subscribed to, as stored (a JSON array).
pub async fn mcp_session_resources<'c>(e: impl Exec<'c>, id: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar::<_, Option<String>>(
        "SELECT resource_subscriptions FROM mcp_sessions WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(e)
    .await?
    .flatten())
}

pub async fn delete_mcp_session<'c>(e: impl Exec<'c>, id: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM mcp_sessions WHERE id = $1")
        .bind(id)
        .execute(e)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Deletes sessions idle since before `cutoff`; returns how many.
pub async fn purge_mcp_sessions<'c>(e: impl Exec<'c>, cutoff: i64) -> Result<u64> {
    let r = sqlx::query("DELETE FROM mcp_sessions WHERE last_seen_at < $1")
        .bind(cutoff)
        .execute(e)
        .await?;
    Ok(r.rows_affected())
}
