//! Liveness, readiness and status.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{ApiError, ApiState, Caller};

/// `/healthz` answers while the process runs; `/readyz` only when the database answers.
pub(crate) fn probes() -> Router<ApiState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(s): State<ApiState>| async move {
                match s.core.db().ping().await {
                    Ok(()) => (StatusCode::OK, "ready"),
                    Err(e) => {
                        tracing::warn!(error = %e, "readiness check failed");
                        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
                    }
                }
            }),
        )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusView {
    pub version: String,
    pub uptime_seconds: u64,
    pub database: DatabaseStatus,
    /// The org's gateway connections by health.
    pub connections: switchboard_core::connections::ConnectionsHealth,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseStatus {
    /// `sqlite` or `postgres`.
    pub backend: String,
    pub reachable: bool,
}

/// The server's status for the caller's organization.
#[utoipa::path(get, path = "/status", tag = "system", responses((status = 200, body = StatusView)))]
pub async fn status(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<StatusView>, ApiError> {
    let reachable = s.core.db().ping().await.is_ok();
    let connections = s.core.connections_health(&caller.principal).await?;
    Ok(Json(StatusView {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_seconds: s.started.elapsed().as_secs(),
        database: DatabaseStatus {
            backend: s.core.db().backend().as_str().to_owned(),
            reachable,
        },
        connections,
    }))
}
