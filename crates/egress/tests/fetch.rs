//! The guarded client against real sockets on loopback only: refused
//! addresses never see a connection (or, through the raw client, never a
//! byte of a request), redirects are checked hop by hop, limits cut
//! responses off. Every test is bounded in time.
// Test code states its expectations: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use switchboard_egress::{EgressClient, EgressError, Limits, NetworkPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

/// Fails the test instead of hanging it.
async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(20), test)
        .await
        .expect("the test took longer than 20 s");
}

/// A one-route HTTP server on a loopback address: every request gets
/// `reply(port)`, written in pieces `delay` apart. Counts accepted
/// connections and connections on which request bytes arrived.
struct TestServer {
    port: u16,
    accepted: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

async fn serve<F>(ip: &str, delay: Duration, reply: F) -> TestServer
where
    F: Fn(u16) -> Vec<Vec<u8>> + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (seen, asked) = (accepted.clone(), requests.clone());
    let reply = Arc::new(reply);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            let (asked, reply) = (asked.clone(), reply.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                match sock.read(&mut buf).await {
                    Ok(n) if n > 0 => asked.fetch_add(1, Ordering::SeqCst),
                    _ => return,
                };
                for piece in reply(port) {
                    if sock.write_all(&piece).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(delay).await;
                }
            });
        }
    });
    TestServer {
        port,
        accepted,
        requests,
    }
}

fn ok_json(_: u16) -> Vec<Vec<u8>> {
    vec![b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"a\": true}".to_vec()]
}

fn redirect_to(location: String) -> impl Fn(u16) -> Vec<Vec<u8>> + Send + Sync + 'static {
    move |_| {
        vec![format!(
            "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        .into_bytes()]
    }
}

fn loopback() -> NetworkPolicy {
    NetworkPolicy {
        allow_loopback: true,
        ..Default::default()
    }
}

fn client(policy: NetworkPolicy, limits: Limits) -> EgressClient {
    EgressClient::new(policy, limits).unwrap()
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

#[tokio::test]
async fn the_default_policy_never_connects_to_loopback_or_private_addresses() {
    bounded(async {
        let server = serve("127.0.0.1", Duration::ZERO, ok_json).await;
        let strict = client(NetworkPolicy::default(), Limits::default());
        for u in [
            format!("http://127.0.0.1:{}/doc", server.port),
            format!("http://localhost:{}/doc", server.port),
            format!("http://[::ffff:127.0.0.1]:{}/doc", server.port),
            format!("http://[::1]:{}/doc", server.port),
            format!("http://0.0.0.0:{}/doc", server.port),
            format!("https://127.0.0.1:{}/doc", server.port),
            "http://169.254.169.254/latest/meta-data".to_owned(),
            "http://10.0.0.1/".to_owned(),
            "http://[fd00::1]/".to_owned(),
        ] {
            let started = Instant::now();
            let err = strict.get(&url(&u), "*/*").await.unwrap_err();
            let EgressError::Refused { blocked, .. } = &err else {
                panic!("{u}: {err}");
            };
            assert!(!blocked.is_empty());
            assert!(
                err.to_string().starts_with("refused to connect to "),
                "{err}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{u}: refused without a connection attempt"
            );
        }
        // The literal check needs no I/O at all.
        let literal = url(&format!("http://127.0.0.1:{}/doc", server.port));
        assert!(matches!(
            strict.check_url(&literal),
            Err(EgressError::Refused { .. })
        ));
        // Through the resolver, the message names the host and the address.
        let err = strict
            .get(
                &url(&format!("http://localhost:{}/doc", server.port)),
                "*/*",
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("for host localhost"), "{err}");
        assert!(err.contains("(loopback)"), "{err}");
        assert_eq!(server.accepted.load(Ordering::SeqCst), 0);
    })
    .await;
}

#[tokio::test]
async fn allow_loopback_lets_the_request_through() {
    bounded(async {
        let server = serve("127.0.0.1", Duration::ZERO, ok_json).await;
        let open = client(loopback(), Limits::default());
        for host in ["localhost", "127.0.0.1"] {
            let u = url(&format!("http://{host}:{}/doc", server.port));
            let got = open.get(&u, "application/json").await.unwrap();
            assert_eq!(got.status, 200);
            assert_eq!(&got.body[..], b"{\"a\": true}");
            assert_eq!(got.headers.get("content-type").unwrap(), "application/json");
            assert_eq!(got.final_url, u);
        }
        assert_eq!(server.requests.load(Ordering::SeqCst), 2);
    })
    .await;
}

#[tokio::test]
async fn the_raw_client_refuses_a_refused_literal_before_writing_the_request() {
    bounded(async {
        let server = serve("127.0.0.1", Duration::ZERO, ok_json).await;
        let strict = client(NetworkPolicy::default(), Limits::default());
        // A caller that skips check_url and streams itself (rmcp).
        let err = strict
            .http_client()
            .get(format!("http://127.0.0.1:{}/mcp", server.port))
            .send()
            .await
            .unwrap_err();
        let mut chain = err.to_string();
        let mut src = std::error::Error::source(&err);
        while let Some(s) = src {
            chain.push_str(&format!(": {s}"));
            src = s.source();
        }
        assert!(
            chain.contains("refused to connect to 127.0.0.1 (loopback)"),
            "{chain}"
        );
        // Give the server a moment: no request byte ever arrives.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(server.requests.load(Ordering::SeqCst), 0);

        // And by name, the resolver refuses before any connection.
        let err = strict
            .http_client()
            .get(format!("http://localhost:{}/mcp", server.port))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_connect() || err.is_request(), "{err}");
        assert_eq!(server.requests.load(Ordering::SeqCst), 0);
    })
    .await;
}

#[tokio::test]
async fn redirects_are_checked_hop_by_hop() {
    bounded(async {
        // Only 127.0.0.2 is allowed; it redirects to loopback forms that are not.
        let target = serve("127.0.0.1", Duration::ZERO, ok_json).await;
        let policy = NetworkPolicy {
            allowed_networks: vec!["127.0.0.2/32".parse().unwrap()],
            allow_loopback: false,
        };
        let c = client(policy, Limits::default());
        for location in [
            format!("http://127.0.0.1:{}/doc", target.port),
            format!("http://[::ffff:127.0.0.1]:{}/doc", target.port),
            format!("http://localhost:{}/doc", target.port),
            "http://10.0.0.1/".to_owned(),
            "http://169.254.169.254/latest/meta-data".to_owned(),
        ] {
            let redirector =
                serve("127.0.0.2", Duration::ZERO, redirect_to(location.clone())).await;
            let err = c
                .get(
                    &url(&format!("http://127.0.0.2:{}/start", redirector.port)),
                    "*/*",
                )
                .await
                .unwrap_err();
            assert!(
                matches!(err, EgressError::Refused { .. }),
                "{location}: {err}"
            );
            assert_eq!(redirector.requests.load(Ordering::SeqCst), 1);
        }
        assert_eq!(
            target.accepted.load(Ordering::SeqCst),
            0,
            "the redirect target was never contacted"
        );

        // From an allowed loopback server to a private address.
        let open = client(loopback(), Limits::default());
        let redirector = serve(
            "127.0.0.1",
            Duration::ZERO,
            redirect_to("http://10.0.0.1/".into()),
        )
        .await;
        let err = open
            .get(
                &url(&format!("http://127.0.0.1:{}/", redirector.port)),
                "*/*",
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("10.0.0.1 (private)"), "{err}");

        // An allowed redirect is followed and reported.
        let hop = serve(
            "127.0.0.1",
            Duration::ZERO,
            redirect_to(format!("http://localhost:{}/final", target.port)),
        )
        .await;
        let got = open
            .get(&url(&format!("http://127.0.0.1:{}/", hop.port)), "*/*")
            .await
            .unwrap();
        assert_eq!(got.status, 200);
        assert_eq!(
            got.final_url.as_str(),
            format!("http://localhost:{}/final", target.port)
        );
    })
    .await;
}

#[tokio::test]
async fn too_many_redirects_and_other_schemes_are_refused() {
    bounded(async {
        // A server that redirects to itself forever.
        let looped = serve("127.0.0.1", Duration::ZERO, |port| {
            redirect_to(format!("http://127.0.0.1:{port}/again"))(port)
        })
        .await;
        let c = client(
            loopback(),
            Limits {
                max_redirects: 2,
                ..Default::default()
            },
        );
        let err = c
            .get(&url(&format!("http://127.0.0.1:{}/", looped.port)), "*/*")
            .await
            .unwrap_err();
        assert!(
            matches!(err, EgressError::TooManyRedirects { limit: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("more than 2 times"), "{err}");
        // The first request and two redirects, nothing more.
        assert_eq!(looped.requests.load(Ordering::SeqCst), 3);

        // A redirect to another scheme is not followed: refused by the
        // redirect policy, or (a location without an authority, which the
        // HTTP stack cannot turn into a request) handed back as the 302.
        let s = serve(
            "127.0.0.1",
            Duration::ZERO,
            redirect_to("ftp://127.0.0.1/x".into()),
        )
        .await;
        let err = c
            .get(&url(&format!("http://127.0.0.1:{}/", s.port)), "*/*")
            .await
            .unwrap_err();
        assert!(matches!(err, EgressError::BadUrl { .. }), "{err}");
        assert!(err.to_string().contains("only http and https"), "{err}");
        let s = serve(
            "127.0.0.1",
            Duration::ZERO,
            redirect_to("file:///etc/passwd".into()),
        )
        .await;
        let start = url(&format!("http://127.0.0.1:{}/", s.port));
        let got = c.get(&start, "*/*").await.unwrap();
        assert_eq!((got.status, got.final_url), (302, start));

        // And neither is a first URL with another scheme or credentials.
        for u in [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "ws://127.0.0.1/",
            "http://user:pw@127.0.0.1/",
        ] {
            let err = c.get(&url(u), "*/*").await.unwrap_err();
            assert!(matches!(err, EgressError::BadUrl { .. }), "{u}: {err}");
        }
    })
    .await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_cut_off() {
    bounded(async {
        let limits = Limits {
            max_response_bytes: 1000,
            ..Default::default()
        };
        // Announced by Content-Length, then no body at all: refused on the
        // headers, long before the deadline.
        let announced = serve("127.0.0.1", Duration::from_secs(30), |_| {
            vec![
                b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\nconnection: close\r\n\r\n".to_vec(),
                b"x".repeat(5000),
            ]
        })
        .await;
        // Chunked, no length: cut off while reading.
        let chunked = serve("127.0.0.1", Duration::ZERO, |_| {
            let mut parts = vec![
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                    .to_vec(),
            ];
            for _ in 0..10 {
                parts.push(format!("1f4\r\n{}\r\n", "y".repeat(500)).into_bytes());
            }
            parts.push(b"0\r\n\r\n".to_vec());
            parts
        })
        .await;
        // Neither length nor chunks: the body ends when the connection does.
        let unframed = serve("127.0.0.1", Duration::ZERO, |_| {
            vec![
                b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_vec(),
                b"z".repeat(1001),
            ]
        })
        .await;
        let c = client(loopback(), limits);
        for server in [&announced, &chunked, &unframed] {
            let started = Instant::now();
            let err = c
                .get(&url(&format!("http://127.0.0.1:{}/", server.port)), "*/*")
                .await
                .unwrap_err();
            assert!(
                matches!(err, EgressError::TooLarge { limit: 1000 }),
                "{err}"
            );
            assert!(err.to_string().contains("1000 bytes"));
            assert!(started.elapsed() < Duration::from_secs(2));
        }

        // Exactly at the limit is fine.
        let exact = serve("127.0.0.1", Duration::ZERO, |_| {
            vec![
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3e8\r\n"
                    .to_vec(),
                b"w".repeat(1000),
                b"\r\n0\r\n\r\n".to_vec(),
            ]
        })
        .await;
        let got = c
            .get(&url(&format!("http://127.0.0.1:{}/", exact.port)), "*/*")
            .await
            .unwrap();
        assert_eq!(got.body.len(), 1000);
    })
    .await;
}

#[tokio::test]
async fn a_trickling_server_hits_the_deadline() {
    bounded(async {
        // Headers at once, then one byte every 100 ms: 10 s for the body.
        let slow = serve("127.0.0.1", Duration::from_millis(100), |_| {
            let mut parts = vec![
                b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\n".to_vec(),
            ];
            parts.extend((0..100).map(|_| b"z".to_vec()));
            parts
        })
        .await;
        let c = client(
            loopback(),
            Limits {
                request_timeout: Duration::from_millis(800),
                ..Default::default()
            },
        );
        let started = Instant::now();
        let err = c
            .get(&url(&format!("http://127.0.0.1:{}/", slow.port)), "*/*")
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(
            matches!(err, EgressError::Timeout { after } if after == Duration::from_millis(800)),
            "{err}"
        );
        assert!(
            took >= Duration::from_millis(700) && took < Duration::from_secs(2),
            "{took:?}"
        );
    })
    .await;
}
