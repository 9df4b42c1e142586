//! Work items: projects, requirements, tasks, comments, commit entries.

use serde::Deserialize;
use serde_json::json;
use switchboard_domain::{Priority, TaskStatus, validate_name};
use switchboard_storage::{
    self as storage, CommentRow, CommitEntryRow, Conn, ProjectRow, RequirementRow, TaskRow,
};
use utoipa::ToSchema;

use crate::access::ops;
use crate::audit::AuditEntry;
use crate::orgs::validate_description;
use crate::views::{
    AssigneeView, CommentView, CommitEntryView, Page, ProjectView, RequirementView, TaskView,
    split_page,
};
use crate::{Core, CoreError, Ctx, PageRequest};

const MAX_TEXT: usize = 20_000;
const MAX_ASSIGNEES: usize = 50;
const MAX_REQUIREMENT_LINKS: usize = 100;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequirement {
    pub project_id: String,
    pub title: String,
    /// The full text.
    #[serde(default)]
    pub body: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequirement {
    pub title: Option<String>,
    pub body: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    pub project_id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// low, medium (default), high or urgent.
    pub priority: Option<String>,
    /// Membership ids.
    #[serde(default)]
    pub assignee_ids: Vec<String>,
    #[serde(default)]
    pub requirement_ids: Vec<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTask {
    pub title: Option<String>,
    pub description: Option<String>,
    pub priority: Option<String>,
    /// Moves along TODO → IN_PROGRESS → IN_REVIEW → DONE (or back one step).
    pub status: Option<String>,
    /// Replaces the assignees (membership ids).
    pub assignee_ids: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateComment {
    pub body: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCommitEntry {
    pub message: String,
    /// The commit's hash: 7 to 64 hex characters.
    pub commit_hash: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequirement {
    pub requirement_id: String,
}

/// Which tasks a call may change: any task in the org, or only the caller's
/// own (assigned to them) — what an agent acting as one person gets from
/// the "my tasks" tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskReach {
    Org,
    Own,
}

/// Task list filters.
#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    pub project_id: Option<String>,
    pub status: Option<String>,
    /// A membership id, or `me`.
    pub assignee: Option<String>,
    pub requirement_id: Option<String>,
}

fn text(field: &str, v: &str) -> Result<String, CoreError> {
    if v.chars().count() > MAX_TEXT {
        return Err(CoreError::invalid(
            field,
            format!("must be at most {MAX_TEXT} characters"),
        ));
    }
    Ok(v.to_owned())
}

/// A task's view from its row and what is loaded beside it.
fn task_view_from(
    t: TaskRow,
    assignees: Vec<AssigneeView>,
    requirement_ids: Vec<String>,
) -> TaskView {
    TaskView {
        assignees,
        requirement_ids,
        created_at: crate::views::rfc3339(t.created_at),
        updated_at: crate::views::rfc3339(t.updated_at),
        id: t.id,
        project_id: t.project_id,
        title: t.title,
        description: t.description,
        status: t.status,
        priority: t.priority,
    }
}

fn priority(v: &str) -> Result<Priority, CoreError> {
    v.parse().map_err(|m| CoreError::invalid("priority", m))
}

impl Core {
    pub(crate) async fn task_view(
        &self,
        conn: &mut Conn,
        t: TaskRow,
    ) -> Result<TaskView, CoreError> {
        let assignees = storage::task_assignees(&mut *conn, &t.id)
            .await?
            .into_iter()
            .map(|(membership_id, email, display_name)| AssigneeView {
                membership_id,
                email,
                display_name,
            })
            .collect();
        let requirement_ids = storage::task_requirement_ids(&mut *conn, &t.id).await?;
        Ok(task_view_from(t, assignees, requirement_ids))
    }

    async fn check_reach(
        &self,
        conn: &mut Conn,
        ctx: Ctx<'_>,
        task_id: &str,
        reach: TaskReach,
    ) -> Result<(), CoreError> {
        if reach == TaskReach::Own
            && !storage::is_task_assignee(&mut *conn, task_id, &ctx.principal.membership_id).await?
        {
            return Err(CoreError::Forbidden(format!(
                "task {task_id} is not assigned to you: this tool changes only your own tasks; ask an assignee or an admin"
            )));
        }
        Ok(())
    }

    async fn check_assignees(
        &self,
        conn: &mut Conn,
        org_id: &str,
        ids: &[String],
    ) -> Result<Vec<String>, CoreError> {
        if ids.len() > MAX_ASSIGNEES {
            return Err(CoreError::invalid(
                "assignee_ids",
                format!("at most {MAX_ASSIGNEES} assignees"),
            ));
        }
        let mut out: Vec<String> = Vec::new();
        for id in ids {
            let m = storage::member_by_id(&mut *conn, org_id, id)
                .await?
                .ok_or_else(|| {
                    CoreError::invalid(
                        "assignee_ids",
                        format!("no member with id '{id}' in this organization"),
                    )
                })?;
            if m.status != "active" {
                return Err(CoreError::invalid(
                    "assignee_ids",
                    format!(
                        "{} has not accepted their invitation yet and cannot be assigned",
                        m.email
                    ),
                ));
            }
            if !out.contains(id) {
                out.push(id.clone());
            }
        }
        Ok(out)
    }

    pub async fn list_projects(
        &self,
        ctx: Ctx<'_>,
        page: PageRequest,
    ) -> Result<Page<ProjectView>, CoreError> {
        self.authorize(ctx, &ops::PROJECT_LIST, None).await?;
        let p = self.page(&page)?;
        let rows = storage::list_projects(self.db.pool(), &ctx.principal.org_id, &p).await?;
        Ok(Page::from_rows(
            rows,
            p.limit,
            |r| r.id.clone(),
            ProjectView::from,
        ))
    }

    pub async fn get_project(&self, ctx: Ctx<'_>, id: &str) -> Result<ProjectView, CoreError> {
        self.authorize(ctx, &ops::PROJECT_GET, Some(id)).await?;
        storage::project_by_id(self.db.pool(), &ctx.principal.org_id, id)
            .await?
            .map(ProjectView::from)
            .ok_or(CoreError::NotFound("project"))
    }

    pub async fn create_project(
        &self,
        ctx: Ctx<'_>,
        input: CreateProject,
    ) -> Result<ProjectView, CoreError> {
        let p = ctx.principal;
        let id = storage::new_id();
        let now = ctx.meta.now_ms;
        self.write(
            ctx,
            AuditEntry::new(&ops::PROJECT_CREATE, Some(&id), json!({"name": input.name})),
            async |conn, _| {
                let row = ProjectRow {
                    id: id.clone(),
                    org_id: p.org_id.clone(),
                    name: validate_name("name", &input.name, 200)?,
                    description: validate_description(&input.description)?,
                    created_by: Some(p.account_id.clone()),
                    created_at: now,
                    updated_at: now,
                };
                storage::insert_project(&mut *conn, &row)
                    .await
                    .map_err(|e| {
                        if e.is_unique_violation() {
                            CoreError::conflict(
                                "project_name_taken",
                                format!("a project named '{}' already exists", row.name),
                            )
                        } else {
                            e.into()
                        }
                    })?;
                Ok(ProjectView::from(row))
            },
        )
        .await
    }

    pub async fn update_project(
        &self,
        ctx: Ctx<'_>,
        id: &str,
        input: UpdateProject,
    ) -> Result<ProjectView, CoreError> {
        let p = ctx.principal;
        let now = ctx.meta.now_ms;
        self.write(
            ctx,
            AuditEntry::new(&ops::PROJECT_UPDATE, Some(id), json!({"name": input.name})),
            async |conn, _| {
                let mut row = storage::project_by_id(&mut *conn, &p.org_id, id)
                    .await?
                    .ok_or(CoreError::NotFound("project"))?;
                if let Some(n) = &input.name {
                    row.name = validate_name("name", n, 200)?;
                }
                if let Some(d) = &input.description {
                    row.description = validate_description(d)?;
                }
                row.updated_at = now;
                storage::update_project(&mut *conn, &row)
                    .await
                    .map_err(|e| {
                        if e.is_unique_violation() {
                            CoreError::conflict(
                                "project_name_taken",
                                format!("a project named '{}' already exists", row.name),
                            )
                        } else {
                            e.into()
                        }
                    })?;
                Ok(ProjectView::from(row))
            },
        )
        .await
    }

    pub async fn list_requirements(
        &self,
        ctx: Ctx<'_>,
        project_id: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<RequirementView>, CoreError> {
        self.authorize(ctx, &ops::REQUIREMENT_LIST, None).await?;
        let p = self.page(&page)?;
        let rows =
            storage::list_requirements(self.db.pool(), &ctx.principal.org_id, project_id, &p)
                .await?;
        Ok(Page::from_rows(
            rows,
            p.limit,
            |r| r.id.clone(),
            RequirementView::from,
        ))
    }

    pub async fn get_requirement(
        &self,
        ctx: Ctx<'_>,
        id: &str,
    ) -> Result<RequirementView, CoreError> {
        self.authorize(ctx, &ops::REQUIREMENT_GET, Some(id)).await?;
        storage::requirement_by_id(self.db.pool(), &ctx.principal.org_id, id)
            .await?
            .map(RequirementView::from)
            .ok_or(CoreError::NotFound("requirement"))
    }

    /// Whether a requirement exists, for tools that list its tasks (they
    /// need only `tasks.read`, not the requirement's text).
    pub async fn get_requirement_for_tasks(&self, ctx: Ctx<'_>, id: &str) -> Result<(), CoreError> {
        self.authorize(ctx, &ops::REQUIREMENT_TASKS, Some(id))
            .await?;
        storage::requirement_by_id(self.db.pool(), &ctx.principal.org_id, id)
            .await?
            .map(|_| ())
            .ok_or(CoreError::NotFound("requirement"))
    }

    pub async fn create_requirement(
        &self,
        ctx: Ctx<'_>,
        input: CreateRequirement,
    ) -> Result<RequirementView, CoreError> {
        let p = ctx.principal;
        let id = storage::new_id();
        let now = ctx.meta.now_ms;
        let args = json!({"project_id": input.project_id, "title": input.title});
        self.write(
            ctx,
            AuditEntry::new(&ops::REQUIREMENT_CREATE, Some(&id), args),
            async |conn, _| {
                storage::project_by_id(&mut *conn, &p.org_id, &input.project_id)
                    .await?
                    .ok_or_else(|| {
                        CoreError::invalid("project_id", "no such project in this organization")
                    })?;
                let row = RequirementRow {
                    id: id.clone(),
                    org_id: p.org_id.clone(),
                    project_id: input.project_id.clone(),
                    title: validate_name("title", &input.title, 300)?,
                    body: text("body", &input.body)?,
                    created_by: Some(p.account_id.clone()),
                    created_at: now,
                    updated_at: now,
                };
                storage::insert_requirement(&mut *conn, &row).await?;
                Ok(RequirementView::from(row))
            },
        )
        .await
    }

    pub async fn update_requirement(
        &self,
        ctx: Ctx<'_>,
        id: &str,
        input: UpdateRequirement,
    ) -> Result<RequirementView, CoreError> {
        let p = ctx.principal;
        let now = ctx.meta.now_ms;
        self.write(
            ctx,
            AuditEntry::new(
                &ops::REQUIREMENT_UPDATE,
                Some(id),
                json!({"title": input.title}),
            ),
            async |conn, _| {
                let mut row = storage::requirement_by_id(&mut *conn, &p.org_id, id)
                    .await?
                    .ok_or(CoreError::NotFound("requirement"))?;
                if let Some(t) = &input.title {
                    row.title = validate_name("title", t, 300)?;
                }
                if let Some(b) = &input.body {
                    row.body = text("body", b)?;
                }
                row.updated_at = now;
                storage::update_requirement(&mut *conn, &row).await?;
                Ok(RequirementView::from(row))
            },
        )
        .await
    }

    pub async fn list_tasks(
        &self,
        ctx: Ctx<'_>,
        q: TaskQuery,
        page: PageRequest,
    ) -> Result<Page<TaskView>, CoreError> {
        self.authorize(ctx, &ops::TASK_LIST, None).await?;
        if let Some(s) = &q.status {
            s.parse::<TaskStatus>()
                .map_err(|m| CoreError::invalid("status", m))?;
        }
        let filter = storage::TaskFilter {
            project_id: q.project_id,
            status: q.status,
            assignee_membership_id: q.assignee.map(|a| {
                if a == "me" {
                    ctx.principal.membership_id.clone()
                } else {
                    a
                }
            }),
            requirement_id: q.requirement_id,
        };
        let p = self.page(&page)?;
        let pool = self.db.pool();
        let rows = storage::list_tasks(pool, &ctx.principal.org_id, &filter, &p).await?;
        let (rows, more) = split_page(rows, p.limit);
        // Three queries per page, not two per task.
        let ids: Vec<String> = rows.iter().map(|t| t.id.clone()).collect();
        let mut assignees: std::collections::HashMap<String, Vec<AssigneeView>> =
            std::collections::HashMap::new();
        for (task_id, membership_id, email, display_name) in
            storage::assignees_of_tasks(pool, &ids).await?
        {
            assignees.entry(task_id).or_default().push(AssigneeView {
                membership_id,
                email,
                display_name,
            });
        }
        let mut requirements: std::collections::HashMap<String, Vec<String>> =
            std::collections::HashMap::new();
        for (task_id, requirement_id) in storage::requirement_ids_of_tasks(pool, &ids).await? {
            requirements
                .entry(task_id)
                .or_default()
                .push(requirement_id);
        }
        let items = rows
            .into_iter()
            .map(|t| {
                let a = assignees.remove(&t.id).unwrap_or_default();
                let r = requirements.remove(&t.id).unwrap_or_default();
                task_view_from(t, a, r)
            })
            .collect();
        Ok(Page::new(items, more, |v| v.id.clone()))
    }

    pub async fn get_task(&self, ctx: Ctx<'_>, id: &str) -> Result<TaskView, CoreError> {
        self.authorize(ctx, &ops::TASK_GET, Some(id)).await?;
        let mut conn = self
            .db
            .pool()
            .acquire()
            .await
            .map_err(storage::StorageError::from)?;
        let t = storage::task_by_id(&mut *conn, &ctx.principal.org_id, id)
            .await?
            .ok_or(CoreError::NotFound("task"))?;
        self.task_view(&mut conn, t).await
    }

    pub async fn create_task(
        &self,
        ctx: Ctx<'_>,
        input: CreateTask,
    ) -> Result<TaskView, CoreError> {
        let p = ctx.principal;
        let id = storage::new_id();
        let now = ctx.meta.now_ms;
        let args = json!({"project_id": input.project_id, "title": input.title, "assignee_ids": input.assignee_ids});
        self.write(
            ctx,
            AuditEntry::new(&ops::TASK_CREATE, Some(&id), args),
            async |conn, _| {
                storage::project_by_id(&mut *conn, &p.org_id, &input.project_id)
                    .await?
                    .ok_or_else(|| {
                        CoreError::invalid("project_id", "no such project in this organization")
                    })?;
                let row = TaskRow {
                    id: id.clone(),
                    org_id: p.org_id.clone(),
                    project_id: input.project_id.clone(),
                    title: validate_name("title", &input.title, 300)?,
                    description: text("description", &input.description)?,
                    status: TaskStatus::Todo.as_str().into(),
                    priority: priority(input.priority.as_deref().unwrap_or("medium"))?
                        .as_str()
                        .into(),
                    created_by: Some(p.account_id.clone()),
                    created_at: now,
                    updated_at: now,
                };
                let assignees = self
                    .check_assignees(conn, &p.org_id, &input.assignee_ids)
                    .await?;
                storage::insert_task(&mut *conn, &row).await?;
                storage::set_task_assignees(conn, &id, &assignees).await?;
                if input.requirement_ids.len() > MAX_REQUIREMENT_LINKS {
                    return Err(CoreError::invalid(
                        "requirement_ids",
                        format!("at most {MAX_REQUIREMENT_LINKS} requirements"),
                    ));
                }
                for r in &input.requirement_ids {
                    storage::requirement_by_id(&mut *conn, &p.org_id, r)
                        .await?
                        .ok_or_else(|| {
                            CoreError::invalid(
                                "requirement_ids",
                                format!("no requirement with id '{r}' in this organization"),
                            )
                        })?;
                    storage::link_requirement(&mut *conn, &id, r).await?;
                }
                self.task_view(conn, row).await
            },
        )
        .await
    }

    pub async fn update_task(
        &self,
        ctx: Ctx<'_>,
        id: &str,
        input: UpdateTask,
    ) -> Result<TaskView, CoreError> {
        self.update_task_within(ctx, id, input, TaskReach::Org)
            .await
    }

    /// [`Core::update_task`], limited to the caller's own tasks when `reach` is `Own`.
    pub async fn update_task_within(
        &self,
        ctx: Ctx<'_>,
        id: &str,
        input: UpdateTask,
        reach: TaskReach,
    ) -> Result<TaskView, CoreError> {
        let p = ctx.principal;
        let now = ctx.meta.now_ms;
        let args = json!({"title": input.title, "status": input.status, "priority": input.priority, "assignee_ids": input.assignee_ids});
        self.write(
            ctx,
            AuditEntry::new(&ops::TASK_UPDATE, Some(id), args),
            async |conn, _| {
                let mut row = storage::task_by_id(&mut *conn, &p.org_id, id)
                    .await?
                    .ok_or(CoreError::NotFound("task"))?;
                self.check_reach(conn, ctx, id, reach).await?;
                if let Some(t) = &input.title {
                    row.title = validate_name("title", t, 300)?;
                }
                if let Some(d) = &input.description {
                    row.description = text("description", d)?;
                }
                if let Some(pr) = &input.priority {
                    row.priority = priority(pr)?.as_str().into();
                }
                if let Some(s) = &input.status {
                    let to: TaskStatus = s.parse().map_err(|m| CoreError::invalid("status", m))?;
                    let from: TaskStatus = row.status.parse().map_err(CoreError::Internal)?;
                    from.check_transition(to)?;
                    row.status = to.as_str().into();
                }
                if let Some(a) = &input.assignee_ids {
                    let assignees = self.check_assignees(conn, &p.org_id, a).await?;
                    storage::set_task_assignees(conn, id, &assignees).await?;
                }
                row.updated_at = now;
                storage::update_task(&mut *conn, &row).await?;
                self.task_view(conn, row).await
            },
        )
        .await
    }

    pub async fn link_task_requirement(
        &self,
        ctx: Ctx<'_>,
        task_id: &str,
        requirement_id: &str,
        link: bool,
    ) -> Result<TaskView, CoreError> {
        let p = ctx.principal;
        let action = if link {
            &ops::TASK_LINK
        } else {
            &ops::TASK_UNLINK
        };
        self.write(
            ctx,
            AuditEntry::new(
                action,
                Some(task_id),
                json!({"requirement_id": requirement_id}),
            ),
            async |conn, _| {
                let task = storage::task_by_id(&mut *conn, &p.org_id, task_id)
                    .await?
                    .ok_or(CoreError::NotFound("task"))?;
                storage::requirement_by_id(&mut *conn, &p.org_id, requirement_id)
                    .await?
                    .ok_or(CoreError::NotFound("requirement"))?;
                if link {
                    storage::link_requirement(&mut *conn, task_id, requirement_id).await?;
                } else if !storage::unlink_requirement(&mut *conn, task_id, requirement_id).await? {
                    return Err(CoreError::NotFound("requirement link"));
                }
                self.task_view(conn, task).await
            },
        )
        .await
    }

    pub async fn add_comment(
        &self,
        ctx: Ctx<'_>,
        task_id: &str,
        input: CreateComment,
    ) -> Result<CommentView, CoreError> {
        let p = ctx.principal;
        let id = storage::new_id();
        let now = ctx.meta.now_ms;
        self.write(
            ctx,
            AuditEntry::new(&ops::TASK_COMMENT, Some(task_id), json!({"comment_id": id})),
            async |conn, _| {
                storage::task_by_id(&mut *conn, &p.org_id, task_id)
                    .await?
                    .ok_or(CoreError::NotFound("task"))?;
                let body = input.body.trim();
                if body.is_empty() {
                    return Err(CoreError::invalid("body", "must not be empty"));
                }
                let row = CommentRow {
                    id: id.clone(),
                    org_id: p.org_id.clone(),
                    task_id: task_id.to_owned(),
                    author_id: Some(p.account_id.clone()),
                    body: text("body", body)?,
                    created_at: now,
                };
                storage::insert_comment(&mut *conn, &row).await?;
                Ok(CommentView::from(row))
            },
        )
        .await
    }

    pub async fn list_comments(
        &self,
        ctx: Ctx<'_>,
        task_id: &str,
        page: PageRequest,
    ) -> Result<Page<CommentView>, CoreError> {
        self.authorize(ctx, &ops::TASK_COMMENTS, Some(task_id))
            .await?;
        storage::task_by_id(self.db.pool(), &ctx.principal.org_id, task_id)
            .await?
            .ok_or(CoreError::NotFound("task"))?;
        let p = self.page(&page)?;
        let rows =
            storage::list_comments(self.db.pool(), &ctx.principal.org_id, task_id, &p).await?;
        Ok(Page::from_rows(
            rows,
            p.limit,
            |r| r.id.clone(),
            CommentView::from,
        ))
    }

    pub async fn create_commit_entry(
        &self,
        ctx: Ctx<'_>,
        task_id: &str,
        input: CreateCommitEntry,
    ) -> Result<CommitEntryView, CoreError> {
        self.create_commit_entry_within(ctx, task_id, input, TaskReach::Org)
            .await
    }

    /// [`Core::create_commit_entry`], limited to the caller's own tasks when `reach` is `Own`.
    pub async fn create_commit_entry_within(
        &self,
        ctx: Ctx<'_>,
        task_id: &str,
        input: CreateCommitEntry,
        reach: TaskReach,
    ) -> Result<CommitEntryView, CoreError> {
        let p = ctx.principal;
        let id = storage::new_id();
        let now = ctx.meta.now_ms;
        let args =
            json!({"commit_id": id, "message": input.message, "commit_hash": input.commit_hash});
        self.write(
            ctx,
            AuditEntry::new(&ops::COMMIT_ENTRY_CREATE, Some(task_id), args),
            async |conn, _| {
                storage::task_by_id(&mut *conn, &p.org_id, task_id)
                    .await?
                    .ok_or(CoreError::NotFound("task"))?;
                self.check_reach(conn, ctx, task_id, reach).await?;
                let message = validate_name("message", &input.message, 2000)?;
                if let Some(h) = &input.commit_hash {
                    let ok =
                        (7..=64).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit());
                    if !ok {
                        return Err(CoreError::invalid(
                            "commit_hash",
                            "must be 7 to 64 hex characters",
                        ));
                    }
                }
                let row = CommitEntryRow {
                    id: id.clone(),
                    org_id: p.org_id.clone(),
                    task_id: task_id.to_owned(),
                    message,
                    commit_hash: input.commit_hash.as_ref().map(|h| h.to_ascii_lowercase()),
                    reason: input
                        .reason
                        .as_deref()
                        .map(|r| text("reason", r))
                        .transpose()?,
                    author_id: Some(p.account_id.clone()),
                    token_id: p.token_id().map(str::to_owned),
                    created_at: now,
                };
                storage::insert_commit_entry(&mut *conn, &row).await?;
                Ok(CommitEntryView::from(row))
            },
        )
        .await
    }

    pub async fn list_commit_entries(
        &self,
        ctx: Ctx<'_>,
        task_id: &str,
        page: PageRequest,
    ) -> Result<Page<CommitEntryView>, CoreError> {
        self.authorize(ctx, &ops::COMMIT_ENTRY_LIST, Some(task_id))
            .await?;
        storage::task_by_id(self.db.pool(), &ctx.principal.org_id, task_id)
            .await?
            .ok_or(CoreError::NotFound("task"))?;
        let p = self.page(&page)?;
        let rows = storage::list_commit_entries(self.db.pool(), &ctx.principal.org_id, task_id, &p)
            .await?;
        Ok(Page::from_rows(
            rows,
            p.limit,
            |r| r.id.clone(),
            CommitEntryView::from,
        ))
    }
}
