//! The machine-facing endpoints: dynamic registration (RFC 7591), token
//! (RFC 6749 §3.2 with PKCE and RFC 8707 resources) and revocation
//! (RFC 7009). Errors are RFC 6749 §5.2 JSON bodies.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::oauth::{ClientAuth, ClientKind, NewClient, OAuthError, TokenRequest};
use switchboard_core::{RequestMeta, Surface};
use tower_http::cors::{Any, CorsLayer};

use crate::OAuthState;

/// Largest body the token, revocation and registration endpoints read.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// Browser-based MCP clients call these endpoints cross-origin. No
/// credentials (cookies) are involved, so any origin may.
pub(crate) fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(3600))
}

fn meta(parts: &Parts, s: &OAuthState) -> RequestMeta {
    switchboard_api::meta_for(parts, &s.api, Surface::OAuth)
}

/// An RFC 6749 §5.2 error answer, never cached.
pub(crate) fn error_response(e: &OAuthError, basic_used: bool) -> Response {
    let status = match e.code {
        "invalid_client" => StatusCode::UNAUTHORIZED,
        "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
        "too_many_registrations" => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut resp = (
        status,
        axum::Json(json!({"error": e.code, "error_description": e.description})),
    )
        .into_response();
    no_store(resp.headers_mut());
    if status == StatusCode::UNAUTHORIZED && basic_used {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"switchboard\""),
        );
    }
    resp
}

fn no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

fn bad(d: impl Into<String>) -> Response {
    error_response(&OAuthError::new("invalid_request", d), false)
}

fn is_form(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        })
}

/// The form fields of a request body. A repeated field is refused (RFC
/// 6749 §3.2), except `resource`, which is collected (and then checked).
pub(crate) fn parse_form(body: &[u8]) -> Result<FormFields, String> {
    let mut f = FormFields::default();
    for (k, v) in url::form_urlencoded::parse(body) {
        if k.contains('\0') || v.contains('\0') {
            return Err("a parameter contains a NUL character (%00), which none accepts".into());
        }
        if k == "resource" {
            f.resources.push(v.into_owned());
            continue;
        }
        if f.fields.iter().any(|(name, _)| *name == k) {
            return Err(format!("the parameter '{k}' was sent more than once"));
        }
        f.fields.push((k.into_owned(), v.into_owned()));
    }
    Ok(f)
}

#[derive(Debug, Default)]
pub(crate) struct FormFields {
    fields: Vec<(String, String)>,
    pub resources: Vec<String>,
}

impl FormFields {
    pub fn get(&self, k: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    }
}

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1: each part is
/// form-urlencoded) or the body. Returns whether Basic was used.
fn client_auth(h: &HeaderMap, f: &FormFields) -> Result<(ClientAuth, bool), Response> {
    let basic = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
        });
    if let Some(b64) = basic {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                error_response(
                    &OAuthError::new(
                        "invalid_client",
                        "the Basic credentials are not valid base64 of client_id:client_secret",
                    ),
                    true,
                )
            })?;
        let Some((id, secret)) = decoded.split_once(':') else {
            return Err(error_response(
                &OAuthError::new(
                    "invalid_client",
                    "the Basic credentials must be client_id:client_secret",
                ),
                true,
            ));
        };
        let unescape = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let (id, secret) = (unescape(id), unescape(secret));
        if f.get("client_secret").is_some() {
            return Err(bad(
                "send the client secret once: in the Authorization header or in the body, not both",
            ));
        }
        if f.get("client_id").is_some_and(|b| b != id) {
            return Err(bad(
                "client_id in the body differs from the one in the Authorization header",
            ));
        }
        return Ok((
            ClientAuth {
                client_id: Some(id),
                client_secret: Some(secret).filter(|s| !s.is_empty()),
            },
            true,
        ));
    }
    Ok((
        ClientAuth {
            client_id: f.get("client_id"),
            client_secret: f.get("client_secret"),
        },
        false,
    ))
}

/// Reads a form body, refusing other content types.
fn form_body(parts: &Parts, body: &Bytes) -> Result<FormFields, Response> {
    if !is_form(&parts.headers) {
        return Err(bad(
            "send the parameters as application/x-www-form-urlencoded",
        ));
    }
    parse_form(body).map_err(bad)
}

async fn read_body(body: axum::body::Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        let mut resp = error_response(
            &OAuthError::new(
                "invalid_request",
                format!("the request body may be at most {MAX_BODY} bytes"),
            ),
            false,
        );
        *resp.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        resp
    })
}

/// `POST /oauth/token`.
pub(crate) async fn token(State(s): State<OAuthState>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let f = match form_body(&parts, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (auth, basic) = match client_auth(&parts.headers, &f) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let request = TokenRequest {
        grant_type: f.get("grant_type"),
        code: f.get("code"),
        redirect_uri: f.get("redirect_uri"),
        code_verifier: f.get("code_verifier"),
        refresh_token: f.get("refresh_token"),
        resources: f.resources.clone(),
        scope: f.get("scope"),
    };
    match s
        .api
        .core
        .oauth_token(auth, request, &meta(&parts, &s))
        .await
    {
        Ok(t) => {
            let mut resp = axum::Json(t).into_response();
            no_store(resp.headers_mut());
            resp
        }
        Err(e) => error_response(&e, basic),
    }
}

/// `POST /oauth/revoke` (RFC 7009): 200 whether or not the token was known.
pub(crate) async fn revoke(State(s): State<OAuthState>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let f = match form_body(&parts, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (auth, basic) = match client_auth(&parts.headers, &f) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(token) = f.get("token") else {
        return bad("the token parameter is required");
    };
    match s
        .api
        .core
        .oauth_revoke(auth, &token, &meta(&parts, &s))
        .await
    {
        Ok(()) => {
            let mut resp = StatusCode::OK.into_response();
            no_store(resp.headers_mut());
            resp
        }
        Err(e) => error_response(&e, basic),
    }
}

/// The RFC 7591 fields we read; unknown fields are ignored as the RFC asks.
#[derive(Debug, Deserialize)]
struct RegistrationRequest {
    redirect_uris: Option<Vec<String>>,
    client_name: Option<String>,
    client_uri: Option<String>,
    application_type: Option<String>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    scope: Option<String>,
    software_id: Option<String>,
    software_version: Option<String>,
}

/// `POST /oauth/register` (RFC 7591).
pub(crate) async fn register(State(s): State<OAuthState>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let invalid = |d: String| error_response(&OAuthError::new("invalid_client_metadata", d), false);
    let r: RegistrationRequest = match serde_json::from_slice::<Value>(&body) {
        Ok(v) if switchboard_api::value_has_nul(&v) => {
            return invalid(switchboard_api::NUL_REFUSAL.into());
        }
        Ok(v @ Value::Object(_)) => match serde_json::from_value(v) {
            Ok(r) => r,
            Err(e) => return invalid(format!("a field has the wrong type: {e}")),
        },
        Ok(_) => return invalid("the body must be a JSON object of client metadata".into()),
        Err(e) => return invalid(format!("the body is not valid JSON: {e}")),
    };
    let input = NewClient {
        client_name: r.client_name,
        client_uri: r.client_uri,
        redirect_uris: r.redirect_uris.unwrap_or_default(),
        application_type: r.application_type,
        token_endpoint_auth_method: r.token_endpoint_auth_method,
        grant_types: r.grant_types.clone(),
        response_types: r.response_types.clone(),
    };
    match s
        .api
        .core
        .register_oauth_client(input, ClientKind::Dynamic, &meta(&parts, &s))
        .await
    {
        Ok(reg) => {
            let c = &reg.client;
            let mut body = json!({
                "client_id": c.client_id,
                "client_id_issued_at": reg.issued_at_secs,
                "client_name": c.client_name,
                "redirect_uris": c.redirect_uris,
                "application_type": c.application_type,
                "token_endpoint_auth_method": c.token_endpoint_auth_method,
                "grant_types": r.grant_types.unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]),
                "response_types": ["code"],
            });
            if let Some(m) = body.as_object_mut() {
                if let Some(u) = &c.client_uri {
                    m.insert("client_uri".into(), json!(u));
                }
                if let Some(secret) = &reg.client_secret {
                    m.insert("client_secret".into(), json!(secret));
                    m.insert("client_secret_expires_at".into(), json!(0));
                }
                if let Some(scope) = r.scope {
                    m.insert("scope".into(), json!(scope));
                }
                if let Some(v) = r.software_id {
                    m.insert("software_id".into(), json!(v));
                }
                if let Some(v) = r.software_version {
                    m.insert("software_version".into(), json!(v));
                }
            }
            let mut resp = (StatusCode::CREATED, axum::Json(body)).into_response();
            no_store(resp.headers_mut());
            resp
        }
        Err(e) => error_response(&e, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_but_resources_collect() {
        let f = parse_form(b"grant_type=authorization_code&resource=a&resource=b").unwrap();
        assert_eq!(f.get("grant_type").as_deref(), Some("authorization_code"));
        assert_eq!(f.resources, vec!["a", "b"]);
        let e = parse_form(b"code=a&code=b").unwrap_err();
        assert!(e.contains("'code'"), "{e}");
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut h = HeaderMap::new();
        let creds = base64::engine::general_purpose::STANDARD.encode("my%20client:s%3Acret");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {creds}")).unwrap(),
        );
        let (auth, basic) = client_auth(&h, &FormFields::default()).unwrap();
        assert!(basic);
        assert_eq!(auth.client_id.as_deref(), Some("my client"));
        assert_eq!(auth.client_secret.as_deref(), Some("s:cret"));
    }
}
