//! Members, invitations and teams.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use switchboard_core::members::{
    AcceptInvitation, AcceptedInvitation, AddTeamMember, ChangeRole, CreateInvitation, CreateTeam,
};
use switchboard_core::views::{CreatedInvitation, InvitationView, MemberView, Page, TeamView};

use super::PageParams;
use crate::extract::{ApiJson, ApiQuery};
use crate::{ApiError, ApiState, Caller, RequestInfo};

/// Members of the organization (active and invited), in id order.
#[utoipa::path(get, path = "/members", tag = "members", params(PageParams), responses((status = 200, body = Page<MemberView>)))]
pub async fn list_members(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page<MemberView>>, ApiError> {
    Ok(Json(s.core.list_members(caller.ctx(), q.into()).await?))
}

#[utoipa::path(get, path = "/members/{id}", tag = "members", params(("id" = String, Path, description = "membership id")), responses((status = 200, body = MemberView)))]
pub async fn get_member(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<MemberView>, ApiError> {
    Ok(Json(s.core.get_member(caller.ctx(), &id).await?))
}

/// Changes a member's role. Nobody grants a role above their own; the last owner stays.
#[utoipa::path(patch, path = "/members/{id}", tag = "members", params(("id" = String, Path)), request_body = ChangeRole, responses((status = 200, body = MemberView)))]
pub async fn change_role(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ChangeRole>,
) -> Result<Json<MemberView>, ApiError> {
    Ok(Json(
        s.core.change_member_role(caller.ctx(), &id, body).await?,
    ))
}

/// Removes a member and revokes their tokens in this organization.
#[utoipa::path(delete, path = "/members/{id}", tag = "members", params(("id" = String, Path)), responses((status = 204)))]
pub async fn remove_member(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.core.remove_member(caller.ctx(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/invitations", tag = "members", params(PageParams), responses((status = 200, body = Page<InvitationView>)))]
pub async fn list_invitations(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page<InvitationView>>, ApiError> {
    Ok(Json(s.core.list_invitations(caller.ctx(), q.into()).await?))
}

/// Invites someone. Refused when the seat limit is reached or the email's
/// domain is not allowed. The response carries the one-time accept link.
#[utoipa::path(post, path = "/invitations", tag = "members", request_body = CreateInvitation, responses((status = 201, body = CreatedInvitation)))]
pub async fn create_invitation(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateInvitation>,
) -> Result<(StatusCode, Json<CreatedInvitation>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.core.create_invitation(caller.ctx(), body).await?),
    ))
}

#[utoipa::path(delete, path = "/invitations/{id}", tag = "members", params(("id" = String, Path)), responses((status = 204)))]
pub async fn revoke_invitation(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.core.revoke_invitation(caller.ctx(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accepts an invitation with its token (no sign-in needed: the token is the credential).
#[utoipa::path(post, path = "/invitations/accept", tag = "members", security(()), request_body = AcceptInvitation, responses((status = 200, body = AcceptedInvitation)))]
pub async fn accept_invitation(
    State(s): State<ApiState>,
    RequestInfo(meta): RequestInfo,
    ApiJson(body): ApiJson<AcceptInvitation>,
) -> Result<Json<AcceptedInvitation>, ApiError> {
    Ok(Json(s.core.accept_invitation(body, &meta).await?))
}

#[utoipa::path(get, path = "/teams", tag = "members", params(PageParams), responses((status = 200, body = Page<TeamView>)))]
pub async fn list_teams(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page<TeamView>>, ApiError> {
    Ok(Json(s.core.list_teams(caller.ctx(), q.into()).await?))
}

#[utoipa::path(post, path = "/teams", tag = "members", request_body = CreateTeam, responses((status = 201, body = TeamView)))]
pub async fn create_team(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateTeam>,
) -> Result<(StatusCode, Json<TeamView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.core.create_team(caller.ctx(), body).await?),
    ))
}

#[utoipa::path(delete, path = "/teams/{id}", tag = "members", params(("id" = String, Path)), responses((status = 204)))]
pub async fn delete_team(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.core.delete_team(caller.ctx(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/teams/{id}/members", tag = "members", params(("id" = String, Path)), responses((status = 200, body = Vec<MemberView>)))]
pub async fn team_members(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<MemberView>>, ApiError> {
    Ok(Json(s.core.team_members(caller.ctx(), &id).await?))
}

/// Adds an active member to a team (a pending invitee is refused with the reason).
#[utoipa::path(post, path = "/teams/{id}/members", tag = "members", params(("id" = String, Path)), request_body = AddTeamMember, responses((status = 204)))]
pub async fn add_team_member(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AddTeamMember>,
) -> Result<StatusCode, ApiError> {
    s.core.add_team_member(caller.ctx(), &id, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/teams/{id}/members/{membership_id}", tag = "members", params(("id" = String, Path), ("membership_id" = String, Path)), responses((status = 204)))]
pub async fn remove_team_member(
    State(s): State<ApiState>,
    caller: Caller,
    Path((id, membership_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.core
        .remove_team_member(caller.ctx(), &id, &membership_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
