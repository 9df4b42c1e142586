//! Saved virtual servers and the connections each one binds.

use super::Exec;
use crate::Result;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VirtualServerRow {
    pub id: String,
    pub org_id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str = "id, org_id, slug, name, description, created_at, updated_at";

pub async fn insert_virtual_server<'c>(e: impl Exec<'c>, v: &VirtualServerRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO virtual_servers (id, org_id, slug, name, description, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&v.id)
    .bind(&v.org_id)
    .bind(&v.slug)
    .bind(&v.name)
    .bind(&v.description)
    .bind(v.created_at)
    .bind(v.updated_at)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn add_virtual_server_connection<'c>(
    e: impl Exec<'c>,
    virtual_server_id: &str,
    connection_id: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO virtual_server_connections (virtual_server_id, connection_id) VALUES ($1, $2)",
    )
    .bind(virtual_server_id)
    .bind(connection_id)
    .execute(e)
    .await?;
    Ok(())
}

/// A virtual server by id or slug, within the org.
pub async fn virtual_server_in_org<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    id_or_slug: &str,
) -> Result<Option<VirtualServerRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM virtual_servers WHERE org_id = $1 AND (id = $2 OR slug = $2)"
    )))
    .bind(org_id)
    .bind(id_or_slug)
    .fetch_optional(e)
    .await?)
}

pub async fn list_virtual_servers<'c>(
    e: impl Exec<'c>,
    org_id: &str,
) -> Result<Vec<VirtualServerRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM virtual_servers WHERE org_id = $1 ORDER BY slug"
    )))
    .bind(org_id)
    .fetch_all(e)
    .await?)
}

/// The slugs of the connections a virtual server binds, in slug order.
pub async fn virtual_server_connection_slugs<'c>(
    e: impl Exec<'c>,
    virtual_server_id: &str,
) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT c.slug FROM virtual_server_connections v JOIN connections c ON c.id = v.connection_id
         WHERE v.virtual_server_id = $1 ORDER BY c.slug",
    )
    .bind(virtual_server_id)
    .fetch_all(e)
    .await?;
    Ok(rows.into_iter().map(|(s,)| s).collect())
}

pub async fn delete_virtual_server<'c>(e: impl Exec<'c>, org_id: &str, id: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM virtual_servers WHERE org_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .execute(e)
        .await?;
    Ok(r.rows_affected() == 1)
}
