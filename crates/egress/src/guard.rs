//! The checks wired into the reqwest client: the resolver that drops
//! refused addresses, the per-hop redirect verdict, the URL pre-check and
//! the connector layer that re-checks the address actually connected to.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::{Connection, HttpInfo};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

use crate::{EgressError, NetworkPolicy};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Resolves names with the system resolver and drops every address the
/// policy refuses; fails when none is left.
pub(crate) struct GuardedResolver {
    pub(crate) policy: Arc<NetworkPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| {
                    Box::new(EgressError::Unresolvable {
                        host: host.clone(),
                        reason: e.to_string(),
                    }) as BoxError
                })?
                .collect();
            let (allowed, blocked) = filter(&policy, found);
            if allowed.is_empty() {
                let err = if blocked.is_empty() {
                    EgressError::Unresolvable {
                        host,
                        reason: "it has no address".into(),
                    }
                } else {
                    tracing::warn!(%host, addresses = ?blocked, "outbound connection refused by the network policy");
                    EgressError::Refused { host, blocked }
                };
                return Err(Box::new(err) as BoxError);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Splits resolved addresses into those the policy allows and those it
/// refuses (each refused address once).
fn filter(
    policy: &NetworkPolicy,
    found: Vec<SocketAddr>,
) -> (Vec<SocketAddr>, Vec<crate::BlockedAddress>) {
    let mut allowed = Vec::new();
    let mut blocked: Vec<crate::BlockedAddress> = Vec::new();
    for addr in found {
        match policy.check(addr.ip()) {
            Ok(()) => allowed.push(addr),
            Err(b) => {
                if !blocked.contains(&b) {
                    blocked.push(b);
                }
            }
        }
    }
    (allowed, blocked)
}

/// The IP literal a URL's host is, if it is one.
fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// Scheme, credentials, host, and an IP-literal host against the policy
/// (names are checked by the resolver at connect time).
pub(crate) fn check_url(policy: &NetworkPolicy, url: &Url) -> Result<(), EgressError> {
    let bad = |reason: &str| EgressError::BadUrl {
        url: url.to_string(),
        reason: reason.to_owned(),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("only http and https URLs are fetched"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "a user name or password in the URL is not accepted; remove it",
        ));
    }
    let Some(host) = url.host_str() else {
        return Err(bad("it has no host"));
    };
    if let Some(ip) = literal_ip(url) {
        policy.check(ip).map_err(|blocked| EgressError::Refused {
            host: host.to_owned(),
            blocked: vec![blocked],
        })?;
    }
    Ok(())
}

/// Whether a redirect to `next` is followed, given the URLs already
/// requested (`previous`, the first request included).
pub(crate) fn redirect_verdict(
    policy: &NetworkPolicy,
    previous: &[Url],
    next: &Url,
    max_redirects: usize,
) -> Result<(), EgressError> {
    if previous.len() > max_redirects {
        return Err(EgressError::TooManyRedirects {
            url: previous.first().map(Url::to_string).unwrap_or_default(),
            limit: max_redirects,
        });
    }
    let downgrade = previous
        .last()
        .is_some_and(|p| p.scheme() == "https" && next.scheme() == "http");
    if downgrade {
        return Err(EgressError::BadUrl {
            url: next.to_string(),
            reason: "a redirect from https to plain http is not followed".into(),
        });
    }
    check_url(policy, next)
}

/// A connector layer that checks the address of every new connection
/// against the policy before a byte of the request is written. The
/// resolver already refuses names; this also covers IP-literal URLs sent
/// through [`crate::EgressClient::http_client`] by callers that skipped
/// [`crate::EgressClient::check_url`].
#[derive(Clone)]
pub(crate) struct PeerCheckLayer {
    pub(crate) policy: Arc<NetworkPolicy>,
}

impl<S> tower::Layer<S> for PeerCheckLayer {
    type Service = PeerCheck<S>;

    fn layer(&self, inner: S) -> PeerCheck<S> {
        PeerCheck {
            inner,
            policy: self.policy.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct PeerCheck<S> {
    inner: S,
    policy: Arc<NetworkPolicy>,
}

impl<S, R> tower::Service<R> for PeerCheck<S>
where
    S: tower::Service<R, Error = BoxError>,
    S::Response: Connection + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let connecting = self.inner.call(req);
        let policy = self.policy.clone();
        Box::pin(async move {
            let conn = connecting.await?;
            let mut extras = http::Extensions::new();
            conn.connected().get_extras(&mut extras);
            // Fail closed: a connection whose peer is unknown is not used.
            let Some(peer) = extras.get::<HttpInfo>().map(|i| i.remote_addr().ip()) else {
                return Err(Box::new(EgressError::Transport(
                    "the address connected to is unknown, so the connection is not used".into(),
                )) as BoxError);
            };
            if let Err(blocked) = policy.check(peer) {
                tracing::warn!(%peer, "outbound connection to a refused address dropped before sending");
                return Err(Box::new(EgressError::Refused {
                    host: peer.to_string(),
                    blocked: vec![blocked],
                }) as BoxError);
            }
            Ok(conn)
        })
    }
}

/// rustls with the ring provider and the webpki (Mozilla) roots, plus
/// `extra_roots` (tests); nothing process-wide is installed or read.
pub(crate) fn tls_config(
    extra_roots: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<rustls::ClientConfig, EgressError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra_roots {
        roots
            .add(cert.clone())
            .map_err(|e| EgressError::Setup(e.to_string()))?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| EgressError::Setup(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn urls(list: &[&str]) -> Vec<Url> {
        list.iter().map(|s| url(s)).collect()
    }

    #[test]
    fn check_url_table() {
        let strict = NetworkPolicy::default();
        let lo = NetworkPolicy {
            allow_loopback: true,
            ..Default::default()
        };
        // (url, loopback allowed, verdict: "ok" | "refused" | "bad")
        let table = [
            ("https://example.com/doc", false, "ok"),
            ("http://example.com/doc", false, "ok"),
            // Names are checked at connect time, not here.
            ("http://localhost/", false, "ok"),
            ("http://127.0.0.1/", false, "refused"),
            ("http://127.0.0.1/", true, "ok"),
            ("http://[::1]:8080/", false, "refused"),
            ("http://[::ffff:127.0.0.1]/", false, "refused"),
            ("http://[::ffff:7f00:1]/", true, "ok"),
            ("https://169.254.169.254/latest/meta-data", true, "refused"),
            ("http://10.0.0.1/", true, "refused"),
            ("http://0.0.0.0:80/", true, "refused"),
            ("http://[fe80::1]/", true, "refused"),
            ("http://[64:ff9b::a00:1]/", false, "refused"),
            ("http://8.8.8.8/", false, "ok"),
            ("ftp://example.com/x", false, "bad"),
            ("file:///etc/passwd", false, "bad"),
            ("gopher://example.com/", false, "bad"),
            ("data:text/plain,hi", false, "bad"),
            ("http://user:pw@example.com/", false, "bad"),
            ("http://user@example.com/", false, "bad"),
        ];
        for (u, loopback, verdict) in table {
            let policy = if loopback { &lo } else { &strict };
            let got = match check_url(policy, &url(u)) {
                Ok(()) => "ok",
                Err(EgressError::Refused { .. }) => "refused",
                Err(EgressError::BadUrl { .. }) => "bad",
                Err(e) => panic!("{u}: unexpected {e}"),
            };
            assert_eq!(got, verdict, "{u}");
        }
    }

    #[test]
    fn redirects_are_counted_and_never_downgrade() {
        let p = NetworkPolicy::default();
        let next = url("https://b.example/");
        assert!(redirect_verdict(&p, &urls(&["https://a.example/"]), &next, 1).is_ok());
        let err = redirect_verdict(
            &p,
            &urls(&["https://a.example/", "https://c.example/"]),
            &next,
            1,
        )
        .unwrap_err();
        assert!(
            matches!(&err, EgressError::TooManyRedirects { limit: 1, url } if url == "https://a.example/"),
            "{err}"
        );
        // max_redirects 0: the first redirect is already too many.
        assert!(matches!(
            redirect_verdict(&p, &urls(&["https://a.example/"]), &next, 0),
            Err(EgressError::TooManyRedirects { limit: 0, .. })
        ));
        // https → http is refused; http → https and http → http are followed.
        let err = redirect_verdict(
            &p,
            &urls(&["https://a.example/"]),
            &url("http://a.example/"),
            3,
        )
        .unwrap_err();
        assert!(err.to_string().contains("https to plain http"), "{err}");
        assert!(
            redirect_verdict(
                &p,
                &urls(&["http://a.example/"]),
                &url("https://a.example/"),
                3
            )
            .is_ok()
        );
        assert!(
            redirect_verdict(
                &p,
                &urls(&["http://a.example/"]),
                &url("http://b.example/"),
                3
            )
            .is_ok()
        );
        // Each hop goes through the URL check.
        for bad in [
            "http://10.0.0.1/",
            "http://[::ffff:127.0.0.1]/",
            "ftp://a.example/",
        ] {
            assert!(
                redirect_verdict(&p, &urls(&["http://a.example/"]), &url(bad), 3).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn resolved_addresses_are_filtered() {
        let p = NetworkPolicy::default();
        let found: Vec<SocketAddr> = ["10.0.0.5:0", "93.184.216.34:0", "[fd00::1]:0", "10.0.0.5:0"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let (allowed, blocked) = filter(&p, found);
        assert_eq!(allowed, vec!["93.184.216.34:0".parse().unwrap()]);
        let shown: Vec<String> = blocked.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.5 (private)", "fd00::1 (unique local)"]);
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_with_only_refused_addresses() {
        let r = GuardedResolver {
            policy: Arc::new(NetworkPolicy::default()),
        };
        let name: Name = "localhost".parse().unwrap();
        let err = match r.resolve(name).await {
            Ok(_) => panic!("localhost resolved under the default policy"),
            Err(e) => e,
        };
        let msg = err.to_string();
        assert!(msg.starts_with("refused to connect to "), "{msg}");
        assert!(msg.contains("(loopback)"), "{msg}");
        assert!(msg.contains("for host localhost"), "{msg}");

        let open = GuardedResolver {
            policy: Arc::new(NetworkPolicy {
                allow_loopback: true,
                ..Default::default()
            }),
        };
        let addrs: Vec<SocketAddr> = match open.resolve("localhost".parse().unwrap()).await {
            Ok(a) => a.collect(),
            Err(e) => panic!("{e}"),
        };
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }

    #[test]
    fn tls_is_rustls_with_ring_and_webpki_roots() {
        let config = tls_config(&[]).unwrap();
        assert_eq!(
            config.crypto_provider().cipher_suites,
            rustls::crypto::ring::default_provider().cipher_suites
        );
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}
