//! The guarded client: a reqwest client wired with the guards, and a `get`
//! that reads the body within the limits.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use url::Url;

use crate::error::{chain, guard_error_in};
use crate::guard::{GuardedResolver, PeerCheckLayer, check_url, redirect_verdict, tls_config};
use crate::{EgressError, NetworkPolicy};

/// Time and size bounds of outbound requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Establishing one connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// The whole exchange, redirects and body included.
    pub request_timeout: Duration,
    /// The largest response body [`EgressClient::get`] reads.
    pub max_response_bytes: usize,
    /// Redirects followed per request; 0 follows none.
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

/// A fetched response, body read in full (within the limits).
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The final response's status (any status; the caller judges it).
    pub status: u16,
    /// The final response's headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body, at most `max_response_bytes` long.
    pub body: Bytes,
    /// The URL the body came from, after redirects.
    pub final_url: Url,
}

/// An HTTP client whose every connection obeys a [`NetworkPolicy`].
/// Cloning is cheap and shares the connection pool.
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
            .finish_non_exhaustive()
    }
}

impl EgressClient {
    /// Builds the guarded client. Fails only if the TLS configuration or
    /// the reqwest client cannot be built.
    pub fn new(policy: NetworkPolicy, limits: Limits) -> Result<EgressClient, EgressError> {
        Self::build(policy, limits, tls_config(&[])?)
    }

    fn build(
        policy: NetworkPolicy,
        limits: Limits,
        tls: rustls::ClientConfig,
    ) -> Result<EgressClient, EgressError> {
        let policy = Arc::new(policy);
        let redirects = {
            let policy = policy.clone();
            let max = limits.max_redirects;
            reqwest::redirect::Policy::custom(move |attempt| {
                match redirect_verdict(&policy, attempt.previous(), attempt.url(), max) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(e),
                }
            })
        };
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .connector_layer(PeerCheckLayer {
                policy: policy.clone(),
            })
            .redirect(redirects)
            // A proxy would connect on our behalf and bypass the address checks.
            .no_proxy()
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.request_timeout)
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EgressError::Setup(chain(&e)))?;
        Ok(EgressClient {
            http,
            policy,
            limits,
        })
    }

    /// The guarded reqwest client (resolver, peer check, redirect policy,
    /// no proxy, connect and total timeouts) for callers that stream
    /// responses themselves, such as rmcp's Streamable HTTP client. It does
    /// not limit body sizes. Call [`EgressClient::check_url`] on the URL
    /// first for a clear error before any connection; the client refuses a
    /// refused address anyway.
    pub fn http_client(&self) -> reqwest::Client {
        self.http.clone()
    }

    /// The policy this client enforces.
    pub fn policy(&self) -> &NetworkPolicy {
        &self.policy
    }

    /// The limits this client enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Checks a URL without any I/O: http or https, no user name or
    /// password, a host, and an IP-literal host allowed by the policy
    /// (names are checked when they are resolved).
    pub fn check_url(&self, url: &Url) -> Result<(), EgressError> {
        check_url(&self.policy, url)
    }

    /// GETs `url` with `Accept: accept` and reads the body, following at
    /// most `max_redirects` redirects. A body longer than
    /// `max_response_bytes` is cut off with [`EgressError::TooLarge`]; the
    /// whole exchange ends with [`EgressError::Timeout`] at
    /// `request_timeout`, however slowly the body arrives.
    pub async fn get(&self, url: &Url, accept: &str) -> Result<Fetched, EgressError> {
        self.check_url(url)?;
        let after = self.limits.request_timeout;
        match tokio::time::timeout(after, self.get_inner(url, accept)).await {
            Ok(result) => result,
            Err(_) => Err(EgressError::Timeout { after }),
        }
    }

    async fn get_inner(&self, url: &Url, accept: &str) -> Result<Fetched, EgressError> {
        let mut resp = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await
            .map_err(|e| self.map_error(&e))?;
        let limit = self.limits.max_response_bytes;
        if resp
            .content_length()
            .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
        {
            return Err(EgressError::TooLarge { limit });
        }
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let final_url = resp.url().clone();
        let mut body = BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.map_error(&e))? {
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

    fn map_error(&self, e: &reqwest::Error) -> EgressError {
        if let Some(found) = guard_error_in(e) {
            return found;
        }
        if e.is_timeout() {
            return EgressError::Timeout {
                after: if e.is_connect() {
                    self.limits.connect_timeout
                } else {
                    self.limits.request_timeout
                },
            };
        }
        EgressError::Transport(chain(e))
    }
}

#[cfg(test)]
mod tests {
    //! TLS end to end on loopback, with a self-signed certificate for
    //! localhost and 127.0.0.1 (`testdata/`) trusted on top of the webpki
    //! roots: the peer check sees the address under TLS too.

    #![allow(clippy::unwrap_used)]

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const CERT: &[u8] = include_bytes!("../testdata/localhost.cert.pem");
    const KEY: &[u8] = include_bytes!("../testdata/localhost.key.pem");

    fn cert() -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(CERT).unwrap()
    }

    /// An https server on 127.0.0.1 answering every request with "tls ok".
    /// Returns its port and the count of requests read.
    async fn tls_server() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert()], PrivateKeyDer::from_pem_slice(KEY).unwrap())
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (acceptor, seen) = (acceptor.clone(), seen.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(sock).await else {
                        return;
                    };
                    let mut buf = [0u8; 4096];
                    if !matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {
                        return;
                    }
                    seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let _ = tls
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\ntls ok")
                        .await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        (port, requests)
    }

    fn client(policy: NetworkPolicy) -> EgressClient {
        EgressClient::build(policy, Limits::default(), tls_config(&[cert()]).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn https_passes_the_peer_check_when_allowed() {
        tokio::time::timeout(Duration::from_secs(20), async {
            let (port, requests) = tls_server().await;
            let open = client(NetworkPolicy {
                allow_loopback: true,
                ..Default::default()
            });
            for host in ["localhost", "127.0.0.1"] {
                let got = open
                    .get(
                        &Url::parse(&format!("https://{host}:{port}/doc")).unwrap(),
                        "*/*",
                    )
                    .await
                    .unwrap();
                assert_eq!((got.status, &got.body[..]), (200, &b"tls ok"[..]));
            }
            assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 2);
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn https_to_a_refused_literal_is_dropped_before_the_request() {
        tokio::time::timeout(Duration::from_secs(20), async {
            let (port, requests) = tls_server().await;
            let strict = client(NetworkPolicy::default());
            // The raw client, without check_url: the peer check refuses.
            let err = strict
                .http_client()
                .get(format!("https://127.0.0.1:{port}/mcp"))
                .send()
                .await
                .unwrap_err();
            assert!(
                matches!(guard_error_in(&err), Some(EgressError::Refused { .. })),
                "{}",
                chain(&err)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 0);
        })
        .await
        .unwrap();
    }
}
