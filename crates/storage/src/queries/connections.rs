//! Gateway connections, their sealed secrets, and their grants.

use super::Exec;
use crate::Result;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectionRow {
    pub id: String,
    pub org_id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub transport: String,
    pub url: Option<String>,
    pub command: Option<String>,
    /// JSON array of strings.
    pub args: String,
    pub credential_mode: String,
    pub environment: Option<String>,
    pub tool_allow: Option<String>,
    pub tool_deny: Option<String>,
    pub tool_overrides: String,
    pub enabled: i64,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the cached catalog was last replaced (the catalog's version).
    pub catalog_refreshed_at: Option<i64>,
    /// The catalog entry a stdio connection runs (its allow-list).
    pub integration_id: Option<String>,
}

const COLS: &str = "id, org_id, slug, name, description, transport, url, command, args, credential_mode, environment, tool_allow, tool_deny, tool_overrides, enabled, created_by, created_at, updated_at, catalog_refreshed_at, integration_id";

fn prefixed(p: &str) -> String {
    COLS.split(", ")
        .map(|c| format!("{p}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn insert_connection<'c>(e: impl Exec<'c>, c: &ConnectionRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO connections (id, org_id, slug, name, description, transport, url, command, args,
             credential_mode, environment, tool_allow, tool_deny, tool_overrides, enabled, created_by, created_at, updated_at, integration_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    )
    .bind(&c.id)
    .bind(&c.org_id)
    .bind(&c.slug)
    .bind(&c.name)
    .bind(&c.description)
    .bind(&c.transport)
    .bind(&c.url)
    .bind(&c.command)
    .bind(&c.args)
    .bind(&c.credential_mode)
    .bind(&c.environment)
    .bind(&c.tool_allow)
    .bind(&c.tool_deny)
    .bind(&c.tool_overrides)
    .bind(c.enabled)
    .bind(&c.created_by)
    .bind(c.created_at)
    .bind(c.updated_at)
    .bind(&c.integration_id)
    .execute(e)
    .await?;
    Ok(())
}

/// Rewrites a connection's editable fields.
pub async fn update_connection<'c>(e: impl Exec<'c>, c: &ConnectionRow) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE connections SET name = $3, description = $4, url = $5, command = $6, args = $7,
             credential_mode = $8, environment = $9, tool_allow = $10, tool_deny = $11, tool_overrides = $12,
             enabled = $13, updated_at = $14, integration_id = $15
         WHERE org_id = $1 AND id = $2",
    )
    .bind(&c.org_id)
    .bind(&c.id)
    .bind(&c.name)
    .bind(&c.description)
    .bind(&c.url)
    .bind(&c.command)
    .bind(&c.args)
    .bind(&c.credential_mode)
    .bind(&c.environment)
    .bind(&c.tool_allow)
    .bind(&c.tool_deny)
    .bind(&c.tool_overrides)
    .bind(c.enabled)
    .bind(c.updated_at)
    .bind(&c.integration_id)
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// A connection by id or slug, within the org.
pub async fn connection_in_org<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    id_or_slug: &str,
) -> Result<Option<ConnectionRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM connections WHERE org_id = $1 AND (id = $2 OR slug = $2)"
    )))
    .bind(org_id)
    .bind(id_or_slug)
    .fetch_optional(e)
    .await?)
}

pub async fn delete_connection<'c>(e: impl Exec<'c>, org_id: &str, id: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM connections WHERE org_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .execute(e)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Every connection of the org, by slug.
pub async fn list_connections<'c>(e: impl Exec<'c>, org_id: &str) -> Result<Vec<ConnectionRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM connections WHERE org_id = $1 ORDER BY slug"
    )))
    .bind(org_id)
    .fetch_all(e)
    .await?)
}

/// The enabled connections a member may use: granted to the whole org, to
/// a team the member is in, or to the member.
pub async fn usable_connections<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    membership_id: &str,
) -> Result<Vec<ConnectionRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM connections c
         WHERE c.org_id = $1 AND c.enabled = 1 AND EXISTS (
             SELECT 1 FROM connection_grants g WHERE g.connection_id = c.id AND (
                 g.grantee_kind = 'org'
                 OR (g.grantee_kind = 'member' AND g.grantee_id = $2)
                 OR (g.grantee_kind = 'team' AND g.grantee_id IN
                     (SELECT tm.team_id FROM team_members tm WHERE tm.membership_id = $2))))
         ORDER BY c.slug",
        prefixed("c")
    )))
    .bind(org_id)
    .bind(membership_id)
    .fetch_all(e)
    .await?)
}

const SECRET_COLS: &str = "id, connection_id, kind, name, key_id, sealed, created_at, updated_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectionSecretRow {
    pub id: String,
    pub connection_id: String,
    pub kind: String,
    pub name: String,
    pub key_id: String,
    pub sealed: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Sets a sealed value (replacing the one of the same kind and name).
pub async fn upsert_connection_secret<'c>(e: impl Exec<'c>, s: &ConnectionSecretRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO connection_secrets (id, connection_id, kind, name, key_id, sealed, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
         ON CONFLICT (connection_id, kind, name) DO UPDATE SET key_id = excluded.key_id,
             sealed = excluded.sealed, updated_at = excluded.updated_at",
    )
    .bind(&s.id)
    .bind(&s.connection_id)
    .bind(&s.kind)
    .bind(&s.name)
    .bind(&s.key_id)
    .bind(&s.sealed)
    .bind(s.updated_at)
    .execute(e)
    .await?;
    Ok(())
}

/// The id a secret of this kind and name has (stable across updates: the
/// sealed value is bound to it).
pub async fn connection_secret_id<'c>(
    e: impl Exec<'c>,
    connection_id: &str,
    kind: &str,
    name: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM connection_secrets WHERE connection_id = $1 AND kind = $2 AND name = $3",
    )
    .bind(connection_id)
    .bind(kind)
    .bind(name)
    .fetch_optional(e)
    .await?)
}

pub async fn delete_connection_secret<'c>(
    e: impl Exec<'c>,
    connection_id: &str,
    kind: &str,
    name: &str,
) -> Result<bool> {
    let r = sqlx::query(
        "DELETE FROM connection_secrets WHERE connection_id = $1 AND kind = $2 AND name = $3",
    )
    .bind(connection_id)
    .bind(kind)
    .bind(name)
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn connection_secrets<'c>(
    e: impl Exec<'c>,
    connection_id: &str,
) -> Result<Vec<ConnectionSecretRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SECRET_COLS} FROM connection_secrets WHERE connection_id = $1 ORDER BY kind, name"
    )))
    .bind(connection_id)
    .fetch_all(e)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectionGrantRow {
    pub id: String,
    pub org_id: String,
    pub connection_id: String,
    pub grantee_kind: String,
    pub grantee_id: String,
    pub created_at: i64,
}

/// Adds a grant; false when it already existed.
pub async fn insert_connection_grant<'c>(e: impl Exec<'c>, g: &ConnectionGrantRow) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO connection_grants (id, org_id, connection_id, grantee_kind, grantee_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (connection_id, grantee_kind, grantee_id) DO NOTHING",
    )
    .bind(&g.id)
    .bind(&g.org_id)
    .bind(&g.connection_id)
    .bind(&g.grantee_kind)
    .bind(&g.grantee_id)
    .bind(g.created_at)
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn delete_connection_grant<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    connection_id: &str,
    grant_id: &str,
) -> Result<bool> {
    let r = sqlx::query(
        "DELETE FROM connection_grants WHERE org_id = $1 AND connection_id = $2 AND id = $3",
    )
    .bind(org_id)
    .bind(connection_id)
    .bind(grant_id)
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn connection_grants<'c>(
    e: impl Exec<'c>,
    connection_id: &str,
) -> Result<Vec<ConnectionGrantRow>> {
    Ok(sqlx::query_as(
        "SELECT id, org_id, connection_id, grantee_kind, grantee_id, created_at
         FROM connection_grants WHERE connection_id = $1 ORDER BY created_at, id",
    )
    .bind(connection_id)
    .fetch_all(e)
    .await?)
}

/// Sealed values not sealed under `key_id` (for key rotation), at most `limit`.
pub async fn secrets_not_under_key<'c>(
    e: impl Exec<'c>,
    key_id: &str,
    limit: i64,
) -> Result<Vec<ConnectionSecretRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SECRET_COLS} FROM connection_secrets WHERE key_id <> $1 ORDER BY id LIMIT $2"
    )))
    .bind(key_id)
    .bind(limit)
    .fetch_all(e)
    .await?)
}

/// Every sealed value (to verify that each one opens), in pages by id.
pub async fn secrets_after<'c>(
    e: impl Exec<'c>,
    after_id: &str,
    limit: i64,
) -> Result<Vec<ConnectionSecretRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SECRET_COLS} FROM connection_secrets WHERE id > $1 ORDER BY id LIMIT $2"
    )))
    .bind(after_id)
    .bind(limit)
    .fetch_all(e)
    .await?)
}

/// Replaces a sealed value, only if it is still sealed under `old_key_id`
/// (a concurrent change wins; rotation then leaves it alone).
pub async fn reseal_connection_secret<'c>(
    e: impl Exec<'c>,
    id: &str,
    old_key_id: &str,
    new_key_id: &str,
    sealed: &str,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE connection_secrets SET key_id = $3, sealed = $4, updated_at = $5
         WHERE id = $1 AND key_id = $2",
    )
    .bind(id)
    .bind(old_key_id)
    .bind(new_key_id)
    .bind(sealed)
    .bind(now)
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// How many sealed values each key seals.
pub async fn secret_key_usage<'c>(e: impl Exec<'c>) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT key_id, COUNT(*) FROM connection_secrets GROUP BY key_id ORDER BY key_id",
    )
    .fetch_all(e)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectionToolRow {
    pub connection_id: String,
    pub credential_key: String,
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub input_schema: String,
    pub output_schema: Option<String>,
    pub annotations: Option<String>,
    pub fetched_at: i64,
    /// Why the tool is not offered; `None` when it is.
    pub problem: Option<String>,
}

/// Replaces a connection's cached tool list for one credential.
pub async fn replace_connection_tools(
    conn: &mut crate::Conn,
    connection_id: &str,
    credential_key: &str,
    tools: &[ConnectionToolRow],
) -> Result<()> {
    sqlx::query("DELETE FROM connection_tools WHERE connection_id = $1 AND credential_key = $2")
        .bind(connection_id)
        .bind(credential_key)
        .execute(&mut *conn)
        .await?;
    for t in tools {
        sqlx::query(
            "INSERT INTO connection_tools (connection_id, credential_key, name, title, description,
                 input_schema, output_schema, annotations, fetched_at, problem)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&t.connection_id)
        .bind(&t.credential_key)
        .bind(&t.name)
        .bind(&t.title)
        .bind(&t.description)
        .bind(&t.input_schema)
        .bind(&t.output_schema)
        .bind(&t.annotations)
        .bind(t.fetched_at)
        .bind(&t.problem)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn connection_tools<'c>(
    e: impl Exec<'c>,
    connection_id: &str,
    credential_key: &str,
) -> Result<Vec<ConnectionToolRow>> {
    Ok(sqlx::query_as(
        "SELECT connection_id, credential_key, name, title, description, input_schema, output_schema,
                annotations, fetched_at, problem
         FROM connection_tools WHERE connection_id = $1 AND credential_key = $2 ORDER BY name",
    )
    .bind(connection_id)
    .bind(credential_key)
    .fetch_all(e)
    .await?)
}

/// Replaces one of a connection's cached lists (`resources`,
/// `resource_templates`, `prompts`) for one credential; `None` removes it
/// (the upstream no longer offers that list).
pub async fn replace_connection_listing(
    conn: &mut crate::Conn,
    connection_id: &str,
    credential_key: &str,
    kind: &str,
    items: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "DELETE FROM connection_listings WHERE connection_id = $1 AND credential_key = $2 AND kind = $3",
    )
    .bind(connection_id)
    .bind(credential_key)
    .bind(kind)
    .execute(&mut *conn)
    .await?;
    if let Some(items) = items {
        sqlx::query(
            "INSERT INTO connection_listings (connection_id, credential_key, kind, items, fetched_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(connection_id)
        .bind(credential_key)
        .bind(kind)
        .bind(items)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// One cached list of a connection (a JSON array), if the upstream offers it.
pub async fn connection_listing<'c>(
    e: impl Exec<'c>,
    connection_id: &str,
    credential_key: &str,
    kind: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT items FROM connection_listings WHERE connection_id = $1 AND credential_key = $2 AND kind = $3",
    )
    .bind(connection_id)
    .bind(credential_key)
    .bind(kind)
    .fetch_optional(e)
    .await?)
}

/// Whether a connection is a member of any saved virtual server (where its
/// tools are offered under `{slug}_{tool}`).
pub async fn connection_in_saved_servers<'c>(
    e: impl Exec<'c>,
    connection_id: &str,
) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM virtual_server_connections WHERE connection_id = $1",
    )
    .bind(connection_id)
    .fetch_one(e)
    .await?;
    Ok(n > 0)
}

/// Per connection slug of an org, how many fetched tools have a problem
/// (connections without one are left out).
pub async fn hidden_tool_counts<'c>(e: impl Exec<'c>, org_id: &str) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT c.slug, COUNT(*) FROM connection_tools t JOIN connections c ON c.id = t.connection_id
         WHERE c.org_id = $1 AND t.problem IS NOT NULL GROUP BY c.slug",
    )
    .bind(org_id)
    .fetch_all(e)
    .await?)
}

/// Records a connection's health after talking to its upstream.
pub async fn set_connection_health<'c>(
    e: impl Exec<'c>,
    connection_id: &str,
    health: &str,
    last_error: Option<&str>,
    refreshed_at: Option<i64>,
    checked_at: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE connections SET health = $2, last_error = $3,
             catalog_refreshed_at = COALESCE($4, catalog_refreshed_at), health_checked_at = $5
         WHERE id = $1",
    )
    .bind(connection_id)
    .bind(health)
    .bind(last_error)
    .bind(refreshed_at)
    .bind(checked_at)
    .execute(e)
    .await?;
    Ok(())
}

/// A connection's health, as last recorded.
/// A connection's health as last recorded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectionHealthRow {
    pub health: String,
    pub last_error: Option<String>,
    pub catalog_refreshed_at: Option<i64>,
    pub health_latency_ms: Option<i64>,
    pub health_checked_at: Option<i64>,
}

pub async fn connection_health<'c>(
    e: impl Exec<'c>,
    connection_id: &str,
) -> Result<Option<ConnectionHealthRow>> {
    Ok(sqlx::query_as(
        "SELECT health, last_error, catalog_refreshed_at, health_latency_ms, health_checked_at
         FROM connections WHERE id = $1",
    )
    .bind(connection_id)
    .fetch_optional(e)
    .await?)
}

/// A connection by id, whatever its org (for the gateway's own work).
pub async fn connection_by_id<'c>(e: impl Exec<'c>, id: &str) -> Result<Option<ConnectionRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM connections WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(e)
    .await?)
}

/// Enabled connections whose catalog was last refreshed before `before`
/// (or never), oldest first: the scheduled refresh's work list.
pub async fn connections_due_for_refresh<'c>(
    e: impl Exec<'c>,
    before: i64,
    limit: i64,
) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM connections
         WHERE enabled = 1 AND (catalog_refreshed_at IS NULL OR catalog_refreshed_at < $1)
         ORDER BY COALESCE(catalog_refreshed_at, 0), id LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(e)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Claims a connection's scheduled refresh: moves `catalog_refreshed_at`
/// forward only if nobody else did since `seen`, so of several replicas
/// exactly one refreshes it. `true` when this caller won.
pub async fn claim_catalog_refresh<'c>(
    e: impl Exec<'c>,
    id: &str,
    seen: Option<i64>,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE connections SET catalog_refreshed_at = $3
         WHERE id = $1 AND COALESCE(catalog_refreshed_at, -1) = COALESCE($2, -1)",
    )
    .bind(id)
    .bind(seen)
    .bind(now)
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Sets a connection's health (and error) only; the catalog time stays.
/// Records the median latency of a connection's last requests and when
/// the last of them was made.
pub async fn record_connection_latency<'c>(
    e: impl Exec<'c>,
    id: &str,
    latency_ms: i64,
    checked_at: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE connections SET health_latency_ms = $2, health_checked_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(latency_ms)
    .bind(checked_at)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn set_connection_health_only<'c>(
    e: impl Exec<'c>,
    id: &str,
    health: &str,
    last_error: Option<&str>,
) -> Result<()> {
    sqlx::query("UPDATE connections SET health = $2, last_error = $3 WHERE id = $1")
        .bind(id)
        .bind(health)
        .bind(last_error)
        .execute(e)
        .await?;
    Ok(())
}

/// `(slug, health, last_error)` of the org's enabled connections.
pub async fn connection_healths<'c>(
    e: impl Exec<'c>,
    org_id: &str,
) -> Result<Vec<(String, String, Option<String>)>> {
    Ok(sqlx::query_as(
        "SELECT slug, health, last_error FROM connections WHERE org_id = $1 AND enabled = 1 ORDER BY slug",
    )
    .bind(org_id)
    .fetch_all(e)
    .await?)
}

/// An org's custom integration: `(integration id, definition JSON)`.
pub async fn custom_integrations<'c>(
    e: impl Exec<'c>,
    org_id: &str,
) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT integration_id, definition FROM custom_integrations WHERE org_id = $1 ORDER BY integration_id",
    )
    .bind(org_id)
    .fetch_all(e)
    .await?)
}

/// Stores a custom integration; `false` when the org already has one by that id.
pub async fn insert_custom_integration<'c>(
    e: impl Exec<'c>,
    id: &str,
    org_id: &str,
    integration_id: &str,
    definition: &str,
    created_by: &str,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO custom_integrations (id, org_id, integration_id, definition, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id, integration_id) DO NOTHING",
    )
    .bind(id)
    .bind(org_id)
    .bind(integration_id)
    .bind(definition)
    .bind(created_by)
    .bind(now)
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn delete_custom_integration<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    integration_id: &str,
) -> Result<bool> {
    let r =
        sqlx::query("DELETE FROM custom_integrations WHERE org_id = $1 AND integration_id = $2")
            .bind(org_id)
            .bind(integration_id)
            .execute(e)
            .await?;
    Ok(r.rows_affected() == 1)
}

/// The slugs of the org's connections built on an integration.
pub async fn connections_of_integration<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    integration_id: &str,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT slug FROM connections WHERE org_id = $1 AND integration_id = $2 ORDER BY slug",
    )
    .bind(org_id)
    .bind(integration_id)
    .fetch_all(e)
    .await?)
}
