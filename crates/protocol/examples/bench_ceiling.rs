//! The ceiling for `bench/mcp.sh`: a bare rmcp Streamable HTTP server with
//! one tool, `constant`, that always answers `{"ok": true}`. It has no
//! authentication, database, audit or middleware, so its requests per second
//! are what rmcp and axum alone can do on this machine; the benchmark
//! reports Switchboard's `/mcp` as a fraction of it.
//!
//! Usage: `bench_ceiling PORT [--json] [--nagle]` (binds 127.0.0.1:PORT;
//! port 0 picks one). It prints `listening on http://ADDR` once it accepts
//! connections. By default the rmcp configuration is Switchboard's (answers
//! as SSE) and accepted sockets get `TCP_NODELAY`, the best this stack can
//! do. `--json` sends stateless answers as plain JSON (`json_response`);
//! `--nagle` leaves Nagle's algorithm on (axum's default), to measure what it
//! costs an SSE answer written in several pieces.
//!
//! Build: `cargo build --release -p switchboard-protocol --example bench_ceiling`.

use std::sync::Arc;

use axum::serve::ListenerExt;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, InitializeResult,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::json;

/// A handler with one tool and no state.
#[derive(Clone)]
struct Constant {
    tool: Tool,
}

impl Constant {
    fn new() -> Self {
        let mut schema = JsonObject::new();
        schema.insert("type".into(), json!("object"));
        schema.insert("properties".into(), json!({}));
        Constant {
            tool: Tool::new("constant", "Answers {\"ok\": true}.", Arc::new(schema)),
        }
    }
}

impl ServerHandler for Constant {
    fn get_info(&self) -> ServerConfig {
        let mut info = InitializeResult::new(ServerCapabilities::builder().enable_tools().build());
        info.server_info = Implementation::new("bench-ceiling", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![self.tool.clone()]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if request.name != "constant" {
            return Err(ErrorData::invalid_params(
                format!("there is no tool named '{}'", request.name),
                None,
            ));
        }
        Ok(CallToolResult::structured(json!({"ok": true})).into())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: bench_ceiling PORT [--json] [--nagle]";
    let mut args = std::env::args().skip(1);
    let port: u16 = match args.next() {
        Some(p) => p.parse()?,
        None => return Err(usage.into()),
    };
    let (mut json_response, mut nodelay) = (false, true);
    for arg in args {
        match arg.as_str() {
            "--json" => json_response = true,
            "--nagle" => nodelay = false,
            _ => return Err(usage.into()),
        }
    }

    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(["127.0.0.1", "localhost"])
        .with_json_response(json_response);
    let service = StreamableHttpService::new(
        || Ok(Constant::new()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app = axum::Router::new().route_service("/mcp", service);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let listener = listener.tap_io(move |tcp| {
        if nodelay && let Err(e) = tcp.set_nodelay(true) {
            eprintln!("could not set TCP_NODELAY: {e}");
        }
    });
    println!("listening on http://{addr}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
