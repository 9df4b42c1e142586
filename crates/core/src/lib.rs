//! The application core: the use cases every surface calls (REST today, MCP
//! and the web pages next), with authentication, authorization and audit
//! built in.
//!
//! API Boundary: surfaces gather credentials and request metadata, call
//! [`Core::authenticate_bearer`] / [`Core::authenticate_session`] to get a
//! [`Principal`], then call a use case with a [`Ctx`]. A use case checks the
//! principal's CURRENT role permissions and token scopes, validates input,
//! writes its change and its audit event in ONE transaction, and returns a
//! serializable view.
//!
//! Architecture Invariant: this crate knows no HTTP, no JSON-RPC and no SQL;
//! SQL lives in `switchboard-storage`, protocols in the surface crates.
//! Time is a parameter ([`RequestMeta::now_ms`]), never read inside a rule.

pub mod access;
mod access_cache;
mod audit;
mod audit_queue;
mod error;
mod mcp_sessions;
mod password;
mod principal;
mod principal_cache;
mod secret;

pub mod accounts;
pub mod connections;
pub mod integrations;
pub mod members;
pub mod oauth;
pub mod orgs;
pub mod tokens;
pub mod views;
pub mod virtual_servers;
pub mod work;

pub use access_cache::AccessCache;
pub use audit::{AuditQuery, CallInfo, Outcome, Surface, cut_for_display, summarize_args};
pub use error::CoreError;
pub use principal::{Credential, Principal};
pub use secret::{hash_secret, new_secret};

use switchboard_storage::Db;

/// Settings the core needs; the binary fills them from its configuration.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub session_ttl_ms: i64,
    pub invitation_ttl_ms: i64,
    pub setup_token_ttl_ms: i64,
    /// Sign-in attempts per (email, client address) within
    /// `sign_in_window_ms`; a success gives its attempt back.
    pub sign_in_max_failures: i64,
    /// The looser limits per email and per client address.
    pub sign_in_max_per_email: i64,
    pub sign_in_max_per_address: i64,
    pub sign_in_window_ms: i64,
    /// Largest page a list request may ask for.
    pub max_page_size: u32,
    pub default_page_size: u32,
    /// Base URL for links the server hands out (invitations, setup); also
    /// the OAuth issuer (without its trailing slash).
    pub public_url: String,
    pub oauth: oauth::OAuthConfig,
    /// The integration catalog (built-in and operator entries): the only
    /// command lines a stdio connection may run, each with the variables an
    /// org admin may set.
    pub catalog: integrations::Catalog,
    /// Whether org admins may add their own npm packages as custom stdio
    /// integrations (`gateway.allow_custom_packages`; off by default).
    pub allow_custom_packages: bool,
    /// Who may create organizations (`instance.org_creation`).
    pub org_creation: OrgCreation,
    /// Open 2025-11-25 MCP sessions per token, and on the instance.
    pub mcp_max_sessions_per_token: u32,
    pub mcp_max_sessions: u32,
}

/// Who may create organizations on this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrgCreation {
    /// Instance operators only: the account made at first setup (and others
    /// an operator marks), and the CLI.
    #[default]
    Operators,
    /// Any signed-in account.
    Anyone,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            session_ttl_ms: 7 * 24 * 3600 * 1000,
            invitation_ttl_ms: 7 * 24 * 3600 * 1000,
            setup_token_ttl_ms: 3600 * 1000,
            sign_in_max_failures: 5,
            sign_in_max_per_email: 50,
            sign_in_max_per_address: 50,
            sign_in_window_ms: 15 * 60 * 1000,
            max_page_size: 200,
            default_page_size: 50,
            public_url: "http://127.0.0.1:8080".to_owned(),
            oauth: oauth::OAuthConfig::default(),
            catalog: integrations::Catalog::default(),
            allow_custom_packages: false,
            org_creation: OrgCreation::Operators,
            mcp_max_sessions_per_token: 64,
            mcp_max_sessions: 10_000,
        }
    }
}

/// The application: a database and settings. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Core {
    pub(crate) db: Db,
    /// Shared, not copied: a `Core` is cloned for every session and every
    /// stateless request.
    pub(crate) config: std::sync::Arc<CoreConfig>,
    pub(crate) audit_queue: audit_queue::AuditQueue,
    /// Seals connection secrets; set with [`Core::with_vault`].
    pub(crate) vault: Option<std::sync::Arc<switchboard_vault::Keyring>>,
    /// Bearer principals, checked against the org's access version on
    /// every request (see `principal_cache`).
    pub(crate) principals: std::sync::Arc<principal_cache::PrincipalCache>,
}

impl Core {
    pub fn new(db: Db, config: CoreConfig) -> Self {
        let audit_queue = audit_queue::AuditQueue::new(db.clone());
        Core {
            db,
            config: std::sync::Arc::new(config),
            audit_queue,
            vault: None,
            principals: std::sync::Arc::new(principal_cache::PrincipalCache::new()),
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn config(&self) -> &CoreConfig {
        &self.config
    }
}

/// Where a request came from, for audit, and when it happened.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub surface: Surface,
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
    pub now_ms: i64,
    /// When the request arrived, for the audit event's latency.
    pub started: std::time::Instant,
    /// The MCP request being served, if any: its one audit event names the
    /// method and tool and summarizes the tool's arguments.
    pub call: Option<CallInfo>,
    /// Set once this request's audit event is written (by a change's own
    /// transaction, or a refusal), so that it is written exactly once.
    audited: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl RequestMeta {
    pub fn new(surface: Surface, now_ms: i64) -> Self {
        RequestMeta {
            surface,
            request_id: None,
            client_ip: None,
            now_ms,
            started: std::time::Instant::now(),
            call: None,
            audited: Default::default(),
        }
    }

    /// Whether this request's audit event has been written already.
    pub fn is_audited(&self) -> bool {
        self.audited.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The same request metadata for another request of the same HTTP
    /// request (a JSON-RPC batch item): it gets its own audit event.
    pub fn fork(&self) -> RequestMeta {
        RequestMeta {
            call: None,
            audited: Default::default(),
            ..self.clone()
        }
    }

    pub(crate) fn mark_audited(&self) {
        self.audited
            .store(true, std::sync::atomic::Ordering::Release);
    }
}

/// Who is asking, and the request's metadata: what every use case takes.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub principal: &'a Principal,
    pub meta: &'a RequestMeta,
}

/// Current time in epoch milliseconds, for the edges that create a [`RequestMeta`].
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A page request: keyset cursor and size.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

impl Core {
    pub(crate) fn page(&self, req: &PageRequest) -> Result<switchboard_storage::Page, CoreError> {
        let limit = req.limit.unwrap_or(self.config.default_page_size);
        if limit == 0 || limit > self.config.max_page_size {
            return Err(CoreError::invalid(
                "limit",
                format!("must be between 1 and {}", self.config.max_page_size),
            ));
        }
        // One extra row tells whether there is a next page.
        Ok(switchboard_storage::Page {
            cursor: req.cursor.clone(),
            limit: i64::from(limit) + 1,
        })
    }
}
