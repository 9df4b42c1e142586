//! Real OAuth clients connect by URL alone: the official Python SDK's
//! `OAuthClientProvider` (its browser step played with plain HTTP),
//! mcp-remote and the conformance suite's `authorization` scenarios (their
//! browser step done in headless Chromium). `scripts/mcp-tools.sh`
//! installs the clients; Debian's `chromium` is the browser.
// Test code states its expectations: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::mcp::{clients_dir, tools_dir};
use common::*;
use serde_json::Value;

/// The browser the tests drive: `$SWITCHBOARD_CHROMIUM`, or Debian's.
fn chromium() -> PathBuf {
    let p = std::env::var("SWITCHBOARD_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/usr/lib/chromium/chromium"));
    assert!(
        p.exists(),
        "headless Chromium is missing at {}: install Debian's `chromium` (apt-get install chromium) or set SWITCHBOARD_CHROMIUM",
        p.display()
    );
    p
}

/// Completes the authorization pages at `url` in headless Chromium, as the
/// member would; waits for the browser to reach `redirect_prefix`.
fn browser_authorize(url: &str, email: &str, org: &str, redirect_prefix: &str) -> Value {
    let tools = tools_dir();
    let out = Command::new(tools.join("node22/bin/node"))
        .arg(clients_dir().join("browser_authorize.mjs"))
        .args([
            "--url",
            url,
            "--email",
            email,
            "--password",
            PASSWORD,
            "--org",
            org,
            "--expect-redirect",
            redirect_prefix,
            "--timeout-ms",
            "60000",
        ])
        .env("SWITCHBOARD_CHROMIUM", chromium())
        .env("NODE_PATH", tools.join("node_modules"))
        .stdin(Stdio::null())
        .output()
        .expect("run browser_authorize.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser_authorize failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("browser_authorize printed no JSON ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_oauth_client_connects_by_url_alone() {
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = Server::start(&db);
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    add_member(&owner, "dev@alpha.test", "member").await;
    for mode in ["legacy", "2026-07-28"] {
        let out = Command::new(tools_dir().join("py/bin/python"))
            .arg(clients_dir().join("py_oauth.py"))
            .args([
                "--url",
                &server.url("/mcp"),
                "--email",
                "dev@alpha.test",
                "--password",
                PASSWORD,
                "--org",
                "alpha",
                "--mode",
                mode,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("python");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "py_oauth ({mode}) failed: {}\n{stdout}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.log()
        );
        let v: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(v["authorizations"], 1, "{v}");
        assert_eq!(
            v["steps"],
            serde_json::json!(["sign-in", "pick-org", "consent"])
        );
        // Registered as a native public client (it sent no auth method).
        assert_eq!(v["client"]["application_type"], "native");
        assert_eq!(v["client"]["token_endpoint_auth_method"], "none");
        // Works as the member, in the org picked, within the member's role.
        assert_eq!(v["whoami"]["account"]["email"], "dev@alpha.test");
        assert_eq!(v["whoami"]["org"]["slug"], "alpha");
        assert_eq!(v["whoami"]["role"], "member");
        assert_eq!(v["whoami"]["token_kind"], "oauth");
        let scope = v["token_scope"].as_str().unwrap();
        assert!(scope.contains("read:tasks"), "{scope}");
        assert!(
            !scope.contains("write:org"),
            "a member's role cannot back write:org: {scope}"
        );
        let tools: Vec<&str> = v["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(tools.contains(&"listMyTasks"));
        assert!(
            !tools.contains(&"removeMember"),
            "tools beyond the role are not listed"
        );
    }
    assert_eq!(
        db.scalar_i64(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'oauth.token' AND outcome = 'ok'"
        )
        .await,
        2
    );
}

/// mcp-remote (its `client` entry point: connect, list tools, exit) with
/// its browser step in headless Chromium.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_remote_connects_through_the_browser() {
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = Server::start(&db);
    let config = tempfile::tempdir().unwrap();
    let port = free_port();
    let tools = tools_dir();
    let mut child = Command::new(tools.join("bin/mcp-remote-client"))
        .args([
            &server.url("/mcp"),
            &port.to_string(),
            "--host",
            "127.0.0.1",
            "--auth-timeout",
            "120",
        ])
        .env("MCP_REMOTE_CONFIG_DIR", config.path())
        .env("BROWSER", "/bin/true")
        // mcp-remote shuts down when its stdin ends: keep it open.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mcp-remote");
    // The authorization URL follows "Please authorize this client by visiting:".
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let mut url = None;
    let mut next_is_url = false;
    while url.is_none() && Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        seen.push(line.clone());
        if next_is_url {
            if let Some(i) = line.find("http") {
                url = Some(line[i..].trim().to_owned());
            }
        } else if line.contains("Please authorize this client by visiting:") {
            next_is_url = true;
        }
    }
    let Some(url) = url else {
        let _ = child.kill();
        panic!(
            "mcp-remote printed no authorization URL:\n{}",
            seen.join("\n")
        );
    };
    let redirect = format!("http://127.0.0.1:{port}/oauth/callback");
    let b = tokio::task::spawn_blocking({
        let redirect = redirect.clone();
        move || browser_authorize(&url, "owner@alpha.test", "alpha", &redirect)
    });
    let report = b.await.unwrap();
    assert!(
        report["redirect"].as_str().unwrap().contains("code="),
        "{report}"
    );
    // mcp-remote finishes on its own once connected and listed.
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mcp-remote did not finish");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        seen.push(line);
    }
    let log = format!("{out}\n{}", seen.join("\n"));
    assert!(status.success(), "mcp-remote failed:\n{log}");
    assert!(log.contains("Connected successfully"), "{log}");
    assert!(log.contains("Exiting OK"), "{log}");
    assert!(
        log.contains("\"name\": \"whoami\""),
        "the tool list reached mcp-remote:\n{log}"
    );
    // It registered as a native public client on the loopback redirect.
    let n = db
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM oauth_clients WHERE kind = 'dynamic' AND application_type = 'native'
             AND auth_method = 'none' AND redirect_uris LIKE '%127.0.0.1:{port}/oauth/callback%'"
        ))
        .await;
    assert_eq!(n, 1);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The official conformance suite's `authorization` scenarios against our
/// issuer, with a public client registered by the CLI; its
/// authorization-code scenario prints a URL for a person, which headless
/// Chromium completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_authorization_scenarios_pass() {
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = Server::start(&db);
    let out = db.cli(&[
        "oauth-client",
        "register",
        "--name",
        "conformance",
        "--redirect-uri",
        "http://127.0.0.1/callback",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client: Value = serde_json::from_slice(&out.stdout).unwrap();
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let issuer = server.base.trim_end_matches('/').to_owned();
    let port = free_port();
    let results = tempfile::tempdir().unwrap();
    let mut child = Command::new(tools_dir().join("bin/conformance"))
        .args([
            "authorization",
            "--url",
            &issuer,
            "--client-id",
            &client_id,
            "--resource",
            &server.url("/mcp"),
            "--port",
            &port.to_string(),
            "-o",
        ])
        .arg(results.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn conformance");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut url = None;
    let mut next_is_url = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    while url.is_none() && Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            continue;
        };
        seen.push(line.clone());
        if next_is_url && line.trim().starts_with("http") {
            url = Some(line.trim().to_owned());
        } else if line.contains("Access the following URL in your browser") {
            next_is_url = true;
        }
    }
    let Some(url) = url else {
        let _ = child.kill();
        panic!(
            "the suite printed no authorization URL:\n{}",
            seen.join("\n")
        );
    };
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let report = tokio::task::spawn_blocking(move || {
        browser_authorize(&url, "owner@alpha.test", "alpha", &redirect)
    })
    .await
    .unwrap();
    assert!(
        report["redirect"].as_str().unwrap().contains("code="),
        "{report}"
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the suite did not finish:\n{}", seen.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
        seen.push(line);
    }
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let log = seen.join("\n");
    assert!(
        status.success(),
        "conformance authorization failed:\n{log}\n{err}"
    );
    // Both scenarios ran and passed: no FAILURE, no SKIPPED code grant.
    assert!(!log.contains("FAILURE"), "{log}");
    assert!(!log.contains("SKIPPED"), "{log}");
    assert!(
        log.contains("authorization-server-metadata-endpoint: 2 passed, 0 failed"),
        "{log}"
    );
    assert!(
        log.contains("authorization-code-grant: 1 passed, 0 failed"),
        "{log}"
    );
    // For the record (`cargo test -- --nocapture`): the suite's own summary.
    println!("{log}");
}
