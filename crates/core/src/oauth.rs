//! The OAuth 2.1 authorization server's use cases: client registration,
//! the authorization request a member walks through (sign in → pick ONE
//! organization → consent), codes, access and refresh tokens, revocation,
//! and the member's connected apps.
//!
//! The HTTP edge (`switchboard-oauth`) parses requests and renders pages;
//! every decision is taken here. Errors are [`OAuthError`]s carrying the
//! RFC 6749 / 7591 / 8707 error code the edge puts on the wire.
//!
//! Invariants:
//! - codes, access and refresh tokens are 256-bit secrets stored as SHA-256;
//! - a code or refresh token is spent by one conditional UPDATE, so racing
//!   replicas get exactly one winner; replaying a spent one revokes every
//!   token that came from the same code (its family);
//! - an access token is bound to one account, ONE organization, the granted
//!   scopes and the resource (audience) it was issued for.

use std::collections::BTreeSet;

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_domain::Scope;
use switchboard_storage::{
    self as storage, AuditRow, Conn, Db, GrantFilter, OAuthClientRow, OAuthCodeRow, OAuthGrantRow,
    OAuthRequestRow, RefreshTokenRow, TokenRow,
};

use crate::access::ops;
use crate::accounts::parse_permissions;
use crate::secret::{hash_secret, new_secret, token_prefix};
use crate::views::rfc3339;
use crate::{Core, CoreError, Ctx, RequestMeta, summarize_args};

/// Lifetimes and limits of the authorization server.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub access_token_ttl_ms: i64,
    pub refresh_token_ttl_ms: i64,
    pub code_ttl_ms: i64,
    /// How long a member has to get through sign-in, the picker and consent.
    pub request_ttl_ms: i64,
    /// Dynamic registrations accepted per client IP per hour.
    pub registrations_per_hour: i64,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            access_token_ttl_ms: 3600 * 1000,
            refresh_token_ttl_ms: 30 * 24 * 3600 * 1000,
            code_ttl_ms: 60 * 1000,
            request_ttl_ms: 15 * 60 * 1000,
            registrations_per_hour: 30,
        }
    }
}

/// Redirect URIs a client may register at most.
const MAX_REDIRECT_URIS: usize = 10;
const MAX_URI_LEN: usize = 2000;
const MAX_NAME_LEN: usize = 100;
/// Schemes never accepted as a redirect target.
const FORBIDDEN_SCHEMES: [&str; 9] = [
    "javascript",
    "data",
    "file",
    "vbscript",
    "about",
    "blob",
    "ftp",
    "ws",
    "wss",
];

/// An OAuth error: the code on the wire and a sentence saying what was
/// wrong and what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub code: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(code: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
        }
    }
    fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", d)
    }
    fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", d)
    }
    fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", d)
    }
    fn invalid_target(d: impl Into<String>) -> Self {
        Self::new("invalid_target", d)
    }
}

impl From<CoreError> for OAuthError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Internal(m) => {
                tracing::error!(error = %m, "authorization server failure");
                OAuthError::new(
                    "server_error",
                    "the server failed; the error was logged, try again",
                )
            }
            other => OAuthError::new("access_denied", other.to_string()),
        }
    }
}

impl From<storage::StorageError> for OAuthError {
    fn from(e: storage::StorageError) -> Self {
        CoreError::from(e).into()
    }
}

/// How a client was registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// By the operator, with `switchboard oauth-client register`.
    Registered,
    /// By the client itself (RFC 7591 dynamic registration).
    Dynamic,
    /// Known by its metadata document URL (its client id).
    MetadataDocument,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Registered => "registered",
            ClientKind::Dynamic => "dynamic",
            ClientKind::MetadataDocument => "metadata_document",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "registered" => ClientKind::Registered,
            "dynamic" => ClientKind::Dynamic,
            _ => ClientKind::MetadataDocument,
        }
    }
}

/// A client as listed to operators and admins. Never carries its secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OAuthClientView {
    pub client_id: String,
    pub kind: ClientKind,
    pub client_name: String,
    pub client_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    pub application_type: String,
    pub token_endpoint_auth_method: String,
    pub created_at: String,
    pub revoked: bool,
}

fn client_view(r: &OAuthClientRow) -> OAuthClientView {
    OAuthClientView {
        client_id: r.id.clone(),
        kind: ClientKind::parse(&r.kind),
        client_name: r.name.clone(),
        client_uri: r.client_uri.clone(),
        redirect_uris: redirect_list(r),
        application_type: r.application_type.clone(),
        token_endpoint_auth_method: r.auth_method.clone(),
        created_at: rfc3339(r.created_at),
        revoked: r.revoked_at.is_some(),
    }
}

fn redirect_list(r: &OAuthClientRow) -> Vec<String> {
    serde_json::from_str(&r.redirect_uris).unwrap_or_default()
}

/// What a client asks to be registered with (RFC 7591 fields we use).
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    pub application_type: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
}

/// A registered client, with its secret shown this once (confidential only).
#[derive(Debug, Clone)]
pub struct RegisteredClient {
    pub client: OAuthClientView,
    pub client_secret: Option<String>,
    pub issued_at_secs: i64,
}

/// A validated client metadata document (the edge fetched it).
#[derive(Debug, Clone)]
pub struct MetadataDocument {
    pub client_id: String,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: Option<String>,
    /// When the copy must be fetched again.
    pub refresh_after: i64,
}

/// The one redirect URI rule set, for registration and documents. Returns
/// whether the URI is a native app's (loopback or private-use scheme).
pub fn check_redirect_uri(uri: &str) -> Result<bool, String> {
    if uri.len() > MAX_URI_LEN {
        return Err(format!(
            "a redirect URI may be at most {MAX_URI_LEN} characters"
        ));
    }
    let u = url::Url::parse(uri)
        .map_err(|e| format!("the redirect URI '{uri}' is not an absolute URL ({e})"))?;
    if u.fragment().is_some() {
        return Err(format!(
            "the redirect URI '{uri}' has a fragment (#…), which OAuth forbids"
        ));
    }
    // `https://trusted.example@evil.example/cb` goes to evil.example: a user
    // reading the consent page would be misled.
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!(
            "the redirect URI '{uri}' carries a user name or password before its host, which would hide where the browser really goes: remove it"
        ));
    }
    // The out-of-band "redirect" shows the code to whoever looks at the page.
    if u.scheme() == "urn" {
        return Err(format!(
            "the redirect URI '{uri}' is an out-of-band URN, which OAuth 2.1 does not allow: use a loopback http URI for a native app"
        ));
    }
    match u.scheme() {
        "https" => Ok(is_loopback_host(&u)),
        "http" => {
            if is_loopback_host(&u) {
                Ok(true)
            } else {
                Err(format!(
                    "the redirect URI '{uri}' uses plain http on a non-loopback host: use https, or http://127.0.0.1 for a native app"
                ))
            }
        }
        s if FORBIDDEN_SCHEMES.contains(&s) => Err(format!(
            "the redirect URI scheme '{s}:' is not allowed: use https, a loopback http URI, or an app's private-use scheme"
        )),
        _ => Ok(true),
    }
}

fn is_loopback_host(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Whether a redirect URI sent in a request matches a registered one:
/// exactly, or — for a loopback IP literal on http — on any port
/// (RFC 8252 §7.3: native apps get an ephemeral port from the OS).
pub fn redirect_matches(registered: &str, given: &str) -> bool {
    if registered == given {
        return true;
    }
    let (Ok(r), Ok(g)) = (url::Url::parse(registered), url::Url::parse(given)) else {
        return false;
    };
    let loopback_ip = matches!(r.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(r.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
    loopback_ip
        && r.scheme() == "http"
        && g.scheme() == "http"
        && r.host() == g.host()
        && r.path() == g.path()
        && r.query() == g.query()
        && g.fragment().is_none()
}

/// The resource (RFC 8707 audience) a token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `<public>/mcp`: valid on `/mcp` and `/mcp/rpc`.
    OrgEndpoint,
    /// `<public>/mcp/servers/{slug}`: valid on that virtual server only.
    VirtualServer(String),
}

/// Parses a `resource` parameter against this server's public base URL
/// (no trailing slash). One trailing slash is tolerated.
pub fn parse_resource(public_base: &str, given: &str) -> Result<Resource, String> {
    let expected = format!("{public_base}/mcp");
    let given_trimmed = given.strip_suffix('/').unwrap_or(given);
    if given_trimmed == expected {
        return Ok(Resource::OrgEndpoint);
    }
    if let Some(slug) = given_trimmed.strip_prefix(&format!("{expected}/servers/"))
        && switchboard_domain::validate_slug("resource", slug).is_ok()
    {
        return Ok(Resource::VirtualServer(slug.to_owned()));
    }
    Err(format!(
        "the resource '{given}' is not served here: use {expected} (or {expected}/servers/<slug> for a virtual server)"
    ))
}

/// The canonical text of a resource (what tokens store).
pub fn resource_uri(public_base: &str, r: &Resource) -> String {
    match r {
        Resource::OrgEndpoint => format!("{public_base}/mcp"),
        Resource::VirtualServer(slug) => format!("{public_base}/mcp/servers/{slug}"),
    }
}

/// The parameters of an authorization request, as sent by the client.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    /// Every `resource` parameter (more than one is refused).
    pub resources: Vec<String>,
    pub scope: Option<String>,
}

/// Why an authorization request stopped.
#[derive(Debug, Clone)]
pub enum AuthorizeError {
    /// The client or its redirect URI is not trustworthy: say so on a page,
    /// never redirect (an open redirector otherwise).
    Page(String),
    /// Tell the client, on its (verified) redirect URI.
    Redirect { location: String },
}

impl From<CoreError> for AuthorizeError {
    fn from(e: CoreError) -> Self {
        AuthorizeError::Page(match e {
            CoreError::Internal(m) => {
                tracing::error!(error = %m, "authorization failure");
                "something went wrong on the server; the error was logged".into()
            }
            other => other.to_string(),
        })
    }
}

impl From<storage::StorageError> for AuthorizeError {
    fn from(e: storage::StorageError) -> Self {
        CoreError::from(e).into()
    }
}

/// An authorization in progress, as the pages show it.
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    pub id: String,
    pub client: OAuthClientView,
    pub redirect_uri: String,
    pub scopes: Vec<Scope>,
    pub resource: String,
    pub account_id: Option<String>,
    pub org_id: Option<String>,
}

/// An organization the member may pick.
#[derive(Debug, Clone)]
pub struct OrgChoice {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub mcp_enabled: bool,
}

/// What happens after the member picked an organization.
#[derive(Debug, Clone)]
pub enum AfterPick {
    /// Show the consent page.
    Consent,
    /// Consent for these scopes was given before: back to the client.
    Redirect(String),
}

/// How the client authenticated at the token or revocation endpoint.
#[derive(Debug, Clone, Default)]
pub struct ClientAuth {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// A token request (`application/x-www-form-urlencoded` fields).
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub resources: Vec<String>,
    pub scope: Option<String>,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
    pub scope: String,
}

/// One of a member's connected apps (a live grant).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConnectedAppView {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    pub client_kind: String,
    pub member_email: String,
    pub scopes: Vec<String>,
    pub connected_at: String,
    pub last_used_at: Option<String>,
}

fn scopes_text(s: &BTreeSet<Scope>) -> String {
    s.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(" ")
}

fn parse_stored_scopes(s: &str) -> BTreeSet<Scope> {
    s.split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect()
}

/// Parses a `scope` parameter. `offline_access` is accepted and ignored:
/// refresh tokens are always issued.
fn parse_scope_param(s: &str) -> Result<BTreeSet<Scope>, String> {
    let mut out = BTreeSet::new();
    for name in s.split_whitespace() {
        if name == "offline_access" {
            continue;
        }
        out.insert(name.parse::<Scope>()?);
    }
    Ok(out)
}

fn is_pkce_value(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// base64url(SHA-256(verifier)), the S256 challenge of a verifier.
pub fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn ct_eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The answer sent back to the client's redirect URI (keeping its own
/// query): `params`, then the request's `state` if it had one, then `iss`
/// (RFC 9207), on every answer, success or error.
fn client_redirect(
    redirect_uri: &str,
    params: &[(&str, &str)],
    state: Option<&str>,
    iss: &str,
) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
                if let Some(s) = state {
                    q.append_pair("state", s);
                }
                q.append_pair("iss", iss);
            }
            u.to_string()
        }
        Err(_) => redirect_uri.to_owned(),
    }
}

/// A new client id for a registered client.
fn new_client_id() -> String {
    format!("sbc_{}", &new_secret()[..32])
}

/// An audit event of the authorization server. `org` is known once a
/// member picked one; refusals before that are recorded without an org.
struct OAuthEvent<'a> {
    org_id: Option<&'a str>,
    actor_id: Option<&'a str>,
    actor: &'a str,
    client_id: Option<&'a str>,
    action: &'a str,
    target: Option<&'a str>,
    outcome: &'a str,
    args: Value,
}

impl OAuthEvent<'_> {
    fn row(&self, meta: &RequestMeta) -> AuditRow {
        AuditRow {
            id: storage::new_id(),
            org_id: self.org_id.map(str::to_owned),
            at: meta.now_ms,
            actor_id: self.actor_id.map(str::to_owned),
            actor: self.actor.to_owned(),
            token_id: None,
            token_kind: None,
            client: self.client_id.map(str::to_owned),
            surface: meta.surface.as_str().to_owned(),
            action: self.action.to_owned(),
            target: self.target.map(str::to_owned),
            args: summarize_args(&self.args).to_string(),
            outcome: self.outcome.to_owned(),
            latency_ms: Some(meta.started.elapsed().as_millis() as i64),
            environment: None,
            request_id: meta.request_id.clone(),
            client_ip: meta.client_ip.clone(),
            method: None,
        }
    }
}

impl Core {
    fn public_base(&self) -> String {
        self.config.public_url.trim_end_matches('/').to_owned()
    }

    /// The issuer identifier: the public URL without a trailing slash.
    pub fn oauth_issuer(&self) -> String {
        self.public_base()
    }

    async fn audit_oauth(&self, event: OAuthEvent<'_>, meta: &RequestMeta) {
        if let Err(e) = self.audit_queue.record(event.row(meta)).await {
            tracing::error!(error = %e, "could not audit an authorization server event");
        }
    }

    async fn refuse_oauth(
        &self,
        meta: &RequestMeta,
        action: &str,
        client_id: Option<&str>,
        org_id: Option<&str>,
        err: &OAuthError,
    ) {
        self.audit_oauth(
            OAuthEvent {
                org_id,
                actor_id: None,
                actor: client_id.unwrap_or("anonymous"),
                client_id,
                action,
                target: None,
                outcome: "denied",
                args: json!({"error": err.code, "refusal": err.description}),
            },
            meta,
        )
        .await;
    }

    /// Registers a client: dynamically (RFC 7591, rate-limited per IP) or by
    /// the operator. Validates every redirect URI; infers
    /// `application_type` from them when the client did not say.
    pub async fn register_oauth_client(
        &self,
        input: NewClient,
        kind: ClientKind,
        meta: &RequestMeta,
    ) -> Result<RegisteredClient, OAuthError> {
        let meta_err = |d: String| OAuthError::new("invalid_client_metadata", d);
        let redirect_err = |d: String| OAuthError::new("invalid_redirect_uri", d);
        if input.redirect_uris.is_empty() {
            return Err(redirect_err(
                "redirect_uris is required: list at least one redirect URI".into(),
            ));
        }
        if input.redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(redirect_err(format!(
                "at most {MAX_REDIRECT_URIS} redirect URIs may be registered"
            )));
        }
        let mut native = false;
        let mut all_https_web = true;
        for u in &input.redirect_uris {
            let is_native = check_redirect_uri(u).map_err(redirect_err)?;
            native |= is_native;
            all_https_web &= !is_native;
        }
        let application_type = match input.application_type.as_deref() {
            None => {
                if native {
                    "native"
                } else {
                    "web"
                }
            }
            Some("native") => "native",
            Some("web") if all_https_web => "web",
            Some("web") => {
                return Err(redirect_err(
                    "application_type 'web' needs https redirect URIs on public hosts; use 'native' for loopback or app-scheme redirects".into(),
                ));
            }
            Some(other) => {
                return Err(meta_err(format!(
                    "application_type '{other}' is not supported: use 'native' or 'web'"
                )));
            }
        };
        if let Some(g) = &input.grant_types
            && let Some(bad) = g
                .iter()
                .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
        {
            return Err(meta_err(format!(
                "grant type '{bad}' is not supported: this server issues authorization_code and refresh_token grants"
            )));
        }
        if let Some(r) = &input.response_types
            && let Some(bad) = r.iter().find(|r| r.as_str() != "code")
        {
            return Err(meta_err(format!(
                "response type '{bad}' is not supported: use 'code'"
            )));
        }
        let auth_method = match input.token_endpoint_auth_method.as_deref() {
            None if application_type == "native" => "none",
            None => "client_secret_basic",
            Some(m @ ("none" | "client_secret_basic" | "client_secret_post")) => m,
            Some(other) => {
                return Err(meta_err(format!(
                    "token_endpoint_auth_method '{other}' is not supported: use none, client_secret_basic or client_secret_post"
                )));
            }
        };
        let name = input
            .client_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or("Unnamed client");
        if name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
            return Err(meta_err(format!(
                "client_name must be at most {MAX_NAME_LEN} printable characters"
            )));
        }
        if let Some(u) = &input.client_uri {
            let ok = u.len() <= MAX_URI_LEN
                && url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "https" | "http"));
            if !ok {
                return Err(meta_err(format!("client_uri '{u}' must be an http(s) URL")));
            }
        }
        let now = meta.now_ms;
        let mut tx = self.db.begin_write().await?;
        if kind == ClientKind::Dynamic {
            let key = format!(
                "oauth-register:{}",
                meta.client_ip.as_deref().unwrap_or("unknown")
            );
            let allowed = storage::rate_limit_hit(
                &mut tx,
                &key,
                self.config.oauth.registrations_per_hour,
                3600 * 1000,
                now,
            )
            .await?;
            if !allowed {
                drop(tx);
                let err = OAuthError::new(
                    "too_many_registrations",
                    format!(
                        "too many client registrations from this address (at most {} per hour): reuse the client you registered, or try again later",
                        self.config.oauth.registrations_per_hour
                    ),
                );
                self.refuse_oauth(meta, "oauth.register", None, None, &err)
                    .await;
                return Err(err);
            }
        }
        let secret = (auth_method != "none").then(new_secret);
        let row = OAuthClientRow {
            id: new_client_id(),
            kind: kind.as_str().to_owned(),
            name: name.to_owned(),
            client_uri: input.client_uri.clone(),
            redirect_uris: json!(input.redirect_uris).to_string(),
            application_type: application_type.to_owned(),
            auth_method: auth_method.to_owned(),
            secret_hash: secret.as_deref().map(hash_secret),
            created_at: now,
            created_ip: meta.client_ip.clone(),
            refresh_after: None,
            revoked_at: None,
        };
        storage::insert_oauth_client(&mut *tx, &row).await?;
        crate::audit::record_in(
            &mut tx,
            &OAuthEvent {
                org_id: None,
                actor_id: None,
                actor: &row.id,
                client_id: Some(&row.id),
                action: "oauth.client_registered",
                target: Some(&row.id),
                outcome: "ok",
                args: json!({
                    "client_name": row.name, "kind": row.kind, "redirect_uris": input.redirect_uris,
                    "application_type": application_type, "token_endpoint_auth_method": auth_method,
                }),
            }
            .row(meta),
        )
        .await?;
        Db::commit(tx).await?;
        Ok(RegisteredClient {
            client: client_view(&row),
            client_secret: secret,
            issued_at_secs: now / 1000,
        })
    }

    /// The stored client behind `client_id`, if any (for the edge to decide
    /// whether a metadata document must be fetched).
    pub async fn oauth_client(&self, client_id: &str) -> Result<Option<OAuthClientRow>, CoreError> {
        Ok(storage::oauth_client(self.db.pool(), client_id).await?)
    }

    /// Stores a fetched and validated client metadata document.
    pub async fn cache_metadata_document(
        &self,
        doc: MetadataDocument,
        now: i64,
    ) -> Result<(), OAuthError> {
        let invalid = |d: String| {
            OAuthError::invalid_client(format!(
                "the client metadata document at {} is not usable: {d}",
                doc.client_id
            ))
        };
        if doc.redirect_uris.is_empty() || doc.redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(invalid(format!(
                "it must list 1 to {MAX_REDIRECT_URIS} redirect_uris"
            )));
        }
        let mut native = false;
        for u in &doc.redirect_uris {
            native |= check_redirect_uri(u).map_err(invalid)?;
        }
        match doc.token_endpoint_auth_method.as_deref() {
            None | Some("none") => {}
            Some(other) => {
                return Err(invalid(format!(
                    "token_endpoint_auth_method '{other}' is not supported for metadata-document clients: use 'none'"
                )));
            }
        }
        let name = doc
            .client_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty() && n.chars().count() <= MAX_NAME_LEN)
            .unwrap_or(&doc.client_id);
        let row = OAuthClientRow {
            id: doc.client_id.clone(),
            kind: ClientKind::MetadataDocument.as_str().to_owned(),
            name: name.to_owned(),
            client_uri: doc.client_uri.clone(),
            redirect_uris: json!(doc.redirect_uris).to_string(),
            application_type: if native { "native" } else { "web" }.to_owned(),
            auth_method: "none".to_owned(),
            secret_hash: None,
            created_at: now,
            created_ip: None,
            refresh_after: Some(doc.refresh_after),
            revoked_at: None,
        };
        storage::upsert_metadata_client(self.db.pool(), &row).await?;
        Ok(())
    }

    /// Every registered client (the operator's list).
    pub async fn list_oauth_clients(&self) -> Result<Vec<OAuthClientView>, CoreError> {
        Ok(storage::list_oauth_clients(self.db.pool())
            .await?
            .iter()
            .map(client_view)
            .collect())
    }

    /// The operator revokes a client everywhere: it can no longer authorize,
    /// and every grant and token it holds ends now.
    pub async fn revoke_oauth_client(
        &self,
        client_id: &str,
        meta: &RequestMeta,
    ) -> Result<u64, CoreError> {
        let mut tx = self.db.begin_write().await?;
        if !storage::revoke_oauth_client(&mut *tx, client_id, meta.now_ms).await? {
            return Err(CoreError::NotFound("OAuth client"));
        }
        let n = storage::revoke_oauth_grants(&mut tx, GrantFilter::Client(client_id), meta.now_ms)
            .await?;
        crate::audit::record_in(
            &mut tx,
            &OAuthEvent {
                org_id: None,
                actor_id: None,
                actor: "operator",
                client_id: Some(client_id),
                action: "oauth.client_revoked",
                target: Some(client_id),
                outcome: "ok",
                args: json!({"grants_revoked": n}),
            }
            .row(meta),
        )
        .await?;
        Db::commit(tx).await?;
        Ok(n)
    }

    /// Validates an authorization request and records it; returns its id.
    /// `browser_secret` is the cookie that binds the flow to this browser.
    pub async fn start_authorization(
        &self,
        p: AuthorizeParams,
        browser_secret: &str,
        meta: &RequestMeta,
    ) -> Result<String, AuthorizeError> {
        let now = meta.now_ms;
        let Some(client_id) = p.client_id.as_deref().filter(|c| !c.is_empty()) else {
            return Err(AuthorizeError::Page(
                "the request has no client_id: the application that sent you here is misconfigured"
                    .into(),
            ));
        };
        let Some(client) = storage::oauth_client(self.db.pool(), client_id).await? else {
            return Err(AuthorizeError::Page(format!(
                "the application '{client_id}' is not registered with this server: it must register first"
            )));
        };
        if client.revoked_at.is_some() {
            return Err(AuthorizeError::Page(format!(
                "the application '{}' has been revoked by the operator of this server",
                client.name
            )));
        }
        let registered = redirect_list(&client);
        let redirect_uri = match p.redirect_uri.as_deref() {
            Some(given) => {
                if !registered.iter().any(|r| redirect_matches(r, given)) {
                    self.refuse_oauth(
                        meta,
                        "oauth.authorize",
                        Some(&client.id),
                        None,
                        &OAuthError::invalid_request("redirect_uri mismatch"),
                    )
                    .await;
                    return Err(AuthorizeError::Page(format!(
                        "the redirect URI '{given}' is not registered for the application '{}': nothing was sent to it",
                        client.name
                    )));
                }
                given.to_owned()
            }
            None if registered.len() == 1 => registered.first().cloned().unwrap_or_default(),
            None => {
                return Err(AuthorizeError::Page(format!(
                    "the application '{}' registered several redirect URIs, so the request must name one (redirect_uri)",
                    client.name
                )));
            }
        };
        let iss = self.oauth_issuer();
        let fail = |code: &'static str, d: String| AuthorizeError::Redirect {
            location: client_redirect(
                &redirect_uri,
                &[("error", code), ("error_description", d.as_str())],
                p.state.as_deref(),
                &iss,
            ),
        };
        let checked: Result<(String, BTreeSet<Scope>), (&'static str, String)> = (|| {
            if p.response_type.as_deref() != Some("code") {
                return Err((
                    "unsupported_response_type",
                    "response_type must be 'code'".to_owned(),
                ));
            }
            let Some(challenge) = p.code_challenge.as_deref() else {
                return Err((
                    "invalid_request",
                    "PKCE is required: send code_challenge with code_challenge_method=S256".into(),
                ));
            };
            match p.code_challenge_method.as_deref() {
                Some("S256") => {}
                Some("plain") | None => {
                    return Err((
                        "invalid_request",
                        "code_challenge_method must be S256 ('plain' is not accepted)".into(),
                    ));
                }
                Some(other) => {
                    return Err((
                        "invalid_request",
                        format!("code_challenge_method '{other}' is not supported: use S256"),
                    ));
                }
            }
            if !is_pkce_value(challenge, 43, 43) {
                return Err((
                    "invalid_request",
                    "code_challenge must be the 43-character base64url SHA-256 of the verifier"
                        .into(),
                ));
            }
            let resource = match p.resources.as_slice() {
                [] => {
                    return Err((
                        "invalid_target",
                        format!(
                            "the resource parameter (RFC 8707) is required: send resource={}/mcp",
                            self.public_base()
                        ),
                    ));
                }
                [one] => one,
                _ => {
                    return Err((
                        "invalid_target",
                        "send exactly one resource: a token is bound to one resource".into(),
                    ));
                }
            };
            let resource =
                parse_resource(&self.public_base(), resource).map_err(|m| ("invalid_target", m))?;
            let scopes = match p.scope.as_deref() {
                Some(s) if !s.trim().is_empty() => {
                    parse_scope_param(s).map_err(|m| ("invalid_scope", m))?
                }
                // No scope asked: every scope, narrowed to the member's role at consent.
                _ => Scope::ALL.into_iter().collect(),
            };
            Ok((resource_uri(&self.public_base(), &resource), scopes))
        })();
        let (resource, scopes) = match checked {
            Ok(v) => v,
            Err((code, d)) => {
                self.refuse_oauth(
                    meta,
                    "oauth.authorize",
                    Some(&client.id),
                    None,
                    &OAuthError::new(code, d.clone()),
                )
                .await;
                return Err(fail(code, d));
            }
        };
        let id = new_secret();
        let mut tx = self.db.begin_write().await?;
        storage::purge_expired_oauth(&mut tx, now - 24 * 3600 * 1000).await?;
        storage::insert_oauth_request(
            &mut *tx,
            &OAuthRequestRow {
                id: id.clone(),
                browser_hash: hash_secret(browser_secret),
                client_id: client.id.clone(),
                redirect_uri,
                redirect_given: i64::from(p.redirect_uri.is_some()),
                state: p.state.clone(),
                code_challenge: p.code_challenge.clone().unwrap_or_default(),
                resource,
                scopes: scopes_text(&scopes),
                scope_given: i64::from(p.scope.is_some()),
                account_id: None,
                org_id: None,
                created_at: now,
                expires_at: now + self.config.oauth.request_ttl_ms,
            },
        )
        .await?;
        Db::commit(tx).await?;
        Ok(id)
    }

    async fn load_request(
        &self,
        id: &str,
        browser_secret: &str,
        now: i64,
    ) -> Result<(OAuthRequestRow, OAuthClientRow), AuthorizeError> {
        let gone = || {
            AuthorizeError::Page(
                "this authorization request has expired or was already completed: start again from the application".into(),
            )
        };
        let Some(req) = storage::oauth_request(self.db.pool(), id).await? else {
            return Err(gone());
        };
        if req.expires_at <= now {
            return Err(gone());
        }
        if !ct_eq(&req.browser_hash, &hash_secret(browser_secret)) {
            return Err(AuthorizeError::Page(
                "this authorization was started in another browser: start again from the application in this browser".into(),
            ));
        }
        let Some(client) = storage::oauth_client(self.db.pool(), &req.client_id).await? else {
            return Err(gone());
        };
        if client.revoked_at.is_some() {
            return Err(AuthorizeError::Page(format!(
                "the application '{}' has been revoked by the operator of this server",
                client.name
            )));
        }
        Ok((req, client))
    }

    /// The authorization in progress, for the pages.
    pub async fn pending_authorization(
        &self,
        id: &str,
        browser_secret: &str,
        now: i64,
    ) -> Result<PendingAuthorization, AuthorizeError> {
        let (req, client) = self.load_request(id, browser_secret, now).await?;
        Ok(PendingAuthorization {
            id: req.id,
            client: client_view(&client),
            redirect_uri: req.redirect_uri,
            scopes: parse_stored_scopes(&req.scopes).into_iter().collect(),
            resource: req.resource,
            account_id: req.account_id,
            org_id: req.org_id,
        })
    }

    /// The organizations an account is an ACTIVE member of (pending
    /// invitations are not), with whether MCP is enabled in each.
    pub async fn oauth_org_choices(&self, account_id: &str) -> Result<Vec<OrgChoice>, CoreError> {
        Ok(storage::orgs_of_account(self.db.pool(), account_id)
            .await?
            .into_iter()
            .map(|o| OrgChoice {
                id: o.id,
                slug: o.slug,
                name: o.name,
                mcp_enabled: o.mcp_enabled != 0,
            })
            .collect())
    }

    /// Checks that `account_id` may authorize `org_slug` now: an active
    /// member, MCP enabled. Returns the org's id and the scopes the
    /// member's role can back.
    async fn check_authorizing_member(
        &self,
        account_id: &str,
        org_slug_or_id: &str,
    ) -> Result<(OrgChoice, BTreeSet<Scope>), CoreError> {
        let orgs = self.oauth_org_choices(account_id).await?;
        let Some(org) = orgs
            .into_iter()
            .find(|o| o.slug == org_slug_or_id || o.id == org_slug_or_id)
        else {
            return Err(CoreError::Forbidden(format!(
                "you are not an active member of the organization '{org_slug_or_id}' (a pending invitation must be accepted first)"
            )));
        };
        if !org.mcp_enabled {
            return Err(CoreError::Forbidden(format!(
                "MCP access is turned off for the organization '{}': an admin must enable it before apps can connect",
                org.name
            )));
        }
        let m = storage::member_by_account(self.db.pool(), &org.id, account_id)
            .await?
            .ok_or_else(|| CoreError::Forbidden("your membership was not found".into()))?;
        let perms = parse_permissions(&m.role_permissions)?;
        Ok((org, crate::access::grantable_scopes(&perms)))
    }

    /// The scopes `account_id`'s role in `org_id` can back: what a consent
    /// page offers (the rest of the request is refused or narrowed).
    pub async fn grantable_scopes_of(
        &self,
        org_id: &str,
        account_id: &str,
    ) -> Result<BTreeSet<Scope>, CoreError> {
        let m = storage::member_by_account(self.db.pool(), org_id, account_id)
            .await?
            .ok_or_else(|| {
                CoreError::Forbidden("you are not a member of this organization".into())
            })?;
        Ok(crate::access::grantable_scopes(&parse_permissions(
            &m.role_permissions,
        )?))
    }

    /// Records who is signing in for this request (after sign-in).
    pub async fn attach_account(
        &self,
        id: &str,
        browser_secret: &str,
        account_id: &str,
        now: i64,
    ) -> Result<(), AuthorizeError> {
        let (req, _) = self.load_request(id, browser_secret, now).await?;
        let org = if req.account_id.as_deref() == Some(account_id) {
            req.org_id.clone()
        } else {
            None
        };
        storage::set_oauth_request_party(self.db.pool(), id, Some(account_id), org.as_deref())
            .await?;
        Ok(())
    }

    /// The member picked an organization. When an earlier consent of this
    /// member for this client and org covers the scopes, the code is issued
    /// at once.
    pub async fn pick_org(
        &self,
        id: &str,
        browser_secret: &str,
        account_id: &str,
        actor_email: &str,
        org_slug: &str,
        meta: &RequestMeta,
    ) -> Result<AfterPick, AuthorizeError> {
        let (req, client) = self.load_request(id, browser_secret, meta.now_ms).await?;
        let (org, backed) = match self.check_authorizing_member(account_id, org_slug).await {
            Ok(v) => v,
            Err(e) => {
                self.audit_oauth(
                    OAuthEvent {
                        org_id: None,
                        actor_id: Some(account_id),
                        actor: actor_email,
                        client_id: Some(&client.id),
                        action: "oauth.authorize",
                        target: Some(org_slug),
                        outcome: "denied",
                        args: json!({"refusal": e.to_string()}),
                    },
                    meta,
                )
                .await;
                return Err(e.into());
            }
        };
        storage::set_oauth_request_party(self.db.pool(), id, Some(account_id), Some(&org.id))
            .await?;
        let wanted = grantable(&parse_stored_scopes(&req.scopes), &backed);
        if let Some(g) =
            storage::oauth_grant_for(self.db.pool(), account_id, &client.id, &org.id).await?
            && g.revoked_at.is_none()
            && !wanted.is_empty()
            && wanted.is_subset(&parse_stored_scopes(&g.scopes))
        {
            let location = self
                .issue_code(&req, &client, account_id, actor_email, &org, &backed, meta)
                .await?;
            return Ok(AfterPick::Redirect(location));
        }
        Ok(AfterPick::Consent)
    }

    /// The member's answer on the consent page; returns where to send the
    /// browser (the client's redirect URI with a code, or with an error).
    pub async fn decide(
        &self,
        id: &str,
        browser_secret: &str,
        account_id: &str,
        actor_email: &str,
        approve: bool,
        meta: &RequestMeta,
    ) -> Result<String, AuthorizeError> {
        let (req, client) = self.load_request(id, browser_secret, meta.now_ms).await?;
        let (Some(req_account), Some(org_id)) = (req.account_id.as_deref(), req.org_id.as_deref())
        else {
            return Err(AuthorizeError::Page(
                "pick an organization before approving".into(),
            ));
        };
        if req_account != account_id {
            return Err(AuthorizeError::Page(
                "you signed in as someone else meanwhile: start again from the application".into(),
            ));
        }
        let iss = self.oauth_issuer();
        if !approve {
            storage::delete_oauth_request(self.db.pool(), id).await?;
            self.audit_oauth(
                OAuthEvent {
                    org_id: Some(org_id),
                    actor_id: Some(account_id),
                    actor: actor_email,
                    client_id: Some(&client.id),
                    action: "oauth.authorize",
                    target: Some(&client.id),
                    outcome: "denied",
                    args: json!({"refusal": "the member declined"}),
                },
                meta,
            )
            .await;
            return Ok(client_redirect(
                &req.redirect_uri,
                &[
                    ("error", "access_denied"),
                    ("error_description", "the member declined the request"),
                ],
                req.state.as_deref(),
                &iss,
            ));
        }
        let (org, backed) = self
            .check_authorizing_member(account_id, org_id)
            .await
            .map_err(AuthorizeError::from)?;
        self.issue_code(&req, &client, account_id, actor_email, &org, &backed, meta)
            .await
    }

    /// Grants the consent (remembered), issues a single-use code and ends
    /// the request, in one transaction; returns the redirect.
    #[allow(clippy::too_many_arguments)]
    async fn issue_code(
        &self,
        req: &OAuthRequestRow,
        client: &OAuthClientRow,
        account_id: &str,
        actor_email: &str,
        org: &OrgChoice,
        backed: &BTreeSet<Scope>,
        meta: &RequestMeta,
    ) -> Result<String, AuthorizeError> {
        let now = meta.now_ms;
        let iss = self.oauth_issuer();
        let scopes = grantable(&parse_stored_scopes(&req.scopes), backed);
        if scopes.is_empty() {
            storage::delete_oauth_request(self.db.pool(), &req.id).await?;
            return Ok(client_redirect(
                &req.redirect_uri,
                &[
                    ("error", "invalid_scope"),
                    (
                        "error_description",
                        "the member's role allows none of the requested scopes",
                    ),
                ],
                req.state.as_deref(),
                &iss,
            ));
        }
        let code = new_secret();
        let mut tx = self.db.begin_write().await?;
        if !storage::delete_oauth_request(&mut *tx, &req.id).await? {
            return Err(AuthorizeError::Page(
                "this authorization request was already completed".into(),
            ));
        }
        // Consent is remembered per (member, client, org): keep what was
        // granted before and add what was approved now.
        let mut remembered = scopes.clone();
        if let Some(g) = storage::oauth_grant_for(&mut *tx, account_id, &client.id, &org.id).await?
            && g.revoked_at.is_none()
        {
            remembered.extend(parse_stored_scopes(&g.scopes));
        }
        let grant_id = storage::upsert_oauth_grant(
            &mut *tx,
            &OAuthGrantRow {
                id: storage::new_id(),
                account_id: account_id.to_owned(),
                org_id: org.id.clone(),
                client_id: client.id.clone(),
                scopes: scopes_text(&remembered),
                created_at: now,
                updated_at: now,
                last_used_at: None,
                revoked_at: None,
            },
        )
        .await?;
        storage::insert_oauth_code(
            &mut *tx,
            &OAuthCodeRow {
                code_hash: hash_secret(&code),
                grant_id,
                client_id: client.id.clone(),
                account_id: account_id.to_owned(),
                org_id: org.id.clone(),
                redirect_uri: req.redirect_uri.clone(),
                redirect_given: req.redirect_given,
                code_challenge: req.code_challenge.clone(),
                resource: req.resource.clone(),
                scopes: scopes_text(&scopes),
                family_id: storage::new_id(),
                created_at: now,
                expires_at: now + self.config.oauth.code_ttl_ms,
                used_at: None,
            },
        )
        .await?;
        crate::audit::record_in(&mut tx, &OAuthEvent {
                org_id: Some(&org.id),
                actor_id: Some(account_id),
                actor: actor_email,
                client_id: Some(&client.id),
                action: "oauth.authorize",
                target: Some(&client.id),
                outcome: "ok",
                args: json!({"client_name": client.name, "scopes": scopes_text(&scopes), "resource": req.resource}),
            }
            .row(meta),
        )
        .await?;
        Db::commit(tx).await?;
        Ok(client_redirect(
            &req.redirect_uri,
            &[("code", code.as_str())],
            req.state.as_deref(),
            &iss,
        ))
    }

    /// Authenticates the client at the token and revocation endpoints.
    async fn authenticate_client(&self, auth: &ClientAuth) -> Result<OAuthClientRow, OAuthError> {
        let Some(id) = auth.client_id.as_deref().filter(|c| !c.is_empty()) else {
            return Err(OAuthError::invalid_client(
                "client authentication is missing: send client_id (public clients) or HTTP Basic credentials",
            ));
        };
        let client = storage::oauth_client(self.db.pool(), id)
            .await?
            .filter(|c| c.revoked_at.is_none())
            .ok_or_else(|| {
                OAuthError::invalid_client(format!("the client '{id}' is unknown or revoked"))
            })?;
        match (&client.secret_hash, &auth.client_secret) {
            (None, None) => Ok(client),
            (None, Some(_)) => Err(OAuthError::invalid_client(
                "this client is public (token_endpoint_auth_method none): it has no secret to send",
            )),
            (Some(_), None) => Err(OAuthError::invalid_client(
                "this client is confidential: authenticate with its client secret",
            )),
            (Some(h), Some(s)) if ct_eq(h, &hash_secret(s)) => Ok(client),
            (Some(_), Some(_)) => Err(OAuthError::invalid_client("the client secret is wrong")),
        }
    }

    /// The token endpoint: `authorization_code` and `refresh_token` grants.
    pub async fn oauth_token(
        &self,
        auth: ClientAuth,
        req: TokenRequest,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, OAuthError> {
        let client = match self.authenticate_client(&auth).await {
            Ok(c) => c,
            Err(e) => {
                self.refuse_oauth(meta, "oauth.token", auth.client_id.as_deref(), None, &e)
                    .await;
                return Err(e);
            }
        };
        let result = match req.grant_type.as_deref() {
            Some("authorization_code") => self.exchange_code(&client, &req, meta).await,
            Some("refresh_token") => self.rotate_refresh(&client, &req, meta).await,
            Some(other) => Err((
                OAuthError::new(
                    "unsupported_grant_type",
                    format!(
                        "grant_type '{other}' is not supported: use authorization_code or refresh_token"
                    ),
                ),
                None,
            )),
            None => Err((OAuthError::invalid_request("grant_type is required"), None)),
        };
        match result {
            Ok(r) => Ok(r),
            Err((e, org)) => {
                let action = if req.grant_type.as_deref() == Some("refresh_token") {
                    "oauth.refresh"
                } else {
                    "oauth.token"
                };
                self.refuse_oauth(meta, action, Some(&client.id), org.as_deref(), &e)
                    .await;
                Err(e)
            }
        }
    }

    async fn exchange_code(
        &self,
        client: &OAuthClientRow,
        req: &TokenRequest,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, (OAuthError, Option<String>)> {
        let now = meta.now_ms;
        let (Some(code), Some(verifier)) = (req.code.as_deref(), req.code_verifier.as_deref())
        else {
            return Err((
                OAuthError::invalid_request(
                    "the authorization_code grant needs code and code_verifier (PKCE)",
                ),
                None,
            ));
        };
        let code_hash = hash_secret(code);
        let mut tx = self.db.begin_write().await.map_err(|e| (e.into(), None))?;
        let spent = storage::spend_oauth_code(&mut *tx, &code_hash, now)
            .await
            .map_err(|e| (e.into(), None))?;
        let Some(row) = spent else {
            let known = storage::oauth_code(&mut *tx, &code_hash)
                .await
                .map_err(|e| (e.into(), None))?;
            return match known {
                Some(c) if c.used_at.is_some() => {
                    // A replayed code: whoever holds it may be an attacker, so
                    // everything issued from it ends now.
                    let n = storage::revoke_token_family(&mut tx, &c.family_id, now)
                        .await
                        .map_err(|e| (e.into(), Some(c.org_id.clone())))?;
                    Db::commit(tx).await.map_err(|e| (e.into(), None))?;
                    tracing::warn!(client = %client.id, revoked = n, "authorization code replayed");
                    Err((
                        OAuthError::invalid_grant(
                            "this authorization code was already used; every token issued from it is now revoked",
                        ),
                        Some(c.org_id),
                    ))
                }
                Some(c) => Err((
                    OAuthError::invalid_grant(
                        "this authorization code has expired: authorize again",
                    ),
                    Some(c.org_id),
                )),
                None => Err((
                    OAuthError::invalid_grant("this authorization code is not valid"),
                    None,
                )),
            };
        };
        let org = Some(row.org_id.clone());
        // The code is spent whatever happens next (a wrong verifier burns it).
        let checked = (|| {
            if row.client_id != client.id {
                return Err(OAuthError::invalid_grant(
                    "this authorization code was issued to another client",
                ));
            }
            match req.redirect_uri.as_deref() {
                Some(r) if r == row.redirect_uri => {}
                None if row.redirect_given == 0 => {}
                Some(_) => {
                    return Err(OAuthError::invalid_grant(
                        "redirect_uri differs from the one in the authorization request",
                    ));
                }
                None => {
                    return Err(OAuthError::invalid_grant(
                        "redirect_uri is required: send the one used in the authorization request",
                    ));
                }
            }
            if !is_pkce_value(verifier, 43, 128) {
                return Err(OAuthError::invalid_grant(
                    "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]",
                ));
            }
            if !ct_eq(&s256(verifier), &row.code_challenge) {
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge (PKCE)",
                ));
            }
            self.check_token_resource(&req.resources, &row.resource)
        })();
        if let Err(e) = checked {
            Db::commit(tx).await.map_err(|e| (e.into(), org.clone()))?;
            return Err((e, org));
        }
        let scopes = parse_stored_scopes(&row.scopes);
        let issued = self
            .issue_tokens(
                &mut tx,
                client,
                Issue {
                    grant_id: &row.grant_id,
                    family_id: &row.family_id,
                    account_id: &row.account_id,
                    org_id: &row.org_id,
                    resource: &row.resource,
                    scopes: &scopes,
                    action: "oauth.token",
                },
                meta,
            )
            .await;
        match issued {
            Ok(r) => {
                Db::commit(tx).await.map_err(|e| (e.into(), org.clone()))?;
                Ok(r)
            }
            Err(e) => {
                // Still burn the code.
                Db::commit(tx).await.map_err(|e| (e.into(), org.clone()))?;
                Err((e, org))
            }
        }
    }

    fn check_token_resource(&self, given: &[String], bound: &str) -> Result<(), OAuthError> {
        match given {
            [] => Ok(()),
            [one] => {
                let parsed =
                    parse_resource(&self.public_base(), one).map_err(OAuthError::invalid_target)?;
                if resource_uri(&self.public_base(), &parsed) == bound {
                    Ok(())
                } else {
                    Err(OAuthError::invalid_target(format!(
                        "this grant is for the resource {bound}, not {one}: authorize again for that resource"
                    )))
                }
            }
            _ => Err(OAuthError::invalid_target(
                "send at most one resource: a token is bound to one resource",
            )),
        }
    }

    async fn rotate_refresh(
        &self,
        client: &OAuthClientRow,
        req: &TokenRequest,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, (OAuthError, Option<String>)> {
        let now = meta.now_ms;
        let Some(token) = req.refresh_token.as_deref() else {
            return Err((
                OAuthError::invalid_request("the refresh_token grant needs refresh_token"),
                None,
            ));
        };
        let hash = hash_secret(token);
        let mut tx = self.db.begin_write().await.map_err(|e| (e.into(), None))?;
        let spent = storage::spend_refresh_token(&mut *tx, &hash, now)
            .await
            .map_err(|e| (e.into(), None))?;
        let Some(row) = spent else {
            let known = storage::refresh_token(&mut *tx, &hash)
                .await
                .map_err(|e| (e.into(), None))?;
            return match known {
                Some(r) if r.used_at.is_some() && r.client_id == client.id => {
                    let n = storage::revoke_token_family(&mut tx, &r.family_id, now)
                        .await
                        .map_err(|e| (e.into(), Some(r.org_id.clone())))?;
                    crate::audit::record_in(
                        &mut tx,
                        &OAuthEvent {
                            org_id: Some(&r.org_id),
                            actor_id: Some(&r.account_id),
                            actor: &client.id,
                            client_id: Some(&client.id),
                            action: "oauth.refresh_reuse",
                            target: Some(&r.family_id),
                            outcome: "denied",
                            args: json!({"tokens_revoked": n}),
                        }
                        .row(meta),
                    )
                    .await
                    .map_err(|e| (e.into(), None))?;
                    Db::commit(tx).await.map_err(|e| (e.into(), None))?;
                    tracing::warn!(client = %client.id, revoked = n, "refresh token reused: family revoked");
                    Err((
                        OAuthError::invalid_grant(
                            "this refresh token was already used; every token of this authorization is now revoked: authorize again",
                        ),
                        Some(r.org_id),
                    ))
                }
                Some(r) if r.revoked_at.is_some() => Err((
                    OAuthError::invalid_grant(
                        "this refresh token has been revoked: authorize again",
                    ),
                    Some(r.org_id),
                )),
                Some(r) if r.expires_at <= now => Err((
                    OAuthError::invalid_grant("this refresh token has expired: authorize again"),
                    Some(r.org_id),
                )),
                _ => Err((
                    OAuthError::invalid_grant("this refresh token is not valid"),
                    None,
                )),
            };
        };
        let org = Some(row.org_id.clone());
        if row.client_id != client.id {
            // Not this client's: leave it unspent for its owner.
            drop(tx);
            return Err((
                OAuthError::invalid_grant("this refresh token was issued to another client"),
                org,
            ));
        }
        let granted = parse_stored_scopes(&row.scopes);
        let scopes = match req.scope.as_deref() {
            Some(s) if !s.trim().is_empty() => match parse_scope_param(s) {
                Ok(asked) if asked.is_subset(&granted) => asked,
                Ok(_) => {
                    drop(tx);
                    return Err((
                        OAuthError::new(
                            "invalid_scope",
                            "a refresh may only narrow the granted scopes: authorize again for more",
                        ),
                        org,
                    ));
                }
                Err(m) => {
                    drop(tx);
                    return Err((OAuthError::new("invalid_scope", m), org));
                }
            },
            _ => granted,
        };
        if let Err(e) = self.check_token_resource(&req.resources, &row.resource) {
            drop(tx);
            return Err((e, org));
        }
        let issued = self
            .issue_tokens(
                &mut tx,
                client,
                Issue {
                    grant_id: &row.grant_id,
                    family_id: &row.family_id,
                    account_id: &row.account_id,
                    org_id: &row.org_id,
                    resource: &row.resource,
                    scopes: &scopes,
                    action: "oauth.refresh",
                },
                meta,
            )
            .await;
        match issued {
            Ok(r) => {
                Db::commit(tx).await.map_err(|e| (e.into(), org.clone()))?;
                Ok(r)
            }
            Err(e) => {
                drop(tx);
                Err((e, org))
            }
        }
    }

    /// Mints an access token and a refresh token (same family) for a member
    /// who is still an active member of an org with MCP enabled; audits it.
    async fn issue_tokens(
        &self,
        conn: &mut Conn,
        client: &OAuthClientRow,
        i: Issue<'_>,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, OAuthError> {
        let now = meta.now_ms;
        let grant = storage::oauth_grant_by_id(&mut *conn, i.grant_id).await?;
        if grant.is_none_or(|g| g.revoked_at.is_some()) {
            return Err(OAuthError::invalid_grant(
                "the member revoked this app's access: authorize again",
            ));
        }
        let member = storage::member_by_account(&mut *conn, i.org_id, i.account_id).await?;
        if member.as_ref().is_none_or(|m| m.status != "active") {
            return Err(OAuthError::invalid_grant(
                "the account is no longer an active member of the organization",
            ));
        }
        let org = storage::org_by_id(&mut *conn, i.org_id).await?;
        if org.as_ref().is_none_or(|o| o.mcp_enabled == 0) {
            return Err(OAuthError::invalid_grant(
                "MCP access is turned off for this organization",
            ));
        }
        let access = new_secret();
        let refresh = new_secret();
        let access_id = storage::new_id();
        let scopes = scopes_text(i.scopes);
        storage::insert_oauth_access_token(
            &mut *conn,
            &TokenRow {
                id: access_id.clone(),
                org_id: i.org_id.to_owned(),
                account_id: i.account_id.to_owned(),
                kind: "oauth".into(),
                name: client.name.clone(),
                prefix: token_prefix(&access),
                token_hash: hash_secret(&access),
                scopes: scopes.clone(),
                environment: None,
                created_at: now,
                expires_at: Some(now + self.config.oauth.access_token_ttl_ms),
                last_used_at: None,
                revoked_at: None,
            },
            i.resource,
            &client.id,
            i.grant_id,
            i.family_id,
        )
        .await?;
        storage::insert_refresh_token(
            &mut *conn,
            &RefreshTokenRow {
                token_hash: hash_secret(&refresh),
                id: storage::new_id(),
                family_id: i.family_id.to_owned(),
                grant_id: i.grant_id.to_owned(),
                client_id: client.id.clone(),
                account_id: i.account_id.to_owned(),
                org_id: i.org_id.to_owned(),
                resource: i.resource.to_owned(),
                scopes: scopes.clone(),
                created_at: now,
                expires_at: now + self.config.oauth.refresh_token_ttl_ms,
                used_at: None,
                revoked_at: None,
            },
        )
        .await?;
        storage::touch_oauth_grant(&mut *conn, i.grant_id, now).await?;
        let email = member.as_ref().map(|m| m.email.clone()).unwrap_or_default();
        let mut row = OAuthEvent {
            org_id: Some(i.org_id),
            actor_id: Some(i.account_id),
            actor: &email,
            client_id: Some(&client.id),
            action: i.action,
            target: Some(&access_id),
            outcome: "ok",
            args: json!({"scopes": scopes, "resource": i.resource}),
        }
        .row(meta);
        row.token_id = Some(access_id.clone());
        row.token_kind = Some("oauth".into());
        crate::audit::record_in(conn, &row).await?;
        Ok(TokenResponse {
            access_token: access,
            token_type: "Bearer",
            expires_in: self.config.oauth.access_token_ttl_ms / 1000,
            refresh_token: refresh,
            scope: scopes,
        })
    }

    /// RFC 7009 revocation: a refresh token or an access token of this
    /// client ends its whole family. Unknown tokens are not an error.
    pub async fn oauth_revoke(
        &self,
        auth: ClientAuth,
        token: &str,
        meta: &RequestMeta,
    ) -> Result<(), OAuthError> {
        let client = match self.authenticate_client(&auth).await {
            Ok(c) => c,
            Err(e) => {
                self.refuse_oauth(meta, "oauth.revoke", auth.client_id.as_deref(), None, &e)
                    .await;
                return Err(e);
            }
        };
        let hash = hash_secret(token);
        let now = meta.now_ms;
        let mut tx = self.db.begin_write().await?;
        let found = if let Some(r) = storage::refresh_token(&mut *tx, &hash).await? {
            (r.client_id == client.id).then_some((r.family_id, r.org_id, r.account_id))
        } else if let Some(a) = storage::oauth_access_token(&mut *tx, &hash).await? {
            match (
                a.client_id.as_deref() == Some(client.id.as_str()),
                a.family_id,
            ) {
                (true, Some(f)) => Some((f, a.org_id, a.account_id)),
                _ => None,
            }
        } else {
            None
        };
        let Some((family, org_id, account_id)) = found else {
            // RFC 7009 §2.2: an invalid token is not an error for the client.
            return Ok(());
        };
        let n = storage::revoke_token_family(&mut tx, &family, now).await?;
        crate::audit::record_in(
            &mut tx,
            &OAuthEvent {
                org_id: Some(&org_id),
                actor_id: Some(&account_id),
                actor: &client.id,
                client_id: Some(&client.id),
                action: "oauth.revoke",
                target: Some(&family),
                outcome: "ok",
                args: json!({"tokens_revoked": n}),
            }
            .row(meta),
        )
        .await?;
        Db::commit(tx).await?;
        Ok(())
    }

    /// The caller's connected apps in their organization; with
    /// `all_members` (admins holding `mcp.manage`), every member's.
    pub async fn list_connected_apps(
        &self,
        ctx: Ctx<'_>,
        all_members: bool,
    ) -> Result<Vec<ConnectedAppView>, CoreError> {
        let p = ctx.principal;
        if all_members {
            self.authorize(ctx, &ops::APPS_LIST, None).await?;
        }
        let rows = storage::list_oauth_grants(
            self.db.pool(),
            &p.org_id,
            (!all_members).then_some(p.account_id.as_str()),
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ConnectedAppView {
                id: r.id,
                client_id: r.client_id,
                client_name: r.client_name,
                client_kind: r.client_kind,
                member_email: r.account_email,
                scopes: r.scopes.split_whitespace().map(str::to_owned).collect(),
                connected_at: rfc3339(r.created_at),
                last_used_at: r.last_used_at.map(rfc3339),
            })
            .collect())
    }

    /// Disconnects an app: the grant and every token issued under it end
    /// now. A member revokes their own; an admin with `mcp.manage` any in
    /// the org.
    pub async fn revoke_connected_app(
        &self,
        ctx: Ctx<'_>,
        grant_id: &str,
    ) -> Result<(), CoreError> {
        let p = ctx.principal;
        // Whose app it is decides which operation this is.
        let owner = storage::oauth_grant_by_id(self.db.pool(), grant_id)
            .await?
            .filter(|g| g.org_id == p.org_id)
            .map(|g| g.account_id);
        let op = match owner {
            Some(a) if a != p.account_id => &ops::APP_REVOKE,
            _ => &ops::APP_REVOKE_OWN,
        };
        self.write(
            ctx,
            crate::audit::AuditEntry::new(op, Some(grant_id), json!({})),
            async |conn, entry| {
                let g = storage::oauth_grant_by_id(&mut *conn, grant_id)
                    .await?
                    .filter(|g| g.org_id == p.org_id && g.revoked_at.is_none())
                    .ok_or(CoreError::NotFound("connected app"))?;
                if g.account_id != p.account_id && op.id == ops::APP_REVOKE_OWN.id {
                    // It changed hands between the read and the write.
                    return Err(CoreError::NotFound("connected app"));
                }
                entry.args = json!({"client_id": g.client_id, "member": g.account_id});
                storage::revoke_oauth_grants(conn, GrantFilter::Id(grant_id), ctx.meta.now_ms)
                    .await?;
                Ok(())
            },
        )
        .await
    }

    /// An admin cuts a client off from the organization: every member's
    /// grant to it and every token it holds here end now.
    pub async fn revoke_client_in_org(
        &self,
        ctx: Ctx<'_>,
        client_id: &str,
    ) -> Result<u64, CoreError> {
        let p = ctx.principal;
        self.write(
            ctx,
            crate::audit::AuditEntry::new(&ops::CLIENT_DISCONNECT, Some(client_id), json!({})),
            async |conn, entry| {
                let n = storage::revoke_oauth_grants(
                    conn,
                    GrantFilter::ClientInOrg {
                        org_id: &p.org_id,
                        client_id,
                    },
                    ctx.meta.now_ms,
                )
                .await?;
                if n == 0 {
                    return Err(CoreError::NotFound("connected app"));
                }
                entry.args = json!({"grants_revoked": n});
                Ok(n)
            },
        )
        .await
    }
}

/// What [`Core::issue_tokens`] mints.
struct Issue<'a> {
    grant_id: &'a str,
    family_id: &'a str,
    account_id: &'a str,
    org_id: &'a str,
    resource: &'a str,
    scopes: &'a BTreeSet<Scope>,
    action: &'a str,
}

/// The scopes a consent grants: those asked for that the member's role can use.
fn grantable(asked: &BTreeSet<Scope>, backed: &BTreeSet<Scope>) -> BTreeSet<Scope> {
    asked.intersection(backed).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_ip_redirects_match_on_any_port_only() {
        assert!(redirect_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:43123/callback"
        ));
        assert!(redirect_matches(
            "http://[::1]:9/cb",
            "http://[::1]:40000/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:43123/other"
        ));
        assert!(!redirect_matches(
            "http://localhost/callback",
            "http://localhost:43123/callback"
        ));
        assert!(!redirect_matches(
            "https://app.example.com/cb",
            "https://app.example.com:8443/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/callback",
            "https://127.0.0.1:3/callback"
        ));
        assert!(redirect_matches(
            "https://app.example.com/cb",
            "https://app.example.com/cb"
        ));
    }

    #[test]
    fn redirect_uri_rules() {
        assert_eq!(check_redirect_uri("https://app.example.com/cb"), Ok(false));
        assert_eq!(check_redirect_uri("http://127.0.0.1:3000/cb"), Ok(true));
        assert_eq!(check_redirect_uri("http://localhost/cb"), Ok(true));
        assert_eq!(check_redirect_uri("com.example.app:/oauth"), Ok(true));
        assert!(check_redirect_uri("http://app.example.com/cb").is_err());
        assert!(check_redirect_uri("https://app.example.com/cb#x").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
        assert!(check_redirect_uri("/relative").is_err());
    }

    #[test]
    fn resources_are_this_servers_endpoints() {
        let b = "https://hub.example.com";
        assert_eq!(
            parse_resource(b, "https://hub.example.com/mcp"),
            Ok(Resource::OrgEndpoint)
        );
        assert_eq!(
            parse_resource(b, "https://hub.example.com/mcp/"),
            Ok(Resource::OrgEndpoint)
        );
        assert_eq!(
            parse_resource(b, "https://hub.example.com/mcp/servers/github"),
            Ok(Resource::VirtualServer("github".into()))
        );
        assert!(parse_resource(b, "https://hub.example.com/mcp/rpc").is_err());
        assert!(parse_resource(b, "https://evil.example.com/mcp").is_err());
        assert!(parse_resource(b, "https://hub.example.com/mcp/servers/Bad_Slug").is_err());
    }

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn scope_parameter_ignores_offline_access_and_names_unknown_scopes() {
        let s = parse_scope_param("read:org offline_access").unwrap_or_default();
        assert_eq!(s.len(), 1);
        let err = parse_scope_param("read:org admin").unwrap_err();
        assert!(err.contains("unknown scope 'admin'"), "{err}");
    }
}
