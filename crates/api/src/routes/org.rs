//! The caller's organization.

use axum::Json;
use axum::extract::State;
use switchboard_core::orgs::UpdateOrg;
use switchboard_core::views::OrgView;

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
