//! Fetching catalogs from upstreams (through the pool's live sessions) and
//! the gateway's background work: refreshing catalogs on the upstream's
//! `list_changed`, on a schedule (one replica claims each), and the pool's
//! housekeeping.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::PaginatedRequestParams;
use rmcp::service::{Peer, RoleClient, ServiceError};
use serde_json::Value;
use switchboard_capabilities::{CatalogEntry, tool_problem};
use switchboard_capabilities::{ListChange, ListKind};
use switchboard_core::Core;
use switchboard_core::connections::{Catalog, CatalogTool, Listing, MAX_LISTED};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::pool::{PoolEvent, UpstreamPool};

pub use switchboard_api::HOP_HEADER;

/// Lists a connection's upstream: every tool, and the resources, resource
/// templates and prompts it says it offers (all pages, at most
/// [`MAX_LISTED`] items of each), within one call timeout.
pub async fn fetch_catalog(
    pool: &UpstreamPool,
    connection_id: &str,
    version: i64,
) -> Result<Catalog, String> {
    let peer = pool.peer(connection_id, version).await?;
    let limit = pool.settings().call_timeout;
    tokio::time::timeout(limit, list_everything(&peer))
        .await
        .map_err(|_| {
            format!(
                "the upstream did not list its tools, resources and prompts within {} s",
                limit.as_secs()
            )
        })?
}

async fn list_everything(peer: &Peer<RoleClient>) -> Result<Catalog, String> {
    let failed = |what: &str| {
        let what = what.to_owned();
        move |e: ServiceError| format!("the upstream MCP server failed to list its {what}: {e}")
    };
    let tools = all_pages(|cursor| async move {
        let r = peer.list_tools(Some(page(cursor))).await?;
        Ok((r.tools, r.next_cursor))
    })
    .await
    .map_err(failed("tools"))?;
    let tools = tools
        .into_iter()
        .map(|t| {
            let entry = CatalogEntry {
                name: t.name.to_string(),
                title: t.title.clone(),
                description: t.description.as_deref().unwrap_or_default().to_owned(),
                input_schema: Value::Object((*t.input_schema).clone()),
                output_schema: t
                    .output_schema
                    .as_ref()
                    .map(|s| Value::Object((**s).clone())),
                annotations: t
                    .annotations
                    .as_ref()
                    .and_then(|a| serde_json::to_value(a).ok()),
            };
            CatalogTool {
                problem: tool_problem(&entry),
                name: entry.name,
                title: entry.title,
                description: entry.description,
                input_schema: entry.input_schema,
                output_schema: entry.output_schema,
                annotations: entry.annotations,
            }
        })
        .collect();
    let offers = peer
        .peer_info()
        .map(|i| i.capabilities.clone())
        .unwrap_or_default();
    let mut listings = Vec::new();
    if offers.resources.is_some() {
        let resources = all_pages(|cursor| async move {
            let r = peer.list_resources(Some(page(cursor))).await?;
            Ok((r.resources, r.next_cursor))
        })
        .await
        .map_err(failed("resources"))?;
        listings.push((Listing::Resources, as_json(resources)));
        let templates = all_pages(|cursor| async move {
            let r = peer.list_resource_templates(Some(page(cursor))).await?;
            Ok((r.resource_templates, r.next_cursor))
        })
        .await
        .map_err(failed("resource templates"))?;
        listings.push((Listing::ResourceTemplates, as_json(templates)));
    }
    if offers.prompts.is_some() {
        let prompts = all_pages(|cursor| async move {
            let r = peer.list_prompts(Some(page(cursor))).await?;
            Ok((r.prompts, r.next_cursor))
        })
        .await
        .map_err(failed("prompts"))?;
        listings.push((Listing::Prompts, as_json(prompts)));
    }
    Ok(Catalog { tools, listings })
}

/// Items as the upstream sent them (rmcp's types keep unknown fields out,
/// but everything the protocol defines is kept).
fn as_json<T: serde::Serialize>(items: Vec<T>) -> Vec<Value> {
    items
        .into_iter()
        .filter_map(|i| serde_json::to_value(i).ok())
        .collect()
}

fn page(cursor: Option<String>) -> PaginatedRequestParams {
    PaginatedRequestParams::default().with_cursor(cursor)
}

/// Every page of a list, up to [`MAX_LISTED`] items; a cursor
/// seen before ends it too (an upstream must not keep us paging forever).
async fn all_pages<T, F, Fut>(mut next: F) -> Result<Vec<T>, ServiceError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), ServiceError>>,
{
    let mut items = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut cursor = None;
    loop {
        let (page, next_cursor) = next(cursor).await?;
        items.extend(page);
        match next_cursor {
            Some(c) if items.len() < MAX_LISTED && seen.insert(c.clone()) => cursor = Some(c),
            _ => break,
        }
    }
    items.truncate(MAX_LISTED);
    Ok(items)
}

/// Refreshes one connection's catalog now and records the result; what
/// was fetched, when it was.
pub async fn refresh_now(core: &Core, pool: &UpstreamPool, connection_id: &str) -> Option<Print> {
    let Ok(Some(target)) = core.upstream_target(connection_id).await else {
        return None;
    };
    let fetched = fetch_catalog(pool, connection_id, target.version).await;
    if let Err(e) = &fetched {
        tracing::warn!(connection = %target.slug, error = %e, "catalog refresh failed");
    }
    let print = fetched.as_ref().ok().map(Print::of);
    if let Err(e) = core
        .store_catalog_automatic(connection_id, fetched, switchboard_core::now_ms())
        .await
    {
        tracing::warn!(connection = %target.slug, error = %e, "could not store a refreshed catalog");
        return None;
    }
    print
}

/// A fingerprint of each list of a fetched catalog, so callers are told of
/// the lists that changed and of no others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Print {
    tools: u64,
    resources: u64,
    prompts: u64,
}

impl Print {
    fn of(c: &Catalog) -> Print {
        let mut tools = DefaultHasher::new();
        for t in &c.tools {
            (&t.name, &t.title, &t.description, &t.problem).hash(&mut tools);
            t.input_schema.to_string().hash(&mut tools);
            t.output_schema
                .as_ref()
                .map(Value::to_string)
                .hash(&mut tools);
            t.annotations
                .as_ref()
                .map(Value::to_string)
                .hash(&mut tools);
        }
        let (mut resources, mut prompts) = (DefaultHasher::new(), DefaultHasher::new());
        for (kind, items) in &c.listings {
            let h = match kind {
                Listing::Resources | Listing::ResourceTemplates => &mut resources,
                Listing::Prompts => &mut prompts,
            };
            kind.as_str().hash(h);
            for item in items {
                item.to_string().hash(h);
            }
        }
        Print {
            tools: tools.finish(),
            resources: resources.finish(),
            prompts: prompts.finish(),
        }
    }

    /// The lists that differ from `before` (all of them when this replica
    /// had not fetched the catalog yet: another replica may have changed it).
    fn changed_since(self, before: Option<Print>) -> Vec<ListKind> {
        let Some(b) = before else {
            return vec![ListKind::Tools, ListKind::Resources, ListKind::Prompts];
        };
        [
            (self.tools != b.tools, ListKind::Tools),
            (self.resources != b.resources, ListKind::Resources),
            (self.prompts != b.prompts, ListKind::Prompts),
        ]
        .into_iter()
        .filter_map(|(changed, kind)| changed.then_some(kind))
        .collect()
    }
}

fn resource_updated(changes: &tokio::sync::broadcast::Sender<ListChange>, id: String, uri: String) {
    let _ = changes.send(ListChange {
        connection_id: id,
        kind: ListKind::ResourceContent(uri),
    });
}

/// Refreshes a catalog and tells this replica's callers of each list that
/// changed since this replica last fetched it.
async fn refresh_and_tell(
    core: &Core,
    pool: &UpstreamPool,
    id: &str,
    seen: &Mutex<HashMap<String, Print>>,
    changes: &tokio::sync::broadcast::Sender<ListChange>,
) {
    let Some(now) = refresh_now(core, pool, id).await else {
        return;
    };
    let before = match seen.lock() {
        Ok(mut m) => m.insert(id.to_owned(), now),
        Err(_) => None,
    };
    for kind in now.changed_since(before) {
        let _ = changes.send(ListChange {
            connection_id: id.to_owned(),
            kind,
        });
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
    health: Arc<crate::health::HealthBook>,
    mut events: mpsc::UnboundedReceiver<PoolEvent>,
    changes: tokio::sync::broadcast::Sender<ListChange>,
    settings: BackgroundSettings,
    stop: CancellationToken,
) {
    // What this replica last fetched of each catalog.
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let mut tick = tokio::time::interval(settings.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            event = events.recv() => {
                let Some(first) = event else { break };
                // A resource's update goes to its subscribers at once.
                if let PoolEvent::ResourceUpdated(id, uri) = first {
                    resource_updated(&changes, id, uri);
                    continue;
                }
                // Let a burst settle, then refresh each connection once
                // (tools, resources and prompts are all in its catalog). A
                // new session may see other lists than the last one did.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let mut ids: Vec<String> = Vec::new();
                let mut next = Some(first);
                while let Some(event) = next {
                    match event {
                        PoolEvent::ListChanged(id) | PoolEvent::SessionStarted(id) => {
                            if !ids.contains(&id) {
                                ids.push(id);
                            }
                        }
                        PoolEvent::ResourceUpdated(id, uri) => resource_updated(&changes, id, uri),
                    }
                    next = events.try_recv().ok();
                }
                for id in ids {
                    let (core, pool, changes, seen) =
                        (core.clone(), pool.clone(), changes.clone(), seen.clone());
                    // Not inline: the refresh talks to the session whose
                    // notification we are handling. Callers hear of a
                    // change once the catalog has it.
                    tokio::spawn(async move {
                        refresh_and_tell(&core, &pool, &id, &seen, &changes).await;
                    });
                }
            }
            _ = tick.tick() => {
                let max_age = settings.catalog_max_age.as_millis() as i64;
                match core.claim_stale_catalogs(max_age, 20, switchboard_core::now_ms()).await {
                    Ok(ids) => {
                        for id in ids {
                            refresh_and_tell(&core, &pool, &id, &seen, &changes).await;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not list catalogs to refresh"),
                }
                pool.housekeeping().await;
                health.record_latencies().await;
            }
        }
    }
    pool.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog(prompt: &str) -> Catalog {
        Catalog {
            tools: vec![CatalogTool {
                name: "echo".into(),
                title: None,
                description: "Echoes".into(),
                input_schema: json!({"type": "object"}),
                output_schema: None,
                annotations: None,
                problem: None,
            }],
            listings: vec![
                (
                    Listing::Resources,
                    vec![json!({"uri": "test://a", "name": "a"})],
                ),
                (Listing::Prompts, vec![json!({"name": prompt})]),
            ],
        }
    }

    #[test]
    fn only_the_lists_that_changed_are_told_of() {
        let before = Print::of(&catalog("greet"));
        assert_eq!(
            Print::of(&catalog("greet")).changed_since(Some(before)),
            vec![]
        );
        assert_eq!(
            Print::of(&catalog("welcome")).changed_since(Some(before)),
            vec![ListKind::Prompts]
        );
        let mut more_tools = catalog("greet");
        more_tools.tools[0].description = "Echoes back".into();
        assert_eq!(
            Print::of(&more_tools).changed_since(Some(before)),
            vec![ListKind::Tools]
        );
        // A replica that never fetched it tells of every list.
        assert_eq!(Print::of(&catalog("greet")).changed_since(None).len(), 3);
    }
}
