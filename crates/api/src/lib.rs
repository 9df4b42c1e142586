//! The REST surface, `/api/v1`, plus `/healthz`, `/readyz` and the OpenAPI
//! document. Handlers only collect credentials and input (extractors), call
//! one use case of `switchboard-core`, and map its answer to HTTP.
//!
//! Architecture Invariant: no authorization decision is made here; the core
//! makes every one. This crate decides only HTTP matters: which credential
//! was presented, CSRF for cookie sessions, body limits, status codes.

mod error;
mod extract;
mod openapi;
mod routes;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use ipnet::IpNet;
use switchboard_core::Core;

pub use error::ApiError;
pub use extract::{
    ApiJson, Caller, NUL_REFUSAL, RequestInfo, bearer, client_ip, json_has_nul, meta_for,
    meta_for_http, value_has_nul,
};

/// HTTP settings the surfaces share.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The externally visible base URL, e.g. `https://hub.example.com`.
    pub public_url: url::Url,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Largest request body accepted on the API.
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

impl HttpSettings {
    /// Cookies get `Secure` and the `__Host-` prefix when served over HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    pub fn session_cookie_name(&self) -> &'static str {
        if self.secure_cookies() {
            "__Host-switchboard_session"
        } else {
            "switchboard_session"
        }
    }

    /// The `Set-Cookie` value for a session (an empty value with age 0 clears it).
    pub fn session_cookie(&self, value: &str, max_age_secs: i64) -> String {
        let secure = if self.secure_cookies() {
            "; Secure"
        } else {
            ""
        };
        format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}",
            self.session_cookie_name()
        )
    }

    /// `scheme://host[:port]` of the public URL, for Origin checks.
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(&ip))
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    pub core: Core,
    pub http: Arc<HttpSettings>,
    pub started: Instant,
}

/// The `/api/v1` router with `/healthz`, `/readyz` and `/api/v1/openapi.json`.
/// `more` are routes of other crates (the gateway's), described in the
/// same document.
pub fn router(state: ApiState, more: utoipa_axum::router::OpenApiRouter<ApiState>) -> Router {
    let limit = state.http.max_body_bytes;
    let (api, doc) = openapi::api_router().merge(more).split_for_parts();
    let doc = Arc::new(doc);
    Router::new()
        .merge(api)
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json((*doc).clone()) }
            }),
        )
        .merge(routes::system::probes())
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// The header the gateway puts on every upstream request, listing the
/// hubs the request came through; a hub refuses a request that lists
/// itself (a connection pointing back at its own hub would loop).
pub const HOP_HEADER: &str = "switchboard-hop";

/// This hub's id in [`HOP_HEADER`]: derived from the public URL, so every
/// replica of one hub has the same id.
pub fn hub_id(public_url: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(public_url.trim_end_matches('/').as_bytes());
    hex::encode(digest.get(..8).unwrap_or_default())
}
