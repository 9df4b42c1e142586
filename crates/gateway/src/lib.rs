//! The gateway to external MCP servers: upstream clients and the catalog
//! (and, next, the stdio supervisor, virtual servers and health checks).
//! Connections, their sealed credentials and grants are use cases of the
//! core (`switchboard_core::connections`); this crate does the network.
//!
//! Architecture Invariant: the client's own token is never passed
//! upstream; an upstream gets exactly the connection's configured headers.
//! Every outbound connection goes through `switchboard-egress`.

mod upstream;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use switchboard_api::{ApiError, ApiState, Caller};
use switchboard_core::connections::ConnectionView;
use switchboard_egress::{EgressClient, Limits, NetworkPolicy};

pub use upstream::{HOP_HEADER, UpstreamError};

/// What the gateway's routes need. Cheap to clone.
#[derive(Clone)]
pub struct GatewayState {
    pub api: ApiState,
    egress: Arc<EgressClient>,
}

impl GatewayState {
    pub fn new(
        api: ApiState,
        policy: NetworkPolicy,
    ) -> Result<Self, switchboard_egress::EgressError> {
        let limits = Limits {
            request_timeout: std::time::Duration::from_secs(30),
            max_response_bytes: 4 * 1024 * 1024,
            ..Default::default()
        };
        Ok(GatewayState {
            api,
            egress: Arc::new(EgressClient::new(policy, limits)?),
        })
    }
}

/// The gateway's REST routes (under `/api/v1/connections`).
pub fn router(state: GatewayState) -> Router {
    Router::new()
        .route("/api/v1/connections/{id}/refresh", post(refresh))
        .route("/api/v1/connections/{id}/tools", get(tools))
        .layer(axum::Extension(state.egress.clone()))
        .with_state(state.api)
}

/// Fetches the upstream's tool list now and caches it (connections.publish).
/// An unreachable upstream is not an HTTP error: the connection is marked
/// `disconnected` with the reason, and the answer shows it.
async fn refresh(
    State(s): State<ApiState>,
    axum::Extension(egress): axum::Extension<Arc<EgressClient>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let ctx = caller.ctx();
    let target = s.core.connection_for_refresh(ctx, &id).await?;
    let creds = s.core.connection_credentials(&target.id).await?;
    let hub = switchboard_core::hub_id(s.http.public_url.as_str());
    let fetched = upstream::list_tools(&egress, &hub, &target, &creds)
        .await
        .map_err(|e| e.to_string());
    if let Err(e) = &fetched {
        tracing::warn!(connection = %target.slug, error = %e, "catalog refresh failed");
    }
    Ok(Json(s.core.store_catalog(ctx, &target.id, fetched).await?))
}

/// The cached tool names of a connection.
async fn tools(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<String>>, ApiError> {
    Ok(Json(s.core.catalog_tool_names(caller.ctx(), &id).await?))
}
