//! Sign-in sessions and the caller's own account.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::{Deserialize, Serialize};
use switchboard_core::views::MeView;
use utoipa::ToSchema;

use crate::extract::ApiJson;
use crate::{ApiError, ApiState, Caller, RequestInfo};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub email: String,
    pub password: String,
    /// The organization to act in (slug); defaults to the first one.
    pub org: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignedIn {
    /// Send in `X-CSRF-Token` on state-changing requests made with the cookie.
    pub csrf_token: String,
    pub org: String,
    pub expires_at: String,
}

fn with_cookie(mut resp: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Signs in with email and password; sets the session cookie.
#[utoipa::path(post, path = "/auth/sign-in", tag = "auth", security(()),
    request_body = SignIn, responses((status = 200, body = SignedIn), (status = 401), (status = 429)))]
pub async fn sign_in(
    State(s): State<ApiState>,
    RequestInfo(meta): RequestInfo,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    let session = s
        .core
        .sign_in(&body.email, &body.password, body.org.as_deref(), &meta)
        .await?;
    let max_age = (session.expires_at_ms - meta.now_ms) / 1000;
    let cookie = s.http.session_cookie(&session.cookie_secret, max_age);
    let out = SignedIn {
        csrf_token: session.csrf_token,
        org: session.org_slug,
        expires_at: switchboard_core::views::rfc3339(session.expires_at_ms),
    };
    Ok(with_cookie(Json(out).into_response(), &cookie))
}

/// Ends the current session and clears its cookie.
#[utoipa::path(post, path = "/auth/sign-out", tag = "auth", responses((status = 204)))]
pub async fn sign_out(State(s): State<ApiState>, caller: Caller) -> Result<Response, ApiError> {
    s.core.sign_out(caller.ctx()).await?;
    Ok(with_cookie(
        StatusCode::NO_CONTENT.into_response(),
        &s.http.session_cookie("", 0),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

/// Changes the caller's password and ends their other sessions.
#[utoipa::path(post, path = "/auth/password", tag = "auth", request_body = ChangePassword, responses((status = 204)))]
pub async fn change_password(
    State(s): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    s.core
        .change_password(caller.ctx(), &body.current_password, &body.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchOrg {
    /// The slug of an organization you are an active member of.
    pub org: String,
}

/// Switches the session's active organization.
#[utoipa::path(post, path = "/auth/switch-org", tag = "auth", request_body = SwitchOrg, responses((status = 200, body = MeView)))]
pub async fn switch_org(
    State(s): State<ApiState>,
    headers: HeaderMap,
    caller: Caller,
    ApiJson(body): ApiJson<SwitchOrg>,
) -> Result<Json<MeView>, ApiError> {
    s.core.switch_org(caller.ctx(), &body.org).await?;
    // Rebuild the principal: role and permissions differ per organization.
    let jar = CookieJar::from_headers(&headers);
    let cookie = jar
        .get(s.http.session_cookie_name())
        .ok_or_else(|| ApiError::unauthenticated("sign in again", false))?;
    let principal = s
        .core
        .authenticate_session(cookie.value(), caller.meta.now_ms)
        .await?;
    let ctx = switchboard_core::Ctx {
        principal: &principal,
        meta: &caller.meta,
    };
    Ok(Json(s.core.me(ctx).await?))
}

/// The caller: account, organization, role, token kind and scopes.
#[utoipa::path(get, path = "/me", tag = "auth", responses((status = 200, body = MeView)))]
pub async fn me(State(s): State<ApiState>, caller: Caller) -> Result<Json<MeView>, ApiError> {
    Ok(Json(s.core.me(caller.ctx()).await?))
}
