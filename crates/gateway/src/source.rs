//! The gateway as a source of capabilities: the connections a caller is
//! granted, each with its cached catalog turned into capabilities (built
//! once per catalog version and shared by every caller), and calls made
//! through the pool with the connection's credential.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rmcp::model::ClientRequest;
use rmcp::service::{PeerRequestOptions, ServiceError};
use serde_json::{Value, json};
use switchboard_capabilities::{
    About, CallerChannel, CatalogEntry, ConnectionCapabilities, ConnectionSource, ForwardError,
    ListChange, ToolRules,
};
use switchboard_core::connections::ConnectionRow;
use switchboard_core::connections::ToolOverride;
use switchboard_core::{AccessCache, Core, CoreError, Ctx, Principal};

use crate::health::HealthBook;
use crate::pool::UpstreamPool;

/// The built capabilities of a connection, and the versions they were
/// built from (the connection's `updated_at`, its catalog's refresh time).
struct Built {
    version: (i64, Option<i64>),
    caps: Arc<ConnectionCapabilities>,
}

/// Input-required rounds fulfilled for an earlier-era caller, at most.
const MAX_ROUNDS: usize = 10;

/// The gateway's [`ConnectionSource`].
pub struct GatewaySource {
    core: Core,
    pool: Arc<UpstreamPool>,
    health: Arc<HealthBook>,
    built: Mutex<HashMap<String, Built>>,
    /// Each member's granted connections, by (org, membership).
    granted: AccessCache<(String, String), Vec<Arc<ConnectionCapabilities>>>,
    changes: tokio::sync::broadcast::Sender<ListChange>,
}

/// Members whose granted connections are cached, at most.
const MAX_CACHED_MEMBERS: usize = 10_000;

impl GatewaySource {
    pub fn new(
        core: Core,
        pool: Arc<UpstreamPool>,
        health: Arc<HealthBook>,
        changes: tokio::sync::broadcast::Sender<ListChange>,
    ) -> Self {
        GatewaySource {
            core,
            pool,
            health,
            built: Mutex::new(HashMap::new()),
            granted: AccessCache::new(MAX_CACHED_MEMBERS),
            changes,
        }
    }

    async fn build(&self, row: &ConnectionRow) -> Result<Arc<ConnectionCapabilities>, CoreError> {
        let version = (row.updated_at, row.catalog_refreshed_at);
        if let Ok(built) = self.built.lock()
            && let Some(b) = built.get(&row.id)
            && b.version == version
        {
            return Ok(b.caps.clone());
        }
        let catalog = self.core.connection_catalog(&row.id).await?;
        let parse = |s: &Option<String>| -> Option<Vec<String>> {
            s.as_deref().and_then(|t| serde_json::from_str(t).ok())
        };
        let overrides: BTreeMap<String, ToolOverride> =
            serde_json::from_str(&row.tool_overrides).unwrap_or_default();
        let rules = ToolRules {
            allow: parse(&row.tool_allow),
            deny: parse(&row.tool_deny),
            overrides: overrides
                .into_iter()
                .map(|(k, o)| (k, (o.read_only, o.description)))
                .collect(),
        };
        let entries = catalog
            .into_iter()
            .map(|t| CatalogEntry {
                name: t.name,
                title: t.title,
                description: t.description,
                input_schema: t.input_schema,
                output_schema: t.output_schema,
                annotations: t.annotations,
            })
            .collect();
        let caps = Arc::new(ConnectionCapabilities::build(
            About {
                id: &row.id,
                slug: &row.slug,
                name: &row.name,
                description: &row.description,
                environment: row.environment.as_deref(),
                version: row.updated_at,
            },
            &rules,
            entries,
        ));
        if let Ok(mut built) = self.built.lock() {
            built.insert(
                row.id.clone(),
                Built {
                    version,
                    caps: caps.clone(),
                },
            );
        }
        Ok(caps)
    }

    /// Sends a request upstream. An input-required answer goes back to a
    /// 2026-07-28 caller as it is; for an earlier-era caller the gateway
    /// asks the caller each input request on its stream and sends the
    /// request again with the answers, for up to `MAX_ROUNDS` rounds.
    async fn send(
        &self,
        connection: &ConnectionCapabilities,
        method: &str,
        mut params: Value,
        channel: Option<Arc<dyn CallerChannel>>,
    ) -> Result<Value, ForwardError> {
        if let (Some(ch), Value::Object(p)) = (&channel, &mut params)
            && let Some((responses, state)) = ch.retry()
        {
            p.insert("inputResponses".into(), responses);
            match state {
                Some(s) => p.insert("requestState".into(), json!(s)),
                None => p.remove("requestState"),
            };
        }
        for _ in 0..MAX_ROUNDS {
            let v = self
                .send_once(connection, method, params.clone(), channel.clone())
                .await?;
            let Some(ch) = channel.as_ref().filter(|c| !c.modern()) else {
                return Ok(v);
            };
            if v.get("resultType").and_then(Value::as_str) != Some("input_required") {
                return Ok(v);
            }
            let mut responses = serde_json::Map::new();
            if let Some(Value::Object(requests)) = v.get("inputRequests") {
                for (key, request) in requests {
                    let m = request
                        .get("method")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let p = request.get("params").cloned().unwrap_or_else(|| json!({}));
                    responses.insert(key.clone(), ch.request(m, p).await?);
                }
            }
            if let Value::Object(p) = &mut params {
                p.insert("inputResponses".into(), Value::Object(responses));
                match v.get("requestState") {
                    Some(s) => p.insert("requestState".into(), s.clone()),
                    None => p.remove("requestState"),
                };
            }
        }
        Err(ForwardError::Unavailable(format!(
            "the upstream of '{}' kept asking for input after {MAX_ROUNDS} rounds",
            connection.slug
        )))
    }

    /// Sends one request upstream, with the call timeout, and checks the
    /// answer's size. A session that broke is discarded so the next request
    /// starts a fresh one.
    async fn send_once(
        &self,
        connection: &ConnectionCapabilities,
        method: &str,
        mut params: Value,
        channel: Option<Arc<dyn CallerChannel>>,
    ) -> Result<Value, ForwardError> {
        let settings = self.pool.settings();
        let started = Instant::now();
        // What the upstream sends back during the request reaches the caller.
        let relay = channel
            .clone()
            .map(|ch| self.pool.relay(&connection.id, ch));
        // rmcp puts its own progress token on every request.
        if let Value::Object(p) = &mut params
            && let Some(Value::Object(m)) = p.get_mut("_meta")
        {
            m.remove("progressToken");
        }
        let request: ClientRequest =
            serde_json::from_value(json!({"method": method, "params": params})).map_err(|e| {
                ForwardError::Upstream {
                    code: -32602,
                    message: format!("the '{method}' request is malformed: {e}"),
                    data: None,
                }
            })?;
        let peer = match self.pool.peer(&connection.id, connection.version).await {
            Ok(p) => p,
            Err(e) => {
                self.health
                    .record(&connection.id, false, started.elapsed(), Some(&e));
                return Err(ForwardError::Unavailable(format!(
                    "the upstream of '{}' is unavailable: {e}",
                    connection.slug
                )));
            }
        };
        let answer = async {
            let mut options = PeerRequestOptions::with_timeout(settings.call_timeout);
            // The upstream asks only what the caller can answer, and logs at
            // the level the caller wants.
            if let Some(ch) = &channel {
                let mut meta = serde_json::Map::new();
                if let Some(caps) = ch.client_capabilities() {
                    meta.insert("io.modelcontextprotocol/clientCapabilities".into(), caps);
                }
                if let Some(level) = ch.log_level() {
                    meta.insert("io.modelcontextprotocol/logLevel".into(), json!(level));
                }
                if !meta.is_empty()
                    && let Ok(meta) =
                        serde_json::from_value::<rmcp::model::RequestMetaObject>(Value::Object(meta))
                {
                    options = options.with_meta(meta);
                }
            }
            let handle = peer.send_request_with_option(request, options).await?;
            if let Some(guard) = &relay {
                guard.set_progress_token(&handle.progress_token);
            }
            match &channel {
                None => handle.await_response().await,
                Some(ch) => {
                    let id = handle.id.clone();
                    let cancel_peer = peer.clone();
                    tokio::select! {
                        r = handle.await_response() => r,
                        () = ch.cancelled() => {
                            // The caller gave up: tell the upstream to stop too.
                            let _ = cancel_peer
                                .notify_cancelled(rmcp::model::CancelledNotificationParam::new(
                                    Some(id),
                                    Some("the caller cancelled the request".into()),
                                ))
                                .await;
                            Err(ServiceError::Cancelled { reason: Some("the caller cancelled the request".into()) })
                        }
                    }
                }
            }
        }
        .await;
        if let (Some(guard), Ok(_)) = (&relay, &answer) {
            guard.drain_progress().await;
        }
        drop(relay);
        let result = match answer {
            Ok(r) => match serde_json::to_value(&r) {
                Ok(mut v) => {
                    self.pool.redact(&connection.id, &mut v);
                    let size = v.to_string().len();
                    if size > settings.max_response_bytes {
                        Err(ForwardError::Unavailable(format!(
                            "the upstream of '{}' answered with {size} bytes, over the gateway's limit of {} bytes",
                            connection.slug, settings.max_response_bytes
                        )))
                    } else {
                        Ok(v)
                    }
                }
                Err(e) => Err(ForwardError::Unavailable(format!(
                    "the upstream's answer could not be read: {e}"
                ))),
            },
            Err(ServiceError::McpError(e)) => Err(ForwardError::Upstream {
                code: e.code.0,
                message: e.message.to_string(),
                data: e.data,
            }),
            Err(ServiceError::Timeout { timeout }) => Err(ForwardError::Unavailable(format!(
                "the upstream of '{}' did not answer within {} s",
                connection.slug,
                timeout.as_secs()
            ))),
            Err(ServiceError::TransportClosed | ServiceError::TransportSend(_)) => {
                self.pool.discard(&connection.id).await;
                Err(ForwardError::Unavailable(format!(
                    "the upstream of '{}' closed the connection before answering; it is restarted on the next request",
                    connection.slug
                )))
            }
            Err(e) => Err(ForwardError::Unavailable(format!(
                "the upstream of '{}' failed: {e}",
                connection.slug
            ))),
        };
        let failed = matches!(result, Err(ForwardError::Unavailable(_)));
        let error = match &result {
            Err(ForwardError::Unavailable(m)) => Some(m.as_str()),
            _ => None,
        };
        self.health
            .record(&connection.id, !failed, started.elapsed(), error);
        result
    }
}

#[async_trait::async_trait]
impl ConnectionSource for GatewaySource {
    async fn granted(
        &self,
        principal: &Principal,
    ) -> Result<Vec<Arc<ConnectionCapabilities>>, CoreError> {
        let key = (principal.org_id.clone(), principal.membership_id.clone());
        if let Some(conns) = self.granted.get(&key, principal.access_version) {
            return Ok(conns);
        }
        let rows = self.core.granted_connection_rows(principal).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(self.build(row).await?);
        }
        self.granted.put(key, principal.access_version, out.clone());
        Ok(out)
    }

    async fn call_tool(
        &self,
        _ctx: Ctx<'_>,
        connection: &ConnectionCapabilities,
        tool: &str,
        args: Value,
        channel: Option<Arc<dyn CallerChannel>>,
    ) -> Result<Value, ForwardError> {
        let params = json!({"name": tool, "arguments": args});
        self.send(connection, "tools/call", params, channel).await
    }

    fn list_changes(&self) -> Option<tokio::sync::broadcast::Receiver<ListChange>> {
        Some(self.changes.subscribe())
    }

    async fn upstream_info(
        &self,
        connection: &ConnectionCapabilities,
    ) -> Result<Value, ForwardError> {
        let peer = self
            .pool
            .peer(&connection.id, connection.version)
            .await
            .map_err(|e| {
                ForwardError::Unavailable(format!(
                    "the upstream of '{}' is unavailable: {e}",
                    connection.slug
                ))
            })?;
        let info = peer.peer_info().ok_or_else(|| {
            ForwardError::Unavailable("the upstream has not introduced itself".into())
        })?;
        serde_json::to_value(&*info)
            .map_err(|e| ForwardError::Unavailable(format!("the upstream's info: {e}")))
    }

    async fn watch_resource(
        &self,
        connection: &ConnectionCapabilities,
        uri: &str,
        on: bool,
    ) -> Result<(), ForwardError> {
        self.pool
            .watch_resource(&connection.id, connection.version, uri, on)
            .await
            .map_err(|e| {
                ForwardError::Unavailable(format!(
                    "the upstream of '{}' could not {} '{uri}': {e}",
                    connection.slug,
                    if on {
                        "subscribe to"
                    } else {
                        "unsubscribe from"
                    }
                ))
            })
    }

    async fn forward(
        &self,
        _ctx: Ctx<'_>,
        connection: &ConnectionCapabilities,
        method: &str,
        params: Value,
        channel: Option<Arc<dyn CallerChannel>>,
    ) -> Result<Value, ForwardError> {
        self.send(connection, method, params, channel).await
    }
}
