//! What stands in front of rmcp on `/mcp`: Host and Origin validation
//! (DNS rebinding), bearer authentication with the resource-metadata
//! challenge, the HTTP-level `insufficient_scope` refusal (a handler cannot
//! set a status), and binding legacy sessions to the principal that opened
//! them. rmcp never sees an unauthenticated request.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchboard_capabilities::Denial;
use switchboard_core::access::{Decision, Facts, decide, ops};
use switchboard_core::{CallInfo, CoreError, Ctx, Outcome, Principal, RequestMeta, Surface};
use switchboard_domain::Scope;

use crate::McpState;

/// Allowed `Host` values: the public URL's authority and the operator's
/// extra entries. An entry without a port admits any port.
#[derive(Debug, Clone)]
pub struct HostRules {
    /// (host, required port, whether a Host without a port matches: it
    /// means the scheme's default port, which is the public URL's).
    hosts: Vec<(String, Option<u16>, bool)>,
    origins: Vec<String>,
    /// This hub's id in the gateway's hop header (see `check`).
    hub_id: String,
}

impl HostRules {
    pub fn new(public_url: &url::Url, extra_hosts: &[String]) -> Self {
        let mut hosts = Vec::new();
        if let Some(h) = public_url.host_str() {
            hosts.push((
                h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_ascii_lowercase(),
                public_url.port_or_known_default(),
                public_url.port().is_none(),
            ));
        }
        for e in extra_hosts {
            let (h, p) = split_host(&e.to_ascii_lowercase());
            hosts.push((h, p, false));
        }
        let mut origins = vec![public_url.origin().ascii_serialization()];
        for e in extra_hosts {
            origins.push(format!("http://{}", e.to_ascii_lowercase()));
            origins.push(format!("https://{}", e.to_ascii_lowercase()));
        }
        HostRules {
            hosts,
            origins,
            hub_id: switchboard_api::hub_id(public_url.as_str()),
        }
    }

    /// The list rmcp's own check gets (the same rules, defence in depth).
    pub fn rmcp_hosts(&self) -> Vec<String> {
        self.hosts
            .iter()
            .map(|(h, p, _)| {
                let h = if h.contains(':') {
                    format!("[{h}]")
                } else {
                    h.clone()
                };
                match p {
                    Some(p) => format!("{h}:{p}"),
                    None => h,
                }
            })
            .collect()
    }

    pub fn rmcp_origins(&self) -> Vec<String> {
        self.origins.clone()
    }

    fn host_allowed(&self, value: &str) -> bool {
        let (h, p) = split_host(&value.to_ascii_lowercase());
        self.hosts.iter().any(|(host, port, default_ok)| {
            *host == h
                && match (port, p) {
                    (None, _) => true,
                    (Some(want), Some(got)) => got == *want,
                    (Some(_), None) => *default_ok,
                }
        })
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let Ok(u) = url::Url::parse(origin) else {
            return false;
        };
        let Some(h) = u.host_str() else {
            return false;
        };
        let host = h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = u.port_or_known_default();
        let public = self.origins.first().map(String::as_str)
            == Some(u.origin().ascii_serialization().as_str());
        public
            || self
                .hosts
                .iter()
                .skip(1)
                .any(|(eh, ep, _)| *eh == host && ep.is_none_or(|p| Some(p) == port))
    }

    /// `Err` is the 403 (or 400, or 508) answer.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Response> {
        // A request our own gateway sent: a connection points back at this
        // hub, and serving it would call out again, forever.
        let looped = headers
            .get_all(switchboard_api::HOP_HEADER)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|id| id.trim() == self.hub_id);
        if looped {
            return Err(plain(
                StatusCode::LOOP_DETECTED,
                "Loop Detected: this request came from this hub's own gateway: a connection points back at this server; point it at another server",
            ));
        }
        let host = match headers.get(header::HOST) {
            None => {
                return Err(plain(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: missing Host header",
                ));
            }
            Some(v) => v.to_str().map_err(|_| {
                plain(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: Invalid Host header encoding",
                )
            })?,
        };
        if !self.host_allowed(host) {
            return Err(plain(
                StatusCode::FORBIDDEN,
                "Forbidden: Host header is not allowed (DNS rebinding protection): use the server's public URL, or add the host to server.allowed_hosts",
            ));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let ok = origin.to_str().is_ok_and(|o| self.origin_allowed(o));
            if !ok {
                return Err(plain(
                    StatusCode::FORBIDDEN,
                    "Forbidden: Origin header is not allowed (DNS rebinding protection)",
                ));
            }
        }
        Ok(())
    }
}

fn split_host(v: &str) -> (String, Option<u16>) {
    if let Some(rest) = v.strip_prefix('[') {
        // [v6]:port
        let (h, tail) = rest.split_once(']').unwrap_or((rest, ""));
        let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
        return (h.to_owned(), port);
    }
    match v.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_owned(), p.parse().ok()),
        _ => (v.to_owned(), None),
    }
}

fn plain(status: StatusCode, msg: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg,
    )
        .into_response()
}

/// The bearer token of a request, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    switchboard_api::bearer(headers).ok().flatten()
}

/// 401 with the RFC 9728 challenge. With a token that failed, the reason
/// goes in `error_description` (and the body): it never reveals the token.
pub fn unauthorized(resource_metadata: &str, reason: Option<&str>) -> Response {
    let challenge = match reason {
        None => format!("Bearer resource_metadata=\"{resource_metadata}\""),
        Some(r) => format!(
            "Bearer error=\"invalid_token\", error_description=\"{}\", resource_metadata=\"{resource_metadata}\"",
            r.replace(['"', '\\'], "'")
        ),
    };
    let message = reason.unwrap_or(
        "authentication required: send `Authorization: Bearer <token>` (a personal or org token, or an OAuth access token)",
    );
    challenged(
        StatusCode::UNAUTHORIZED,
        json!({"jsonrpc": "2.0", "id": null, "error": {"code": crate::rpc::UNAUTHORIZED, "message": message}}),
        &challenge,
    )
}

/// A JSON answer carrying a `WWW-Authenticate` challenge.
fn challenged(status: StatusCode, body: Value, challenge: &str) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// 403 `insufficient_scope`, naming every scope needed, so the client can
/// ask for them (step-up authorization).
pub fn insufficient_scope(
    resource_metadata: &str,
    scopes: &[Scope],
    message: &str,
    id: Value,
) -> Response {
    let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let challenge = format!(
        "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{resource_metadata}\", error_description=\"{}\"",
        names.join(" "),
        message.replace(['"', '\\'], "'")
    );
    challenged(
        StatusCode::FORBIDDEN,
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": crate::rpc::FORBIDDEN, "message": message, "data": {"scopes": names}}}),
        &challenge,
    )
}

/// Authenticates a request; `Err` is the answer to send.
pub async fn authenticate(
    state: &McpState,
    token: Option<&str>,
    resource_metadata: &str,
) -> Result<Principal, Response> {
    authenticate_for(state, token, resource_metadata, &state.org_resource()).await
}

/// [`authenticate`] for the resource `here` (`<public>/mcp`, or a virtual
/// server's `<public>/mcp/servers/{slug}`).
pub async fn authenticate_for(
    state: &McpState,
    token: Option<&str>,
    resource_metadata: &str,
    here: &str,
) -> Result<Principal, Response> {
    let Some(token) = token else {
        return Err(unauthorized(resource_metadata, None));
    };
    match state
        .caps
        .core()
        .authenticate_bearer(token, switchboard_core::now_ms())
        .await
    {
        Ok(p) => {
            // An OAuth access token is valid only on the resource it was
            // issued for (RFC 8707); `/mcp` and `/mcp/rpc` are one resource.
            match p.token_resource() {
                Some(r) if r != here => Err(unauthorized(
                    resource_metadata,
                    Some(&format!(
                        "this access token was issued for the resource {r}, not {here}: authorize again for {here}"
                    )),
                )),
                _ => Ok(p),
            }
        }
        Err(CoreError::Unauthenticated(m)) => Err(unauthorized(resource_metadata, Some(&m))),
        Err(e) => {
            tracing::error!(error = %e, "authentication failed");
            Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response())
        }
    }
}

/// The middleware in front of rmcp's services on `/mcp` and on the
/// virtual servers `/mcp/servers/{slug}` (each its own resource).
pub async fn mcp_guard(State(state): State<McpState>, req: Request, next: Next) -> Response {
    if let Err(resp) = state.hosts.check(req.headers()) {
        return resp;
    }
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let virtual_server = path.starts_with("/mcp/servers/");
    let resource = format!("{}{path}", state.public_base());
    let prm = state.resource_metadata_url(&path);
    let principal = match authenticate_for(&state, bearer(req.headers()), &prm, &resource).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let (mut parts, body) = req.into_parts();
    let meta = switchboard_api::meta_for_http(&parts, &state.http, Surface::Mcp);

    // A legacy session belongs to whoever opened it.
    let session_id = parts
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(id) = &session_id {
        match state.session_owner_ok(id, &principal, meta.now_ms).await {
            Ok(true) => {}
            Ok(false) => {
                return plain(StatusCode::NOT_FOUND, "Not Found: Session not found");
            }
            Err(resp) => return resp,
        }
    }

    let mut is_initialize = false;
    let body = if parts.method == Method::POST {
        let bytes = match axum::body::to_bytes(body, state.max_body_bytes).await {
            Ok(b) => b,
            Err(_) => {
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "Payload Too Large: an MCP request body may be at most {} bytes",
                        state.max_body_bytes
                    ),
                )
                    .into_response();
            }
        };
        let message = match parse_message(&bytes) {
            Ok(v) => v,
            Err(resp) => return resp,
        };
        is_initialize = message.get("method").and_then(Value::as_str) == Some("initialize");
        let refused = if virtual_server {
            gate_virtual(&state, &principal, &meta, Some(&message), &prm, &path).await
        } else {
            precheck(&state, &principal, &meta, &message, &prm).await
        };
        if let Some(resp) = refused {
            return resp;
        }
        // A session is opened only for a caller who may use MCP at all: a
        // refused initialize hands out no session.
        if is_initialize
            && let Some(resp) = gate_initialize(&state, &principal, &meta, &message).await
        {
            return resp;
        }
        if is_initialize && session_id.is_none() {
            match state
                .caps
                .core()
                .admit_mcp_session(&principal, meta.now_ms, crate::sessions::SESSION_IDLE_MS)
                .await
            {
                Ok(ended) => state.close_sessions(&ended).await,
                Err(e) => return session_refused(&message, &e),
            }
        }
        Body::from(bytes)
    } else {
        if virtual_server
            && let Some(resp) = gate_virtual(&state, &principal, &meta, None, &prm, &path).await
        {
            return resp;
        }
        body
    };
    let is_delete = parts.method == Method::DELETE;
    let recorder = is_initialize.then(|| principal.clone());
    parts.extensions.insert(principal);
    parts.extensions.insert(meta);
    let resp = next.run(Request::from_parts(parts, body)).await;

    if let Some(recorder) = &recorder
        && let Some(id) = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        && let Err(e) = state
            .caps
            .core()
            .record_mcp_session(id, recorder, switchboard_core::now_ms())
            .await
    {
        tracing::error!(error = %e, "could not record a new MCP session");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not record the session",
        )
            .into_response();
    }
    let mut resp = resp;
    // An ended session answers 204 (rmcp says 202, which clients warn about:
    // nothing is left to accept).
    if is_delete && resp.status() == StatusCode::ACCEPTED {
        resp = StatusCode::NO_CONTENT.into_response();
    }
    if is_delete
        && resp.status().is_success()
        && let Some(id) = &session_id
        && let Err(e) = state.caps.core().end_mcp_session(id).await
    {
        tracing::warn!(error = %e, "could not delete an ended MCP session");
    }
    resp
}

/// A new session refused (the token's sessions are all in use, or the
/// server's): 429 with when to try again, and the reason.
fn session_refused(message: &Value, e: &switchboard_core::CoreError) -> Response {
    let retry = match e {
        switchboard_core::CoreError::Throttled {
            retry_after_secs, ..
        } => *retry_after_secs,
        _ => 60,
    };
    let body = json!({
        "jsonrpc": "2.0",
        "id": message.get("id").cloned().unwrap_or(Value::Null),
        "error": {"code": -32000, "message": e.to_string()},
    });
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&retry.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// The one JSON-RPC message of a POST. A body that is not one gets a
/// JSON-RPC error (rmcp would answer a bare 415): -32700 for broken JSON,
/// -32600 for a batch (batches left MCP in 2025-06-18; `/mcp/rpc` takes them).
fn parse_message(body: &Bytes) -> Result<Value, Response> {
    let answer_to = |id: Value, code: i64, message: String| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
            ),
        )
            .into_response()
    };
    let answer = |code: i64, message: String| answer_to(Value::Null, code, message);
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) if v.get("jsonrpc").and_then(Value::as_str) != Some("2.0") => {
            Err(answer_to(
                v.get("id").cloned().unwrap_or(Value::Null),
                crate::rpc::INVALID_REQUEST,
                "a JSON-RPC message needs \"jsonrpc\": \"2.0\"".into(),
            ))
        }
        // Nothing downstream takes a NUL, and PostgreSQL cannot store one.
        Ok(v @ Value::Object(_)) if switchboard_api::value_has_nul(&v) => Err(answer_to(
            v.get("id").cloned().unwrap_or(Value::Null),
            crate::rpc::INVALID_PARAMS,
            switchboard_api::NUL_REFUSAL.into(),
        )),
        Err(e) => Err(answer(
            crate::rpc::PARSE_ERROR,
            format!("the body is not valid JSON: {e}"),
        )),
        Ok(Value::Array(_)) => Err(answer(
            crate::rpc::INVALID_REQUEST,
            "MCP takes one JSON-RPC message per POST; send batches to /mcp/rpc".into(),
        )),
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(answer(
            crate::rpc::INVALID_REQUEST,
            "a JSON-RPC message is a JSON object".into(),
        )),
    }
}

/// Every request to a virtual server is first asked two things, here,
/// before rmcp sees it (so a refused `initialize` opens no session):
///
/// - using a connection at all needs the token scope `connections:use`:
///   without it, 403 `insufficient_scope` with the step-up challenge, for
///   every method (the client can ask for the scope);
/// - the server must be one the caller may use: one they may not use is
///   answered exactly like one that does not exist, 404 with the same
///   sentence (its existence does not leak).
///
/// Both refusals are audited.
async fn gate_virtual(
    state: &McpState,
    principal: &Principal,
    meta: &RequestMeta,
    message: Option<&Value>,
    prm: &str,
    path: &str,
) -> Option<Response> {
    let slug = path.strip_prefix("/mcp/servers/")?;
    let method = message
        .and_then(|m| m.get("method"))
        .and_then(Value::as_str)
        .unwrap_or("(stream)");
    // Client answers (responses to our requests) carry no method: they ride
    // on a session already admitted.
    if message.is_some_and(|m| m.get("method").is_none()) {
        return None;
    }
    let id = message
        .and_then(|m| m.get("id"))
        .cloned()
        .unwrap_or(Value::Null);
    let tool = message
        .and_then(|m| m.get("params"))
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str);
    let facts = Facts::of(principal, Surface::Mcp).about(tool.unwrap_or(slug));
    if let Decision::StepUp {
        scopes,
        message: sentence,
    } = decide(principal, &ops::upstream_tool(true, false, false), &facts)
    {
        let call = CallInfo {
            method: method.to_owned(),
            tool: tool.map(str::to_owned),
            arguments: Value::Null,
        };
        if let Some(failed) = record_refusal(state, principal, meta, call, &sentence).await {
            return Some(failed);
        }
        return Some(insufficient_scope(prm, &scopes, &sentence, id));
    }
    let allowed = match crate::virtual_server::may_use(&state.caps, principal, slug).await {
        Ok(allowed) => allowed,
        // Logged where it happened.
        Err(_) => {
            return Some((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response());
        }
    };
    if allowed {
        return None;
    }
    let sentence = crate::virtual_server::not_found_message(slug);
    let call = CallInfo {
        method: method.to_owned(),
        tool: tool.map(str::to_owned),
        arguments: Value::Null,
    };
    if let Some(failed) = record_refusal(state, principal, meta, call, &sentence).await {
        return Some(failed);
    }
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": crate::rpc::FORBIDDEN, "message": sentence, "data": {"server": slug}},
    });
    Some((StatusCode::NOT_FOUND, axum::Json(body)).into_response())
}

/// An `initialize` from a caller who may not use MCP at all (the org turned
/// it off, or its policy could not be read) is refused here, before a
/// session is opened for it.
async fn gate_initialize(
    state: &McpState,
    principal: &Principal,
    meta: &RequestMeta,
    message: &Value,
) -> Option<Response> {
    let facts = Facts::of(principal, Surface::Mcp).about("initialize");
    let Decision::Deny(refusal) = decide(principal, &ops::WHOAMI, &facts) else {
        return None;
    };
    let call = CallInfo {
        method: "initialize".into(),
        tool: None,
        arguments: Value::Null,
    };
    if let Some(failed) = record_refusal(state, principal, meta, call, &refusal.message).await {
        return Some(failed);
    }
    let body = json!({
        "jsonrpc": "2.0",
        "id": message.get("id").cloned().unwrap_or(Value::Null),
        "error": {"code": crate::rpc::FORBIDDEN, "message": refusal.message},
    });
    Some((StatusCode::FORBIDDEN, axum::Json(body)).into_response())
}

/// A `tools/call` whose only obstacle is a missing token scope is answered
/// here, at the HTTP level, as the authorization spec asks.
async fn precheck(
    state: &McpState,
    principal: &Principal,
    meta: &RequestMeta,
    v: &Value,
    prm: &str,
) -> Option<Response> {
    if v.get("method")?.as_str()? != "tools/call" {
        return None;
    }
    let params = v.get("params")?;
    let name = params.get("name")?.as_str()?;
    let Some(Denial::MissingScope { scopes, message }) = state.caps.precheck(principal, name)
    else {
        return None;
    };
    refuse_scope(state, principal, meta, v, prm, name, scopes, message).await
}

/// Records a missing-scope refusal and answers it with 403.
#[allow(clippy::too_many_arguments)]
async fn refuse_scope(
    state: &McpState,
    principal: &Principal,
    meta: &RequestMeta,
    v: &Value,
    prm: &str,
    name: &str,
    scopes: Vec<Scope>,
    message: String,
) -> Option<Response> {
    let params = v.get("params")?;
    let call = CallInfo {
        method: "tools/call".into(),
        tool: Some(name.to_owned()),
        arguments: params.get("arguments").cloned().unwrap_or(Value::Null),
    };
    if let Some(failed) = record_refusal(state, principal, meta, call, &message).await {
        return Some(failed);
    }
    Some(insufficient_scope(
        prm,
        &scopes,
        &message,
        v.get("id").cloned().unwrap_or(Value::Null),
    ))
}

/// Audits a request the guard refuses; `Some` is the answer when the
/// refusal could not be recorded (then nothing else is answered).
async fn record_refusal(
    state: &McpState,
    principal: &Principal,
    meta: &RequestMeta,
    call: CallInfo,
    message: &str,
) -> Option<Response> {
    let mut meta = meta.clone();
    meta.call = Some(call);
    let ctx = Ctx {
        principal,
        meta: &meta,
    };
    let recorded = state
        .caps
        .core()
        .record_request(ctx, None, Outcome::Denied, Some(message))
        .await;
    let e = recorded.err()?;
    tracing::error!(error = %e, "could not audit a refusal");
    Some((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn hosts_and_origins_follow_the_public_url_and_the_allow_list() {
        let public = url::Url::parse("https://hub.example.com").unwrap();
        let rules = HostRules::new(&public, &["localhost".into(), "10.0.0.5:8080".into()]);
        assert!(rules.check(&headers("hub.example.com", None)).is_ok());
        assert!(rules.check(&headers("HUB.example.com:443", None)).is_ok());
        assert!(rules.check(&headers("hub.example.com:8443", None)).is_err());
        assert!(rules.check(&headers("localhost:1234", None)).is_ok());
        assert!(rules.check(&headers("10.0.0.5:8080", None)).is_ok());
        assert!(rules.check(&headers("10.0.0.5:9090", None)).is_err());
        assert!(rules.check(&headers("evil.example", None)).is_err());
        assert!(
            rules
                .check(&headers("hub.example.com", Some("https://hub.example.com")))
                .is_ok()
        );
        assert!(
            rules
                .check(&headers("localhost:3000", Some("http://localhost:3000")))
                .is_ok()
        );
        let err = rules
            .check(&headers("hub.example.com", Some("https://evil.example")))
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
        assert!(
            rules
                .check(&headers("hub.example.com", Some("null")))
                .is_err()
        );
        let v6 = HostRules::new(&url::Url::parse("http://[::1]:9000").unwrap(), &[]);
        assert!(v6.check(&headers("[::1]:9000", None)).is_ok());
        assert!(v6.check(&headers("[::1]:9001", None)).is_err());
    }

    #[test]
    fn bearer_is_case_insensitive_and_strict() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
    }
}
