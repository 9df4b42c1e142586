//! Client ID Metadata Documents: a client whose id is an https URL is
//! described by the JSON document at that URL. The document is fetched
//! through the egress guard (no private, loopback or link-local address
//! unless the operator allows it; size and time limits), validated, and
//! kept in the database until its cache lifetime ends.

use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use switchboard_core::Core;
use switchboard_core::oauth::MetadataDocument;
use switchboard_egress::{EgressClient, Limits, NetworkPolicy};

/// A cached document is refetched after at most this long, and kept at
/// least this long (whatever its `Cache-Control` says).
const MAX_CACHE: Duration = Duration::from_secs(24 * 3600);
const MIN_CACHE: Duration = Duration::from_secs(60);
const DEFAULT_CACHE: Duration = Duration::from_secs(3600);

/// The operator's rules for fetching documents.
#[derive(Debug, Clone)]
pub struct ClientMetadataSettings {
    pub allowed_networks: Vec<IpNet>,
    /// Loopback addresses allowed, and plain http on them (tests, local development).
    pub allow_loopback: bool,
    pub max_bytes: usize,
    pub timeout: Duration,
}

impl Default for ClientMetadataSettings {
    fn default() -> Self {
        ClientMetadataSettings {
            allowed_networks: Vec::new(),
            allow_loopback: false,
            max_bytes: 64 * 1024,
            timeout: Duration::from_secs(5),
        }
    }
}

pub(crate) struct ClientMetadataFetcher {
    client: Result<EgressClient, String>,
    allow_http_loopback: bool,
}

/// Whether a client id names a metadata document (an http(s) URL) rather
/// than a registered client.
pub(crate) fn is_metadata_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

#[derive(Debug, Deserialize)]
struct Document {
    client_id: String,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    client_uri: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
}

impl ClientMetadataFetcher {
    pub(crate) fn new(s: ClientMetadataSettings) -> Self {
        let policy = NetworkPolicy {
            allowed_networks: s.allowed_networks,
            allow_loopback: s.allow_loopback,
        };
        let limits = Limits {
            connect_timeout: s.timeout,
            request_timeout: s.timeout,
            max_response_bytes: s.max_bytes,
            // A client id names its document exactly; redirects are not followed.
            max_redirects: 0,
        };
        ClientMetadataFetcher {
            client: EgressClient::new(policy, limits).map_err(|e| e.to_string()),
            allow_http_loopback: s.allow_loopback,
        }
    }

    /// Makes sure the database holds a fresh copy of the document at
    /// `client_id`. `Err` is a sentence for the member's error page.
    pub(crate) async fn ensure(
        &self,
        core: &Core,
        client_id: &str,
        now: i64,
    ) -> Result<(), String> {
        let cached = core
            .oauth_client(client_id)
            .await
            .map_err(|e| format!("the client could not be looked up: {e}"))?;
        if let Some(c) = &cached
            && (c.revoked_at.is_some() || c.refresh_after.is_some_and(|t| t > now))
        {
            return Ok(());
        }
        let url = self.check_client_id(client_id)?;
        match self.fetch(&url, now).await {
            Ok(doc) => core
                .cache_metadata_document(doc, now)
                .await
                .map_err(|e| e.description),
            Err(e) if cached.is_some() => {
                // A stale copy beats locking members out while the client's
                // site is down; the next request tries again.
                tracing::warn!(client = %client_id, error = %e, "could not refresh a client metadata document; using the stored copy");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn check_client_id(&self, client_id: &str) -> Result<url::Url, String> {
        let bad = |why: &str| {
            format!("the client id '{client_id}' is not a usable metadata document URL: {why}")
        };
        if client_id.len() > 2000 {
            return Err(bad("it is longer than 2000 characters"));
        }
        let url = url::Url::parse(client_id).map_err(|e| bad(&e.to_string()))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback && self.allow_http_loopback => {}
            _ => return Err(bad("it must be an https URL")),
        }
        if url.path() == "/" || url.path().is_empty() {
            return Err(bad("it must have a path (https://host/path)"));
        }
        if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(bad("it must not have a fragment or credentials"));
        }
        if url.as_str() != client_id {
            return Err(bad("it is not in canonical form"));
        }
        Ok(url)
    }

    async fn fetch(&self, url: &url::Url, now: i64) -> Result<MetadataDocument, String> {
        let client = self
            .client
            .as_ref()
            .map_err(|e| format!("the server cannot fetch client metadata documents: {e}"))?;
        let fetched = client.get(url, "application/json").await.map_err(|e| {
            format!("the client metadata document at {url} could not be fetched: {e}")
        })?;
        if fetched.status != 200 {
            return Err(format!(
                "the client metadata document at {url} answered HTTP {} (expected 200)",
                fetched.status
            ));
        }
        let doc: Document = serde_json::from_slice(&fetched.body).map_err(|e| {
            format!(
                "the client metadata document at {url} is not a valid JSON client description: {e}"
            )
        })?;
        if doc.client_id != url.as_str() {
            return Err(format!(
                "the client metadata document at {url} names another client_id ('{}'): it must name its own URL",
                doc.client_id
            ));
        }
        let ttl = cache_lifetime(
            fetched
                .headers
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
        );
        Ok(MetadataDocument {
            client_id: doc.client_id,
            client_name: doc.client_name,
            client_uri: doc.client_uri,
            redirect_uris: doc.redirect_uris,
            token_endpoint_auth_method: doc.token_endpoint_auth_method,
            refresh_after: now + ttl.as_millis() as i64,
        })
    }
}

/// How long a document may be kept: its `max-age`, within bounds.
fn cache_lifetime(cache_control: Option<&str>) -> Duration {
    let Some(cc) = cache_control else {
        return DEFAULT_CACHE;
    };
    let mut lifetime = DEFAULT_CACHE;
    for directive in cc.split(',').map(str::trim) {
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache")
        {
            return MIN_CACHE;
        }
        if let Some(v) = directive.strip_prefix("max-age=")
            && let Ok(secs) = v.trim_matches('"').parse::<u64>()
        {
            lifetime = Duration::from_secs(secs);
        }
    }
    lifetime.clamp(MIN_CACHE, MAX_CACHE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_lifetime_is_bounded() {
        assert_eq!(cache_lifetime(None), DEFAULT_CACHE);
        assert_eq!(
            cache_lifetime(Some("max-age=600")),
            Duration::from_secs(600)
        );
        assert_eq!(cache_lifetime(Some("public, max-age=1")), MIN_CACHE);
        assert_eq!(cache_lifetime(Some("max-age=99999999")), MAX_CACHE);
        assert_eq!(cache_lifetime(Some("no-store")), MIN_CACHE);
    }

    #[test]
    fn client_ids_must_be_https_urls_with_a_path() {
        let f = ClientMetadataFetcher::new(ClientMetadataSettings::default());
        assert!(
            f.check_client_id("https://app.example.com/client.json")
                .is_ok()
        );
        assert!(f.check_client_id("https://app.example.com/").is_err());
        assert!(
            f.check_client_id("http://app.example.com/client.json")
                .is_err()
        );
        assert!(f.check_client_id("http://127.0.0.1:9/client.json").is_err());
        assert!(
            f.check_client_id("https://user:pw@app.example.com/c")
                .is_err()
        );
        let loop_ok = ClientMetadataFetcher::new(ClientMetadataSettings {
            allow_loopback: true,
            ..Default::default()
        });
        assert!(
            loop_ok
                .check_client_id("http://127.0.0.1:9/client.json")
                .is_ok()
        );
    }
}
