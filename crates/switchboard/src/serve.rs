//! `switchboard serve`: every surface on one listener, and a graceful,
//! bounded shutdown.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, StatusCode, header};
use switchboard_api::{ApiError, ApiState, HttpSettings};
use switchboard_core::Core;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing_subscriber::EnvFilter;

use crate::commands::{core_config, open_db};
use crate::settings::Settings;

fn init_tracing(settings: &Settings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(format!("{},sqlx=warn,rmcp=warn", settings.log.level)))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only on a terminal: a log redirected to a file or a pipe
    // stays plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = if settings.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Every surface on one router, with the cross-cutting layers. The MCP
/// routes are outside the request timeout: a legacy session's SSE stream
/// stays open for as long as the client wants it.
pub fn app(
    state: ApiState,
    oauth: switchboard_oauth::ClientMetadataSettings,
    gateway: utoipa_axum::router::OpenApiRouter<ApiState>,
    mcp: Router,
    request_timeout: std::time::Duration,
) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let timed = Router::new()
        .merge(switchboard_api::router(state.clone(), gateway))
        .merge(switchboard_oauth::router(
            switchboard_oauth::OAuthState::new(state.clone(), oauth),
        ))
        .merge(switchboard_web::router(state))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such route: see /api/v1/openapi.json",
            )
        })
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ));
    Router::new()
        .merge(mcp)
        .merge(timed)
        .layer(axum::middleware::from_fn(refuse_malformed))
        .layer(CatchPanicLayer::new())
        // Spans name the route pattern, never the raw URI: setup and
        // invitation links carry secrets in their path.
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "unmatched".into());
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            tracing::info_span!("request", method = %req.method(), route = %route, request_id = %id)
        }))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// Refuses, before any route sees it, a request no route could take
/// safely, with the JSON error body every surface understands: two `Host`
/// headers (which one a proxy and this server believe could differ), or a
/// path or query that holds a NUL character (`%00`) or a path that is not
/// UTF-8 once decoded.
async fn refuse_malformed(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let refuse = |message: &'static str| ApiError::bad_request(message).into_response();
    if req.headers().get_all(header::HOST).iter().nth(1).is_some() {
        return refuse("the request has more than one Host header");
    }
    let path: Vec<u8> = percent_encoding::percent_decode_str(req.uri().path()).collect();
    if path.contains(&0) {
        return refuse("the URL's path contains a NUL character (%00)");
    }
    if std::str::from_utf8(&path).is_err() {
        return refuse("the URL's path is not valid UTF-8 once decoded");
    }
    if let Some(query) = req.uri().query()
        && percent_encoding::percent_decode_str(query).any(|b| b == 0)
    {
        return refuse("the URL's query contains a NUL character (%00)");
    }
    next.run(req).await
}

/// The MCP surfaces: the org's own tools behind the one call path.
fn mcp_router(
    settings: &Settings,
    core: &Core,
    http: &Arc<HttpSettings>,
    connections: Arc<dyn switchboard_capabilities::ConnectionSource>,
) -> Result<(Router, tokio_util::sync::CancellationToken)> {
    let org_tools = switchboard_capabilities::OrgTools::new(settings.mcp.page_size)
        .map_err(anyhow::Error::msg)?;
    let providers: Vec<Arc<dyn switchboard_capabilities::Provider>> = vec![Arc::new(org_tools)];
    let caps = switchboard_capabilities::Capabilities::new(
        core.clone(),
        providers,
        settings.mcp.page_size,
    )
    .map_err(anyhow::Error::msg)?
    .with_connections(connections);
    let state = switchboard_protocol::McpState {
        caps,
        http: http.clone(),
        hosts: Arc::new(switchboard_protocol::HostRules::new(
            &http.public_url,
            &settings.server.allowed_hosts,
        )),
        max_body_bytes: settings.mcp.max_body_bytes,
        allow_query_token: settings.mcp.allow_query_token,
        live_sessions: Default::default(),
    };
    Ok(switchboard_protocol::router(state))
}

pub async fn serve(settings: Settings) -> Result<()> {
    init_tracing(&settings);
    crate::listener::raise_open_file_limit();
    let resolved = settings.resolve()?;
    let db = open_db(&settings).await?;
    let listener = tokio::net::TcpListener::bind(resolved.listen)
        .await
        .with_context(|| format!("listening on {}", resolved.listen))?;
    let local = listener.local_addr()?;
    let public_url = match &resolved.public_url {
        Some(u) => u.clone(),
        None => url::Url::parse(&format!("http://{local}")).context("building the public URL")?,
    };
    let public = public_url.as_str().trim_end_matches('/').to_owned();
    let core = Core::new(db.clone(), core_config(&settings, &public)?)
        .with_vault(crate::commands::keyring(&settings)?);
    let http = HttpSettings {
        public_url,
        trusted_proxies: resolved.trusted_proxies.clone(),
        max_body_bytes: settings.server.max_body_bytes,
        request_timeout: resolved.request_timeout,
    };
    let http = Arc::new(http);
    let state = ApiState {
        core: core.clone(),
        http: http.clone(),
        started: Instant::now(),
    };
    // The private directories of stdio children: outside the data directory
    // (whose mode keeps other users out), traversable but not listable, and
    // removed when the server stops.
    let work_dir = tempfile::Builder::new()
        .prefix("switchboard-stdio-")
        .tempdir()
        .context("creating the stdio children's work directory")?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(work_dir.path(), std::fs::Permissions::from_mode(0o711))
            .context("setting the mode of the stdio work directory")?;
    }
    let gateway = start_gateway(&settings, &resolved, state.clone(), work_dir.path())?;
    let (mcp, mcp_cancel) = mcp_router(&settings, &core, &http, gateway.state.source.clone())?;
    let client_metadata = switchboard_oauth::ClientMetadataSettings {
        allowed_networks: resolved.client_metadata_networks.clone(),
        allow_loopback: settings.oauth.client_metadata_allow_loopback,
        max_bytes: settings.oauth.client_metadata_max_bytes,
        timeout: std::time::Duration::from_millis(settings.oauth.client_metadata_timeout_ms),
    };
    let mut app = app(
        state,
        client_metadata,
        switchboard_gateway::routes(gateway.state.clone()),
        mcp,
        resolved.request_timeout,
    );
    if settings.server.metrics {
        app = app.merge(metrics_router()?);
    }

    tracing::info!(backend = db.backend().as_str(), %local, public_url = %public, "switchboard started");
    if let Some(secret) = core.issue_setup_token(switchboard_core::now_ms()).await? {
        println!(
            "No owner yet. Open {public}/setup/{secret} within {} minutes to create the first owner and organization (the link works once), or run `switchboard admin bootstrap`.",
            settings.auth.setup_link_ttl_minutes
        );
    }
    // Printed last, once everything above is done: scripts and tests wait
    // for this line to learn the port.
    println!("switchboard listening on http://{local}");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let limits = crate::listener::Limits {
        max_connections: settings.server.max_connections,
        header_timeout: std::time::Duration::from_secs(settings.server.header_timeout_secs),
    };
    let server = tokio::spawn(async move {
        crate::listener::serve(listener, app, limits, async {
            let _ = stop_rx.await;
        })
        .await;
        Ok::<(), std::io::Error>(())
    });
    tokio::pin!(server);
    tokio::select! {
        res = &mut server => {
            res.context("server task")?.context("serving")?;
        }
        signal = shutdown_signal() => {
            tracing::info!(signal, "shutting down: no new connections, finishing in-flight requests");
            let _ = stop_tx.send(());
            // Ends MCP sessions' open SSE streams, which never finish by themselves.
            mcp_cancel.cancel();
            match tokio::time::timeout(resolved.shutdown_grace, &mut server).await {
                Ok(res) => res.context("server task")?.context("serving")?,
                Err(_) => {
                    tracing::warn!(grace_secs = resolved.shutdown_grace.as_secs(), "in-flight requests did not finish in time; closing");
                    server.abort();
                }
            }
        }
    }
    // Kills every stdio child's process group.
    gateway.shutdown().await;
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// `/metrics` in the Prometheus text format. The recorder is process-wide;
/// histograms are compacted every few seconds.
fn metrics_router() -> Result<Router> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    metrics::describe_counter!(
        "switchboard_upstream_requests_total",
        "Requests to upstream MCP servers by connection id and outcome (ok, unavailable)"
    );
    metrics::describe_histogram!(
        "switchboard_upstream_request_seconds",
        "Latency of requests to upstream MCP servers by connection id"
    );
    Ok(Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let body = handle.render();
            async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body) }
        }),
    ))
}

/// The gateway: the upstream pool and its background work.
fn start_gateway(
    settings: &Settings,
    resolved: &crate::settings::Resolved,
    api: ApiState,
    work_dir: &std::path::Path,
) -> Result<switchboard_gateway::Gateway> {
    let g = &settings.gateway;
    let secs = std::time::Duration::from_secs;
    let pool = switchboard_gateway::PoolSettings {
        connect_timeout: secs(g.connect_timeout_secs.max(1)),
        call_timeout: secs(g.call_timeout_secs.max(1)),
        max_response_bytes: g.max_response_bytes.max(1024),
        inherit_env: g.stdio_inherit_env.clone(),
        confinement: Some(confinement(settings, work_dir)?),
        idle_timeout: secs(g.stdio_idle_secs.max(1)),
    };
    let health = switchboard_gateway::HealthSettings {
        window: g.health_window.max(1),
        error_ratio: f64::from(g.health_degraded_error_percent.min(100)) / 100.0,
        slow_p50: std::time::Duration::from_millis(g.health_degraded_p50_ms),
    };
    let background = switchboard_gateway::BackgroundSettings {
        catalog_max_age: secs(g.catalog_refresh_secs.max(10)),
        tick: secs(g.catalog_refresh_secs.clamp(1, 10)),
    };
    switchboard_gateway::Gateway::start(
        api,
        switchboard_egress::NetworkPolicy {
            allowed_networks: resolved.allowed_networks.clone(),
            allow_loopback: g.allow_loopback_upstreams,
        },
        pool,
        health,
        background,
    )
    .context("building the gateway's HTTP client")
}

/// How stdio children are confined (see `sandbox.rs` and the gateway's
/// `confinement`): never as root unless the operator says so, never able to
/// read the data directory, the key or the configuration.
fn confinement(
    settings: &Settings,
    work_dir: &std::path::Path,
) -> Result<switchboard_gateway::confinement::Confinement> {
    let g = &settings.gateway;
    let run_as = match g.stdio_user.as_deref() {
        None | Some("") => None,
        Some(user) => Some(resolve_user(user)?),
    };
    let landlock = g.stdio_confinement == "landlock";
    let mut refusal = None;
    if nix::unistd::geteuid().is_root() && run_as.is_none() && !g.stdio_allow_root {
        refusal = Some(
            "stdio servers are not started: this server runs as root and gateway.stdio_user is unset, so they would run as root. Set gateway.stdio_user to a dedicated unprivileged user (for example one made with `useradd --system --no-create-home switchboard-mcp`), or gateway.stdio_allow_root = true to accept the risk".to_owned(),
        );
    }
    if landlock && let Err(e) = crate::sandbox::probe() {
        refusal = Some(format!(
            "stdio servers are not started: this kernel cannot confine them with Landlock ({e}). Use a kernel with Landlock (Linux 6.12 or later with it enabled), or set gateway.stdio_confinement = off to run them with only a separate user and resource limits"
        ));
    }
    if let Some(r) = &refusal {
        tracing::warn!("{r}");
    } else if !landlock {
        tracing::warn!(
            "gateway.stdio_confinement = off: stdio servers can read whatever their user can read"
        );
    }
    let mut deny = Vec::new();
    if settings.data_dir().exists() {
        deny.push(settings.data_dir().to_path_buf());
    }
    if let Some(file) = &settings.config_file {
        deny.push(file.clone());
    }
    Ok(switchboard_gateway::confinement::Confinement {
        launcher: std::env::current_exe().context("finding this program (the stdio launcher)")?,
        landlock,
        deny,
        work_dir: work_dir.to_path_buf(),
        limits: switchboard_gateway::confinement::ChildLimits {
            memory_mb: g.stdio_max_memory_mb,
            processes: Some(g.stdio_max_processes),
            open_files: g.stdio_max_open_files,
            file_mb: g.stdio_max_file_mb,
        },
        run_as,
        refusal,
    })
}

/// `gateway.stdio_user`: a user name, or `uid:gid`.
fn resolve_user(user: &str) -> Result<(u32, u32)> {
    if let Some((u, g)) = user.split_once(':') {
        let uid = u
            .parse()
            .with_context(|| format!("gateway.stdio_user: '{u}' is not a uid"))?;
        let gid = g
            .parse()
            .with_context(|| format!("gateway.stdio_user: '{g}' is not a gid"))?;
        return Ok((uid, gid));
    }
    let found = nix::unistd::User::from_name(user)
        .with_context(|| format!("gateway.stdio_user: looking up the user '{user}'"))?
        .with_context(|| format!("gateway.stdio_user: there is no user '{user}' on this machine (give a name or uid:gid)"))?;
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!(
            "gateway.stdio_user is set to '{user}', but only a server running as root can start processes as another user: unset it, or run as root"
        );
    }
    Ok((found.uid.as_raw(), found.gid.as_raw()))
}

async fn shutdown_signal() -> &'static str {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => "SIGINT",
        _ = term => "SIGTERM",
    }
}
