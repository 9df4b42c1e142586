//! The gateway to external MCP servers: the pool of live upstream sessions
//! (Streamable HTTP clients and supervised stdio children), the catalog
//! refresh (on demand, on `list_changed`, on a schedule), health, and the
//! [`switchboard_capabilities::ConnectionSource`] that turns connections
//! into capabilities. Connections, their sealed credentials and grants are
//! use cases of the core (`switchboard_core::connections`); this crate does
//! the network and the processes.
//!
//! Architecture Invariant: the client's own token is never passed
//! upstream; an upstream gets exactly the connection's configured headers
//! (or, over stdio, a cleared environment plus the connection's variables).
//! Every outbound HTTP connection goes through `switchboard-egress`.

pub mod confinement;
pub mod health;
pub mod pool;
mod source;
mod upstream;

use std::sync::Arc;

use axum::Json;
use axum::extract::Path;
use switchboard_api::{ApiError, ApiState, Caller};
use switchboard_core::connections::ConnectionView;
use switchboard_egress::{EgressClient, Limits, NetworkPolicy};
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use health::{HealthBook, HealthSettings};
pub use pool::{PoolSettings, ProcessView, UpstreamPool};
pub use source::GatewaySource;
pub use switchboard_core::integrations;
pub use upstream::{BackgroundSettings, HOP_HEADER};

/// What the gateway's routes need. Cheap to clone.
#[derive(Clone)]
pub struct GatewayState {
    pub api: ApiState,
    pub pool: Arc<UpstreamPool>,
    pub health: Arc<HealthBook>,
    pub source: Arc<GatewaySource>,
}

/// The running gateway: its state, and the background task's stop switch.
pub struct Gateway {
    pub state: GatewayState,
    pub stop: CancellationToken,
    background: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Builds the pool and starts the background work (catalog refreshes,
    /// housekeeping). Call [`Gateway::shutdown`] at the end: it kills every
    /// child process group.
    pub fn start(
        api: ApiState,
        policy: NetworkPolicy,
        pool_settings: PoolSettings,
        health_settings: HealthSettings,
        background: BackgroundSettings,
    ) -> Result<Self, switchboard_egress::EgressError> {
        let limits = Limits {
            request_timeout: pool_settings.call_timeout,
            max_response_bytes: pool_settings.max_response_bytes,
            ..Default::default()
        };
        let egress = Arc::new(EgressClient::new(policy, limits)?);
        let hub = switchboard_api::hub_id(api.http.public_url.as_str());
        let core = api.core.clone();
        let (pool, events) = UpstreamPool::new(pool_settings, egress, hub, core.clone());
        let health = Arc::new(HealthBook::new(core.clone(), health_settings));
        // Slow listeners miss changes rather than hold the others up.
        let (changes, _) = tokio::sync::broadcast::channel(256);
        let source = Arc::new(GatewaySource::new(
            core.clone(),
            pool.clone(),
            health.clone(),
            changes.clone(),
        ));
        let stop = CancellationToken::new();
        let background = tokio::spawn(upstream::run_background(
            core,
            pool.clone(),
            health.clone(),
            events,
            changes,
            background,
            stop.clone(),
        ));
        Ok(Gateway {
            state: GatewayState {
                api,
                pool,
                health,
                source,
            },
            stop,
            background,
        })
    }

    /// Stops the background work and every upstream (children included).
    pub async fn shutdown(self) {
        self.stop.cancel();
        if tokio::time::timeout(std::time::Duration::from_secs(5), self.background)
            .await
            .is_err()
        {
            self.state.pool.shutdown().await;
        }
    }
}

/// The gateway's REST routes (under `/api/v1`), with their OpenAPI
/// descriptions: the REST API merges them into its document.
pub fn routes(state: GatewayState) -> OpenApiRouter<ApiState> {
    let v1 = OpenApiRouter::new()
        .routes(routes!(refresh))
        .routes(routes!(tools))
        .routes(routes!(process))
        .routes(routes!(list_integrations, add_integration))
        .routes(routes!(delete_integration))
        .routes(routes!(connect_integration))
        .layer(axum::Extension(state));
    OpenApiRouter::new().nest("/api/v1", v1)
}

/// Fetches the upstream's tool list now and caches it (connections.publish).
/// An unreachable upstream is not an HTTP error: the connection is marked
/// `disconnected` with the reason, and the answer shows it.
#[utoipa::path(post, path = "/connections/{id}/refresh", tag = "connections", params(("id" = String, Path, description = "The connection's id or slug")), responses((status = 200, body = ConnectionView)))]
async fn refresh(
    axum::Extension(s): axum::Extension<GatewayState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let ctx = caller.ctx();
    let core = &s.api.core;
    let target = core.connection_for_refresh(ctx, &id).await?;
    let fetched = upstream::fetch_catalog(&s.pool, &target.id, target.version).await;
    if let Err(e) = &fetched {
        tracing::warn!(connection = %target.slug, error = %e, "catalog refresh failed");
    }
    Ok(Json(core.store_catalog(ctx, &target.id, fetched).await?))
}

/// The cached tool names of a connection.
#[utoipa::path(get, path = "/connections/{id}/tools", tag = "connections", params(("id" = String, Path, description = "The connection's id or slug")), responses((status = 200, body = Vec<String>)))]
async fn tools(
    axum::Extension(s): axum::Extension<GatewayState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<String>>, ApiError> {
    Ok(Json(
        s.api.core.catalog_tool_names(caller.ctx(), &id).await?,
    ))
}

/// The connection's upstream session or child on this replica: whether it
/// runs, its pid, restarts, last error and the tail of its stderr (secret
/// values masked). For admins (connections.publish).
#[utoipa::path(get, path = "/connections/{id}/process", tag = "connections", params(("id" = String, Path, description = "The connection's id or slug")), responses((status = 200, body = ProcessView)))]
async fn process(
    axum::Extension(s): axum::Extension<GatewayState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ProcessView>, ApiError> {
    let ctx = caller.ctx();
    let target = s.api.core.connection_process_target(ctx, &id).await?;
    Ok(Json(s.pool.process_view(&target.id).await))
}

/// The org's custom integrations, parsed (an entry that no longer parses
/// is skipped and logged).
async fn custom_entries(
    s: &GatewayState,
    caller: &Caller,
) -> Result<Vec<integrations::Integration>, ApiError> {
    if !s.api.core.allows(
        caller.ctx(),
        &switchboard_core::access::ops::INTEGRATION_LIST,
    ) {
        return Ok(Vec::new());
    }
    Ok(s.api
        .core
        .custom_integrations(caller.ctx())
        .await?
        .iter()
        .filter_map(|v| match integrations::parse_custom(v) {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::warn!(error = %e, "a stored custom integration no longer parses");
                None
            }
        })
        .collect())
}

/// The integration catalog: the entries shipped in the binary (what each
/// runs or reaches, the settings it needs with secrets marked, how it was
/// verified), the operator's own (`verified: operator`), then the org's
/// own (`verified: custom`).
#[utoipa::path(get, path = "/integrations", tag = "connections", responses((status = 200, body = Vec<integrations::Integration>)))]
async fn list_integrations(
    axum::Extension(s): axum::Extension<GatewayState>,
    caller: Caller,
) -> Result<Json<Vec<integrations::Integration>>, ApiError> {
    let mut all: Vec<_> = s.api.core.config().catalog.entries().cloned().collect();
    all.extend(custom_entries(&s, &caller).await?);
    Ok(Json(all))
}

/// Adds an org's own integration (connections.publish): the same shape as
/// a shipped entry, checked before it is stored (id rules, transport
/// fields, a settings schema that compiles, valid targets, sizes).
#[utoipa::path(post, path = "/integrations", tag = "connections", request_body = integrations::Integration, responses((status = 201, body = integrations::Integration)))]
async fn add_integration(
    axum::Extension(s): axum::Extension<GatewayState>,
    caller: Caller,
    switchboard_api::ApiJson(body): switchboard_api::ApiJson<serde_json::Value>,
) -> Result<(axum::http::StatusCode, Json<integrations::Integration>), ApiError> {
    let entry = integrations::parse_custom(&body).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("integration: {e}"),
        )
    })?;
    s.api
        .core
        .add_custom_integration(caller.ctx(), &entry.id, &body)
        .await?;
    Ok((axum::http::StatusCode::CREATED, Json(entry)))
}

/// Removes an org's own integration (connections.publish).
#[utoipa::path(delete, path = "/integrations/{id}", tag = "connections", params(("id" = String, Path, description = "The integration's id")), responses((status = 204)))]
async fn delete_integration(
    axum::Extension(s): axum::Extension<GatewayState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    s.api
        .core
        .delete_custom_integration(caller.ctx(), &id)
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Publishes a connection from a catalog entry (connections.publish): the
/// core checks the settings against the entry (only those it declares; a
/// path on the host only for the operator) and audits a refusal.
#[utoipa::path(post, path = "/connections/from-integration", tag = "connections", request_body = switchboard_core::connections::PublishIntegration, responses((status = 201, body = ConnectionView)))]
async fn connect_integration(
    axum::Extension(s): axum::Extension<GatewayState>,
    caller: Caller,
    switchboard_api::ApiJson(body): switchboard_api::ApiJson<
        switchboard_core::connections::PublishIntegration,
    >,
) -> Result<(axum::http::StatusCode, Json<ConnectionView>), ApiError> {
    let view = s.api.core.publish_integration(caller.ctx(), body).await?;
    Ok((axum::http::StatusCode::CREATED, Json(view)))
}
