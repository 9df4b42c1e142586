//! Projects, requirements, tasks, comments and commit entries.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use switchboard_core::views::{
    CommentView, CommitEntryView, Page, ProjectView, RequirementView, TaskView,
};
use switchboard_core::work::{
    CreateComment, CreateCommitEntry, CreateProject, CreateRequirement, CreateTask, TaskQuery,
    UpdateProject, UpdateRequirement, UpdateTask,
};
use utoipa::IntoParams;

use super::PageParams;
use crate::extract::{ApiJson, ApiQuery};
use crate::{ApiError, ApiState, Caller};

#[utoipa::path(get, path = "/projects", tag = "work", params(PageParams), responses((status = 200, body = Page<ProjectView>)))]
pub async fn list_projects(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page<ProjectView>>, ApiError> {
    Ok(Json(s.core.list_projects(caller.ctx(), q.into()).await?))
}

#[utoipa::path(post, path = "/projects", tag = "work", request_body = CreateProject, responses((status = 201, body = ProjectView)))]
pub async fn create_project(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateProject>,
) -> Result<(StatusCode, Json<ProjectView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.core.create_project(caller.ctx(), body).await?),
    ))
}

#[utoipa::path(get, path = "/projects/{id}", tag = "work", params(("id" = String, Path)), responses((status = 200, body = ProjectView)))]
pub async fn get_project(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ProjectView>, ApiError> {
    Ok(Json(s.core.get_project(caller.ctx(), &id).await?))
}

#[utoipa::path(patch, path = "/projects/{id}", tag = "work", params(("id" = String, Path)), request_body = UpdateProject, responses((status = 200, body = ProjectView)))]
pub async fn update_project(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateProject>,
) -> Result<Json<ProjectView>, ApiError> {
    Ok(Json(s.core.update_project(caller.ctx(), &id, body).await?))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RequirementParams {
    pub project_id: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/requirements", tag = "work", params(RequirementParams), responses((status = 200, body = Page<RequirementView>)))]
pub async fn list_requirements(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RequirementParams>,
) -> Result<Json<Page<RequirementView>>, ApiError> {
    let page = PageParams {
        cursor: q.cursor,
        limit: q.limit,
    };
    Ok(Json(
        s.core
            .list_requirements(caller.ctx(), q.project_id.as_deref(), page.into())
            .await?,
    ))
}

#[utoipa::path(post, path = "/requirements", tag = "work", request_body = CreateRequirement, responses((status = 201, body = RequirementView)))]
pub async fn create_requirement(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateRequirement>,
) -> Result<(StatusCode, Json<RequirementView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.core.create_requirement(caller.ctx(), body).await?),
    ))
}

#[utoipa::path(get, path = "/requirements/{id}", tag = "work", params(("id" = String, Path)), responses((status = 200, body = RequirementView)))]
pub async fn get_requirement(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RequirementView>, ApiError> {
    Ok(Json(s.core.get_requirement(caller.ctx(), &id).await?))
}

#[utoipa::path(patch, path = "/requirements/{id}", tag = "work", params(("id" = String, Path)), request_body = UpdateRequirement, responses((status = 200, body = RequirementView)))]
pub async fn update_requirement(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateRequirement>,
) -> Result<Json<RequirementView>, ApiError> {
    Ok(Json(
        s.core.update_requirement(caller.ctx(), &id, body).await?,
    ))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TaskParams {
    pub project_id: Option<String>,
    /// TODO, IN_PROGRESS, IN_REVIEW or DONE.
    pub status: Option<String>,
    /// A membership id, or `me`.
    pub assignee: Option<String>,
    pub requirement_id: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/tasks", tag = "work", params(TaskParams), responses((status = 200, body = Page<TaskView>)))]
pub async fn list_tasks(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TaskParams>,
) -> Result<Json<Page<TaskView>>, ApiError> {
    let page = PageParams {
        cursor: q.cursor,
        limit: q.limit,
    };
    let query = TaskQuery {
        project_id: q.project_id,
        status: q.status,
        assignee: q.assignee,
        requirement_id: q.requirement_id,
    };
    Ok(Json(
        s.core.list_tasks(caller.ctx(), query, page.into()).await?,
    ))
}

#[utoipa::path(post, path = "/tasks", tag = "work", request_body = CreateTask, responses((status = 201, body = TaskView)))]
pub async fn create_task(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateTask>,
) -> Result<(StatusCode, Json<TaskView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.core.create_task(caller.ctx(), body).await?),
    ))
}

#[utoipa::path(get, path = "/tasks/{id}", tag = "work", params(("id" = String, Path)), responses((status = 200, body = TaskView)))]
pub async fn get_task(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    Ok(Json(s.core.get_task(caller.ctx(), &id).await?))
}

/// Changes a task; a status change must follow TODO → IN_PROGRESS → IN_REVIEW → DONE.
#[utoipa::path(patch, path = "/tasks/{id}", tag = "work", params(("id" = String, Path)), request_body = UpdateTask, responses((status = 200, body = TaskView)))]
pub async fn update_task(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateTask>,
) -> Result<Json<TaskView>, ApiError> {
    Ok(Json(s.core.update_task(caller.ctx(), &id, body).await?))
}

#[utoipa::path(put, path = "/tasks/{id}/requirements/{requirement_id}", tag = "work", params(("id" = String, Path), ("requirement_id" = String, Path)), responses((status = 200, body = TaskView)))]
pub async fn link_requirement(
    State(s): State<ApiState>,
    caller: Caller,
    Path((id, req)): Path<(String, String)>,
) -> Result<Json<TaskView>, ApiError> {
    Ok(Json(
        s.core
            .link_task_requirement(caller.ctx(), &id, &req, true)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/tasks/{id}/requirements/{requirement_id}", tag = "work", params(("id" = String, Path), ("requirement_id" = String, Path)), responses((status = 200, body = TaskView)))]
pub async fn unlink_requirement(
    State(s): State<ApiState>,
    caller: Caller,
    Path((id, req)): Path<(String, String)>,
) -> Result<Json<TaskView>, ApiError> {
    Ok(Json(
        s.core
            .link_task_requirement(caller.ctx(), &id, &req, false)
            .await?,
    ))
}

#[utoipa::path(get, path = "/tasks/{id}/comments", tag = "work", params(("id" = String, Path), PageParams), responses((status = 200, body = Page<CommentView>)))]
pub async fn list_comments(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page<CommentView>>, ApiError> {
    Ok(Json(
        s.core.list_comments(caller.ctx(), &id, q.into()).await?,
    ))
}

#[utoipa::path(post, path = "/tasks/{id}/comments", tag = "work", params(("id" = String, Path)), request_body = CreateComment, responses((status = 201, body = CommentView)))]
pub async fn add_comment(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateComment>,
) -> Result<(StatusCode, Json<CommentView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.core.add_comment(caller.ctx(), &id, body).await?),
    ))
}

#[utoipa::path(get, path = "/tasks/{id}/commits", tag = "work", params(("id" = String, Path), PageParams), responses((status = 200, body = Page<CommitEntryView>)))]
pub async fn list_commits(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page<CommitEntryView>>, ApiError> {
    Ok(Json(
        s.core
            .list_commit_entries(caller.ctx(), &id, q.into())
            .await?,
    ))
}

#[utoipa::path(post, path = "/tasks/{id}/commits", tag = "work", params(("id" = String, Path)), request_body = CreateCommitEntry, responses((status = 201, body = CommitEntryView)))]
pub async fn create_commit(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateCommitEntry>,
) -> Result<(StatusCode, Json<CommitEntryView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.core.create_commit_entry(caller.ctx(), &id, body).await?),
    ))
}
