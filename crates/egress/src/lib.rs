//! Outbound HTTP under the operator's network rules. Its one job: make
//! server-side request forgery impossible by construction for every URL a
//! client, an admin or a document hands the server (client metadata
//! documents now, upstream MCP servers next), and bound what comes back.
//!
//! Invariants:
//! - every connection's address is checked by the resolver ([`NetworkPolicy`])
//!   at connect time, for the first request and every redirect hop, so a
//!   name that resolves to a private address is refused wherever it appears;
//! - IP-literal hosts never reach the resolver, so [`EgressClient::check_url`]
//!   and the redirect policy check them before any connection;
//! - a response body is read against a size limit and the whole exchange
//!   against a deadline.

mod policy;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

pub use policy::{BlockedAddress, NetworkPolicy, special_class};

/// Time and size bounds of outbound requests.
#[derive(Debug, Clone)]
pub struct Limits {
    pub connect_timeout: Duration,
    /// The whole exchange, body included.
    pub request_timeout: Duration,
    pub max_response_bytes: usize,
    pub max_redirects: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_response_bytes: 1024 * 1024,
            max_redirects: 3,
        }
    }
}

/// Why an outbound request did not happen or did not complete.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error(
        "refused to connect to {blocked} for {host}: the server does not call private, loopback or link-local addresses unless the operator allows that network"
    )]
    Refused {
        host: String,
        blocked: BlockedAddress,
    },
    #[error("the URL '{url}' cannot be fetched: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("no answer within {} ms", after.as_millis())]
    Timeout { after: Duration },
    #[error("the response is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the request failed: {0}")]
    Transport(String),
    #[error("the HTTP client could not be built: {0}")]
    Setup(String),
}

/// A fetched response, body read in full (within the limits).
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
    pub final_url: Url,
}

/// An HTTP client whose every connection obeys a [`NetworkPolicy`].
#[derive(Clone)]
pub struct EgressClient {
    http: reqwest::Client,
    policy: Arc<NetworkPolicy>,
    limits: Limits,
}

impl std::fmt::Debug for EgressClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressClient")
            .field("policy", &self.policy)
            .field("limits", &self.limits)
            .finish()
    }
}

/// Resolves names and drops every address the policy refuses.
struct GuardedResolver {
    policy: Arc<NetworkPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> {
                    format!("could not resolve {host}: {e}").into()
                })?
                .collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(b) => {
                        refused.get_or_insert(b);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> = match refused {
                    Some(blocked) => Box::new(EgressError::Refused { host, blocked }),
                    None => format!("{host} has no address").into(),
                };
                return Err(err);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The IP literal a URL's host is, if it is one.
fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

fn check_url_with(policy: &NetworkPolicy, url: &Url) -> Result<(), EgressError> {
    let bad = |reason: &str| EgressError::BadUrl {
        url: url.to_string(),
        reason: reason.to_owned(),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("only http and https URLs are fetched"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials in the URL are not accepted"));
    }
    let Some(host) = url.host_str() else {
        return Err(bad("it has no host"));
    };
    if let Some(ip) = literal_ip(url) {
        policy.check(ip).map_err(|blocked| EgressError::Refused {
            host: host.to_owned(),
            blocked,
        })?;
    }
    Ok(())
}

/// Finds the policy refusal inside a reqwest error chain, if that is what
/// stopped the request.
fn refusal_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a EgressError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(found) = err.downcast_ref::<EgressError>() {
            return Some(found);
        }
        cur = err.source();
    }
    None
}

impl EgressClient {
    pub fn new(policy: NetworkPolicy, limits: Limits) -> Result<EgressClient, EgressError> {
        // reqwest is built without a bundled crypto provider; ours is ring.
        // Installing twice is harmless (the first one stays).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let policy = Arc::new(policy);
        let redirect_policy = {
            let policy = policy.clone();
            let max = limits.max_redirects;
            reqwest::redirect::Policy::custom(move |attempt| {
                let next = attempt.url().clone();
                if attempt.previous().len() > max {
                    return attempt.error(EgressError::BadUrl {
                        url: next.to_string(),
                        reason: format!("more than {max} redirects"),
                    });
                }
                let downgrade = attempt
                    .previous()
                    .last()
                    .is_some_and(|p| p.scheme() == "https" && next.scheme() == "http");
                if downgrade {
                    return attempt.error(EgressError::BadUrl {
                        url: next.to_string(),
                        reason: "a redirect from https to plain http is not followed".into(),
                    });
                }
                match check_url_with(&policy, &next) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(e),
                }
            })
        };
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .redirect(redirect_policy)
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.request_timeout)
            // A proxy would connect on our behalf and bypass the address checks.
            .no_proxy()
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EgressError::Setup(e.to_string()))?;
        Ok(EgressClient {
            http,
            policy,
            limits,
        })
    }

    /// The guarded client itself (resolver, redirect policy, timeouts), for
    /// callers that stream responses themselves. Check IP-literal URLs with
    /// [`EgressClient::check_url`] first.
    pub fn http_client(&self) -> reqwest::Client {
        self.http.clone()
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Checks a URL before any connection: scheme, credentials, and an
    /// IP-literal host against the policy (names are checked at connect time).
    pub fn check_url(&self, url: &Url) -> Result<(), EgressError> {
        check_url_with(&self.policy, url)
    }

    /// GETs `url` and reads the body within the limits.
    pub async fn get(&self, url: &Url, accept: &str) -> Result<Fetched, EgressError> {
        self.check_url(url)?;
        let deadline = self.limits.request_timeout;
        match tokio::time::timeout(deadline, self.get_inner(url, accept)).await {
            Ok(r) => r,
            Err(_) => Err(EgressError::Timeout { after: deadline }),
        }
    }

    async fn get_inner(&self, url: &Url, accept: &str) -> Result<Fetched, EgressError> {
        let started = Instant::now();
        let mut resp = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await
            .map_err(|e| self.map_error(e, started))?;
        let limit = self.limits.max_response_bytes;
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(EgressError::TooLarge { limit });
        }
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let final_url = resp.url().clone();
        let mut body = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.map_error(e, started))? {
            if body.len() + chunk.len() > limit {
                return Err(EgressError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            status,
            headers,
            body: body.freeze(),
            final_url,
        })
    }

    fn map_error(&self, e: reqwest::Error, started: Instant) -> EgressError {
        if let Some(found) = refusal_in(&e) {
            return match found {
                EgressError::Refused { host, blocked } => EgressError::Refused {
                    host: host.clone(),
                    blocked: blocked.clone(),
                },
                EgressError::BadUrl { url, reason } => EgressError::BadUrl {
                    url: url.clone(),
                    reason: reason.clone(),
                },
                other => EgressError::Transport(other.to_string()),
            };
        }
        if e.is_timeout() {
            return EgressError::Timeout {
                after: started.elapsed(),
            };
        }
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        EgressError::Transport(msg)
    }
}
