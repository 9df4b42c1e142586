//! Audit events: appended, never changed.

use crate::{Arg, Exec, Result, SqlBuilder};

#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct AuditRow {
    pub id: String,
    pub org_id: Option<String>,
    pub at: i64,
    pub actor_id: Option<String>,
    pub actor: String,
    pub token_id: Option<String>,
    pub token_kind: Option<String>,
    pub client: Option<String>,
    pub surface: String,
    pub action: String,
    pub target: Option<String>,
    /// JSON object: the redacted argument summary.
    pub args: String,
    pub outcome: String,
    pub latency_ms: Option<i64>,
    pub environment: Option<String>,
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
    /// The JSON-RPC method of an MCP request (`tools/call`, `tools/list`…).
    pub method: Option<String>,
}

const COLS: &str = "id, org_id, at, actor_id, actor, token_id, token_kind, client, surface, action, target, args, outcome, latency_ms, environment, request_id, client_ip, method";
const NCOLS: usize = 18;

/// `INSERT INTO audit_events (…) VALUES (…), …` for `rows` rows.
fn insert_sql(rows: usize) -> String {
    let mut sql = format!("INSERT INTO audit_events ({COLS}) VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..NCOLS {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", i * NCOLS + c + 1));
        }
        sql.push(')');
    }
    sql
}

/// Binds one row's values, in the order of [`COLS`].
fn bind_row<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    a: &'q AuditRow,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    q.bind(&a.id)
        .bind(&a.org_id)
        .bind(a.at)
        .bind(&a.actor_id)
        .bind(&a.actor)
        .bind(&a.token_id)
        .bind(&a.token_kind)
        .bind(&a.client)
        .bind(&a.surface)
        .bind(&a.action)
        .bind(&a.target)
        .bind(&a.args)
        .bind(&a.outcome)
        .bind(a.latency_ms)
        .bind(&a.environment)
        .bind(&a.request_id)
        .bind(&a.client_ip)
        .bind(&a.method)
}

pub async fn insert_audit<'c>(e: impl Exec<'c>, a: &AuditRow) -> Result<()> {
    bind_row(sqlx::query(sqlx::AssertSqlSafe(insert_sql(1))), a)
        .execute(e)
        .await?;
    Ok(())
}

/// Most events one INSERT carries: 18 parameters each, 4,608 in all, well
/// within SQLite's 32,766 and PostgreSQL's 65,535.
pub const AUDIT_ROWS_PER_STATEMENT: usize = 256;

/// Inserts up to [`AUDIT_ROWS_PER_STATEMENT`] events in one statement. On
/// its own (autocommit) it is one round trip and one durable commit: the
/// group commit of MCP calls needs no BEGIN and COMMIT around it.
pub async fn insert_audit_rows<'c>(e: impl Exec<'c>, rows: &[AuditRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    debug_assert!(rows.len() <= AUDIT_ROWS_PER_STATEMENT);
    let mut q = sqlx::query(sqlx::AssertSqlSafe(insert_sql(rows.len())));
    for a in rows {
        q = bind_row(q, a);
    }
    q.execute(e).await?;
    Ok(())
}

/// Inserts any number of events, one statement per
/// [`AUDIT_ROWS_PER_STATEMENT`], inside the caller's transaction.
pub async fn insert_audit_batch(conn: &mut crate::Conn, rows: &[AuditRow]) -> Result<()> {
    for chunk in rows.chunks(AUDIT_ROWS_PER_STATEMENT) {
        insert_audit_rows(&mut *conn, chunk).await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Newest first: events with ids below this cursor.
    pub before: Option<String>,
    pub limit: i64,
}

/// An org's events, newest first.
pub async fn list_audit<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    f: &AuditFilter,
) -> Result<Vec<AuditRow>> {
    let mut b = SqlBuilder::new(&format!("SELECT {COLS} FROM audit_events WHERE org_id = "));
    b.bind(Arg::Text(org_id.to_owned()));
    if let Some(v) = &f.actor_id {
        b.push(" AND actor_id = ").bind(Arg::Text(v.clone()));
    }
    if let Some(v) = &f.action {
        b.push(" AND action = ").bind(Arg::Text(v.clone()));
    }
    if let Some(v) = &f.target {
        b.push(" AND target = ").bind(Arg::Text(v.clone()));
    }
    if let Some(v) = f.since {
        b.push(" AND at >= ").bind(Arg::Int(v));
    }
    if let Some(v) = f.until {
        b.push(" AND at < ").bind(Arg::Int(v));
    }
    if let Some(v) = &f.before {
        b.push(" AND id < ").bind(Arg::Text(v.clone()));
    }
    b.push(" ORDER BY id DESC LIMIT ").bind(Arg::Int(f.limit));
    Ok(b.query_as().fetch_all(e).await?)
}
