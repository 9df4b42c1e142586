//! The OAuth authorization server's state: clients, authorization requests
//! in progress, grants (consents), codes and refresh tokens.
//!
//! Single use is decided by ONE conditional `UPDATE … RETURNING` (a code or
//! refresh token is spent only if it was not spent yet), so two replicas
//! racing on the same secret get exactly one winner on either backend.

use super::Exec;
use crate::Result;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OAuthClientRow {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub client_uri: Option<String>,
    /// JSON array of strings.
    pub redirect_uris: String,
    pub application_type: String,
    pub auth_method: String,
    pub secret_hash: Option<String>,
    pub created_at: i64,
    pub created_ip: Option<String>,
    pub refresh_after: Option<i64>,
    pub revoked_at: Option<i64>,
}

const CLIENT_COLS: &str = "id, kind, name, client_uri, redirect_uris, application_type, auth_method, secret_hash, created_at, created_ip, refresh_after, revoked_at";

pub async fn insert_oauth_client<'c>(e: impl Exec<'c>, c: &OAuthClientRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO oauth_clients (id, kind, name, client_uri, redirect_uris, application_type, auth_method,
             secret_hash, created_at, created_ip, refresh_after, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&c.id)
    .bind(&c.kind)
    .bind(&c.name)
    .bind(&c.client_uri)
    .bind(&c.redirect_uris)
    .bind(&c.application_type)
    .bind(&c.auth_method)
    .bind(&c.secret_hash)
    .bind(c.created_at)
    .bind(&c.created_ip)
    .bind(c.refresh_after)
    .bind(c.revoked_at)
    .execute(e)
    .await?;
    Ok(())
}

/// Stores (or refreshes) the copy of a client's metadata document. A client
/// an operator revoked stays revoked.
pub async fn upsert_metadata_client<'c>(e: impl Exec<'c>, c: &OAuthClientRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO oauth_clients (id, kind, name, client_uri, redirect_uris, application_type, auth_method,
             secret_hash, created_at, created_ip, refresh_after, revoked_at)
         VALUES ($1, 'metadata_document', $2, $3, $4, $5, $6, NULL, $7, NULL, $8, NULL)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, client_uri = excluded.client_uri,
             redirect_uris = excluded.redirect_uris, application_type = excluded.application_type,
             auth_method = excluded.auth_method, refresh_after = excluded.refresh_after",
    )
    .bind(&c.id)
    .bind(&c.name)
    .bind(&c.client_uri)
    .bind(&c.redirect_uris)
    .bind(&c.application_type)
    .bind(&c.auth_method)
    .bind(c.created_at)
    .bind(c.refresh_after)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn oauth_client<'c>(e: impl Exec<'c>, id: &str) -> Result<Option<OAuthClientRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CLIENT_COLS} FROM oauth_clients WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(e)
    .await?)
}

pub async fn list_oauth_clients<'c>(e: impl Exec<'c>) -> Result<Vec<OAuthClientRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CLIENT_COLS} FROM oauth_clients ORDER BY created_at, id"
    )))
    .fetch_all(e)
    .await?)
}

/// Marks a client revoked; false when it was unknown or already revoked.
pub async fn revoke_oauth_client<'c>(e: impl Exec<'c>, id: &str, now: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE oauth_clients SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .execute(e)
    .await?;
    Ok(r.rows_affected() > 0)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OAuthRequestRow {
    pub id: String,
    pub browser_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_given: i64,
    pub state: Option<String>,
    pub code_challenge: String,
    pub resource: String,
    pub scopes: String,
    pub scope_given: i64,
    pub account_id: Option<String>,
    pub org_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

const REQUEST_COLS: &str = "id, browser_hash, client_id, redirect_uri, redirect_given, state, code_challenge, resource, scopes, scope_given, account_id, org_id, created_at, expires_at";

pub async fn insert_oauth_request<'c>(e: impl Exec<'c>, r: &OAuthRequestRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO oauth_requests (id, browser_hash, client_id, redirect_uri, redirect_given, state,
             code_challenge, resource, scopes, scope_given, account_id, org_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&r.id)
    .bind(&r.browser_hash)
    .bind(&r.client_id)
    .bind(&r.redirect_uri)
    .bind(r.redirect_given)
    .bind(&r.state)
    .bind(&r.code_challenge)
    .bind(&r.resource)
    .bind(&r.scopes)
    .bind(r.scope_given)
    .bind(&r.account_id)
    .bind(&r.org_id)
    .bind(r.created_at)
    .bind(r.expires_at)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn oauth_request<'c>(e: impl Exec<'c>, id: &str) -> Result<Option<OAuthRequestRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REQUEST_COLS} FROM oauth_requests WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(e)
    .await?)
}

/// Records who is authorizing and (once picked) for which organization.
pub async fn set_oauth_request_party<'c>(
    e: impl Exec<'c>,
    id: &str,
    account_id: Option<&str>,
    org_id: Option<&str>,
) -> Result<()> {
    sqlx::query("UPDATE oauth_requests SET account_id = $2, org_id = $3 WHERE id = $1")
        .bind(id)
        .bind(account_id)
        .bind(org_id)
        .execute(e)
        .await?;
    Ok(())
}

/// Ends a request; false when it was already ended (a double submit).
pub async fn delete_oauth_request<'c>(e: impl Exec<'c>, id: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM oauth_requests WHERE id = $1")
        .bind(id)
        .execute(e)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Drops requests and codes long past their expiry.
pub async fn purge_expired_oauth(conn: &mut crate::Conn, before: i64) -> Result<()> {
    sqlx::query("DELETE FROM oauth_requests WHERE expires_at < $1")
        .bind(before)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM oauth_codes WHERE expires_at < $1")
        .bind(before)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OAuthGrantRow {
    pub id: String,
    pub account_id: String,
    pub org_id: String,
    pub client_id: String,
    pub scopes: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const GRANT_COLS: &str =
    "id, account_id, org_id, client_id, scopes, created_at, updated_at, last_used_at, revoked_at";

pub async fn oauth_grant_for<'c>(
    e: impl Exec<'c>,
    account_id: &str,
    client_id: &str,
    org_id: &str,
) -> Result<Option<OAuthGrantRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {GRANT_COLS} FROM oauth_grants WHERE account_id = $1 AND client_id = $2 AND org_id = $3"
    )))
    .bind(account_id)
    .bind(client_id)
    .bind(org_id)
    .fetch_optional(e)
    .await?)
}

/// Creates the grant, or renews it (a revoked grant comes back with the new
/// scopes); returns its id.
pub async fn upsert_oauth_grant<'c>(e: impl Exec<'c>, g: &OAuthGrantRow) -> Result<String> {
    Ok(sqlx::query_scalar(
        "INSERT INTO oauth_grants (id, account_id, org_id, client_id, scopes, created_at, updated_at, last_used_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6, NULL, NULL)
         ON CONFLICT (account_id, client_id, org_id) DO UPDATE SET scopes = excluded.scopes,
             updated_at = excluded.updated_at, revoked_at = NULL
         RETURNING id",
    )
    .bind(&g.id)
    .bind(&g.account_id)
    .bind(&g.org_id)
    .bind(&g.client_id)
    .bind(&g.scopes)
    .bind(g.created_at)
    .fetch_one(e)
    .await?)
}

pub async fn oauth_grant_by_id<'c>(e: impl Exec<'c>, id: &str) -> Result<Option<OAuthGrantRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {GRANT_COLS} FROM oauth_grants WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(e)
    .await?)
}

/// A member's grants in an organization (their connected apps), with the
/// client's name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectedAppRow {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    pub client_kind: String,
    pub account_id: String,
    pub account_email: String,
    pub scopes: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// Live grants of an org; with `account_id`, only that member's.
pub async fn list_oauth_grants<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    account_id: Option<&str>,
) -> Result<Vec<ConnectedAppRow>> {
    let sql = format!(
        "SELECT g.id, g.client_id, c.name AS client_name, c.kind AS client_kind, g.account_id,
                a.email AS account_email, g.scopes, g.created_at, g.last_used_at
         FROM oauth_grants g JOIN oauth_clients c ON c.id = g.client_id JOIN accounts a ON a.id = g.account_id
         WHERE g.org_id = $1 AND g.revoked_at IS NULL{} ORDER BY g.created_at, g.id",
        if account_id.is_some() {
            " AND g.account_id = $2"
        } else {
            ""
        }
    );
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(org_id);
    if let Some(a) = account_id {
        q = q.bind(a);
    }
    Ok(q.fetch_all(e).await?)
}

/// Revokes grants and everything issued under them: matching `grant_id`
/// (one grant), or every grant of a client in an org, or every grant of a
/// member in an org. Returns how many grants were revoked.
pub async fn revoke_oauth_grants(
    conn: &mut crate::Conn,
    filter: GrantFilter<'_>,
    now: i64,
) -> Result<u64> {
    let (cond, a, b): (&str, &str, Option<&str>) = match filter {
        GrantFilter::Id(id) => ("id = $2", id, None),
        GrantFilter::ClientInOrg { org_id, client_id } => {
            ("org_id = $2 AND client_id = $3", org_id, Some(client_id))
        }
        GrantFilter::MemberInOrg { org_id, account_id } => {
            ("org_id = $2 AND account_id = $3", org_id, Some(account_id))
        }
        GrantFilter::Client(client_id) => ("client_id = $2", client_id, None),
    };
    let ids: Vec<String> = {
        let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "UPDATE oauth_grants SET revoked_at = $1 WHERE revoked_at IS NULL AND {cond} RETURNING id"
        )))
        .bind(now)
        .bind(a);
        if let Some(b) = b {
            q = q.bind(b);
        }
        q.fetch_all(&mut *conn).await?
    };
    for id in &ids {
        sqlx::query(
            "UPDATE oauth_refresh_tokens SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE grant_id = $2 AND kind = 'oauth' AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(ids.len() as u64)
}

/// Which grants [`revoke_oauth_grants`] revokes.
#[derive(Debug, Clone, Copy)]
pub enum GrantFilter<'a> {
    Id(&'a str),
    ClientInOrg {
        org_id: &'a str,
        client_id: &'a str,
    },
    MemberInOrg {
        org_id: &'a str,
        account_id: &'a str,
    },
    Client(&'a str),
}

pub async fn touch_oauth_grant<'c>(e: impl Exec<'c>, id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE oauth_grants SET last_used_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(e)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OAuthCodeRow {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub account_id: String,
    pub org_id: String,
    pub redirect_uri: String,
    pub redirect_given: i64,
    pub code_challenge: String,
    pub resource: String,
    pub scopes: String,
    pub family_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

const CODE_COLS: &str = "code_hash, grant_id, client_id, account_id, org_id, redirect_uri, redirect_given, code_challenge, resource, scopes, family_id, created_at, expires_at, used_at";

pub async fn insert_oauth_code<'c>(e: impl Exec<'c>, c: &OAuthCodeRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO oauth_codes (code_hash, grant_id, client_id, account_id, org_id, redirect_uri, redirect_given,
             code_challenge, resource, scopes, family_id, created_at, expires_at, used_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL)",
    )
    .bind(&c.code_hash)
    .bind(&c.grant_id)
    .bind(&c.client_id)
    .bind(&c.account_id)
    .bind(&c.org_id)
    .bind(&c.redirect_uri)
    .bind(c.redirect_given)
    .bind(&c.code_challenge)
    .bind(&c.resource)
    .bind(&c.scopes)
    .bind(&c.family_id)
    .bind(c.created_at)
    .bind(c.expires_at)
    .execute(e)
    .await?;
    Ok(())
}

/// Spends a code: the one statement that decides who wins a race. `None`
/// when it is unknown, expired or already spent.
pub async fn spend_oauth_code<'c>(
    e: impl Exec<'c>,
    code_hash: &str,
    now: i64,
) -> Result<Option<OAuthCodeRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE oauth_codes SET used_at = $2
         WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2
         RETURNING {CODE_COLS}"
    )))
    .bind(code_hash)
    .bind(now)
    .fetch_optional(e)
    .await?)
}

pub async fn oauth_code<'c>(e: impl Exec<'c>, code_hash: &str) -> Result<Option<OAuthCodeRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CODE_COLS} FROM oauth_codes WHERE code_hash = $1"
    )))
    .bind(code_hash)
    .fetch_optional(e)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshTokenRow {
    pub token_hash: String,
    pub id: String,
    pub family_id: String,
    pub grant_id: String,
    pub client_id: String,
    pub account_id: String,
    pub org_id: String,
    pub resource: String,
    pub scopes: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const REFRESH_COLS: &str = "token_hash, id, family_id, grant_id, client_id, account_id, org_id, resource, scopes, created_at, expires_at, used_at, revoked_at";

pub async fn insert_refresh_token<'c>(e: impl Exec<'c>, r: &RefreshTokenRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO oauth_refresh_tokens (token_hash, id, family_id, grant_id, client_id, account_id, org_id,
             resource, scopes, created_at, expires_at, used_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, NULL)",
    )
    .bind(&r.token_hash)
    .bind(&r.id)
    .bind(&r.family_id)
    .bind(&r.grant_id)
    .bind(&r.client_id)
    .bind(&r.account_id)
    .bind(&r.org_id)
    .bind(&r.resource)
    .bind(&r.scopes)
    .bind(r.created_at)
    .bind(r.expires_at)
    .execute(e)
    .await?;
    Ok(())
}

/// Spends a refresh token (rotation): the one statement that decides who
/// wins a race. `None` when it is unknown, expired, revoked or spent.
pub async fn spend_refresh_token<'c>(
    e: impl Exec<'c>,
    token_hash: &str,
    now: i64,
) -> Result<Option<RefreshTokenRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE oauth_refresh_tokens SET used_at = $2
         WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2
         RETURNING {REFRESH_COLS}"
    )))
    .bind(token_hash)
    .bind(now)
    .fetch_optional(e)
    .await?)
}

pub async fn refresh_token<'c>(
    e: impl Exec<'c>,
    token_hash: &str,
) -> Result<Option<RefreshTokenRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REFRESH_COLS} FROM oauth_refresh_tokens WHERE token_hash = $1"
    )))
    .bind(token_hash)
    .fetch_optional(e)
    .await?)
}

/// Revokes a token family: every refresh token and access token issued from
/// one code. Returns how many live tokens it ended.
pub async fn revoke_token_family(conn: &mut crate::Conn, family_id: &str, now: i64) -> Result<u64> {
    let a = sqlx::query(
        "UPDATE oauth_refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(family_id)
    .execute(&mut *conn)
    .await?;
    let b = sqlx::query(
        "UPDATE tokens SET revoked_at = $1 WHERE family_id = $2 AND kind = 'oauth' AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(family_id)
    .execute(&mut *conn)
    .await?;
    Ok(a.rows_affected() + b.rows_affected())
}

/// An OAuth access token's row, for revocation by the client that holds it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OAuthAccessRow {
    pub id: String,
    pub org_id: String,
    pub account_id: String,
    pub client_id: Option<String>,
    pub family_id: Option<String>,
    pub revoked_at: Option<i64>,
}

pub async fn oauth_access_token<'c>(
    e: impl Exec<'c>,
    token_hash: &str,
) -> Result<Option<OAuthAccessRow>> {
    Ok(sqlx::query_as(
        "SELECT id, org_id, account_id, client_id, family_id, revoked_at FROM tokens
         WHERE token_hash = $1 AND kind = 'oauth'",
    )
    .bind(token_hash)
    .fetch_optional(e)
    .await?)
}

/// Inserts an OAuth access token (a `tokens` row of kind 'oauth').
#[allow(clippy::too_many_arguments)]
pub async fn insert_oauth_access_token<'c>(
    e: impl Exec<'c>,
    t: &crate::TokenRow,
    resource: &str,
    client_id: &str,
    grant_id: &str,
    family_id: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tokens (id, org_id, account_id, kind, name, prefix, token_hash, scopes, environment,
             created_at, expires_at, last_used_at, revoked_at, resource, client_id, grant_id, family_id)
         VALUES ($1, $2, $3, 'oauth', $4, $5, $6, $7, NULL, $8, $9, NULL, NULL, $10, $11, $12, $13)",
    )
    .bind(&t.id)
    .bind(&t.org_id)
    .bind(&t.account_id)
    .bind(&t.name)
    .bind(&t.prefix)
    .bind(&t.token_hash)
    .bind(&t.scopes)
    .bind(t.created_at)
    .bind(t.expires_at)
    .bind(resource)
    .bind(client_id)
    .bind(grant_id)
    .bind(family_id)
    .execute(e)
    .await?;
    Ok(())
}

/// Counts an event against a fixed-window limit kept in the database (so
/// every replica counts the same). Returns false when the limit is reached.
pub async fn rate_limit_hit(
    conn: &mut crate::Conn,
    key: &str,
    max: i64,
    window_ms: i64,
    now: i64,
) -> Result<bool> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT failures, window_started_at FROM sign_in_throttle WHERE throttle_key = $1",
    )
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    let (count, started) = match row {
        Some((n, s)) if now - s < window_ms => (n, s),
        _ => (0, now),
    };
    if count >= max {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO sign_in_throttle (throttle_key, failures, window_started_at, locked_until)
         VALUES ($1, $2, $3, 0)
         ON CONFLICT (throttle_key) DO UPDATE SET failures = excluded.failures,
             window_started_at = excluded.window_started_at",
    )
    .bind(key)
    .bind(count + 1)
    .bind(started)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}
