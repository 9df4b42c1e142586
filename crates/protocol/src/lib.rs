//! The MCP protocol surfaces: `/mcp` (Streamable HTTP, both protocol eras,
//! on rmcp) and `/mcp/rpc` (plain JSON-RPC 2.0 with batches), and the
//! protected-resource metadata (RFC 9728) that points clients at the
//! authorization server.
//!
//! Architecture Invariant: only this crate knows MCP and JSON-RPC wire
//! formats (and rmcp); it authenticates the request, turns it into a call on
//! the capability layer and maps the outcome back. It never decides who may
//! do what: `switchboard-capabilities` and the core do.
//!
//! `/mcp` in short: [`guard::mcp_guard`] (Host/Origin, bearer token, the
//! HTTP-level `insufficient_scope` refusal, session ownership) → rmcp's
//! `StreamableHttpService` (era selection, sessions, SSE, header checks) →
//! [`handler::OrgHandler`] → [`switchboard_capabilities::Capabilities`].

// At this edge an `Err` is the HTTP answer itself; boxing it buys nothing.
#![allow(clippy::result_large_err)]

mod guard;
mod handler;
mod rpc;
mod sessions;
mod virtual_server;
mod wire;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use switchboard_api::HttpSettings;
use switchboard_capabilities::Capabilities;
use switchboard_core::Principal;
use switchboard_domain::Scope;
use tokio_util::sync::CancellationToken;

pub use guard::HostRules;
pub use rpc::MAX_BATCH;

/// How often a session's `last_seen_at` is written (not on every request).
const SESSION_TOUCH_MS: i64 = 60_000;

/// What the MCP surfaces need. Cheap to clone.
#[derive(Clone)]
pub struct McpState {
    pub caps: Capabilities,
    pub http: Arc<HttpSettings>,
    pub hosts: Arc<HostRules>,
    pub max_body_bytes: usize,
    /// Accept `?token=` on `/mcp/rpc` (off by default: URLs end up in logs).
    pub allow_query_token: bool,
    /// The session managers of `/mcp` and of the virtual servers, set by
    /// [`router`]: a session ended to make room is closed here too.
    pub live_sessions: Arc<std::sync::OnceLock<[Arc<LocalSessionManager>; 2]>>,
}

impl McpState {
    /// Closes sessions (ended to make room for others) on this replica;
    /// another replica's copy goes once its row is gone.
    pub(crate) async fn close_sessions(&self, ids: &[String]) {
        use rmcp::transport::streamable_http_server::session::SessionManager;
        let Some(managers) = self.live_sessions.get() else {
            return;
        };
        for id in ids {
            let id: Arc<str> = Arc::from(id.as_str());
            for manager in managers {
                // Not found on this manager: it lives elsewhere.
                let _ = manager.close_session(&id).await;
            }
        }
    }
}

impl McpState {
    pub(crate) fn public_base(&self) -> String {
        self.http
            .public_url
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }

    /// The resource identifier (RFC 8707 audience) of `/mcp` and `/mcp/rpc`.
    pub fn org_resource(&self) -> String {
        format!("{}/mcp", self.public_base())
    }

    /// The RFC 9728 metadata URL of the resource at `path`.
    pub fn resource_metadata_url(&self, path: &str) -> String {
        format!(
            "{}/.well-known/oauth-protected-resource{path}",
            self.public_base()
        )
    }

    /// Whether `principal` may use session `id`: it must exist, be alive,
    /// and have been opened by the same account in the same organization
    /// (token rotation keeps both). `Err` is an internal failure's answer.
    async fn session_owner_ok(
        &self,
        id: &str,
        principal: &Principal,
        now: i64,
    ) -> Result<bool, axum::response::Response> {
        self.caps
            .core()
            .mcp_session_owner_ok(
                id,
                principal,
                now,
                sessions::SESSION_IDLE_MS,
                SESSION_TOUCH_MS,
            )
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "could not read an MCP session");
                (
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error",
                )
                    .into_response()
            })
    }
}

/// The MCP routes. Cancel the returned token at shutdown: it ends open
/// sessions and SSE streams, which would otherwise hold the server open.
pub fn router(state: McpState) -> (Router, CancellationToken) {
    let cancel = CancellationToken::new();
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(state.hosts.rmcp_hosts())
        .with_allowed_origins(state.hosts.rmcp_origins())
        .with_max_request_body_bytes(state.max_body_bytes)
        .with_cancellation_token(cancel.clone());
    config.session_store = Some(Arc::new(sessions::DbSessionStore {
        core: state.caps.core().clone(),
    }));
    let caps = state.caps.clone();
    let org_sessions = Arc::new(LocalSessionManager::default());
    let virtual_sessions = Arc::new(LocalSessionManager::default());
    let _ = state
        .live_sessions
        .set([org_sessions.clone(), virtual_sessions.clone()]);
    let service = StreamableHttpService::new(
        move || Ok(handler::OrgHandler::new(caps.clone())),
        org_sessions,
        config,
    );
    let caps = state.caps.clone();
    let mut vconfig = StreamableHttpServerConfig::default()
        .with_allowed_hosts(state.hosts.rmcp_hosts())
        .with_allowed_origins(state.hosts.rmcp_origins())
        .with_max_request_body_bytes(state.max_body_bytes)
        .with_cancellation_token(cancel.clone());
    vconfig.session_store = Some(Arc::new(sessions::DbSessionStore {
        core: state.caps.core().clone(),
    }));
    let saved = Arc::new(virtual_server::SavedServers::new(
        virtual_server::MAX_CACHED_SERVERS,
    ));
    let virtual_servers = StreamableHttpService::new(
        move || {
            Ok(virtual_server::VirtualHandler::new(
                caps.clone(),
                saved.clone(),
            ))
        },
        virtual_sessions,
        vconfig,
    );
    sessions::spawn_reaper(state.caps.core().clone());
    let mcp = Router::new()
        .route_service("/mcp", service)
        .route_service("/mcp/servers/{slug}", virtual_servers)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::mcp_guard,
        ));
    let router = Router::new()
        .merge(mcp)
        .route("/mcp/rpc", post(rpc::rpc))
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(|s: State<McpState>| resource_metadata(s, "/mcp")),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp/rpc",
            get(|s: State<McpState>| resource_metadata(s, "/mcp/rpc")),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp/servers/{slug}",
            get(virtual_resource_metadata),
        )
        // The root fallback clients try when a challenge names no document.
        .route(
            "/.well-known/oauth-protected-resource",
            get(|s: State<McpState>| resource_metadata(s, "/mcp")),
        )
        .with_state(state);
    (router, cancel)
}

/// The RFC 9728 document of a virtual server: its own resource, so a
/// token for one server is not valid on another (or on `/mcp`).
async fn virtual_resource_metadata(
    State(state): State<McpState>,
    axum::extract::Path(slug): axum::extract::Path<String>,
) -> axum::response::Response {
    if slug.is_empty()
        || !slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return (axum::http::StatusCode::NOT_FOUND, "no such server").into_response();
    }
    let base = state.public_base();
    axum::Json(json!({
        "resource": format!("{base}/mcp/servers/{slug}"),
        "authorization_servers": [base],
        "scopes_supported": [Scope::ConnectionsUse.as_str()],
        "bearer_methods_supported": ["header"],
        "resource_name": format!("Switchboard: {slug}"),
    }))
    .into_response()
}

/// RFC 9728 protected-resource metadata. `/mcp/rpc` is the same resource
/// as `/mcp` (one audience; clients accept a parent resource), so both
/// documents name `<public>/mcp`.
async fn resource_metadata(State(state): State<McpState>, _path: &str) -> impl IntoResponse {
    let base = state.public_base();
    let scopes: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    axum::Json(json!({
        "resource": state.org_resource(),
        "authorization_servers": [base],
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": "Switchboard MCP",
        "resource_documentation": format!("{base}/api/v1/openapi.json"),
    }))
}
