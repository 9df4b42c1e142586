//! A raw MCP client for tests: every header and body is visible, so tests
//! can assert the exact wire (statuses, challenges, session ids, SSE), plus
//! where the real client tools (Python and TypeScript SDKs, Inspector,
//! conformance suite) are installed.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::{Resp, Server};

pub const V2025: &str = "2025-11-25";
pub const V2026: &str = "2026-07-28";

/// The `_meta` every 2026-07-28 request carries.
pub fn meta_2026() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "switchboard-tests", "version": "1"}
    })
}

pub struct Mcp {
    pub http: reqwest::Client,
    pub url: String,
    pub token: Option<String>,
    pub session: Option<String>,
    /// Extra headers on every request (Host, Origin overrides…).
    pub headers: Vec<(String, String)>,
}

/// The JSON-RPC message inside a response: the body itself, or the SSE
/// `data:` event that carries a result or an error.
pub fn message(resp: &Resp) -> Value {
    if let Value::String(text) = &resp.body {
        for line in text.lines() {
            if let Some(data) = line.strip_prefix("data:")
                && let Ok(v) = serde_json::from_str::<Value>(data.trim())
                && (v.get("result").is_some() || v.get("error").is_some())
            {
                return v;
            }
        }
    }
    resp.body.clone()
}

impl Mcp {
    pub fn new(server: &Server, token: Option<&str>) -> Mcp {
        Mcp::at(&server.url("/mcp"), token)
    }

    pub fn at(url: &str, token: Option<&str>) -> Mcp {
        Mcp {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            token: token.map(str::to_owned),
            session: None,
            headers: Vec::new(),
        }
    }

    /// POSTs a raw body with the given protocol-version header.
    pub async fn post_raw(
        &self,
        body: String,
        version: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Resp {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(v) = version {
            req = req.header("mcp-protocol-version", v);
        }
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        send(req).await
    }

    /// A 2026-07-28 stateless request (with `_meta` and the standard headers).
    pub async fn stateless(&self, method: &str, mut params: Value) -> Resp {
        params["_meta"] = meta_2026();
        let name = params["name"].as_str().map(str::to_owned);
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        let mut extra = vec![("mcp-method", method)];
        if let Some(n) = &name {
            extra.push(("mcp-name", n.as_str()));
        }
        self.post_raw(body.to_string(), Some(V2026), &extra).await
    }

    pub async fn call_2026(&self, tool: &str, args: Value) -> Resp {
        self.stateless("tools/call", json!({"name": tool, "arguments": args}))
            .await
    }

    /// Opens a 2025-11-25 session; panics unless the server hands one out.
    pub async fn initialize(&mut self) -> Resp {
        self.session = None;
        let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": V2025, "capabilities": {},
            "clientInfo": {"name": "switchboard-tests", "version": "1"}}});
        let r = self.post_raw(body.to_string(), None, &[]).await;
        assert_eq!(r.status, 200, "initialize: {:?}", r.body);
        let id = r.header("mcp-session-id");
        assert!(!id.is_empty(), "no session id");
        self.session = Some(id);
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let n = self.post_raw(note.to_string(), Some(V2025), &[]).await;
        assert_eq!(n.status, 202, "initialized: {:?}", n.body);
        r
    }

    /// A request in the current legacy session.
    pub async fn legacy(&self, method: &str, params: Value) -> Resp {
        let body = json!({"jsonrpc": "2.0", "id": 3, "method": method, "params": params});
        self.post_raw(body.to_string(), Some(V2025), &[]).await
    }

    pub async fn call_legacy(&self, tool: &str, args: Value) -> Resp {
        self.legacy("tools/call", json!({"name": tool, "arguments": args}))
            .await
    }

    pub async fn delete_session(&self) -> Resp {
        let mut req = self.http.delete(&self.url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        req = req.header("mcp-protocol-version", V2025);
        send(req).await
    }
}

/// Plain JSON-RPC on `/mcp/rpc`.
pub async fn rpc(server: &Server, token: Option<&str>, body: Value) -> Resp {
    let mut req = reqwest::Client::new()
        .post(server.url("/mcp/rpc"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    send(req).await
}

async fn send(req: reqwest::RequestBuilder) -> Resp {
    super::read_resp(req.send().await.expect("request")).await
}

/// The structured result of a successful (non-error) tool call.
pub fn structured(resp: &Resp) -> Value {
    let m = message(resp);
    assert_eq!(m["result"]["isError"], false, "not a success: {m}");
    m["result"]["structuredContent"].clone()
}

/// Where `scripts/mcp-tools.sh` installed the real clients.
pub fn tools_dir() -> PathBuf {
    let dir = std::env::var_os("SWITCHBOARD_MCP_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/mcp-tools")
        });
    assert!(
        dir.join("node22/bin/node").exists() && dir.join("py/bin/python").exists(),
        "the MCP client tools are not installed in {}: run scripts/mcp-tools.sh (scripts/test.sh does)",
        dir.display()
    );
    dir
}

pub fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}
