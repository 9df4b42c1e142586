//! Sign-in sessions, sign-in throttling and one-time setup tokens. All of it
//! lives in the database so that every replica sees the same state.

use crate::{Exec, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub token_hash: String,
    pub account_id: String,
    pub active_org_id: Option<String>,
    pub csrf_token: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_seen_at: i64,
}

const COLS: &str =
    "id, token_hash, account_id, active_org_id, csrf_token, created_at, expires_at, last_seen_at";

pub async fn insert_session<'c>(e: impl Exec<'c>, s: &SessionRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id, token_hash, account_id, active_org_id, csrf_token, created_at, expires_at, last_seen_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&s.id)
    .bind(&s.token_hash)
    .bind(&s.account_id)
    .bind(&s.active_org_id)
    .bind(&s.csrf_token)
    .bind(s.created_at)
    .bind(s.expires_at)
    .bind(s.last_seen_at)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn session_by_hash<'c>(e: impl Exec<'c>, hash: &str) -> Result<Option<SessionRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM sessions WHERE token_hash = $1"
    )))
    .bind(hash)
    .fetch_optional(e)
    .await?)
}

pub async fn delete_session<'c>(e: impl Exec<'c>, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(id)
        .execute(e)
        .await?;
    Ok(())
}

/// Ends every other session of an account (after a password change).
pub async fn delete_other_sessions<'c>(
    e: impl Exec<'c>,
    account_id: &str,
    keep_id: &str,
) -> Result<u64> {
    let r = sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND id <> $2")
        .bind(account_id)
        .bind(keep_id)
        .execute(e)
        .await?;
    Ok(r.rows_affected())
}

pub async fn set_session_org<'c>(e: impl Exec<'c>, id: &str, org_id: &str) -> Result<()> {
    sqlx::query("UPDATE sessions SET active_org_id = $1 WHERE id = $2")
        .bind(org_id)
        .bind(id)
        .execute(e)
        .await?;
    Ok(())
}

/// Slides the session's expiry, at most once per `interval_ms`.
pub async fn touch_session<'c>(
    e: impl Exec<'c>,
    id: &str,
    now: i64,
    expires_at: i64,
    interval_ms: i64,
) -> Result<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE id = $3 AND last_seen_at < $4")
        .bind(now)
        .bind(expires_at)
        .bind(id)
        .bind(now - interval_ms)
        .execute(e)
        .await?;
    Ok(())
}

pub async fn delete_expired_sessions<'c>(e: impl Exec<'c>, now: i64) -> Result<u64> {
    let r = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(e)
        .await?;
    Ok(r.rows_affected())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ThrottleRow {
    pub throttle_key: String,
    pub failures: i64,
    pub window_started_at: i64,
    pub locked_until: i64,
}

pub async fn throttle_get<'c>(e: impl Exec<'c>, key: &str) -> Result<Option<ThrottleRow>> {
    Ok(sqlx::query_as(
        "SELECT throttle_key, failures, window_started_at, locked_until FROM sign_in_throttle WHERE throttle_key = $1",
    )
    .bind(key)
    .fetch_optional(e)
    .await?)
}

pub async fn throttle_put<'c>(e: impl Exec<'c>, t: &ThrottleRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO sign_in_throttle (throttle_key, failures, window_started_at, locked_until)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (throttle_key) DO UPDATE SET failures = excluded.failures,
             window_started_at = excluded.window_started_at, locked_until = excluded.locked_until",
    )
    .bind(&t.throttle_key)
    .bind(t.failures)
    .bind(t.window_started_at)
    .bind(t.locked_until)
    .execute(e)
    .await?;
    Ok(())
}

/// Takes one attempt of `key`'s budget in one conditional write: counts it
/// in the current window (a window older than `window_start` starts again),
/// unless `max` attempts were already made in it. Returns whether the
/// attempt was taken. Concurrent callers (on any replica) are serialized by
/// the row, so at most `max` succeed per window.
pub async fn throttle_reserve<'c>(
    e: impl Exec<'c>,
    key: &str,
    now: i64,
    window_start: i64,
    max: i64,
) -> Result<bool> {
    let taken: Option<i64> = sqlx::query_scalar(
        "INSERT INTO sign_in_throttle (throttle_key, failures, window_started_at, locked_until)
         VALUES ($1, 1, $2, 0)
         ON CONFLICT (throttle_key) DO UPDATE SET
             failures = CASE WHEN sign_in_throttle.window_started_at <= $3 THEN 1
                             ELSE sign_in_throttle.failures + 1 END,
             window_started_at = CASE WHEN sign_in_throttle.window_started_at <= $3 THEN $2
                                      ELSE sign_in_throttle.window_started_at END
         WHERE sign_in_throttle.window_started_at <= $3 OR sign_in_throttle.failures < $4
         RETURNING failures",
    )
    .bind(key)
    .bind(now)
    .bind(window_start)
    .bind(max)
    .fetch_optional(e)
    .await?;
    Ok(taken.is_some())
}

/// Gives one attempt back (a sign-in that succeeded, or one refused by
/// another limit before it was made).
pub async fn throttle_release<'c>(e: impl Exec<'c>, key: &str) -> Result<()> {
    sqlx::query(
        "UPDATE sign_in_throttle SET failures = failures - 1 WHERE throttle_key = $1 AND failures > 0",
    )
    .bind(key)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn throttle_clear<'c>(e: impl Exec<'c>, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM sign_in_throttle WHERE throttle_key = $1")
        .bind(key)
        .execute(e)
        .await?;
    Ok(())
}

pub async fn insert_setup_token<'c>(
    e: impl Exec<'c>,
    hash: &str,
    now: i64,
    expires_at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)",
    )
    .bind(hash)
    .bind(now)
    .bind(expires_at)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn setup_token_valid<'c>(e: impl Exec<'c>, hash: &str, now: i64) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM setup_tokens WHERE token_hash = $1 AND expires_at > $2",
    )
    .bind(hash)
    .bind(now)
    .fetch_one(e)
    .await?;
    Ok(n == 1)
}

/// Spends a setup token: one conditional delete, so it works exactly once.
pub async fn consume_setup_token<'c>(e: impl Exec<'c>, hash: &str, now: i64) -> Result<bool> {
    let r = sqlx::query("DELETE FROM setup_tokens WHERE token_hash = $1 AND expires_at > $2")
        .bind(hash)
        .bind(now)
        .execute(e)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn clear_setup_tokens<'c>(e: impl Exec<'c>) -> Result<()> {
    sqlx::query("DELETE FROM setup_tokens").execute(e).await?;
    Ok(())
}
