//! Roles and permissions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use switchboard_core::orgs::{CreateRole, UpdateRole};
use switchboard_core::views::RoleView;

use crate::extract::ApiJson;
use crate::{ApiError, ApiState, Caller};

/// The organization's roles: the four built-ins and custom ones.
#[utoipa::path(get, path = "/roles", tag = "roles", responses((status = 200, body = Vec<RoleView>)))]
pub async fn list_roles(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<RoleView>>, ApiError> {
    Ok(Json(s.core.list_roles(caller.ctx()).await?))
}

/// Creates a custom role (any subset of your own permissions).
#[utoipa::path(post, path = "/roles", tag = "roles", request_body = CreateRole, responses((status = 201, body = RoleView)))]
pub async fn create_role(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateRole>,
) -> Result<(StatusCode, Json<RoleView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.core.create_role(caller.ctx(), body).await?),
    ))
}

/// Changes a custom role.
#[utoipa::path(patch, path = "/roles/{id}", tag = "roles", params(("id" = String, Path)), request_body = UpdateRole, responses((status = 200, body = RoleView)))]
pub async fn update_role(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateRole>,
) -> Result<Json<RoleView>, ApiError> {
    Ok(Json(s.core.update_role(caller.ctx(), &id, body).await?))
}

/// Deletes a custom role nobody holds.
#[utoipa::path(delete, path = "/roles/{id}", tag = "roles", params(("id" = String, Path)), responses((status = 204)))]
pub async fn delete_role(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.core.delete_role(caller.ctx(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Re-applies the built-in permission sets to the built-in roles.
#[utoipa::path(post, path = "/roles/sync", tag = "roles", responses((status = 200, body = Vec<RoleView>)))]
pub async fn sync_roles(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<RoleView>>, ApiError> {
    Ok(Json(s.core.sync_roles(caller.ctx()).await?))
}
