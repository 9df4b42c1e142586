//! Gateway connections: publish, change, grant, list.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use switchboard_core::connections::{
    ConnectionScope, ConnectionView, CreateConnection, CreateGrant, UpdateConnection,
};
use switchboard_core::virtual_servers::{CreateVirtualServer, VirtualServerView};
use utoipa::IntoParams;

use crate::extract::{ApiJson, ApiQuery};
use crate::{ApiError, ApiState, Caller};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConnectionListParams {
    /// `usable` (default): the connections you may use; `manageable`: every
    /// connection of the org (connections.publish).
    pub scope: Option<String>,
}

/// Connections you may use, or (`?scope=manageable`) administer. Secret
/// values are never returned, only their names.
#[utoipa::path(get, path = "/connections", tag = "connections", params(ConnectionListParams), responses((status = 200, body = Vec<ConnectionView>)))]
pub async fn list_connections(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ConnectionListParams>,
) -> Result<Json<Vec<ConnectionView>>, ApiError> {
    let scope = match q.scope.as_deref() {
        None | Some("usable") => ConnectionScope::Usable,
        Some("manageable") => ConnectionScope::Manageable,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                format!("scope: '{other}' is not valid: use 'usable' or 'manageable'"),
            ));
        }
    };
    Ok(Json(s.core.list_connections(caller.ctx(), scope).await?))
}

/// Publishes a connection (connections.publish). Shared header and env
/// values are sealed at rest and never returned.
#[utoipa::path(post, path = "/connections", tag = "connections", request_body = CreateConnection, responses((status = 201, body = ConnectionView)))]
pub async fn create_connection(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateConnection>,
) -> Result<(StatusCode, Json<ConnectionView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.core.create_connection(caller.ctx(), body).await?),
    ))
}

/// One connection, by id or slug.
#[utoipa::path(get, path = "/connections/{id}", tag = "connections", params(("id" = String, Path)), responses((status = 200, body = ConnectionView)))]
pub async fn get_connection(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    Ok(Json(s.core.get_connection(caller.ctx(), &id).await?))
}

/// Changes a connection (connections.publish); in `headers`/`env` a null
/// value removes that entry.
#[utoipa::path(patch, path = "/connections/{id}", tag = "connections", params(("id" = String, Path)), request_body = UpdateConnection, responses((status = 200, body = ConnectionView)))]
pub async fn update_connection(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateConnection>,
) -> Result<Json<ConnectionView>, ApiError> {
    Ok(Json(
        s.core.update_connection(caller.ctx(), &id, body).await?,
    ))
}

/// Removes a connection, its secrets and its grants (connections.publish).
#[utoipa::path(delete, path = "/connections/{id}", tag = "connections", params(("id" = String, Path)), responses((status = 204)))]
pub async fn delete_connection(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.core.delete_connection(caller.ctx(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Grants the connection to the org, a team or a member (connections.publish).
#[utoipa::path(post, path = "/connections/{id}/grants", tag = "connections", params(("id" = String, Path)), request_body = CreateGrant, responses((status = 201, body = ConnectionView)))]
pub async fn grant_connection(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateGrant>,
) -> Result<(StatusCode, Json<ConnectionView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.core.grant_connection(caller.ctx(), &id, body).await?),
    ))
}

/// Removes a grant (connections.publish).
#[utoipa::path(delete, path = "/connections/{id}/grants/{grant_id}", tag = "connections", params(("id" = String, Path), ("grant_id" = String, Path)), responses((status = 200, body = ConnectionView)))]
pub async fn revoke_grant(
    State(s): State<ApiState>,
    caller: Caller,
    Path((id, grant_id)): Path<(String, String)>,
) -> Result<Json<ConnectionView>, ApiError> {
    Ok(Json(
        s.core
            .revoke_connection_grant(caller.ctx(), &id, &grant_id)
            .await?,
    ))
}

/// The org's saved virtual servers (several connections served together
/// at `/mcp/servers/{slug}`).
#[utoipa::path(get, path = "/virtual-servers", tag = "connections", responses((status = 200, body = Vec<VirtualServerView>)))]
pub async fn list_virtual_servers(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<VirtualServerView>>, ApiError> {
    Ok(Json(s.core.list_virtual_servers(caller.ctx()).await?))
}

/// Saves a virtual server over two or more connections (connections.publish).
#[utoipa::path(post, path = "/virtual-servers", tag = "connections", request_body = CreateVirtualServer, responses((status = 201, body = VirtualServerView)))]
pub async fn create_virtual_server(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateVirtualServer>,
) -> Result<(StatusCode, Json<VirtualServerView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.core.create_virtual_server(caller.ctx(), body).await?),
    ))
}

/// Removes a saved virtual server (connections.publish).
#[utoipa::path(delete, path = "/virtual-servers/{id}", tag = "connections", params(("id" = String, Path)), responses((status = 204)))]
pub async fn delete_virtual_server(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.core.delete_virtual_server(caller.ctx(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
