//! Work items: projects, requirements, tasks (assignees, requirement links,
//! comments) and commit entries.

use crate::{Arg, Exec, Page, Result, SqlBuilder};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProjectRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub description: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn insert_project<'c>(e: impl Exec<'c>, p: &ProjectRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO projects (id, org_id, name, description, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&p.id)
    .bind(&p.org_id)
    .bind(&p.name)
    .bind(&p.description)
    .bind(&p.created_by)
    .bind(p.created_at)
    .bind(p.updated_at)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn update_project<'c>(e: impl Exec<'c>, p: &ProjectRow) -> Result<()> {
    sqlx::query("UPDATE projects SET name = $1, description = $2, updated_at = $3 WHERE id = $4 AND org_id = $5")
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.updated_at)
        .bind(&p.id)
        .bind(&p.org_id)
        .execute(e)
        .await?;
    Ok(())
}

pub async fn project_by_id<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    id: &str,
) -> Result<Option<ProjectRow>> {
    Ok(sqlx::query_as(
        "SELECT id, org_id, name, description, created_by, created_at, updated_at FROM projects WHERE org_id = $1 AND id = $2",
    )
    .bind(org_id)
    .bind(id)
    .fetch_optional(e)
    .await?)
}

pub async fn list_projects<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    page: &Page,
) -> Result<Vec<ProjectRow>> {
    Ok(sqlx::query_as(
        "SELECT id, org_id, name, description, created_by, created_at, updated_at FROM projects
         WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(org_id)
    .bind(page.cursor.clone().unwrap_or_default())
    .bind(page.limit)
    .fetch_all(e)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RequirementRow {
    pub id: String,
    pub org_id: String,
    pub project_id: String,
    pub title: String,
    pub body: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const REQ_COLS: &str = "id, org_id, project_id, title, body, created_by, created_at, updated_at";

pub async fn insert_requirement<'c>(e: impl Exec<'c>, r: &RequirementRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO requirements (id, org_id, project_id, title, body, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&r.id)
    .bind(&r.org_id)
    .bind(&r.project_id)
    .bind(&r.title)
    .bind(&r.body)
    .bind(&r.created_by)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn update_requirement<'c>(e: impl Exec<'c>, r: &RequirementRow) -> Result<()> {
    sqlx::query("UPDATE requirements SET title = $1, body = $2, updated_at = $3 WHERE id = $4 AND org_id = $5")
        .bind(&r.title)
        .bind(&r.body)
        .bind(r.updated_at)
        .bind(&r.id)
        .bind(&r.org_id)
        .execute(e)
        .await?;
    Ok(())
}

pub async fn requirement_by_id<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    id: &str,
) -> Result<Option<RequirementRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REQ_COLS} FROM requirements WHERE org_id = $1 AND id = $2"
    )))
    .bind(org_id)
    .bind(id)
    .fetch_optional(e)
    .await?)
}

pub async fn list_requirements<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    project_id: Option<&str>,
    page: &Page,
) -> Result<Vec<RequirementRow>> {
    let mut b = SqlBuilder::new(&format!(
        "SELECT {REQ_COLS} FROM requirements WHERE org_id = "
    ));
    b.bind(Arg::Text(org_id.to_owned()));
    if let Some(p) = project_id {
        b.push(" AND project_id = ").bind(Arg::Text(p.to_owned()));
    }
    b.push(" AND id > ")
        .bind(Arg::Text(page.cursor.clone().unwrap_or_default()));
    b.push(" ORDER BY id LIMIT ").bind(Arg::Int(page.limit));
    Ok(b.query_as().fetch_all(e).await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskRow {
    pub id: String,
    pub org_id: String,
    pub project_id: String,
    pub title: String,
    pub description: String,
    pub status: String,
    pub priority: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const TASK_COLS: &str = "t.id, t.org_id, t.project_id, t.title, t.description, t.status, t.priority, t.created_by, t.created_at, t.updated_at";

pub async fn insert_task<'c>(e: impl Exec<'c>, t: &TaskRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO tasks (id, org_id, project_id, title, description, status, priority, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&t.id)
    .bind(&t.org_id)
    .bind(&t.project_id)
    .bind(&t.title)
    .bind(&t.description)
    .bind(&t.status)
    .bind(&t.priority)
    .bind(&t.created_by)
    .bind(t.created_at)
    .bind(t.updated_at)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn update_task<'c>(e: impl Exec<'c>, t: &TaskRow) -> Result<()> {
    sqlx::query(
        "UPDATE tasks SET title = $1, description = $2, status = $3, priority = $4, updated_at = $5
         WHERE id = $6 AND org_id = $7",
    )
    .bind(&t.title)
    .bind(&t.description)
    .bind(&t.status)
    .bind(&t.priority)
    .bind(t.updated_at)
    .bind(&t.id)
    .bind(&t.org_id)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn task_by_id<'c>(e: impl Exec<'c>, org_id: &str, id: &str) -> Result<Option<TaskRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TASK_COLS} FROM tasks t WHERE t.org_id = $1 AND t.id = $2"
    )))
    .bind(org_id)
    .bind(id)
    .fetch_optional(e)
    .await?)
}

/// Filters for listing tasks; each is optional.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub project_id: Option<String>,
    pub status: Option<String>,
    pub assignee_membership_id: Option<String>,
    pub requirement_id: Option<String>,
}

pub async fn list_tasks<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    f: &TaskFilter,
    page: &Page,
) -> Result<Vec<TaskRow>> {
    let mut b = SqlBuilder::new(&format!(
        "SELECT {TASK_COLS} FROM tasks t WHERE t.org_id = "
    ));
    b.bind(Arg::Text(org_id.to_owned()));
    if let Some(p) = &f.project_id {
        b.push(" AND t.project_id = ").bind(Arg::Text(p.clone()));
    }
    if let Some(s) = &f.status {
        b.push(" AND t.status = ").bind(Arg::Text(s.clone()));
    }
    if let Some(m) = &f.assignee_membership_id {
        b.push(" AND EXISTS (SELECT 1 FROM task_assignees ta WHERE ta.task_id = t.id AND ta.membership_id = ")
            .bind(Arg::Text(m.clone()))
            .push(")");
    }
    if let Some(r) = &f.requirement_id {
        b.push(" AND EXISTS (SELECT 1 FROM task_requirements tr WHERE tr.task_id = t.id AND tr.requirement_id = ")
            .bind(Arg::Text(r.clone()))
            .push(")");
    }
    b.push(" AND t.id > ")
        .bind(Arg::Text(page.cursor.clone().unwrap_or_default()));
    b.push(" ORDER BY t.id LIMIT ").bind(Arg::Int(page.limit));
    Ok(b.query_as().fetch_all(e).await?)
}

pub async fn task_assignees<'c>(
    e: impl Exec<'c>,
    task_id: &str,
) -> Result<Vec<(String, String, String)>> {
    Ok(sqlx::query_as(
        "SELECT m.id, a.email, a.display_name FROM task_assignees ta
         JOIN memberships m ON m.id = ta.membership_id JOIN accounts a ON a.id = m.account_id
         WHERE ta.task_id = $1 ORDER BY a.email",
    )
    .bind(task_id)
    .fetch_all(e)
    .await?)
}

pub async fn set_task_assignees(
    conn: &mut sqlx::AnyConnection,
    task_id: &str,
    membership_ids: &[String],
) -> Result<()> {
    sqlx::query("DELETE FROM task_assignees WHERE task_id = $1")
        .bind(task_id)
        .execute(&mut *conn)
        .await?;
    for m in membership_ids {
        sqlx::query("INSERT INTO task_assignees (task_id, membership_id) VALUES ($1, $2)")
            .bind(task_id)
            .bind(m)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn task_requirement_ids<'c>(e: impl Exec<'c>, task_id: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT requirement_id FROM task_requirements WHERE task_id = $1 ORDER BY requirement_id",
    )
    .bind(task_id)
    .fetch_all(e)
    .await?)
}

pub async fn link_requirement<'c>(
    e: impl Exec<'c>,
    task_id: &str,
    requirement_id: &str,
) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO task_requirements (task_id, requirement_id) VALUES ($1, $2)
         ON CONFLICT (task_id, requirement_id) DO NOTHING",
    )
    .bind(task_id)
    .bind(requirement_id)
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn unlink_requirement<'c>(
    e: impl Exec<'c>,
    task_id: &str,
    requirement_id: &str,
) -> Result<bool> {
    let r = sqlx::query("DELETE FROM task_requirements WHERE task_id = $1 AND requirement_id = $2")
        .bind(task_id)
        .bind(requirement_id)
        .execute(e)
        .await?;
    Ok(r.rows_affected() == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CommentRow {
    pub id: String,
    pub org_id: String,
    pub task_id: String,
    pub author_id: Option<String>,
    pub body: String,
    pub created_at: i64,
}

pub async fn insert_comment<'c>(e: impl Exec<'c>, c: &CommentRow) -> Result<()> {
    sqlx::query("INSERT INTO task_comments (id, org_id, task_id, author_id, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&c.id)
        .bind(&c.org_id)
        .bind(&c.task_id)
        .bind(&c.author_id)
        .bind(&c.body)
        .bind(c.created_at)
        .execute(e)
        .await?;
    Ok(())
}

pub async fn list_comments<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    task_id: &str,
    page: &Page,
) -> Result<Vec<CommentRow>> {
    Ok(sqlx::query_as(
        "SELECT id, org_id, task_id, author_id, body, created_at FROM task_comments
         WHERE org_id = $1 AND task_id = $2 AND id > $3 ORDER BY id LIMIT $4",
    )
    .bind(org_id)
    .bind(task_id)
    .bind(page.cursor.clone().unwrap_or_default())
    .bind(page.limit)
    .fetch_all(e)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CommitEntryRow {
    pub id: String,
    pub org_id: String,
    pub task_id: String,
    pub message: String,
    pub commit_hash: Option<String>,
    pub reason: Option<String>,
    pub author_id: Option<String>,
    pub token_id: Option<String>,
    pub created_at: i64,
}

pub async fn insert_commit_entry<'c>(e: impl Exec<'c>, c: &CommitEntryRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO commit_entries (id, org_id, task_id, message, commit_hash, reason, author_id, token_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&c.id)
    .bind(&c.org_id)
    .bind(&c.task_id)
    .bind(&c.message)
    .bind(&c.commit_hash)
    .bind(&c.reason)
    .bind(&c.author_id)
    .bind(&c.token_id)
    .bind(c.created_at)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn list_commit_entries<'c>(
    e: impl Exec<'c>,
    org_id: &str,
    task_id: &str,
    page: &Page,
) -> Result<Vec<CommitEntryRow>> {
    Ok(sqlx::query_as(
        "SELECT id, org_id, task_id, message, commit_hash, reason, author_id, token_id, created_at FROM commit_entries
         WHERE org_id = $1 AND task_id = $2 AND id > $3 ORDER BY id LIMIT $4",
    )
    .bind(org_id)
    .bind(task_id)
    .bind(page.cursor.clone().unwrap_or_default())
    .bind(page.limit)
    .fetch_all(e)
    .await?)
}

/// Whether the member is one of the task's assignees.
pub async fn is_task_assignee<'c>(
    e: impl Exec<'c>,
    task_id: &str,
    membership_id: &str,
) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM task_assignees WHERE task_id = $1 AND membership_id = $2",
    )
    .bind(task_id)
    .bind(membership_id)
    .fetch_one(e)
    .await?;
    Ok(n > 0)
}

fn in_list(b: &mut SqlBuilder, ids: &[String]) {
    b.push("(");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            b.push(", ");
        }
        b.bind(Arg::Text(id.clone()));
    }
    b.push(")");
}

/// The assignees of many tasks in one query (for a page of tasks):
/// (task id, membership id, email, display name), by task then email.
pub async fn assignees_of_tasks<'c>(
    e: impl Exec<'c>,
    task_ids: &[String],
) -> Result<Vec<(String, String, String, String)>> {
    if task_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut b = SqlBuilder::new(
        "SELECT ta.task_id, m.id, a.email, a.display_name FROM task_assignees ta
         JOIN memberships m ON m.id = ta.membership_id JOIN accounts a ON a.id = m.account_id
         WHERE ta.task_id IN ",
    );
    in_list(&mut b, task_ids);
    b.push(" ORDER BY ta.task_id, a.email");
    Ok(b.query_as().fetch_all(e).await?)
}

/// The linked requirement ids of many tasks in one query: (task id, requirement id).
pub async fn requirement_ids_of_tasks<'c>(
    e: impl Exec<'c>,
    task_ids: &[String],
) -> Result<Vec<(String, String)>> {
    if task_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut b =
        SqlBuilder::new("SELECT task_id, requirement_id FROM task_requirements WHERE task_id IN ");
    in_list(&mut b, task_ids);
    b.push(" ORDER BY task_id, requirement_id");
    Ok(b.query_as().fetch_all(e).await?)
}
