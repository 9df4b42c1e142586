//! The guarded client against real sockets on loopback: refused addresses
//! never see a connection, limits cut responses off, redirects are checked.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use switchboard_egress::{EgressClient, EgressError, Limits, NetworkPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

/// A one-route HTTP server: every request gets `reply(port)`, written in
/// pieces `delay` apart. Counts accepted connections.
struct TestServer {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

async fn serve(ip: &str, reply: fn(u16) -> Vec<Vec<u8>>, delay: Duration) -> TestServer {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                for piece in reply(port) {
                    if sock.write_all(&piece).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(delay).await;
                }
            });
        }
    });
    TestServer { port, accepted }
}

fn ok_json(_: u16) -> Vec<Vec<u8>> {
    vec![b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"a\": true}".to_vec()]
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
async fn private_addresses_are_refused_before_any_connection() {
    let server = serve("127.0.0.1", ok_json, Duration::ZERO).await;
    let strict = client(NetworkPolicy::default(), Limits::default());
    for u in [
        format!("http://127.0.0.1:{}/doc", server.port),
        format!("http://localhost:{}/doc", server.port),
        format!("http://[::ffff:127.0.0.1]:{}/doc", server.port),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://10.0.0.1/".to_owned(),
    ] {
        let started = Instant::now();
        let err = strict.get(&url(&u), "*/*").await.unwrap_err();
        assert!(matches!(err, EgressError::Refused { .. }), "{u}: {err}");
        assert!(err.to_string().contains("refused to connect"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{u}: no connection attempt"
        );
    }
    assert_eq!(server.accepted.load(Ordering::SeqCst), 0);

    let open = client(loopback(), Limits::default());
    let got = open
        .get(
            &url(&format!("http://localhost:{}/doc", server.port)),
            "application/json",
        )
        .await
        .unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(&got.body[..], b"{\"a\": true}");
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn redirects_are_checked_hop_by_hop() {
    // Only 127.0.0.2 is allowed; it redirects to 127.0.0.1, which is not.
    let target = serve("127.0.0.1", ok_json, Duration::ZERO).await;
    static TARGET_PORT: AtomicUsize = AtomicUsize::new(0);
    TARGET_PORT.store(target.port as usize, Ordering::SeqCst);
    let redirector = serve(
        "127.0.0.2",
        |_| {
            let port = TARGET_PORT.load(Ordering::SeqCst);
            vec![format!("HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{port}/doc\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").into_bytes()]
        },
        Duration::ZERO,
    )
    .await;
    let policy = NetworkPolicy {
        allowed_networks: vec!["127.0.0.2/32".parse().unwrap()],
        allow_loopback: false,
    };
    let c = client(policy, Limits::default());
    let err = c
        .get(
            &url(&format!("http://127.0.0.2:{}/start", redirector.port)),
            "*/*",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, EgressError::Refused { .. }), "{err}");
    assert_eq!(redirector.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(
        target.accepted.load(Ordering::SeqCst),
        0,
        "the redirect target was never contacted"
    );

    // Too many redirects: a server that redirects to itself forever.
    let looped = serve(
        "127.0.0.1",
        |port| vec![format!("HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{port}/again\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").into_bytes()],
        Duration::ZERO,
    )
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
    assert!(err.to_string().contains("more than 2 redirects"), "{err}");
    assert_eq!(looped.accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn bodies_over_the_limit_are_cut_off() {
    let limits = Limits {
        max_response_bytes: 1000,
        ..Default::default()
    };
    // Announced by Content-Length: refused before reading.
    let announced = serve(
        "127.0.0.1",
        |_| {
            vec![
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: 5000\r\nconnection: close\r\n\r\n{}",
                    "x".repeat(5000)
                )
                .into_bytes(),
            ]
        },
        Duration::ZERO,
    )
    .await;
    // Chunked, no length: cut off while reading.
    let chunked = serve(
        "127.0.0.1",
        |_| {
            let mut parts = vec![
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                    .to_vec(),
            ];
            for _ in 0..10 {
                parts.push(format!("1f4\r\n{}\r\n", "y".repeat(500)).into_bytes());
            }
            parts.push(b"0\r\n\r\n".to_vec());
            parts
        },
        Duration::ZERO,
    )
    .await;
    let c = client(loopback(), limits);
    for server in [&announced, &chunked] {
        let err = c
            .get(&url(&format!("http://127.0.0.1:{}/", server.port)), "*/*")
            .await
            .unwrap_err();
        assert!(
            matches!(err, EgressError::TooLarge { limit: 1000 }),
            "{err}"
        );
        assert!(err.to_string().contains("1000 bytes"));
    }
}

#[tokio::test]
async fn a_trickling_server_hits_the_deadline() {
    let slow = serve(
        "127.0.0.1",
        |_| {
            let mut parts = vec![
                b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\n".to_vec(),
            ];
            parts.extend((0..100).map(|_| b"z".to_vec()));
            parts
        },
        Duration::from_millis(100),
    )
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
    assert!(matches!(err, EgressError::Timeout { .. }), "{err}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn only_plain_http_urls_without_credentials() {
    let c = client(loopback(), Limits::default());
    for u in [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "http://user:pw@127.0.0.1/",
    ] {
        let err = c.get(&url(u), "*/*").await.unwrap_err();
        assert!(matches!(err, EgressError::BadUrl { .. }), "{u}: {err}");
    }
}
