//! The OAuth 2.1 authorization server for MCP clients, at the HTTP edge:
//! metadata (RFC 8414), dynamic registration (RFC 7591), client metadata
//! documents, `/oauth/authorize` (sign in → pick ONE organization →
//! consent), `/oauth/token` and `/oauth/revoke` (RFC 7009).
//!
//! Architecture Invariant: this crate parses, renders and maps errors to
//! the wire; every decision (who may authorize what, single use, rotation,
//! revocation) is a use case of `switchboard_core::oauth`. Outbound fetches
//! of client metadata documents go through `switchboard-egress`, so a
//! client id can never make the server call a private address.

// At this edge an `Err` is the HTTP answer itself; boxing it buys nothing.
#![allow(clippy::result_large_err)]

mod client_metadata;
mod endpoints;
mod pages;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use switchboard_api::ApiState;
use switchboard_domain::Scope;

pub use client_metadata::ClientMetadataSettings;

/// What the authorization server's routes need. Cheap to clone.
#[derive(Clone)]
pub struct OAuthState {
    pub api: ApiState,
    pub(crate) metadata: Arc<client_metadata::ClientMetadataFetcher>,
}

impl OAuthState {
    pub fn new(api: ApiState, metadata: ClientMetadataSettings) -> Self {
        OAuthState {
            api,
            metadata: Arc::new(client_metadata::ClientMetadataFetcher::new(metadata)),
        }
    }

    /// The issuer: the public URL without a trailing slash, byte for byte
    /// what the protected-resource metadata names.
    fn issuer(&self) -> String {
        self.api.core.oauth_issuer()
    }
}

/// The authorization server's routes.
pub fn router(state: OAuthState) -> Router {
    let pages = pages::router();
    let endpoints = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(authorization_server_metadata),
        )
        .route(
            "/.well-known/openid-configuration",
            get(authorization_server_metadata),
        )
        .route("/oauth/register", post(endpoints::register))
        .route("/oauth/token", post(endpoints::token))
        .route("/oauth/revoke", post(endpoints::revoke))
        .layer(endpoints::cors());
    Router::new()
        .merge(pages)
        .merge(endpoints)
        .with_state(state)
}

/// RFC 8414 authorization-server metadata.
async fn authorization_server_metadata(State(s): State<OAuthState>) -> Response {
    let iss = s.issuer();
    let scopes: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    let mut resp = axum::Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oauth/authorize"),
        "token_endpoint": format!("{iss}/oauth/token"),
        "registration_endpoint": format!("{iss}/oauth/register"),
        "revocation_endpoint": format!("{iss}/oauth/revoke"),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
        "service_documentation": format!("{iss}/api/v1/openapi.json"),
    }))
    .into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

/// What a scope lets an app do, in words for the consent page.
pub(crate) fn scope_description(s: Scope) -> &'static str {
    match s {
        Scope::ReadOrg => "see the organization, its members, teams and invitations",
        Scope::WriteOrg => "invite, change and remove members and teams",
        Scope::ReadTasks => "see projects and tasks",
        Scope::WriteTasks => "change tasks",
        Scope::WriteCommits => "record commits against tasks",
        Scope::ReadRequirements => "see requirements",
        Scope::ConnectionsUse => "use the external tools published to you",
    }
}
