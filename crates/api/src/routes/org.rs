//! The caller's organization.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use switchboard_core::accounts::CreateOrg;
use switchboard_core::orgs::UpdateOrg;
use switchboard_core::views::{OrgSummary, OrgView};

use crate::extract::ApiJson;
use crate::{ApiError, ApiState, Caller};

/// The caller's organization: settings, seats, MCP policy.
#[utoipa::path(get, path = "/org", tag = "org", responses((status = 200, body = OrgView)))]
pub async fn get_org(State(s): State<ApiState>, caller: Caller) -> Result<Json<OrgView>, ApiError> {
    Ok(Json(s.core.get_org(caller.ctx()).await?))
}

/// Changes the organization. Name and allowed email domains need
/// members.manage; seat limit, feature flags and MCP policy need an owner
/// (mcp.manage) at a session, never a bearer token.
#[utoipa::path(patch, path = "/org", tag = "org", request_body = UpdateOrg, responses((status = 200, body = OrgView)))]
pub async fn update_org(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<UpdateOrg>,
) -> Result<Json<OrgView>, ApiError> {
    Ok(Json(s.core.update_org(caller.ctx(), body).await?))
}

/// Organizations the caller is an active member of.
#[utoipa::path(get, path = "/orgs", tag = "org", responses((status = 200, body = Vec<OrgSummary>)))]
pub async fn list_orgs(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<OrgSummary>>, ApiError> {
    Ok(Json(s.core.list_my_orgs(caller.ctx()).await?))
}

/// Creates a new organization owned by the signed-in caller (session only).
#[utoipa::path(post, path = "/orgs", tag = "org", request_body = CreateOrg, responses((status = 201, body = OrgSummary)))]
pub async fn create_org(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateOrg>,
) -> Result<(StatusCode, Json<OrgSummary>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.core.create_org(caller.ctx(), body).await?),
    ))
}
