//! Live upstream sessions, one per (connection, credential) and never one
//! per caller: Streamable HTTP clients, and stdio child processes under a
//! supervisor that starts them on demand, restarts them with backoff, pings
//! and reaps idle ones, and kills each with its whole process group. A
//! child's stderr is kept in a bounded ring (secret values masked) for
//! admins.

// Sampling, roots and logging are deprecated in 2026-07-28 but still part
// of 2025-11-25, which most clients and upstreams speak: the relay passes
// them on.
#![allow(deprecated)]

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    ClientCapabilities, ClientConfig, CreateMessageRequestParams, CreateMessageResult,
    ElicitRequestParams, ElicitResult, Implementation, ListRootsResult,
    LoggingMessageNotificationParam, ProgressNotificationParam,
};
use rmcp::service::ClientServiceExt;
use rmcp::service::RequestContext;
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, Peer, RoleClient};
use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_capabilities::{CallerChannel, ForwardError};
use switchboard_core::Core;
use switchboard_core::connections::UpstreamTarget;
use switchboard_egress::EgressClient;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::upstream::HOP_HEADER;

/// Lines of a child's stderr kept, and the longest line kept.
const STDERR_LINES: usize = 200;
const STDERR_LINE_BYTES: usize = 2048;
/// The longest wait between two attempts to start a failing upstream.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How the pool treats upstreams (from the `gateway.*` settings).
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Connecting (and starting a child) may take this long.
    pub connect_timeout: Duration,
    /// One request to an upstream may take this long.
    pub call_timeout: Duration,
    /// The largest answer passed on, in bytes of JSON.
    pub max_response_bytes: usize,
    /// Variables of the server's own environment a child gets (never
    /// `SWITCHBOARD_*`, `HOME` or `TMPDIR`); everything else is cleared.
    pub inherit_env: Vec<String>,
    /// How children are confined (user, limits, Landlock, private
    /// directories). `None` starts them directly, as the server's own user:
    /// only for tests of the pool itself.
    pub confinement: Option<crate::confinement::Confinement>,
    /// A child unused this long is stopped.
    pub idle_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            connect_timeout: Duration::from_secs(30),
            call_timeout: Duration::from_secs(60),
            max_response_bytes: 4 * 1024 * 1024,
            inherit_env: ["PATH", "LANG", "TZ"].map(String::from).to_vec(),
            confinement: None,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// What the pool tells the rest of the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolEvent {
    /// The upstream of this connection (by id) said one of its lists
    /// changed (which, and how, a new listing finds out).
    ListChanged(String),
    /// A new session with this connection's upstream is listening for
    /// changes: whatever changed while no session was (a restarted child
    /// starts afresh) is only found by listing again.
    SessionStarted(String),
    /// The upstream of this connection said the resource at this URI
    /// changed.
    ResourceUpdated(String, String),
}

/// The callers whose requests are upstream right now, so what an upstream
/// sends back reaches the right one: progress by our own progress token
/// (unique per relayed request), and log messages and server-to-client
/// requests (which name no request) only when exactly one caller has a
/// request in flight on that connection: with several, routing would be a
/// guess, and a guess could show one member another's data.
#[derive(Default)]
pub struct Relays {
    map: Mutex<HashMap<String, Relay>>,
    next: AtomicI64,
    /// Progress notifications per (connection, upstream progress token):
    /// how many arrived (counted by [`Counted`] in the order the upstream
    /// sent them, before the response that follows is handled) and how
    /// many were passed on. rmcp hands notifications to the handler on
    /// tasks of their own, so without this the last progress could reach
    /// the caller after the answer, on a stream already closed.
    progress: Mutex<HashMap<(String, String), (u64, u64)>>,
    progress_passed: tokio::sync::Notify,
}

/// Most progress notifications a relay waits to see passed on after its
/// answer came.
const PROGRESS_DRAIN: Duration = Duration::from_secs(1);

fn token_text(token: &rmcp::model::ProgressToken) -> Option<String> {
    match serde_json::to_value(token) {
        Ok(serde_json::Value::String(s)) => Some(s),
        Ok(other) => Some(other.to_string()),
        Err(_) => None,
    }
}

struct Relay {
    connection_id: String,
    channel: Arc<dyn CallerChannel>,
    /// The progress token rmcp put on the upstream request.
    progress: Option<String>,
}

/// Ends a relay when the request is done.
pub struct RelayGuard {
    relays: Arc<Relays>,
    pub token: String,
}

impl RelayGuard {
    /// Records the progress token the upstream request carries (rmcp
    /// assigns one to every request, per session).
    pub fn set_progress_token(&self, token: &rmcp::model::ProgressToken) {
        let Some(text) = token_text(token) else {
            return;
        };
        if let Ok(mut m) = self.relays.map.lock()
            && let Some(r) = m.get_mut(&self.token)
        {
            r.progress = Some(text);
        }
    }

    /// Waits (a second at most) until every progress notification the
    /// upstream sent before its answer has been passed to the caller, so
    /// the caller sees them before the answer.
    pub async fn drain_progress(&self) {
        let Some(key) = self.progress_key() else {
            return;
        };
        let relays = &self.relays;
        let settled = async {
            loop {
                let passed = relays.progress_passed.notified();
                let done = relays.progress.lock().map_or(true, |m| {
                    m.get(&key).is_none_or(|(arrived, sent)| sent >= arrived)
                });
                if done {
                    return;
                }
                passed.await;
            }
        };
        let _ = tokio::time::timeout(PROGRESS_DRAIN, settled).await;
    }

    fn progress_key(&self) -> Option<(String, String)> {
        let m = self.relays.map.lock().ok()?;
        let r = m.get(&self.token)?;
        Some((r.connection_id.clone(), r.progress.clone()?))
    }
}

impl Drop for RelayGuard {
    fn drop(&mut self) {
        let key = self.progress_key();
        if let Ok(mut m) = self.relays.map.lock() {
            m.remove(&self.token);
        }
        if let Some(key) = key
            && let Ok(mut p) = self.relays.progress.lock()
        {
            p.remove(&key);
        }
    }
}

impl Relays {
    pub fn begin(
        self: &Arc<Self>,
        connection_id: &str,
        channel: Arc<dyn CallerChannel>,
    ) -> RelayGuard {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let token = format!("switchboard-relay-{n}");
        if let Ok(mut m) = self.map.lock() {
            m.insert(
                token.clone(),
                Relay {
                    connection_id: connection_id.to_owned(),
                    channel,
                    progress: None,
                },
            );
        }
        RelayGuard {
            relays: self.clone(),
            token,
        }
    }

    /// A progress notification for `token` arrived from the upstream.
    fn progress_arrived(&self, connection_id: &str, token: &rmcp::model::ProgressToken) {
        let Some(token) = token_text(token) else {
            return;
        };
        if let Ok(mut p) = self.progress.lock() {
            p.entry((connection_id.to_owned(), token)).or_default().0 += 1;
        }
    }

    /// A progress notification for `token` was passed on (or dropped).
    fn progress_passed(&self, connection_id: &str, token: &str) {
        if let Ok(mut p) = self.progress.lock() {
            let key = (connection_id.to_owned(), token.to_owned());
            let relayed = self.by_progress(connection_id, token).is_some();
            match p.get_mut(&key) {
                // Nobody waits for a token no relay has: forget it.
                Some(_) if !relayed => {
                    p.remove(&key);
                }
                Some(counts) => counts.1 += 1,
                None => {}
            }
        }
        self.progress_passed.notify_waiters();
    }

    fn by_progress(&self, connection_id: &str, token: &str) -> Option<Arc<dyn CallerChannel>> {
        self.map
            .lock()
            .ok()?
            .values()
            .find(|r| r.connection_id == connection_id && r.progress.as_deref() == Some(token))
            .map(|r| r.channel.clone())
    }

    fn only_caller_of(&self, connection_id: &str) -> Result<Arc<dyn CallerChannel>, String> {
        let m = self
            .map
            .lock()
            .map_err(|_| "the relay table is unavailable".to_owned())?;
        let mut found = m.values().filter(|r| r.connection_id == connection_id);
        match (found.next(), found.next()) {
            (Some(one), None) => Ok(one.channel.clone()),
            (None, _) => Err("no caller is waiting on this upstream".to_owned()),
            (Some(_), Some(_)) => Err(
                "several callers have requests in flight on this upstream, so the request cannot be routed to one of them".to_owned(),
            ),
        }
    }
}

/// Receives the upstream's notifications and requests for one session.
#[derive(Clone)]
struct UpstreamHandler {
    connection_id: String,
    events: mpsc::UnboundedSender<PoolEvent>,
    relays: Arc<Relays>,
}

impl UpstreamHandler {
    /// Tells the gateway one of this upstream's lists changed.
    fn list_changed(&self) {
        let _ = self
            .events
            .send(PoolEvent::ListChanged(self.connection_id.clone()));
    }

    /// A server-to-client request of the upstream, passed to the one caller
    /// waiting on it.
    async fn ask_caller<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<R, rmcp::ErrorData> {
        let channel = self
            .relays
            .only_caller_of(&self.connection_id)
            .map_err(|m| {
                rmcp::ErrorData::internal_error(
                    format!("the gateway cannot pass on '{method}': {m}"),
                    None,
                )
            })?;
        let params = serde_json::to_value(params)
            .map_err(|e| rmcp::ErrorData::internal_error(e.to_string(), None))?;
        match channel.request(method, params).await {
            Ok(v) => serde_json::from_value(v).map_err(|e| {
                rmcp::ErrorData::internal_error(
                    format!("the client's answer to '{method}': {e}"),
                    None,
                )
            }),
            Err(ForwardError::Upstream {
                code,
                message,
                data,
            }) => Err(rmcp::ErrorData::new(
                rmcp::model::ErrorCode(code),
                message,
                data,
            )),
            Err(ForwardError::Refused(m) | ForwardError::Unavailable(m)) => {
                Err(rmcp::ErrorData::internal_error(m, None))
            }
        }
    }
}

impl ClientHandler for UpstreamHandler {
    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
        // What a caller may be able to do; a caller that cannot gets the
        // upstream's request answered with an error.
        info.capabilities = ClientCapabilities::builder()
            .enable_sampling()
            .enable_elicitation()
            .enable_roots()
            .build();
        info.client_info = Implementation::new("switchboard-gateway", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.list_changed();
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.list_changed();
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.list_changed();
    }

    async fn on_resource_updated(
        &self,
        params: rmcp::model::ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.events.send(PoolEvent::ResourceUpdated(
            self.connection_id.clone(),
            params.uri,
        ));
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let Some(ours) = token_text(&params.progress_token) else {
            return;
        };
        if let Some(channel) = self.relays.by_progress(&self.connection_id, &ours)
            && let Some(theirs) = channel.progress_token()
            && let Ok(mut v) = serde_json::to_value(&params)
            && let Some(m) = v.as_object_mut()
        {
            m.insert("progressToken".into(), theirs);
            channel.notify("notifications/progress", v).await;
        }
        self.relays.progress_passed(&self.connection_id, &ours);
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        if let Ok(channel) = self.relays.only_caller_of(&self.connection_id)
            && let Ok(v) = serde_json::to_value(&params)
        {
            channel.notify("notifications/message", v).await;
        }
    }

    #[allow(deprecated)] // sampling is still part of 2025-11-25
    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, rmcp::ErrorData> {
        self.ask_caller("sampling/createMessage", &params).await
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, rmcp::ErrorData> {
        self.ask_caller("elicitation/create", &request).await
    }

    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, rmcp::ErrorData> {
        self.ask_caller("roots/list", &serde_json::json!({})).await
    }
}

type Session = RunningService<RoleClient, UpstreamHandler>;

struct Live {
    session: Session,
    version: i64,
    /// The child's pid (and process group id), for stdio.
    pid: Option<u32>,
    /// The child's private directories, removed when it stops.
    dirs: Option<crate::confinement::PrivateDirs>,
}

#[derive(Default)]
struct SlotState {
    live: Option<Live>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<String>,
    starts: u64,
}

/// One (connection, credential).
struct Slot {
    state: tokio::sync::Mutex<SlotState>,
    stderr: Arc<StderrRing>,
    last_used: AtomicI64,
    /// The connection's shared secret values, masked in every answer.
    secrets: Mutex<Vec<Zeroizing<String>>>,
}

/// The last lines a child wrote to stderr, secret values masked.
#[derive(Default)]
pub struct StderrRing {
    lines: Mutex<VecDeque<String>>,
}

impl StderrRing {
    fn push(&self, mut line: String, secrets: &[Zeroizing<String>]) {
        for s in secrets {
            if s.len() >= MIN_MASKED && line.contains(s.as_str()) {
                line = line.replace(s.as_str(), "****");
            }
        }
        if line.len() > STDERR_LINE_BYTES {
            let mut cut = STDERR_LINE_BYTES;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push('…');
        }
        if let Ok(mut l) = self.lines.lock() {
            if l.len() == STDERR_LINES {
                l.pop_front();
            }
            l.push_back(line);
        }
    }

    pub fn snapshot(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// What an admin sees of a connection's live upstream on this replica.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ProcessView {
    /// Whether a session (or child) is up now.
    pub running: bool,
    pub pid: Option<u32>,
    /// How many times it was started.
    pub starts: u64,
    /// Failed starts in a row.
    pub failures: u32,
    pub last_error: Option<String>,
    /// The last lines of the child's stderr (stdio), secrets masked.
    pub stderr: Vec<String>,
}

/// The pool. Cheap to share (`Arc`).
pub struct UpstreamPool {
    settings: PoolSettings,
    egress: Arc<EgressClient>,
    hub_id: String,
    core: Core,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    events: mpsc::UnboundedSender<PoolEvent>,
    relays: Arc<Relays>,
    /// Resource subscriptions this replica's callers hold, per connection:
    /// how many callers want each URI. The upstream is subscribed to a URI
    /// while the count is above zero.
    watched: Mutex<HashMap<String, HashMap<String, usize>>>,
    /// Per connection with a 2026-07-28 upstream, the `subscriptions/listen`
    /// stream that carries the watched URIs (replaced when they change).
    resource_streams: Mutex<HashMap<String, tokio_util::sync::CancellationToken>>,
}

impl UpstreamPool {
    pub fn new(
        settings: PoolSettings,
        egress: Arc<EgressClient>,
        hub_id: String,
        core: Core,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<PoolEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(UpstreamPool {
                settings,
                egress,
                hub_id,
                core,
                slots: Mutex::new(HashMap::new()),
                events: tx,
                relays: Arc::new(Relays::default()),
                watched: Mutex::new(HashMap::new()),
                resource_streams: Mutex::new(HashMap::new()),
            }),
            rx,
        )
    }

    pub fn settings(&self) -> &PoolSettings {
        &self.settings
    }

    /// Registers a caller for what the upstream sends back during one request.
    pub fn relay(&self, connection_id: &str, channel: Arc<dyn CallerChannel>) -> RelayGuard {
        self.relays.begin(connection_id, channel)
    }

    fn slot(&self, connection_id: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(connection_id.to_owned())
            .or_insert_with(|| {
                Arc::new(Slot {
                    state: tokio::sync::Mutex::new(SlotState::default()),
                    stderr: Arc::new(StderrRing::default()),
                    last_used: AtomicI64::new(switchboard_core::now_ms()),
                    secrets: Mutex::new(Vec::new()),
                })
            })
            .clone()
    }

    /// A live session with the connection's upstream, started if there is
    /// none, the one there is is closed, or the connection changed since
    /// (`version` is its `updated_at`). Callers wait for one start rather
    /// than starting one each.
    pub async fn peer(
        &self,
        connection_id: &str,
        version: i64,
    ) -> Result<Peer<RoleClient>, String> {
        let slot = self.slot(connection_id);
        slot.last_used
            .store(switchboard_core::now_ms(), Ordering::Relaxed);
        let mut st = slot.state.lock().await;
        if let Some(live) = &st.live
            && live.version >= version
            && !live.session.is_closed()
        {
            return Ok(live.session.peer().clone());
        }
        if let Some(old) = st.live.take() {
            stop(old).await;
        }
        if let Some(at) = st.retry_at
            && at > Instant::now()
        {
            let wait = at.saturating_duration_since(Instant::now()).as_secs() + 1;
            return Err(format!(
                "the upstream failed to start {} time(s) in a row ({}); the next attempt is in {wait} s",
                st.failures,
                st.last_error.as_deref().unwrap_or("unknown error")
            ));
        }
        let target = self
            .core
            .upstream_target(connection_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the connection no longer exists".to_owned())?;
        let started =
            tokio::time::timeout(self.settings.connect_timeout, self.start(&target, &slot))
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "the upstream did not complete the MCP handshake within {} s",
                        self.settings.connect_timeout.as_secs()
                    ))
                });
        st.starts += 1;
        match started {
            Ok(live) => {
                st.failures = 0;
                st.retry_at = None;
                st.last_error = None;
                let peer = live.session.peer().clone();
                watch_lists(peer.clone(), connection_id.to_owned(), self.events.clone());
                // A new session holds no subscriptions yet.
                self.resubscribe(connection_id, &peer);
                st.live = Some(live);
                Ok(peer)
            }
            Err(e) => {
                st.failures += 1;
                let backoff = Duration::from_millis(500)
                    .saturating_mul(1 << st.failures.min(8))
                    .min(MAX_BACKOFF);
                st.retry_at = Some(Instant::now() + backoff);
                st.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Counts one caller's subscription (`on`) to the resource at `uri` of
    /// a connection, or its end. The first caller's subscription subscribes
    /// the upstream and the last one's end unsubscribes it: a 2025-11-25
    /// upstream with `resources/subscribe`, a 2026-07-28 one on a
    /// `subscriptions/listen` stream for all the watched URIs.
    pub async fn watch_resource(
        &self,
        connection_id: &str,
        version: i64,
        uri: &str,
        on: bool,
    ) -> Result<(), String> {
        let (changed, uris) = {
            let mut watched = self
                .watched
                .lock()
                .map_err(|_| "the subscription table is unavailable".to_owned())?;
            let counts = watched.entry(connection_id.to_owned()).or_default();
            let changed = if on {
                let n = counts.entry(uri.to_owned()).or_insert(0);
                *n += 1;
                *n == 1
            } else {
                match counts.get_mut(uri) {
                    Some(n) if *n > 1 => {
                        *n -= 1;
                        false
                    }
                    Some(_) => {
                        counts.remove(uri);
                        true
                    }
                    None => false,
                }
            };
            let uris: Vec<String> = counts.keys().cloned().collect();
            if counts.is_empty() {
                watched.remove(connection_id);
            }
            (changed, uris)
        };
        if !changed {
            return Ok(());
        }
        let told = self
            .tell_upstream(connection_id, version, uri, on, uris)
            .await;
        if told.is_err() && on {
            // Not subscribed after all: this caller does not count.
            let _ = Box::pin(self.watch_resource(connection_id, version, uri, false)).await;
        }
        told
    }

    async fn tell_upstream(
        &self,
        connection_id: &str,
        version: i64,
        uri: &str,
        on: bool,
        uris: Vec<String>,
    ) -> Result<(), String> {
        let peer = self.peer(connection_id, version).await?;
        if speaks_2026(&peer) {
            self.stream_resources(connection_id, &peer, uris);
            return Ok(());
        }
        let result = if on {
            peer.subscribe(rmcp::model::SubscribeRequestParams::new(uri))
                .await
        } else {
            peer.unsubscribe(rmcp::model::UnsubscribeRequestParams::new(uri))
                .await
        };
        result.map_err(|e| e.to_string())
    }

    /// Subscribes a new session to every URI this replica's callers watch.
    fn resubscribe(&self, connection_id: &str, peer: &Peer<RoleClient>) {
        let uris: Vec<String> = self
            .watched
            .lock()
            .ok()
            .and_then(|w| w.get(connection_id).map(|c| c.keys().cloned().collect()))
            .unwrap_or_default();
        if uris.is_empty() {
            return;
        }
        if speaks_2026(peer) {
            self.stream_resources(connection_id, peer, uris);
            return;
        }
        let peer = peer.clone();
        tokio::spawn(async move {
            for uri in uris {
                if let Err(e) = peer
                    .subscribe(rmcp::model::SubscribeRequestParams::new(uri))
                    .await
                {
                    tracing::debug!(error = %e, "could not subscribe a new upstream session again");
                }
            }
        });
    }

    /// (Re)opens the `subscriptions/listen` stream of a 2026-07-28 upstream
    /// for `uris` (none: the stream just ends), replacing the last one.
    fn stream_resources(&self, connection_id: &str, peer: &Peer<RoleClient>, uris: Vec<String>) {
        let stop = tokio_util::sync::CancellationToken::new();
        if let Ok(mut streams) = self.resource_streams.lock()
            && let Some(old) = streams.insert(connection_id.to_owned(), stop.clone())
        {
            old.cancel();
        }
        if uris.is_empty() {
            return;
        }
        let filter = rmcp::model::SubscriptionFilter::builder()
            .resource_subscriptions(uris)
            .build();
        let (peer, events, id) = (peer.clone(), self.events.clone(), connection_id.to_owned());
        tokio::spawn(async move {
            let mut stream = tokio::select! {
                () = stop.cancelled() => return,
                s = peer.listen(filter) => match s {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(connection = %id, error = %e, "the upstream refused a resource subscription");
                        return;
                    }
                },
            };
            loop {
                let next = tokio::select! {
                    () = stop.cancelled() => return,
                    n = stream.next() => n,
                };
                match next {
                    Ok(Some(rmcp::model::ServerNotification::ResourceUpdatedNotification(n))) => {
                        if events
                            .send(PoolEvent::ResourceUpdated(id.clone(), n.params.uri))
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(Some(_)) => {}
                    _ => return,
                }
            }
        });
    }

    /// Forgets a session that broke during a request, so the next request
    /// starts a new one without waiting for the backoff.
    pub async fn discard(&self, connection_id: &str) {
        let slot = self.slot(connection_id);
        let mut st = slot.state.lock().await;
        if let Some(old) = st.live.take() {
            stop(old).await;
        }
    }

    async fn start(&self, target: &UpstreamTarget, slot: &Slot) -> Result<Live, String> {
        let creds = self
            .core
            .connection_credentials(&target.id)
            .await
            .map_err(|e| e.to_string())?;
        if let Ok(mut s) = slot.secrets.lock() {
            *s = creds
                .iter()
                .filter(|(_, _, v)| v.len() >= MIN_MASKED)
                .map(|(_, _, v)| v.clone())
                .collect();
        }
        let stderr = slot.stderr.clone();
        let handler = UpstreamHandler {
            connection_id: target.id.clone(),
            events: self.events.clone(),
            relays: self.relays.clone(),
        };
        match target.transport.as_str() {
            "streamable_http" => {
                let transport = Counted::new(
                    self.http_transport(target, &creds)?,
                    target.id.clone(),
                    self.relays.clone(),
                );
                let session = handler
                    .serve_with_lifecycle(transport, lifecycle())
                    .await
                    .map_err(|e| {
                        format!(
                            "could not connect to the upstream MCP server: {}",
                            explain_start(&e)
                        )
                    })?;
                Ok(Live {
                    session,
                    version: target.version,
                    pid: None,
                    dirs: None,
                })
            }
            "stdio" => self.spawn_child(target, &creds, handler, stderr).await,
            other => Err(format!("unknown transport '{other}'")),
        }
    }

    fn http_transport(
        &self,
        target: &UpstreamTarget,
        creds: &[(String, String, Zeroizing<String>)],
    ) -> Result<StreamableHttpClientTransport<reqwest::Client>, String> {
        let url_text = target
            .url
            .as_deref()
            .ok_or_else(|| "the connection has no URL".to_owned())?;
        let url =
            url::Url::parse(url_text).map_err(|e| format!("the upstream URL is invalid: {e}"))?;
        self.egress.check_url(&url).map_err(|e| e.to_string())?;
        let mut headers = HashMap::new();
        headers.insert(
            http::HeaderName::from_static(HOP_HEADER),
            http::HeaderValue::from_str(&self.hub_id)
                .map_err(|_| "the hub id is not a header value".to_owned())?,
        );
        for (kind, name, value) in creds {
            if kind != "header" {
                continue;
            }
            let n = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("the shared header '{name}' is not a valid header name"))?;
            let mut v = http::HeaderValue::from_str(value.as_str())
                .map_err(|_| format!("the shared header '{name}' has an invalid value"))?;
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        let config =
            StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(headers);
        Ok(StreamableHttpClientTransport::with_client(
            self.egress.http_client(),
            config,
        ))
    }

    async fn spawn_child(
        &self,
        target: &UpstreamTarget,
        creds: &[(String, String, Zeroizing<String>)],
        handler: UpstreamHandler,
        stderr_ring: Arc<StderrRing>,
    ) -> Result<Live, String> {
        let command = target
            .command
            .as_deref()
            .ok_or_else(|| "the connection has no command".to_owned())?;
        // The catalog's rules are checked again at every start: an entry or
        // a rule may have changed since the connection was saved.
        let env_names: Vec<&str> = creds
            .iter()
            .filter(|(kind, _, _)| kind == "env")
            .map(|(_, name, _)| name.as_str())
            .collect();
        let host_paths: Vec<std::path::PathBuf> = self
            .core
            .check_stdio_launch(&target.id, &env_names)
            .await
            .map_err(|e| format!("the child was not started: {e}"))?
            .into_iter()
            .filter_map(|p| match p {
                switchboard_core::integrations::HostPath::Arg(v) => Some(v.into()),
                switchboard_core::integrations::HostPath::Env(name) => creds
                    .iter()
                    .find(|(kind, n, _)| kind == "env" && *n == name)
                    .map(|(_, _, v)| v.as_str().into()),
            })
            .collect();
        let (mut cmd, dirs) = match &self.settings.confinement {
            Some(confinement) => {
                if let Some(refusal) = &confinement.refusal {
                    return Err(refusal.clone());
                }
                let dirs = confinement.prepare(&target.org_id, &target.id)?;
                (
                    confinement.command(&dirs, command, &target.args, &host_paths),
                    Some(dirs),
                )
            }
            None => {
                let mut cmd = tokio::process::Command::new(command);
                cmd.args(&target.args)
                    .env_clear()
                    .current_dir(std::env::temp_dir());
                (cmd, None)
            }
        };
        for var in &self.settings.inherit_env {
            if var.starts_with("SWITCHBOARD_") || var == "HOME" || var == "TMPDIR" {
                continue;
            }
            if let Some(v) = std::env::var_os(var) {
                cmd.env(var, v);
            }
        }
        let mut secrets = Vec::new();
        for (kind, name, value) in creds {
            if kind == "env" {
                cmd.env(name, value.as_str());
            }
            secrets.push(value.clone());
        }
        let mut wrapped = process_wrap::tokio::CommandWrap::from(cmd);
        wrapped
            .wrap(process_wrap::tokio::ProcessGroup::leader())
            .wrap(process_wrap::tokio::KillOnDrop);
        let (child, stderr) = TokioChildProcess::builder(wrapped)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not start '{command}': {e}"))?;
        let pid = child.id();
        if let Some(stderr) = stderr {
            let ring = stderr_ring.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    ring.push(line, &secrets);
                }
            });
        }
        let transport = Counted::new(child, target.id.clone(), self.relays.clone());
        match handler.serve_with_lifecycle(transport, lifecycle()).await {
            Ok(session) => Ok(Live {
                session,
                version: target.version,
                pid,
                dirs,
            }),
            Err(e) => {
                if let Some(pid) = pid {
                    kill_group(pid);
                }
                Err(format!(
                    "'{command}' did not complete the MCP handshake: {}",
                    explain_start(&e)
                ))
            }
        }
    }

    /// Masks the connection's secret values wherever they appear in an
    /// upstream's answer (an upstream that echoes its API key does not get
    /// to show it to the caller).
    pub fn redact(&self, connection_id: &str, value: &mut serde_json::Value) {
        let slot = self.slot(connection_id);
        let Ok(secrets) = slot.secrets.lock() else {
            return;
        };
        if !secrets.is_empty() {
            mask(value, &secrets);
        }
    }

    /// Stops children unused for longer than the idle timeout, and pings the
    /// others that have been quiet for a while (a failed ping stops it: the
    /// next call starts a new one). Run every few seconds.
    pub async fn housekeeping(&self) {
        let now = switchboard_core::now_ms();
        let idle_ms = self.settings.idle_timeout.as_millis() as i64;
        let slots: Vec<(String, Arc<Slot>)> = self
            .slots
            .lock()
            .map(|s| s.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        for (id, slot) in slots {
            let Ok(mut st) = slot.state.try_lock() else {
                continue; // starting right now
            };
            let Some(live) = &st.live else { continue };
            let quiet = now - slot.last_used.load(Ordering::Relaxed);
            if live.session.is_closed() {
                if let Some(old) = st.live.take() {
                    stop(old).await;
                }
            } else if quiet > idle_ms {
                tracing::debug!(connection = %id, "stopping an idle upstream");
                if let Some(old) = st.live.take() {
                    stop(old).await;
                }
            } else if quiet > 30_000 && live.pid.is_some() {
                let peer = live.session.peer().clone();
                let ping = tokio::time::timeout(
                    Duration::from_secs(10),
                    peer.send_request(rmcp::model::ClientRequest::PingRequest(Default::default())),
                )
                .await;
                if !matches!(ping, Ok(Ok(_))) {
                    tracing::warn!(connection = %id, "an upstream child did not answer a ping; stopping it");
                    st.last_error = Some("did not answer a health-check ping".into());
                    if let Some(old) = st.live.take() {
                        stop(old).await;
                    }
                }
            }
        }
    }

    /// What runs for a connection on this replica.
    pub async fn process_view(&self, connection_id: &str) -> ProcessView {
        let slot = self.slot(connection_id);
        let st = slot.state.lock().await;
        ProcessView {
            running: st.live.as_ref().is_some_and(|l| !l.session.is_closed()),
            pid: st.live.as_ref().and_then(|l| l.pid),
            starts: st.starts,
            failures: st.failures,
            last_error: st.last_error.clone(),
            stderr: slot.stderr.snapshot(),
        }
    }

    /// Stops every session and kills every child's process group (at shutdown).
    pub async fn shutdown(&self) {
        let slots: Vec<Arc<Slot>> = self
            .slots
            .lock()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default();
        for slot in slots {
            let mut st = slot.state.lock().await;
            if let Some(old) = st.live.take() {
                stop(old).await;
            }
        }
    }
}

/// An upstream transport that counts progress notifications as they
/// arrive (see [`Relays`]): the one place that sees them in order with
/// the responses.
///
/// It also drops the late answer to a `server/discover` probe that rmcp
/// gave up on: a slow starter (an `npx` download takes longer than the
/// probe's 10 s) answers the probe after rmcp has fallen back to
/// `initialize`, and rmcp would take that answer for an uncorrelated
/// response and fail the handshake.
struct Counted<T> {
    inner: T,
    connection_id: String,
    relays: Arc<Relays>,
    /// The id of the discover probe, once an `initialize` followed it.
    abandoned_probe: Probe,
}

#[derive(Default)]
enum Probe {
    #[default]
    None,
    Sent(rmcp::model::RequestId),
    Abandoned(rmcp::model::RequestId),
}

impl<T> Counted<T> {
    fn new(inner: T, connection_id: String, relays: Arc<Relays>) -> Self {
        Counted {
            inner,
            connection_id,
            relays,
            abandoned_probe: Probe::None,
        }
    }
}

impl<T: rmcp::transport::Transport<RoleClient>> rmcp::transport::Transport<RoleClient>
    for Counted<T>
{
    type Error = T::Error;

    fn send(
        &mut self,
        item: rmcp::service::TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        if let rmcp::model::JsonRpcMessage::Request(r) = &item {
            match (&r.request, std::mem::take(&mut self.abandoned_probe)) {
                (rmcp::model::ClientRequest::DiscoverRequest(_), _) => {
                    self.abandoned_probe = Probe::Sent(r.id.clone());
                }
                (rmcp::model::ClientRequest::InitializeRequest(_), Probe::Sent(id)) => {
                    self.abandoned_probe = Probe::Abandoned(id);
                }
                (_, other) => self.abandoned_probe = other,
            }
        }
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<rmcp::service::RxJsonRpcMessage<RoleClient>> {
        let mut message = self.inner.receive().await;
        while let (Some(m), Probe::Abandoned(probe)) = (&message, &self.abandoned_probe) {
            let id = match m {
                rmcp::model::JsonRpcMessage::Response(r) => Some(&r.id),
                rmcp::model::JsonRpcMessage::Error(e) => e.id.as_ref(),
                _ => None,
            };
            if id != Some(probe) {
                break;
            }
            tracing::debug!(connection = %self.connection_id, "dropped the late answer to an abandoned server/discover probe");
            self.abandoned_probe = Probe::None;
            message = self.inner.receive().await;
        }
        if let Some(rmcp::model::JsonRpcMessage::Notification(n)) = &message
            && let rmcp::model::ServerNotification::ProgressNotification(p) = &n.notification
        {
            self.relays
                .progress_arrived(&self.connection_id, &p.params.progress_token);
        }
        message
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}

/// A 2026-07-28 upstream says its lists changed only on a
/// `subscriptions/listen` stream: one per session, for the lists it says
/// can change, for as long as the session lives. (An earlier-era upstream
/// sends the notifications on its session, to [`UpstreamHandler`].) Either
/// way, once the session is listening the pool says so, and the catalog is
/// fetched again.
fn watch_lists(
    peer: Peer<RoleClient>,
    connection_id: String,
    events: mpsc::UnboundedSender<PoolEvent>,
) {
    let started = PoolEvent::SessionStarted(connection_id.clone());
    let Some(info) = peer.peer_info() else {
        let _ = events.send(started);
        return;
    };
    if info.protocol_version < rmcp::model::ProtocolVersion::V_2026_07_28 {
        // Its notifications come on the session, which is up.
        let _ = events.send(started);
        return;
    }
    let filter = rmcp::model::SubscriptionFilter::builder()
        .tools_list_changed()
        .prompts_list_changed()
        .resources_list_changed()
        .build()
        .supported_by(&info.capabilities);
    if filter == rmcp::model::SubscriptionFilter::default() {
        let _ = events.send(started);
        return;
    }
    tokio::spawn(async move {
        let subscription = peer.listen(filter).await;
        // Listed again once the stream is acknowledged: a change after
        // this is notified, one before it is in the new listing.
        let _ = events.send(started);
        let mut subscription = match subscription {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(connection = %connection_id, error = %e, "the upstream refused subscriptions/listen");
                return;
            }
        };
        while let Ok(Some(notification)) = subscription.next().await {
            use rmcp::model::ServerNotification as N;
            if !matches!(
                notification,
                N::ToolListChangedNotification(_)
                    | N::PromptListChangedNotification(_)
                    | N::ResourceListChangedNotification(_)
            ) {
                continue;
            }
            if events
                .send(PoolEvent::ListChanged(connection_id.clone()))
                .is_err()
            {
                break;
            }
        }
    });
}

/// Whether a session speaks 2026-07-28 (else an earlier era).
fn speaks_2026(peer: &Peer<RoleClient>) -> bool {
    peer.peer_info()
        .is_some_and(|i| i.protocol_version >= rmcp::model::ProtocolVersion::V_2026_07_28)
}

/// Upstream sessions speak 2026-07-28 when the upstream does (input
/// required results pass through to callers of that era, and are
/// fulfilled for earlier ones), else 2025-11-25.
fn lifecycle() -> rmcp::service::ClientLifecycleMode {
    rmcp::service::ClientLifecycleMode::Auto {
        preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
        legacy_version: Some(rmcp::model::ProtocolVersion::V_2025_11_25),
    }
}

/// Why a session could not start, in a sentence (rmcp's own message names
/// its transport's Rust type, and its transport error does not chain to
/// the cause).
fn explain_start(e: &rmcp::service::ClientInitializeError) -> String {
    use rmcp::service::ClientInitializeError as E;
    type HttpError = rmcp::transport::streamable_http_client::StreamableHttpError<reqwest::Error>;
    match e {
        E::TransportError { error, .. } => {
            // The HTTP client's error (which chains to the network policy's
            // refusal) is wrapped without a source link.
            match error.error.downcast_ref::<HttpError>() {
                Some(HttpError::Client(inner)) => switchboard_egress::explain(inner),
                Some(other) => switchboard_egress::explain(other),
                None => switchboard_egress::explain(error),
            }
        }
        E::LegacyFallbackFailed { fallback, .. } => explain_start(fallback),
        other => switchboard_egress::explain(other),
    }
}

/// Secrets shorter than this are not masked (they would mask ordinary text).
const MIN_MASKED: usize = 6;

fn mask(value: &mut serde_json::Value, secrets: &[Zeroizing<String>]) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            for secret in secrets {
                if s.contains(secret.as_str()) {
                    *s = s.replace(secret.as_str(), "****");
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask(v, secrets)),
        Value::Object(map) => map.values_mut().for_each(|v| mask(v, secrets)),
        _ => {}
    }
}

/// Ends a session; for a child, its whole process group goes (SIGTERM, then
/// SIGKILL when it lingers), so grandchildren such as `npx`'s node die too.
async fn stop(live: Live) {
    let Live {
        session, pid, dirs, ..
    } = live;
    if let Some(pid) = pid {
        term_group(pid);
    }
    let closed = tokio::time::timeout(Duration::from_secs(2), session.cancel()).await;
    if let Some(pid) = pid
        && closed.is_err()
    {
        kill_group(pid);
    }
    // Its files go once it is gone.
    drop(dirs);
}

fn term_group(pid: u32) {
    signal_group(pid, nix::sys::signal::Signal::SIGTERM);
}

fn kill_group(pid: u32) {
    signal_group(pid, nix::sys::signal::Signal::SIGKILL);
}

fn signal_group(pid: u32, sig: nix::sys::signal::Signal) {
    let Ok(raw) = i32::try_from(pid) else { return };
    if raw <= 1 {
        return;
    }
    if let Err(e) = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(raw), sig)
        && e != nix::errno::Errno::ESRCH
    {
        tracing::warn!(pid, error = %e, "could not signal an upstream's process group");
    }
}
