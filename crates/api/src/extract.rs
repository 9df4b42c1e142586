//! Extractors: the caller's principal (bearer token or session cookie, with
//! CSRF for cookie sessions), request metadata, and strict JSON / query input.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum_extra::extract::CookieJar;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;
use switchboard_core::{Credential, Ctx, Principal, RequestMeta, Surface, now_ms};

use crate::{ApiError, ApiState, HttpSettings};

/// The client's address: the peer, or (only when the peer is a trusted
/// proxy) the right-most untrusted address in `X-Forwarded-For`.
pub fn client_ip(parts: &Parts, http: &HttpSettings) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    if !http.is_trusted_proxy(peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !http.is_trusted_proxy(*ip))
            .unwrap_or(peer),
    )
}

/// Request metadata for audit: request id, client address, time.
#[derive(Debug, Clone)]
pub struct RequestInfo(pub RequestMeta);

impl FromRequestParts<ApiState> for RequestInfo {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        Ok(RequestInfo(meta_for(parts, state, Surface::Api)))
    }
}

/// Request metadata (request id, client address, time) for a surface.
pub fn meta_for(parts: &Parts, state: &ApiState, surface: Surface) -> RequestMeta {
    meta_for_http(parts, &state.http, surface)
}

/// [`meta_for`] for surfaces that have the HTTP settings but no [`ApiState`].
pub fn meta_for_http(parts: &Parts, http: &HttpSettings, surface: Surface) -> RequestMeta {
    let mut meta = RequestMeta::new(surface, now_ms());
    meta.request_id = parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    meta.client_ip = client_ip(parts, http).map(|ip| ip.to_string());
    meta
}

/// An authenticated caller. A request with `Authorization: Bearer` is judged
/// by the token alone (a cookie beside it is ignored); otherwise the session
/// cookie is used, and then state-changing methods must carry the session's
/// CSRF token in `X-CSRF-Token` and, if present, a same-origin `Origin`.
pub struct Caller {
    pub principal: Principal,
    pub meta: RequestMeta,
}

impl Caller {
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx {
            principal: &self.principal,
            meta: &self.meta,
        }
    }
}

fn is_safe_method(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    #[tracing::instrument(skip_all)]
    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let meta = meta_for(parts, state, Surface::Api);
        if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            let value = auth.to_str().map_err(|_| {
                ApiError::unauthenticated("the Authorization header is not valid text", true)
            })?;
            let Some(token) = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
            else {
                return Err(ApiError::unauthenticated(
                    "the Authorization header must be 'Bearer <token>'",
                    true,
                ));
            };
            let principal = state
                .core
                .authenticate_bearer(token.trim(), meta.now_ms)
                .await?;
            return Ok(Caller { principal, meta });
        }
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(cookie) = jar.get(state.http.session_cookie_name()) else {
            return Err(ApiError::unauthenticated(
                "authentication required: send 'Authorization: Bearer <token>' or sign in",
                false,
            ));
        };
        let principal = state
            .core
            .authenticate_session(cookie.value(), meta.now_ms)
            .await?;
        if !is_safe_method(&parts.method) {
            check_csrf(parts, state, &principal)?;
        }
        Ok(Caller { principal, meta })
    }
}

fn check_csrf(parts: &Parts, state: &ApiState, principal: &Principal) -> Result<(), ApiError> {
    if let Some(origin) = parts.headers.get(header::ORIGIN) {
        let expected = state.http.public_origin();
        if origin.as_bytes() != expected.as_bytes() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf_origin_mismatch",
                format!("cross-origin request refused: Origin must be {expected}"),
            ));
        }
    }
    let Credential::Session { csrf_token, .. } = &principal.credential else {
        return Ok(());
    };
    let sent = parts
        .headers
        .get("x-csrf-token")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if sent.is_empty() || !bool::from(sent.ct_eq(csrf_token.as_bytes())) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_token_invalid",
            "state-changing requests with a session cookie need the X-CSRF-Token header (its value is in the sign-in response and GET /api/v1/me)",
        ));
    }
    Ok(())
}

/// A JSON body: `Content-Type: application/json`, no unknown fields, and a
/// message naming what was wrong.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => {
                use axum::extract::rejection::JsonRejection::*;
                let status = rejection.status();
                let (code, message) = match &rejection {
                    MissingJsonContentType(_) => (
                        "unsupported_media_type",
                        "the request body must be JSON with 'Content-Type: application/json'"
                            .to_owned(),
                    ),
                    JsonSyntaxError(e) => (
                        "malformed_json",
                        format!("the body is not valid JSON: {}", inner(e)),
                    ),
                    JsonDataError(e) => (
                        "invalid_body",
                        format!(
                            "the body does not match what this endpoint takes: {}",
                            inner(e)
                        ),
                    ),
                    BytesRejection(_) if status == StatusCode::PAYLOAD_TOO_LARGE => {
                        ("body_too_large", "the request body is too large".to_owned())
                    }
                    other => ("bad_request", other.body_text()),
                };
                Err(ApiError::new(status, code, message))
            }
        }
    }
}

fn inner(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = s.to_string();
        src = s.source();
    }
    msg
}

/// Query parameters with a clear message when one is malformed.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or_default();
        serde_urlencoded_from(q)
            .map(ApiQuery)
            .map_err(|m| ApiError::bad_request(format!("bad query parameter: {m}")))
    }
}

fn serde_urlencoded_from<T: DeserializeOwned>(q: &str) -> Result<T, String> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{q}")
            .parse()
            .map_err(|_| "unreadable query string".to_owned())?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|e| inner(&e))
}
