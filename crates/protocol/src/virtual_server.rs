//! Virtual servers, `/mcp/servers/{slug}`: one connection's upstream shown
//! to the caller as a server of its own, tools unprefixed. Tool calls take
//! the one path of a call (`{slug}/{tool}` in the registry: grant, policy,
//! role, scope, argument validation, audit); every other request
//! (resources, prompts, completion, logging level) is forwarded to the
//! upstream after the same grant and policy checks, and audited. A
//! 2026-07-28 caller's `subscriptions/listen` stream hears of the
//! connections' list changes (tools once the catalog has them).

use axum::http::request::Parts;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult, DiscoverResult,
    ErrorCode, GetPromptRequestParams, GetPromptResponse, GetPromptResult, Implementation,
    InitializeRequestParams, InitializeResult, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, ServerCapabilities, ServerConfig, SubscriptionFilter,
};
use rmcp::service::{RequestContext, SubscriptionContext, SubscriptionSendError};
use rmcp::transport::streamable_http_server::SessionRestoreMarker;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;
use switchboard_capabilities::{
    CallerChannel, Capabilities, ConnectionCapabilities, ForwardError, ListChange, ListKind,
    MAX_TOOL_NAME,
};
use switchboard_core::connections::Listing;
use switchboard_core::{AccessCache, Ctx, Outcome, Principal, RequestMeta};
use tokio::sync::broadcast::error::RecvError;

use crate::handler::{record_request, request_caller, request_parts, store_session_log_level};
use crate::wire;

/// The path prefix of virtual servers.
pub const PREFIX: &str = "/mcp/servers/";

/// One handler per 2025-11-25 session (and per 2026-07-28 request).
#[derive(Clone)]
pub struct VirtualHandler {
    caps: Capabilities,
    saved: Arc<SavedServers>,
    /// The resources this session subscribed to (2025-11-25), released
    /// upstream when the session ends here.
    resources: Arc<std::sync::Mutex<ResourceWatches>>,
}

/// Most resources one session or listen stream may subscribe to, and the
/// longest URI.
const MAX_WATCHED: usize = 100;
const MAX_URI: usize = 2048;

/// Resource subscriptions of one caller (a session or a listen stream) on
/// one connection. Dropping it releases them upstream (the pool counts
/// every caller's, so the upstream hears of it after the last one).
struct ResourceWatches {
    caps: Capabilities,
    connection: Option<Arc<ConnectionCapabilities>>,
    uris: std::collections::BTreeSet<String>,
}

impl Drop for ResourceWatches {
    fn drop(&mut self) {
        let (Some(connection), Ok(rt)) = (
            self.connection.take(),
            tokio::runtime::Handle::try_current(),
        ) else {
            return;
        };
        let uris = std::mem::take(&mut self.uris);
        let caps = self.caps.clone();
        rt.spawn(async move {
            for uri in uris {
                caps.drop_resource_watch(&connection, &uri).await;
            }
        });
    }
}

/// What a caller hears of a server that does not exist or that they may
/// not use (the two look the same).
pub(crate) fn not_found_message(slug: &str) -> String {
    format!(
        "there is no MCP server '{slug}' you may use here: an admin publishes connections and grants them (GET /api/v1/connections?scope=usable lists yours)"
    )
}

/// Whether `p` may use the virtual server `slug` at all: a connection
/// granted to them, or a saved server with one of its connections granted.
pub(crate) async fn may_use(
    caps: &Capabilities,
    p: &Principal,
    slug: &str,
) -> Result<bool, ErrorData> {
    let members = load_members(caps, p, slug).await?;
    Ok(granted_behind(caps, p, slug, members).await?.is_some())
}

/// The connection slugs of the saved virtual server `slug`, from the
/// database; `None` when it is not one.
async fn load_members(
    caps: &Capabilities,
    p: &Principal,
    slug: &str,
) -> Result<Option<Vec<String>>, ErrorData> {
    caps.core()
        .virtual_server_members(p, slug)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "could not load a virtual server");
            ErrorData::internal_error("the server could not load this virtual server", None)
        })
}

/// What `p` is granted of the server `slug`: its own connection, or the
/// granted ones among a saved server's `members`. `None` when nothing (an
/// unknown server looks the same).
async fn granted_behind(
    caps: &Capabilities,
    p: &Principal,
    slug: &str,
    members: Option<Vec<String>>,
) -> Result<Option<Served>, ErrorData> {
    let granted = caps.granted_connections(p).await.map_err(|e| {
        tracing::error!(error = %e, "could not load the caller's connections");
        ErrorData::internal_error("the server could not load your connections", None)
    })?;
    Ok(match members {
        None => granted
            .into_iter()
            .find(|c| c.slug == slug)
            .map(Served::One),
        Some(members) => {
            let granted: Vec<_> = granted
                .into_iter()
                .filter(|g| members.contains(&g.slug))
                .collect();
            (!granted.is_empty()).then_some(Served::Many(granted))
        }
    })
}

/// The 2025-11-25 session a request belongs to.
fn session_id(ctx: &RequestContext<RoleServer>) -> Option<String> {
    ctx.extensions
        .get::<Parts>()?
        .headers
        .get("mcp-session-id")?
        .to_str()
        .ok()
        .map(str::to_owned)
}

/// A URI a caller may subscribe to: not empty, not too long.
fn check_uri(uri: &str) -> Result<(), ErrorData> {
    if uri.is_empty() || uri.len() > MAX_URI {
        return Err(ErrorData::invalid_params(
            format!(
                "a resource URI is 1 to {MAX_URI} bytes long: this one is {}",
                uri.len()
            ),
            None,
        ));
    }
    Ok(())
}

/// Which connections make up each saved virtual server (`None`: the slug is
/// a connection's own server), by (org, slug). Shared by every session.
pub type SavedServers = AccessCache<(String, String), Option<Vec<String>>>;

/// Saved-server entries cached, at most.
pub const MAX_CACHED_SERVERS: usize = 10_000;

/// Who asks, about which server.
struct Caller {
    principal: Principal,
    meta: RequestMeta,
    slug: String,
}

/// What a virtual server serves: one connection (its whole protocol,
/// tools unprefixed) or, saved, several (their tools as
/// `{connection-slug}_{tool}`).
enum Served {
    One(Arc<ConnectionCapabilities>),
    Many(Vec<Arc<ConnectionCapabilities>>),
}

impl VirtualHandler {
    pub fn new(caps: Capabilities, saved: Arc<SavedServers>) -> Self {
        let resources = ResourceWatches {
            caps: caps.clone(),
            connection: None,
            uris: Default::default(),
        };
        VirtualHandler {
            caps,
            saved,
            resources: Arc::new(std::sync::Mutex::new(resources)),
        }
    }

    /// Subscribes (`on`) this 2025-11-25 session to the resource at `uri`
    /// of its connection, or ends that; its updates come on the session's
    /// stream (see [`Self::forward_list_changes`]).
    async fn watch_for_session(
        &self,
        ctx: &RequestContext<RoleServer>,
        uri: &str,
        on: bool,
    ) -> Result<(), ErrorData> {
        check_uri(uri)?;
        let method = if on {
            "resources/subscribe"
        } else {
            "resources/unsubscribe"
        };
        let c = self.caller(ctx, method, None, json!({"uri": uri}))?;
        let conn = self.one_connection(&c, method).await?;
        let needed = {
            let mut mine = self.resources.lock().map_err(|_| {
                ErrorData::internal_error("the subscription table is unavailable", None)
            })?;
            if on && !mine.uris.contains(uri) && mine.uris.len() >= MAX_WATCHED {
                return Err(ErrorData::invalid_params(
                    format!(
                        "a session may subscribe to at most {MAX_WATCHED} resources: unsubscribe from one first"
                    ),
                    None,
                ));
            }
            mine.connection.get_or_insert_with(|| conn.clone());
            if on {
                mine.uris.insert(uri.to_owned())
            } else {
                mine.uris.remove(uri)
            }
        };
        let cx = Ctx {
            principal: &c.principal,
            meta: &c.meta,
        };
        if !needed {
            // Already so for this session: nothing to tell the upstream.
            return self.record(&c, Outcome::Ok, None).await;
        }
        let watched = self.caps.watch_resource(cx, &conn, uri, on).await;
        if watched.is_err()
            && on
            && let Ok(mut mine) = self.resources.lock()
        {
            mine.uris.remove(uri);
        }
        watched.map_err(to_error)?;
        self.store_session_resources(ctx).await;
        Ok(())
    }

    /// Keeps the session's subscriptions with the session, for a replica
    /// that picks it up (see [`Self::resume_session_resources`]).
    async fn store_session_resources(&self, ctx: &RequestContext<RoleServer>) {
        let Some(id) = session_id(ctx) else { return };
        let uris: Vec<String> = match self.resources.lock() {
            Ok(mine) => mine.uris.iter().cloned().collect(),
            Err(_) => return,
        };
        let text = serde_json::Value::from(uris).to_string();
        if let Err(e) = self.caps.core().set_mcp_session_resources(&id, &text).await {
            tracing::warn!(error = %e, "could not keep a session's resource subscriptions");
        }
    }

    /// A session picked up on this replica subscribes again to what it
    /// subscribed to elsewhere.
    async fn resume_session_resources(&self, ctx: &RequestContext<RoleServer>, c: &Caller) {
        let Some(id) = session_id(ctx) else { return };
        let stored = self
            .caps
            .core()
            .mcp_session_resources(&id)
            .await
            .ok()
            .flatten()
            .and_then(|t| serde_json::from_str::<Vec<String>>(&t).ok())
            .unwrap_or_default();
        if stored.is_empty() {
            return;
        }
        let Ok(Served::One(conn)) = self.served(c).await else {
            return;
        };
        for uri in stored.into_iter().take(MAX_WATCHED) {
            match self.caps.resume_resource_watch(&conn, &uri).await {
                Ok(()) => {
                    if let Ok(mut mine) = self.resources.lock() {
                        mine.connection.get_or_insert_with(|| conn.clone());
                        mine.uris.insert(uri);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = ?e, "could not subscribe a restored session again")
                }
            }
        }
    }

    /// The connection slugs of the saved virtual server `slug`, or `None`
    /// when it is not one (then it is a connection's own server).
    async fn saved_members(
        &self,
        p: &Principal,
        slug: &str,
    ) -> Result<Option<Vec<String>>, ErrorData> {
        let key = (p.org_id.clone(), slug.to_owned());
        if let Some(members) = self.saved.get(&key, p.access_version) {
            return Ok(members);
        }
        let members = load_members(&self.caps, p, slug).await?;
        self.saved.put(key, p.access_version, members.clone());
        Ok(members)
    }

    fn caller(
        &self,
        ctx: &RequestContext<RoleServer>,
        method: &str,
        tool: Option<&str>,
        arguments: Value,
    ) -> Result<Caller, ErrorData> {
        let slug = request_parts(ctx)?
            .uri
            .path()
            .strip_prefix(PREFIX)
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned();
        let (principal, meta) = request_caller(ctx, method, tool, arguments)?;
        Ok(Caller {
            principal,
            meta,
            slug,
        })
    }

    async fn record(
        &self,
        c: &Caller,
        outcome: Outcome,
        message: Option<&str>,
    ) -> Result<(), ErrorData> {
        let method = c.meta.call.as_ref().map_or("", |call| call.method.as_str());
        record_request(&self.caps, &c.principal, &c.meta, method, outcome, message).await
    }

    /// The connections behind this server that the caller is granted. Not
    /// granted and nonexistent look the same, and are audited as refused.
    async fn served(&self, c: &Caller) -> Result<Served, ErrorData> {
        let members = self.saved_members(&c.principal, &c.slug).await?;
        match granted_behind(&self.caps, &c.principal, &c.slug, members).await? {
            Some(served) => Ok(served),
            None => Err(self.not_found(c).await),
        }
    }

    async fn not_found(&self, c: &Caller) -> ErrorData {
        let message = not_found_message(&c.slug);
        if let Err(e) = self.record(c, Outcome::Denied, Some(&message)).await {
            return e;
        }
        ErrorData::new(ErrorCode(-32001), message, Some(json!({"server": c.slug})))
    }

    /// Whether the caller of a long-lived request may still use this
    /// server: their bearer token is authenticated again (a revoked token,
    /// a removed member, a changed role all show) and the server resolved
    /// for them again. Refusals are audited as for any request.
    async fn still_allowed(
        &self,
        headers: &axum::http::HeaderMap,
        c: &Caller,
    ) -> Result<(), ErrorData> {
        let gone = || {
            ErrorData::new(
                ErrorCode(-32001),
                format!(
                    "you may no longer use the MCP server '{}': this subscription has ended",
                    c.slug
                ),
                Some(json!({"server": c.slug})),
            )
        };
        let Some(token) = crate::guard::bearer(headers) else {
            return Ok(());
        };
        let principal = self
            .caps
            .core()
            .authenticate_bearer(token, switchboard_core::now_ms())
            .await
            .map_err(|_| gone())?;
        let now = Caller {
            principal,
            meta: c.meta.clone(),
            slug: c.slug.clone(),
        };
        self.served(&now).await.map(|_| ()).map_err(|_| gone())
    }

    /// Subscribes the upstream to the resources a 2026-07-28 listen stream
    /// asked for (a server bound to one connection only); `None` when it
    /// asked for none.
    async fn watch_for_stream(
        &self,
        context: &SubscriptionContext,
        c: &Caller,
    ) -> Result<Option<ResourceWatches>, ErrorData> {
        let Some(uris) = context
            .accepted()
            .resource_subscriptions
            .as_ref()
            .filter(|u| !u.is_empty())
        else {
            return Ok(None);
        };
        if uris.len() > MAX_WATCHED {
            return Err(ErrorData::invalid_params(
                format!(
                    "a listen stream may subscribe to at most {MAX_WATCHED} resources, not {}",
                    uris.len()
                ),
                None,
            ));
        }
        for uri in uris {
            check_uri(uri)?;
        }
        let conn = self.one_connection(c, "subscriptions/listen").await?;
        let mut watches = ResourceWatches {
            caps: self.caps.clone(),
            connection: Some(conn.clone()),
            uris: Default::default(),
        };
        let cx = Ctx {
            principal: &c.principal,
            meta: &c.meta,
        };
        for uri in uris {
            if !watches.uris.contains(uri) {
                // On failure the guard releases those already made.
                self.caps
                    .watch_resource(cx, &conn, uri, true)
                    .await
                    .map_err(to_error)?;
                watches.uris.insert(uri.clone());
            }
        }
        Ok(Some(watches))
    }

    /// The connections whose list changes reach this server's callers, and
    /// whether only tool changes do (a saved server of several connections
    /// shows only their tools).
    async fn watched(&self, c: &Caller) -> Result<(Vec<String>, bool), ErrorData> {
        Ok(match self.served(c).await? {
            Served::One(conn) => (vec![conn.id.clone()], false),
            Served::Many(conns) => (conns.iter().map(|k| k.id.clone()).collect(), true),
        })
    }

    /// A 2025-11-25 session hears of list changes on its own stream, for as
    /// long as its transport is open here (a session restored on another
    /// replica starts its own when it is restored) and its caller may
    /// still use the server.
    fn forward_list_changes(
        &self,
        peer: rmcp::Peer<RoleServer>,
        headers: axum::http::HeaderMap,
        c: Caller,
        ids: Vec<String>,
        tools_only: bool,
    ) {
        let Some(mut changes) = self.caps.list_changes() else {
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            // A closed session is noticed within this long even when
            // nothing changes.
            let mut check = tokio::time::interval(std::time::Duration::from_secs(15));
            loop {
                let kinds: Vec<ListKind> = tokio::select! {
                    _ = check.tick() => {
                        if peer.is_transport_closed() {
                            return;
                        }
                        continue;
                    }
                    change = next_change(&mut changes, &ids) => match change {
                        Some(kinds) => kinds,
                        None => return,
                    },
                };
                if this.still_allowed(&headers, &c).await.is_err() {
                    return;
                }
                for kind in kinds {
                    let sent = match kind {
                        ListKind::ResourceContent(uri) => {
                            let mine = this.resources.lock().is_ok_and(|r| r.uris.contains(&uri));
                            if !mine {
                                continue;
                            }
                            peer.notify_resource_updated(
                                rmcp::model::ResourceUpdatedNotificationParam::new(uri),
                            )
                            .await
                        }
                        ListKind::Tools => peer.notify_tool_list_changed().await,
                        ListKind::Prompts if !tools_only => peer.notify_prompt_list_changed().await,
                        ListKind::Resources if !tools_only => {
                            peer.notify_resource_list_changed().await
                        }
                        _ => Ok(()),
                    };
                    if sent.is_err() {
                        return;
                    }
                }
            }
        });
    }

    /// The one connection behind this server: `method` is not served by a
    /// saved server over several.
    async fn one_connection(
        &self,
        c: &Caller,
        method: &str,
    ) -> Result<Arc<ConnectionCapabilities>, ErrorData> {
        match self.served(c).await? {
            Served::One(conn) => Ok(conn),
            Served::Many(_) => {
                let message = format!(
                    "'{}' serves the tools of several connections only: '{method}' needs a server bound to one connection (at that connection's slug)",
                    c.slug
                );
                self.record(c, Outcome::Error, Some(&message)).await?;
                Err(ErrorData::new(ErrorCode::METHOD_NOT_FOUND, message, None))
            }
        }
    }

    /// Forwards `method` with `params` to the upstream and decodes its answer.
    async fn relay<P: Serialize, R: DeserializeOwned>(
        &self,
        ctx: &RequestContext<RoleServer>,
        method: &str,
        params: &P,
    ) -> Result<R, ErrorData> {
        let level = self.log_level(ctx).await;
        let v = self
            .relay_raw(ctx, method, params, PeerChannel::of(ctx, level))
            .await?;
        serde_json::from_value(wire::complete(v)).map_err(|e| {
            tracing::warn!(method, error = %e, "an upstream answer did not decode");
            ErrorData::internal_error(
                format!("the upstream's answer to '{method}' is not valid MCP: {e}"),
                None,
            )
        })
    }

    /// [`Self::relay`], the answer as it came.
    async fn relay_raw<P: Serialize>(
        &self,
        ctx: &RequestContext<RoleServer>,
        method: &str,
        params: &P,
        channel: Arc<dyn CallerChannel>,
    ) -> Result<Value, ErrorData> {
        let mut params = serde_json::to_value(params)
            .map_err(|e| ErrorData::internal_error(format!("encoding the request: {e}"), None))?;
        // The caller's own `_meta` (its protocol era, capabilities, client
        // info) describes its session with us, not ours with the upstream;
        // answers and state of an input-required retry come through the
        // channel, the state out of our envelope.
        if let Value::Object(m) = &mut params {
            m.remove("_meta");
            m.remove("inputResponses");
            m.remove("requestState");
        }
        let c = self.caller(ctx, method, None, params.clone())?;
        let conn = self.one_connection(&c, method).await?;
        let cx = Ctx {
            principal: &c.principal,
            meta: &c.meta,
        };
        self.caps
            .forward(cx, &conn, method, params, Some(channel))
            .await
            .map_err(to_error)
    }

    /// One of the connection's lists, from the catalog the gateway keeps
    /// (refreshed when the upstream says it changed): all of it in one page,
    /// so no cursor is valid. An upstream that does not offer the list has
    /// none: an empty list.
    async fn listed<T: DeserializeOwned>(
        &self,
        ctx: &RequestContext<RoleServer>,
        method: &str,
        kind: Listing,
        request: Option<PaginatedRequestParams>,
    ) -> Result<Vec<T>, ErrorData> {
        let c = self.caller(ctx, method, None, Value::Null)?;
        let conn = self.one_connection(&c, method).await?;
        if let Some(cursor) = request.and_then(|r| r.cursor) {
            let message = format!(
                "'{cursor}' is not a cursor of this server: it lists everything in one page, so ask again without one"
            );
            self.record(&c, Outcome::Error, Some(&message)).await?;
            return Err(ErrorData::invalid_params(message, None));
        }
        let cx = Ctx {
            principal: &c.principal,
            meta: &c.meta,
        };
        let items = self
            .caps
            .listing(cx, &conn, kind)
            .await
            .map_err(to_error)?
            .unwrap_or_default();
        Ok(items
            .into_iter()
            .filter_map(|item| match serde_json::from_value(item) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(method, error = %e, "a cached list item did not decode");
                    None
                }
            })
            .collect())
    }

    /// The level the caller wants log messages at: a 2026-07-28 request
    /// says so in its `_meta`; a 2025-11-25 session has the level it set
    /// (kept with the session), and gets everything until it sets one.
    async fn log_level(&self, ctx: &RequestContext<RoleServer>) -> Option<String> {
        if is_modern(ctx) {
            return ctx
                .meta
                .log_level()
                .and_then(|l| serde_json::to_value(l).ok())
                .and_then(|v| v.as_str().map(str::to_owned));
        }
        let id = session_id(ctx)?;
        let level = self
            .caps
            .core()
            .mcp_session_log_level(&id)
            .await
            .ok()
            .flatten();
        Some(level.unwrap_or_else(|| "debug".to_owned()))
    }

    /// What binds a sealed request state: the caller, this server, the
    /// request.
    fn binding(ctx: &RequestContext<RoleServer>, what: &str) -> Result<String, ErrorData> {
        let path = request_parts(ctx)?.uri.path();
        let (p, _) = request_caller(ctx, what, None, Value::Null)?;
        Ok(format!("{}|{}|{path}|{what}", p.account_id, p.org_id))
    }

    /// Forwards a request the upstream may not have (a 2026-07-28 upstream
    /// has no `logging/setLevel` or `resources/subscribe`): then it is
    /// acknowledged here. For subscriptions, no update reaches the caller.
    async fn relay_or_acknowledge<P: Serialize>(
        &self,
        ctx: &RequestContext<RoleServer>,
        method: &str,
        params: &P,
    ) -> Result<(), ErrorData> {
        match self.relay::<_, Value>(ctx, method, params).await {
            Err(e) if e.code == ErrorCode::METHOD_NOT_FOUND => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Our answer to initialize and discover: the upstream's capabilities
    /// and instructions, under the upstream's name.
    async fn info(
        &self,
        ctx: &RequestContext<RoleServer>,
        method: &str,
    ) -> Result<ServerConfig, ErrorData> {
        let c = self.caller(ctx, method, None, Value::Null)?;
        let conn = match self.served(&c).await? {
            Served::One(conn) => conn,
            Served::Many(conns) => {
                let mut info = self.get_info();
                info.capabilities = ServerCapabilities::builder().enable_tools().build();
                let names: Vec<String> = conns
                    .iter()
                    .map(|k| format!("{} ({}_*)", k.name, k.slug))
                    .collect();
                info.instructions = Some(format!(
                    "The tools of these connections, each named {{connection}}_{{tool}}: {}",
                    names.join(", ")
                ));
                if ctx.extensions.get::<SessionRestoreMarker>().is_none() {
                    self.record(&c, Outcome::Ok, None).await?;
                }
                return Ok(info);
            }
        };
        let mut info = self.get_info();
        match self.caps.upstream_info(&c.principal, &conn).await {
            Ok(v) => {
                if let Ok(upstream) = serde_json::from_value::<InitializeResult>(v) {
                    info.capabilities = upstream.capabilities;
                    info.server_info = upstream.server_info;
                    info.instructions = upstream.instructions;
                }
            }
            Err(ForwardError::Refused(m)) => {
                self.record(&c, Outcome::Denied, Some(&m)).await?;
                return Err(to_error(ForwardError::Refused(m)));
            }
            Err(e) => {
                // Still connect: each request reports the upstream's state.
                tracing::warn!(server = %c.slug, error = ?e, "initialize with an unavailable upstream");
                info.instructions = Some(format!(
                    "{}: the upstream is unavailable right now; requests fail until it is back",
                    conn.name
                ));
            }
        }
        if ctx.extensions.get::<SessionRestoreMarker>().is_none() {
            self.record(&c, Outcome::Ok, None).await?;
        }
        Ok(info)
    }
}

/// The caller's stream, for what an upstream sends back during a request.
struct PeerChannel {
    peer: rmcp::Peer<RoleServer>,
    progress_token: Option<Value>,
    cancelled: tokio_util::sync::CancellationToken,
    modern: bool,
    retry: Option<(Value, Option<String>)>,
    client_capabilities: Option<Value>,
    log_level: Option<String>,
}

impl PeerChannel {
    fn of(ctx: &RequestContext<RoleServer>, log_level: Option<String>) -> Arc<dyn CallerChannel> {
        Self::with_retry(ctx, None, log_level)
    }

    fn with_retry(
        ctx: &RequestContext<RoleServer>,
        retry: Option<(Value, Option<String>)>,
        log_level: Option<String>,
    ) -> Arc<dyn CallerChannel> {
        Arc::new(PeerChannel {
            log_level,
            peer: ctx.peer.clone(),
            progress_token: ctx
                .meta
                .get_progress_token()
                .and_then(|t| serde_json::to_value(t).ok()),
            cancelled: ctx.ct.clone(),
            modern: is_modern(ctx),
            retry,
            // A 2026-07-28 request states its capabilities (none stated is
            // none); a 2025-11-25 session stated them at initialize.
            client_capabilities: if is_modern(ctx) {
                Some(
                    ctx.meta
                        .client_capabilities()
                        .and_then(|c| serde_json::to_value(c).ok())
                        .unwrap_or_else(|| json!({})),
                )
            } else {
                ctx.peer
                    .peer_info()
                    .and_then(|i| serde_json::to_value(&i.capabilities).ok())
            },
        })
    }
}

/// Whether the caller's request is of the 2026-07-28 era.
/// The next change to one of the connections `ids`, as the lists to tell
/// of (all of them after missed changes); `None` once none can come.
async fn next_change(
    changes: &mut tokio::sync::broadcast::Receiver<ListChange>,
    ids: &[String],
) -> Option<Vec<ListKind>> {
    loop {
        match changes.recv().await {
            Ok(ListChange {
                connection_id,
                kind,
            }) if ids.contains(&connection_id) => {
                return Some(vec![kind]);
            }
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => {
                return Some(vec![
                    ListKind::Tools,
                    ListKind::Prompts,
                    ListKind::Resources,
                ]);
            }
            Err(RecvError::Closed) => return None,
        }
    }
}

fn is_modern(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.protocol_version()
        .is_some_and(|v| v.as_str() >= rmcp::model::ProtocolVersion::V_2026_07_28.as_str())
}

/// An input-required answer from the upstream, for a 2026-07-28 caller:
/// the upstream's `requestState` goes back inside our sealed envelope,
/// bound to `binding`.
fn input_required(
    core: &switchboard_core::Core,
    binding: &str,
    mut v: Value,
) -> Result<Option<rmcp::model::InputRequiredResult>, ErrorData> {
    if v.get("resultType").and_then(Value::as_str) != Some("input_required") {
        return Ok(None);
    }
    if let Some(state) = v.get("requestState").and_then(Value::as_str) {
        let sealed = core.seal_request_state(binding, state).map_err(|e| {
            tracing::error!(error = %e, "could not seal a request state");
            ErrorData::internal_error("the server could not protect the request state", None)
        })?;
        if let Some(m) = v.as_object_mut() {
            m.insert("requestState".into(), json!(sealed));
        }
    }
    serde_json::from_value(v).map(Some).map_err(|e| {
        ErrorData::internal_error(format!("the upstream's input-required result: {e}"), None)
    })
}

/// A retry of an input-required request: the caller's answers, and the
/// upstream's state taken out of our envelope (refused when it was not
/// issued for `binding`).
fn retry_of(
    core: &switchboard_core::Core,
    binding: &str,
    responses: &Option<rmcp::model::InputResponses>,
    state: &Option<String>,
) -> Result<Option<(Value, Option<String>)>, ErrorData> {
    if responses.is_none() && state.is_none() {
        return Ok(None);
    }
    let upstream = match state {
        Some(ours) => Some(core.open_request_state(binding, ours).map_err(|e| {
            ErrorData::invalid_params(e.to_string(), Some(json!({"requestState": ours})))
        })?),
        None => None,
    };
    let answers =
        serde_json::to_value(responses.clone().unwrap_or_default()).unwrap_or_else(|_| json!({}));
    Ok(Some((answers, upstream)))
}

#[async_trait::async_trait]
impl CallerChannel for PeerChannel {
    fn progress_token(&self) -> Option<Value> {
        self.progress_token.clone()
    }

    async fn notify(&self, method: &str, params: Value) {
        match serde_json::from_value::<rmcp::model::ServerNotification>(
            json!({"method": method, "params": params}),
        ) {
            Ok(n) => {
                if let Err(e) = self.peer.send_notification(n).await {
                    tracing::debug!(method, error = %e, "could not pass a notification on");
                }
            }
            Err(e) => {
                tracing::debug!(method, error = %e, "an upstream notification did not decode")
            }
        }
    }

    async fn request(&self, method: &str, params: Value) -> Result<Value, ForwardError> {
        let request: rmcp::model::ServerRequest =
            serde_json::from_value(json!({"method": method, "params": params})).map_err(|e| {
                ForwardError::Unavailable(format!(
                    "the upstream's '{method}' request is malformed: {e}"
                ))
            })?;
        match self.peer.send_request(request).await {
            Ok(r) => serde_json::to_value(r)
                .map_err(|e| ForwardError::Unavailable(format!("the client's answer: {e}"))),
            Err(rmcp::ServiceError::McpError(e)) => Err(ForwardError::Upstream {
                code: e.code.0,
                message: e.message.to_string(),
                data: e.data,
            }),
            Err(e) => Err(ForwardError::Unavailable(format!(
                "the client could not answer '{method}': {e}"
            ))),
        }
    }

    async fn cancelled(&self) {
        self.cancelled.cancelled().await;
    }

    fn modern(&self) -> bool {
        self.modern
    }

    fn retry(&self) -> Option<(Value, Option<String>)> {
        self.retry.clone()
    }

    fn client_capabilities(&self) -> Option<Value> {
        self.client_capabilities.clone()
    }

    fn log_level(&self) -> Option<String> {
        self.log_level.clone()
    }
}

fn to_error(e: ForwardError) -> ErrorData {
    match e {
        ForwardError::Upstream {
            code,
            message,
            data,
        } => ErrorData::new(ErrorCode(code), message, data),
        ForwardError::Refused(m) => ErrorData::new(ErrorCode(-32001), m, None),
        ForwardError::Unavailable(m) => ErrorData::internal_error(m, None),
    }
}

impl ServerHandler for VirtualHandler {
    #[allow(deprecated)] // logging is still part of 2025-11-25
    fn get_info(&self) -> ServerConfig {
        // What any upstream may offer; initialize and discover answer with
        // the upstream's own capabilities.
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_resources_list_changed()
            .enable_prompts_list_changed()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        let mut info = InitializeResult::new(capabilities);
        info.server_info =
            Implementation::new("switchboard-virtual-server", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        context.peer.set_peer_info(request.clone());
        let negotiated = self.negotiate_initialize(&request)?;
        let mut info = self.info(&context, "initialize").await?;
        info.protocol_version = negotiated.protocol_version;
        let c = self.caller(&context, "initialize", None, Value::Null)?;
        let (ids, tools_only) = self.watched(&c).await?;
        let headers = request_parts(&context)?.headers.clone();
        if context.extensions.get::<SessionRestoreMarker>().is_some() {
            self.resume_session_resources(&context, &c).await;
        }
        self.forward_list_changes(context.peer.clone(), headers, c, ids, tools_only);
        Ok(info)
    }

    async fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, ErrorData> {
        let info = self.info(&context, "server/discover").await?;
        Ok(DiscoverResult::from_server_info(
            self.supported_protocol_versions().into_owned(),
            info,
        ))
    }

    async fn ping(&self, context: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        let c = self.caller(&context, "ping", None, Value::Null)?;
        self.record(&c, Outcome::Ok, None).await
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let c = self.caller(&context, "tools/list", None, Value::Null)?;
        let tools = match self.served(&c).await? {
            Served::One(conn) => conn
                .tools
                .iter()
                .filter(|(_, cap)| cap.authorize(&c.principal).is_ok())
                .map(|(name, cap)| wire::tool_as(cap, name))
                .collect(),
            // A prefixed name over 128 characters was refused when the
            // server was saved; one that an upstream adds later is left
            // out (the connection's health names it).
            Served::Many(conns) => conns
                .iter()
                .flat_map(|conn| {
                    conn.tools
                        .iter()
                        .filter(|(_, cap)| cap.authorize(&c.principal).is_ok())
                        .map(|(name, cap)| (format!("{}_{name}", conn.slug), cap))
                        .filter(|(full, _)| full.chars().count() <= MAX_TOOL_NAME)
                        .map(|(full, cap)| wire::tool_as(cap, &full))
                        .collect::<Vec<_>>()
                })
                .collect(),
        };
        self.record(&c, Outcome::Ok, None).await?;
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let probe = self.caller(&context, "tools/call", None, Value::Null)?;
        let saved = self.saved_members(&probe.principal, &probe.slug).await?;
        let id = match saved {
            None => format!("{}/{}", probe.slug, request.name),
            // `{connection}_{tool}`: slugs have no `_`, so the first one splits.
            Some(members) => match request.name.split_once('_') {
                Some((conn, tool))
                    if members.iter().any(|m| m == conn)
                        && request.name.chars().count() <= MAX_TOOL_NAME =>
                {
                    format!("{conn}/{tool}")
                }
                // Not one of this server's: the call path reports it unknown.
                _ => format!("{}/{}", probe.slug, request.name),
            },
        };
        let args = request.arguments.clone();
        let c = self.caller(
            &context,
            "tools/call",
            Some(&id),
            Value::Object(args.clone().unwrap_or_default()),
        )?;
        let ctx = Ctx {
            principal: &c.principal,
            meta: &c.meta,
        };
        let binding = Self::binding(&context, &format!("tools/call|{}", request.name))?;
        let core = self.caps.core();
        let retry = retry_of(
            core,
            &binding,
            &request.input_responses,
            &request.request_state,
        )?;
        let channel = PeerChannel::with_retry(&context, retry, self.log_level(&context).await);
        let outcome = self.caps.call_relayed(ctx, &id, args, Some(channel)).await;
        if let switchboard_capabilities::CallOutcome::Relayed(v) = &outcome
            && let Some(r) = input_required(core, &binding, v.clone())?
        {
            return Ok(r.into());
        }
        wire::tool_result(outcome).map(Into::into)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let resources = self
            .listed(&context, "resources/list", Listing::Resources, request)
            .await?;
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let templates = self
            .listed(
                &context,
                "resources/templates/list",
                Listing::ResourceTemplates,
                request,
            )
            .await?;
        Ok(ListResourceTemplatesResult::with_all_items(templates))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let r: ReadResourceResult = self.relay(&context, "resources/read", &request).await?;
        Ok(r.into())
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let prompts = self
            .listed(&context, "prompts/list", Listing::Prompts, request)
            .await?;
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let binding = Self::binding(&context, &format!("prompts/get|{}", request.name))?;
        let core = self.caps.core();
        let retry = retry_of(
            core,
            &binding,
            &request.input_responses,
            &request.request_state,
        )?;
        let level = self.log_level(&context).await;
        let v = self
            .relay_raw(
                &context,
                "prompts/get",
                &request,
                PeerChannel::with_retry(&context, retry, level),
            )
            .await?;
        if let Some(r) = input_required(core, &binding, v.clone())? {
            return Ok(r.into());
        }
        let r: GetPromptResult = serde_json::from_value(wire::complete(v)).map_err(|e| {
            ErrorData::internal_error(
                format!("the upstream's answer to 'prompts/get' is not valid MCP: {e}"),
                None,
            )
        })?;
        Ok(r.into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.relay(&context, "completion/complete", &request).await
    }

    #[allow(deprecated)] // legacy-only requests, still part of 2025-11-25
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        // Kept with the session: it travels with each later request to an
        // upstream of either era (one of 2026-07-28 has no setLevel).
        store_session_log_level(&self.caps, &context, request.level).await;
        self.relay_or_acknowledge(&context, "logging/setLevel", &request)
            .await
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: rmcp::model::SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.watch_for_session(&context, &request.uri, true).await
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: rmcp::model::UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.watch_for_session(&context, &request.uri, false).await
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // Checked in `listen`, where the server and the caller are known.
        Some(requested.clone())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let c = self.caller(
            context.request_context(),
            "subscriptions/listen",
            None,
            Value::Null,
        )?;
        let (ids, tools_only) = self.watched(&c).await?;
        self.record(&c, Outcome::Ok, None).await?;
        // Updates of single resources: the upstream is subscribed for as
        // long as this stream lasts (the guard releases them).
        let _watches = self.watch_for_stream(&context, &c).await?;
        let Some(mut changes) = self.caps.list_changes() else {
            context.cancelled().await;
            return Ok(());
        };
        let sink = context.sink().clone();
        loop {
            let kinds: Vec<ListKind> = tokio::select! {
                () = context.cancelled() => return Ok(()),
                change = next_change(&mut changes, &ids) => match change {
                    Some(kinds) => kinds,
                    None => {
                        context.cancelled().await;
                        return Ok(());
                    }
                },
            };
            // The stream outlives the request that opened it: before
            // telling the caller anything, check they may still use this
            // server (token, membership and grants as they are now).
            self.still_allowed(&request_parts(context.request_context())?.headers, &c)
                .await?;
            for kind in kinds {
                // The sink drops what the caller did not ask for.
                let sent = match kind {
                    ListKind::ResourceContent(uri) => sink.notify_resource_updated(uri).await,
                    ListKind::Tools => sink.notify_tool_list_changed().await,
                    ListKind::Prompts if !tools_only => sink.notify_prompt_list_changed().await,
                    ListKind::Resources if !tools_only => sink.notify_resource_list_changed().await,
                    _ => Ok(()),
                };
                if let Err(
                    SubscriptionSendError::SubscriptionClosed | SubscriptionSendError::Service(_),
                ) = sent
                {
                    return Ok(());
                }
            }
        }
    }

    /// Upstream tools have no `x-mcp-header` parameters we vouch for.
    fn get_tool(&self, _name: &str) -> Option<rmcp::model::Tool> {
        None
    }
}
