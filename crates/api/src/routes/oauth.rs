//! Connected apps: the OAuth clients members authorized, and revoking them.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use switchboard_core::oauth::ConnectedAppView;

use crate::{ApiError, ApiState, Caller};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConnectedAppsQuery {
    /// `me` (default): your own connected apps; `org`: every member's
    /// (needs mcp.manage).
    #[serde(default)]
    pub scope: Option<String>,
}

/// Apps connected to this organization over OAuth: yours, or (`?scope=org`,
/// mcp.manage) every member's.
#[utoipa::path(get, path = "/connected-apps", tag = "oauth", params(ConnectedAppsQuery), responses((status = 200, body = Vec<ConnectedAppView>)))]
pub async fn list_connected_apps(
    State(s): State<ApiState>,
    caller: Caller,
    Query(q): Query<ConnectedAppsQuery>,
) -> Result<Json<Vec<ConnectedAppView>>, ApiError> {
    let all = match q.scope.as_deref() {
        None | Some("me") => false,
        Some("org") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                format!("scope: '{other}' is not valid: use 'me' or 'org'"),
            ));
        }
    };
    Ok(Json(s.core.list_connected_apps(caller.ctx(), all).await?))
}

/// Disconnects an app: the consent and every token issued under it end at
/// once. Your own, or any member's with mcp.manage.
#[utoipa::path(delete, path = "/connected-apps/{id}", tag = "oauth", params(("id" = String, Path)), responses((status = 204)))]
pub async fn revoke_connected_app(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.core.revoke_connected_app(caller.ctx(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Cuts an OAuth client off from this organization: every member's consent
/// to it and every token it holds here end at once (mcp.manage).
#[utoipa::path(delete, path = "/oauth-clients/{client_id}", tag = "oauth", params(("client_id" = String, Path)), responses((status = 204)))]
pub async fn disconnect_client(
    State(s): State<ApiState>,
    caller: Caller,
    Path(client_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.core
        .revoke_client_in_org(caller.ctx(), &client_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
