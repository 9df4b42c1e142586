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

/// The token of an `Authorization` header: `Ok(None)` without one, the
/// token for `Bearer <token>` (the scheme is case-insensitive, RFC 7235),
/// and an error sentence for any other credential. The one parser of
/// bearer tokens on every surface.
pub fn bearer(headers: &axum::http::HeaderMap) -> Result<Option<&str>, &'static str> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header is not valid text")?;
    match value.trim().split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err("the Authorization header must be 'Bearer <token>'"),
    }
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
        if let Some(token) =
            bearer(&parts.headers).map_err(|m| ApiError::unauthenticated(m, true))?
        {
            let principal = state
                .core
                .authenticate_bearer_for_api(token, meta.now_ms)
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

/// Whether JSON text holds a NUL character (`\u0000` as an escape; a raw
/// NUL byte is not JSON at all). Exact without parsing: an escape begins
/// with an unescaped backslash, i.e. the last of an odd run of them.
pub fn json_has_nul(text: &[u8]) -> bool {
    const ESCAPE: &[u8] = b"\\u0000";
    if text.contains(&0) {
        return true;
    }
    let mut from = 0;
    while let Some(found) = text
        .get(from..)
        .and_then(|rest| rest.windows(ESCAPE.len()).position(|w| w == ESCAPE))
    {
        let at = from + found;
        let run = text.get(..=at).map_or(0, |head| {
            head.iter().rev().take_while(|b| **b == b'\\').count()
        });
        if run % 2 == 1 {
            return true;
        }
        from = at + 1;
    }
    false
}

/// Whether a parsed JSON value holds a NUL character in a string or a key.
pub fn value_has_nul(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(value_has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || value_has_nul(v)),
        _ => false,
    }
}

/// The sentence for a request that carries a NUL character.
pub const NUL_REFUSAL: &str =
    "the request contains a NUL character (\\u0000), which no field accepts: remove it";

/// A JSON body: `Content-Type: application/json`, no unknown fields, no NUL
/// character anywhere, and a message naming what was wrong.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|essence| essence.trim().to_ascii_lowercase())
            .and_then(|essence| {
                essence
                    .strip_prefix("application/")
                    .map(|sub| sub == "json" || sub.ends_with("+json"))
            })
            .unwrap_or(false);
        if !json_type {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the request body must be JSON with 'Content-Type: application/json'",
            ));
        }
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the request body is too large",
                ));
            }
            Err(rejection) => {
                return Err(ApiError::new(
                    rejection.status(),
                    "bad_request",
                    rejection.body_text(),
                ));
            }
        };
        if json_has_nul(&bytes) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                NUL_REFUSAL,
            ));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
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

#[cfg(test)]
mod nul_tests {
    use super::*;

    #[test]
    fn a_nul_escape_is_found_exactly() {
        assert!(json_has_nul(br#"{"a": "x\u0000y"}"#));
        assert!(json_has_nul(br#"{"a\u0000": 1}"#));
        assert!(
            json_has_nul(br#"["\\\u0000"]"#),
            "an escaped backslash, then the escape"
        );
        assert!(
            !json_has_nul(br#"{"a": "\\u0000"}"#),
            "a backslash, then the text u0000"
        );
        assert!(!json_has_nul(br#"{"a": "u0000 \u0001"}"#));
        assert!(json_has_nul(b"{\"a\": \"\0\"}"), "a raw NUL byte");
        assert!(value_has_nul(&serde_json::json!({"k": ["ok", "n\u{0}"]})));
        assert!(!value_has_nul(&serde_json::json!({"k": ["ok"]})));
    }
}
