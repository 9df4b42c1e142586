//! `/mcp/rpc`: plain JSON-RPC 2.0 over POST for scripts and pipelines, with
//! batches (an array in, an array out; notifications get no entry), the
//! same tools, the same authentication and the same call path as `/mcp`.
//! Every refusal is error -32001 with the sentence saying why, per item.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use switchboard_capabilities::CallOutcome;
use switchboard_core::{CallInfo, Ctx, Outcome, Principal, RequestMeta, Surface};

use crate::guard::{authenticate, bearer};
use crate::{McpState, wire};

/// Most requests one batch may hold.
pub const MAX_BATCH: usize = 100;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
pub const UNAUTHORIZED: i64 = -32000;
pub const FORBIDDEN: i64 = -32001;

fn error(id: Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut e = serde_json::Map::new();
    e.insert("code".into(), json!(code));
    e.insert("message".into(), json!(message));
    if let Some(d) = data {
        e.insert("data".into(), d);
    }
    json!({"jsonrpc": "2.0", "id": id, "error": e})
}

fn success(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// The `?token=` query parameter, when the operator allows it.
fn query_token(req: &Request) -> Option<String> {
    let q = req.uri().query()?;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

pub async fn rpc(State(state): State<McpState>, req: Request) -> Response {
    if let Err(resp) = state.hosts.check(req.headers()) {
        return resp;
    }
    let prm = state.resource_metadata_url("/mcp/rpc");
    let from_query = if state.allow_query_token {
        query_token(&req)
    } else {
        None
    };
    let token = bearer(req.headers()).map(str::to_owned).or(from_query);
    let principal = match authenticate(&state, token.as_deref(), &prm).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let json_body = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json_body {
        return reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            error(
                Value::Null,
                INVALID_REQUEST,
                "send the JSON-RPC request with `Content-Type: application/json`",
                None,
            ),
        );
    }
    let (parts, body) = req.into_parts();
    let meta = switchboard_api::meta_for_http(&parts, &state.http, Surface::Rpc);
    let bytes: Bytes = match axum::body::to_bytes(body, state.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                error(
                    Value::Null,
                    INVALID_REQUEST,
                    &format!(
                        "the request body is larger than {} bytes",
                        state.max_body_bytes
                    ),
                    None,
                ),
            );
        }
    };
    let parsed: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return reply(
                StatusCode::OK,
                error(
                    Value::Null,
                    PARSE_ERROR,
                    &format!("the body is not valid JSON: {e}"),
                    None,
                ),
            );
        }
    };
    match parsed {
        Value::Array(items) => {
            if items.is_empty() {
                return reply(
                    StatusCode::OK,
                    error(
                        Value::Null,
                        INVALID_REQUEST,
                        "an empty batch is not a request",
                        None,
                    ),
                );
            }
            if items.len() > MAX_BATCH {
                return reply(
                    StatusCode::OK,
                    error(
                        Value::Null,
                        INVALID_REQUEST,
                        &format!(
                            "a batch may hold at most {MAX_BATCH} requests; this one has {}",
                            items.len()
                        ),
                        None,
                    ),
                );
            }
            let mut out = Vec::new();
            for item in items {
                if let Some(r) = one(&state, &principal, &meta, item).await {
                    out.push(r);
                }
            }
            if out.is_empty() {
                StatusCode::NO_CONTENT.into_response()
            } else {
                reply(StatusCode::OK, Value::Array(out))
            }
        }
        single => match one(&state, &principal, &meta, single).await {
            Some(r) => reply(StatusCode::OK, r),
            None => StatusCode::NO_CONTENT.into_response(),
        },
    }
}

/// Answers one request; `None` for a notification.
async fn one(
    state: &McpState,
    principal: &Principal,
    base: &RequestMeta,
    item: Value,
) -> Option<Value> {
    let Value::Object(obj) = item else {
        return Some(error(
            Value::Null,
            INVALID_REQUEST,
            "each request must be a JSON object",
            None,
        ));
    };
    let id = obj.get("id").cloned();
    let id_ok = matches!(
        id,
        None | Some(Value::String(_)) | Some(Value::Number(_)) | Some(Value::Null)
    );
    let reply_id = if id_ok {
        id.clone().unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    if obj.get("jsonrpc") != Some(&json!("2.0")) || !id_ok {
        return Some(error(
            reply_id,
            INVALID_REQUEST,
            "not a JSON-RPC 2.0 request: it needs \"jsonrpc\": \"2.0\", a string \"method\" and an optional string or number \"id\"",
            None,
        ));
    }
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        return Some(error(
            reply_id,
            INVALID_REQUEST,
            "not a JSON-RPC 2.0 request: \"method\" must be a string",
            None,
        ));
    };
    if obj
        .iter()
        .any(|(k, v)| k.contains('\0') || switchboard_api::value_has_nul(v))
    {
        return Some(error(
            reply_id,
            INVALID_PARAMS,
            switchboard_api::NUL_REFUSAL,
            None,
        ));
    }
    let params = match obj.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Some(error(
                reply_id,
                INVALID_PARAMS,
                "\"params\" must be an object",
                None,
            ));
        }
    };
    let is_notification = id.is_none();
    let answer = dispatch(state, principal, base, method, params, reply_id).await;
    (!is_notification).then_some(answer)
}

async fn dispatch(
    state: &McpState,
    principal: &Principal,
    base: &RequestMeta,
    method: &str,
    params: Map<String, Value>,
    id: Value,
) -> Value {
    let mut meta = base.fork();
    match method {
        "tools/call" => {
            let Some(name) = params.get("name").and_then(Value::as_str) else {
                return audited_error(
                    state,
                    principal,
                    meta,
                    method,
                    id,
                    INVALID_PARAMS,
                    "tools/call needs \"params\": {\"name\": <tool name>, \"arguments\": {…}}",
                )
                .await;
            };
            let args = match params.get("arguments") {
                None | Some(Value::Null) => None,
                Some(Value::Object(m)) => Some(m.clone()),
                Some(_) => {
                    meta.call = Some(CallInfo {
                        method: method.into(),
                        tool: Some(name.to_owned()),
                        arguments: Value::Null,
                    });
                    return audited_error(
                        state,
                        principal,
                        meta,
                        method,
                        id,
                        INVALID_PARAMS,
                        "\"arguments\" must be an object",
                    )
                    .await;
                }
            };
            meta.call = Some(CallInfo {
                method: method.into(),
                tool: Some(name.to_owned()),
                arguments: Value::Object(args.clone().unwrap_or_default()),
            });
            let ctx = Ctx {
                principal,
                meta: &meta,
            };
            match state.caps.call(ctx, name, args).await {
                CallOutcome::Refused(m) => error(id, FORBIDDEN, &m, None),
                CallOutcome::MissingScope { scopes, message } => {
                    let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
                    error(id, FORBIDDEN, &message, Some(json!({"scopes": names})))
                }
                CallOutcome::UnknownTool(m) | CallOutcome::InvalidArguments(m) => {
                    error(id, INVALID_PARAMS, &m, None)
                }
                CallOutcome::Internal => error(
                    id,
                    INTERNAL_ERROR,
                    "the server failed to run this tool; the error is in its log",
                    None,
                ),
                CallOutcome::Relayed(v) => success(id, v),
                CallOutcome::UpstreamError {
                    code,
                    message,
                    data,
                } => error(id, code.into(), &message, data),
                done @ (CallOutcome::Done(_) | CallOutcome::Failed(_)) => {
                    match wire::tool_result(done).map(serde_json::to_value) {
                        Ok(Ok(v)) => success(id, v),
                        _ => error(id, INTERNAL_ERROR, "could not encode the result", None),
                    }
                }
            }
        }
        "tools/list" => {
            let cursor = match params.get("cursor") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.as_str()),
                Some(_) => {
                    return audited_error(
                        state,
                        principal,
                        meta,
                        method,
                        id,
                        INVALID_PARAMS,
                        "\"cursor\" must be a string",
                    )
                    .await;
                }
            };
            match state.caps.list(principal, cursor) {
                Ok(page) => {
                    let tools: Vec<Value> = page
                        .items
                        .iter()
                        .filter_map(|c| serde_json::to_value(wire::tool(c)).ok())
                        .collect();
                    let mut result = serde_json::Map::new();
                    result.insert("tools".into(), json!(tools));
                    if let Some(c) = page.next_cursor {
                        result.insert("nextCursor".into(), Value::String(c));
                    }
                    let result = Value::Object(result);
                    audited(state, principal, meta, method, id, Ok(result)).await
                }
                Err(m) => {
                    audited_error(state, principal, meta, method, id, INVALID_PARAMS, &m).await
                }
            }
        }
        "ping" => audited(state, principal, meta, method, id, Ok(json!({}))).await,
        _ => {
            let m = format!(
                "unknown method '{method}': /mcp/rpc answers tools/list, tools/call and ping (MCP clients should use /mcp)"
            );
            audited_error(state, principal, meta, method, id, METHOD_NOT_FOUND, &m).await
        }
    }
}

async fn audited_error(
    state: &McpState,
    principal: &Principal,
    meta: RequestMeta,
    method: &str,
    id: Value,
    code: i64,
    message: &str,
) -> Value {
    audited(state, principal, meta, method, id, Err((code, message))).await
}

/// Records a request that is not a tool call, then answers it.
async fn audited(
    state: &McpState,
    principal: &Principal,
    mut meta: RequestMeta,
    method: &str,
    id: Value,
    result: Result<Value, (i64, &str)>,
) -> Value {
    if meta.call.is_none() {
        meta.call = Some(CallInfo {
            method: method.to_owned(),
            tool: None,
            arguments: Value::Null,
        });
    }
    let ctx = Ctx {
        principal,
        meta: &meta,
    };
    let (outcome, message) = match &result {
        Ok(_) => (Outcome::Ok, None),
        Err((_, m)) => (Outcome::Error, Some(*m)),
    };
    if let Err(e) = state
        .caps
        .core()
        .record_request(ctx, None, outcome, message)
        .await
    {
        tracing::error!(error = %e, method, "could not audit a JSON-RPC request");
        return error(
            id,
            INTERNAL_ERROR,
            "the server could not record this request",
            None,
        );
    }
    match result {
        Ok(v) => success(id, v),
        Err((code, m)) => error(id, code, m, None),
    }
}
