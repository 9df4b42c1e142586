//! The HTTP listener: accepts connections and serves the router on them,
//! bounded so that idle or slow clients cannot exhaust the server.
//!
//! - At most `max_connections` at once: beyond it the loop stops accepting
//!   (new clients wait in the kernel's backlog, costing no descriptor) and
//!   says so once in the log until the count falls again.
//! - A connection must send a request's headers within `header_timeout`
//!   (slowloris), and a keep-alive connection idle that long is closed:
//!   hyper's header-read timer runs whenever it waits for a request head.
//!   A connection that sends nothing at all (which hyper's protocol sniffing
//!   would wait on forever) is dropped after the same time. A streamed answer
//!   (an MCP session's SSE stream) is not a wait for headers and is not cut.
//! - Graceful shutdown: stop accepting, let in-flight requests finish.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::{Service, ServiceExt};

/// How the listener bounds its connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes, then waits for
/// the open connections' in-flight requests (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut make = app.into_make_service_with_connect_info::<SocketAddr>();
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(128);
    http.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30))
        .max_concurrent_streams(128);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut shutdown = pin!(shutdown);
    let mut full = false;
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if !full {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "the connection limit is reached (server.max_connections): new connections wait until others close"
                    );
                    full = true;
                }
                tokio::select! {
                    p = slots.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        if full && slots.available_permits() > limits.max_connections / 10 {
            full = false;
        }
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors or memory: back off instead of spinning.
                    tracing::error!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Streamed answers (MCP's SSE) end with a small write; with Nagle's
        // algorithm on, it waits ~40 ms for the client's delayed ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let Ok(router) = make.call(peer).await;
        let started = Arc::new(AtomicBool::new(false));
        let seen = started.clone();
        let service = router.map_request(move |r: axum::http::Request<Incoming>| {
            seen.store(true, Ordering::Relaxed);
            r
        });
        let connection = graceful.watch(
            http.serve_connection_with_upgrades(
                TokioIo::new(tcp),
                TowerToHyperService::new(service),
            )
            .into_owned(),
        );
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let mut connection = pin!(connection);
            let result = tokio::select! {
                r = connection.as_mut() => r,
                () = tokio::time::sleep(header_timeout) => {
                    if !started.load(Ordering::Relaxed) {
                        // Nothing, or not even a request head, in time.
                        return;
                    }
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection closed");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Raises this process's open-file limit to its hard limit, where allowed:
/// every connection and stdio child needs descriptors.
pub fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "raised the open-file limit"),
            Err(e) => tracing::warn!(soft, hard, error = %e, "could not raise the open-file limit"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the open-file limit"),
    }
}
