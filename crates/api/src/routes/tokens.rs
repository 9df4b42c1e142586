//! Personal and org tokens.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use switchboard_core::tokens::CreateToken;
use switchboard_core::views::{CreatedToken, TokenView};

use crate::extract::ApiJson;
use crate::{ApiError, ApiState, Caller};

/// Your personal tokens (and the org's tokens if you hold mcp.manage). Session only.
#[utoipa::path(get, path = "/tokens", tag = "tokens", responses((status = 200, body = Vec<TokenView>)))]
pub async fn list_tokens(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    Ok(Json(s.core.list_tokens(caller.ctx()).await?))
}

/// Creates a token; the `token` value is in this response only. Session only.
#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = CreateToken, responses((status = 201, body = CreatedToken)))]
pub async fn create_token(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.core.create_token(caller.ctx(), body).await?),
    ))
}

/// Revokes a token, effective on the next request on every replica. Session only.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens", params(("id" = String, Path)), responses((status = 200, body = TokenView)))]
pub async fn revoke_token(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    Ok(Json(s.core.revoke_token(caller.ctx(), &id).await?))
}
