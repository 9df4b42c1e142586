//! `switchboard-test-upstream`: the MCP server the gateway's tests and
//! benchmark use as an upstream. Never part of the main binary.
//!
//!     switchboard-test-upstream stdio
//!     switchboard-test-upstream http [--listen 127.0.0.1:0]
//!
//! Over HTTP it prints `listening on http://ADDR/mcp` once bound and serves
//! both protocol eras on that URL. It exposes the reference surface the
//! official conformance suite's server scenarios describe, plus tools for
//! the gateway's own tests (`echo`, `hang`, `crash`, `big_output`,
//! `garbage`, `env`, `pid`, `add_tool`).
// A test fixture, never shipped: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod fixture;

use std::sync::Arc;

use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

fn usage() -> ! {
    eprintln!(
        "usage: switchboard-test-upstream stdio [--legacy] [MARKER] | http [--listen 127.0.0.1:0]"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        // A MARKER (any word not starting with '-') is ignored: tests find
        // their children by it.
        Some("stdio") => {
            let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
            let legacy = rest.contains(&"--legacy");
            if rest.iter().any(|a| a.starts_with('-') && *a != "--legacy") {
                usage()
            }
            run_stdio(legacy).await
        }
        Some("http") => {
            let listen = match args.get(1).map(String::as_str) {
                None => "127.0.0.1:0".to_owned(),
                Some("--listen") => args.get(2).cloned().unwrap_or_else(|| usage()),
                Some(_) => usage(),
            };
            run_http(&listen).await
        }
        _ => usage(),
    }
}

/// `legacy`: act as a 2025-11-25 server (no `server/discover`).
async fn run_stdio(legacy: bool) {
    let state = Arc::new(fixture::Shared::default());
    let mut server = fixture::Fixture::new(state, true);
    if legacy {
        server = server.legacy_only();
    }
    match server.serve(rmcp::transport::stdio()).await {
        Ok(running) => {
            let _ = running.waiting().await;
        }
        Err(e) => {
            eprintln!("switchboard-test-upstream: {e}");
            std::process::exit(1);
        }
    }
}

async fn run_http(listen: &str) {
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("switchboard-test-upstream: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("switchboard-test-upstream: {e}");
            std::process::exit(1);
        }
    };
    let state = Arc::new(fixture::Shared::default());
    let service = StreamableHttpService::new(
        move || Ok(fixture::Fixture::new(state.clone(), false)),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = axum::Router::new().route_service("/mcp", service);
    println!("listening on http://{addr}/mcp");
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("switchboard-test-upstream: {e}");
        std::process::exit(1);
    }
}
