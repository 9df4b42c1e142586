//! Fetching catalogs from upstreams (through the pool's live sessions) and
//! the gateway's background work: refreshing catalogs on the upstream's
//! `list_changed`, on a schedule (one replica claims each), and the pool's
//! housekeeping.

use std::sync::Arc;
use std::time::Duration;

use switchboard_capabilities::{ListChange, ListKind};
use switchboard_core::Core;
use switchboard_core::connections::CatalogTool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::pool::{PoolEvent, UpstreamPool};

pub use switchboard_core::HOP_HEADER;

/// Lists every tool of a connection's upstream (all pages).
pub async fn fetch_catalog(
    pool: &UpstreamPool,
    connection_id: &str,
    version: i64,
) -> Result<Vec<CatalogTool>, String> {
    let peer = pool.peer(connection_id, version).await?;
    let listed = tokio::time::timeout(pool.settings().call_timeout, peer.list_all_tools())
        .await
        .map_err(|_| {
            format!(
                "the upstream did not list its tools within {} s",
                pool.settings().call_timeout.as_secs()
            )
        })?
        .map_err(|e| format!("the upstream MCP server failed to list its tools: {e}"))?;
    Ok(listed
        .into_iter()
        .map(|t| CatalogTool {
            name: t.name.to_string(),
            title: t.title.clone(),
            description: t.description.as_deref().unwrap_or_default().to_owned(),
            input_schema: serde_json::Value::Object((*t.input_schema).clone()),
            output_schema: t
                .output_schema
                .as_ref()
                .map(|s| serde_json::Value::Object((**s).clone())),
            annotations: t
                .annotations
                .as_ref()
                .and_then(|a| serde_json::to_value(a).ok()),
        })
        .collect())
}

/// Refreshes one connection's catalog now and records the result.
pub async fn refresh_now(core: &Core, pool: &UpstreamPool, connection_id: &str) {
    let Ok(Some(target)) = core.upstream_target(connection_id).await else {
        return;
    };
    let fetched = fetch_catalog(pool, connection_id, target.version).await;
    if let Err(e) = &fetched {
        tracing::warn!(connection = %target.slug, error = %e, "catalog refresh failed");
    }
    if let Err(e) = core
        .store_catalog_automatic(connection_id, fetched, switchboard_core::now_ms())
        .await
    {
        tracing::warn!(connection = %target.slug, error = %e, "could not store a refreshed catalog");
    }
}

/// How the background work is paced.
#[derive(Debug, Clone)]
pub struct BackgroundSettings {
    /// A catalog older than this is refreshed.
    pub catalog_max_age: Duration,
    /// How often the schedule and the pool's housekeeping run.
    pub tick: Duration,
}

/// Runs until `stop` is cancelled: list_changed refreshes (a burst of
/// notifications is one refresh), scheduled refreshes, housekeeping.
pub async fn run_background(
    core: Core,
    pool: Arc<UpstreamPool>,
    mut events: mpsc::UnboundedReceiver<PoolEvent>,
    changes: tokio::sync::broadcast::Sender<ListChange>,
    settings: BackgroundSettings,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(settings.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            event = events.recv() => {
                let Some(PoolEvent::ListChanged(first, kind)) = event else { break };
                if kind != ListKind::Tools {
                    // Not cached here: callers are told at once.
                    let _ = changes.send(ListChange { connection_id: first, kind });
                    continue;
                }
                // Let a burst settle, then refresh each connection once;
                // other lists' changes in the burst are passed on.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let mut ids = vec![first];
                while let Ok(PoolEvent::ListChanged(id, kind)) = events.try_recv() {
                    if kind != ListKind::Tools {
                        let _ = changes.send(ListChange { connection_id: id, kind });
                    } else if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                for id in ids {
                    let (core, pool, changes) = (core.clone(), pool.clone(), changes.clone());
                    // Not inline: the refresh talks to the session whose
                    // notification we are handling. Callers hear of the
                    // change once the catalog has it.
                    tokio::spawn(async move {
                        refresh_now(&core, &pool, &id).await;
                        let _ = changes.send(ListChange { connection_id: id, kind: ListKind::Tools });
                    });
                }
            }
            _ = tick.tick() => {
                let max_age = settings.catalog_max_age.as_millis() as i64;
                match core.claim_stale_catalogs(max_age, 20, switchboard_core::now_ms()).await {
                    Ok(ids) => {
                        for id in ids {
                            refresh_now(&core, &pool, &id).await;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not list catalogs to refresh"),
                }
                pool.housekeeping().await;
            }
        }
    }
    pool.shutdown().await;
}
