//! Regression tests of the security review: each attack that worked
//! against an earlier build, tried again against the real binary (on both
//! databases where the database matters), and what it now answers.
// Test code states its expectations: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::time::{Duration, Instant};

use common::mcp::{Mcp, message, rpc};
use common::{
    ALL_SCOPES, Api, Backend, PASSWORD, Server, TestDb, add_member, env_refs, operator_entry,
    stdio_settings, test_upstream_bin,
};
use serde_json::{Value, json};

/// The audit events of `action` with `outcome` (any org).
async fn audited(db: &TestDb, action: &str, outcome: &str) -> i64 {
    db.scalar_i64(&format!(
        "SELECT COUNT(*) FROM audit_events WHERE action = '{action}' AND outcome = '{outcome}'"
    ))
    .await
}

// ---------------------------------------------------------------------------
// 1. An org admin cannot run code on the host
// ---------------------------------------------------------------------------

both_backends!(
    stdio_publishes_follow_the_catalog,
    |db: TestDb| async move {
        db.bootstrap("owner@alpha.test", "alpha");
        let stdio = stdio_settings(
            &db,
            &[operator_entry("fixture", &test_upstream_bin(), &["stdio"])],
        );
        let server = Server::start_with(&db, &[], &env_refs(&stdio));
        let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
        let everything = ["-y", "@modelcontextprotocol/server-everything@2026.8.31"];

        // The original attack: a catalog command line with NODE_OPTIONS (and
        // the other variables that change what a program runs or loads).
        let payload = "--import=data:text/javascript;base64,cHJvY2Vzcy5leGl0KDEp";
        for (name, value) in [
            ("NODE_OPTIONS", payload),
            ("NPM_CONFIG_REGISTRY", "http://127.0.0.1:9/"),
            ("NODE_PATH", "/tmp"),
            ("BASH_ENV", "/tmp/x"),
            ("HOME", "/"),
        ] {
            let r = owner
            .post(
                "/api/v1/connections",
                json!({"slug": "ev", "name": "Everything", "transport": "stdio", "command": "npx",
                       "args": everything, "credential_mode": "shared", "env": {name: value}}),
            )
            .await;
            assert_eq!(r.status, 403, "{name}: {:?}", r.body);
            assert!(
                r.error_message()
                    .contains(&format!("does not declare the variable '{name}'")),
                "{name}: {}",
                r.error_message()
            );
            assert!(!r.body.to_string().contains(payload));
        }
        // Through the catalog: a setting the entry does not declare.
        let r = owner
            .post(
                "/api/v1/connections/from-integration",
                json!({"integration": "everything", "config": {"NODE_OPTIONS": payload}}),
            )
            .await;
        assert_eq!(r.status, 403, "{:?}", r.body);
        assert!(
            r.error_message().contains("has no setting 'NODE_OPTIONS'"),
            "{:?}",
            r.body
        );
        // A command line no entry has.
        let r = owner
            .post(
                "/api/v1/connections",
                json!({"slug": "sh", "name": "Shell", "transport": "stdio", "command": "npx",
                   "args": ["-y", "some-other-package@1.0.0"]}),
            )
            .await;
        assert_eq!(r.status, 403, "{:?}", r.body);
        // Host paths are the operator's: the filesystem on /, memory on the database.
        let r = owner
            .post(
                "/api/v1/connections/from-integration",
                json!({"integration": "filesystem", "config": {"directories": ["/"]}}),
            )
            .await;
        assert_eq!(r.status, 403, "{:?}", r.body);
        assert!(
            r.error_message().contains("only an instance operator"),
            "{:?}",
            r.body
        );
        let db_file = db.data_dir().join("switchboard.db");
        let r = owner
        .post(
            "/api/v1/connections/from-integration",
            json!({"integration": "memory", "config": {"memory_file_path": db_file.to_string_lossy()}}),
        )
        .await;
        assert_eq!(r.status, 403, "{:?}", r.body);
        // A value is data, never an option.
        let r = owner
            .post(
                "/api/v1/connections/from-integration",
                json!({"integration": "fixture", "config": {"marker": "--inspect=0.0.0.0:9229"}}),
            )
            .await;
        assert_eq!(r.status, 422, "{:?}", r.body);
        assert!(
            r.error_message().contains("never a command-line option"),
            "{:?}",
            r.body
        );
        // An org's own npm package runs only when the operator allows it.
        let custom = json!({
            "id": "acme-tool", "name": "Acme tool", "description": "Ours", "transport": "stdio",
            "package": "acme-mcp", "version": "1.2.3", "command": "npx", "args": ["-y", "acme-mcp@1.2.3"],
            "config": {"type": "object", "additionalProperties": false, "properties": {}}
        });
        assert_eq!(owner.post("/api/v1/integrations", custom).await.status, 201);
        let r = owner
            .post(
                "/api/v1/connections/from-integration",
                json!({"integration": "acme-tool"}),
            )
            .await;
        assert_eq!(r.status, 403, "{:?}", r.body);
        assert!(
            r.error_message().contains("gateway.allow_custom_packages"),
            "{:?}",
            r.body
        );
        // A custom entry cannot be any other command line.
        let shell = json!({
            "id": "shell", "name": "Shell", "description": "x", "transport": "stdio",
            "command": "bash", "args": ["-c", "id"],
            "config": {"type": "object", "additionalProperties": false, "properties": {}}
        });
        assert_eq!(owner.post("/api/v1/integrations", shell).await.status, 422);
        // A published entry cannot be changed into something else later.
        let r = owner
        .post(
            "/api/v1/connections/from-integration",
            json!({"integration": "github", "config": {"personal_access_token": "ghp_planted0123456789"}}),
        )
        .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let r = owner
            .patch(
                "/api/v1/connections/github",
                json!({"env": {"NODE_OPTIONS": payload}}),
            )
            .await;
        assert_eq!(r.status, 403, "{:?}", r.body);
        let r = owner
            .patch(
                "/api/v1/connections/github",
                json!({"args": ["-y", "@modelcontextprotocol/server-github@2025.4.8", "--eval"]}),
            )
            .await;
        assert_eq!(r.status, 403, "{:?}", r.body);

        // Nothing was stored but the one allowed connection, and every refusal
        // is on record.
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM connections").await, 1);
        assert!(audited(&db, "connection.create", "denied").await >= 10);
        assert!(audited(&db, "connection.update", "denied").await >= 2);
    }
);

/// What a confined child can reach, as root's dedicated user (`nobody`)
/// and, to show Landlock alone, as root itself (`stdio_allow_root`): never
/// the data directory, the key, the configuration, the server's
/// environment or the server itself; its own home, yes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_child_cannot_reach_the_servers_files() {
    let mut modes = vec!["default"];
    if common::running_as_root() {
        modes.push("root-with-landlock-only");
    }
    for mode in modes {
        let db = TestDb::new(Backend::Sqlite).await;
        db.bootstrap("owner@alpha.test", "alpha");
        let config = db.dir.path().join("switchboard.toml");
        std::fs::write(&config, "[log]\nlevel = \"info\"\n").unwrap();
        let mut env = stdio_settings(
            &db,
            &[operator_entry("fixture", &test_upstream_bin(), &["stdio"])],
        );
        env.push((
            "SWITCHBOARD_GATEWAY__ALLOW_LOOPBACK_UPSTREAMS".into(),
            "true".into(),
        ));
        if mode == "root-with-landlock-only" {
            env.retain(|(k, _)| k != "SWITCHBOARD_GATEWAY__STDIO_USER");
            env.push((
                "SWITCHBOARD_GATEWAY__STDIO_ALLOW_ROOT".into(),
                "true".into(),
            ));
        }
        let server = Server::start_with(
            &db,
            &["--config", config.to_str().unwrap()],
            &env_refs(&env),
        );
        let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
        let r = owner
            .post(
                "/api/v1/connections/from-integration",
                json!({"integration": "fixture", "slug": "fx", "config": {"marker": format!("probe-{}", std::process::id())}}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let r = owner
            .post("/api/v1/connections/fx/refresh", json!({}))
            .await;
        let process = owner.get("/api/v1/connections/fx/process").await;
        assert_eq!(
            r.body["health"], "connected",
            "{mode}: {:?}\n{:?}",
            r.body, process.body
        );
        let r = owner
            .post("/api/v1/connections/fx/grants", json!({"kind": "org"}))
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let token = db.token("owner@alpha.test", "alpha", "personal", ALL_SCOPES);
        let fx = Mcp::at(&server.url("/mcp/servers/fx"), Some(&token));
        let call = |tool: &'static str, args: Value| {
            let fx = &fx;
            async move {
                let r = fx.call_2026(tool, args).await;
                message(&r)["result"]["structuredContent"].clone()
            }
        };
        let server_pid = server.child.id();
        let key = db.data_dir().join("secret-keys.json");
        assert!(key.exists(), "the key file is where the test looks");
        let mut private = vec![
            db.data_dir().join("switchboard.db"),
            key,
            config.clone(),
            std::path::PathBuf::from(format!("/proc/{server_pid}/mem")),
        ];
        // A child running as root can still read the server's initial
        // environment (docs/security.md says why a dedicated user matters).
        if mode == "default" {
            private.push(std::path::PathBuf::from(format!(
                "/proc/{server_pid}/environ"
            )));
        }
        for path in private {
            let got = call("read_file", json!({"path": path})).await;
            assert_eq!(
                got["ok"],
                false,
                "{mode}: the child read {}: {got}",
                path.display()
            );
        }
        let got = call("write_file", json!({"path": db.data_dir().join("planted")})).await;
        assert_eq!(got["ok"], false, "{mode}: {got}");
        let got = call("signal_process", json!({"pid": server_pid})).await;
        assert_eq!(
            got["ok"], false,
            "{mode}: the child could signal the server: {got}"
        );
        // What it may do still works, so the refusals above are real.
        let got = call("read_file", json!({"path": "/etc/passwd"})).await;
        assert_eq!(got["ok"], true, "{mode}: {got}");
        let home = message(&fx.call_2026("env", json!({"name": "HOME"})).await)["result"]
            ["structuredContent"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(!home.is_empty());
        let got = call("write_file", json!({"path": format!("{home}/note")})).await;
        assert_eq!(got["ok"], true, "{mode}: {got}");
        // Its own environment is the cleared one, its limits are set.
        let node_options = message(
            &fx.call_2026("env", json!({"name": "SWITCHBOARD_SECRET_KEY"}))
                .await,
        );
        assert_eq!(
            node_options["result"]["structuredContent"]["value"],
            Value::Null
        );
        let process = owner.get("/api/v1/connections/fx/process").await;
        let pid = process.body["pid"].as_u64().expect("a child runs");
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        let line = |name: &str| {
            limits
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_default()
                .to_owned()
        };
        assert!(
            line("Max data size").contains(&(4096u64 * 1024 * 1024).to_string()),
            "{limits}"
        );
        assert!(line("Max open files").contains("1024"), "{limits}");
        assert!(line("Max core file size").contains(" 0 "), "{limits}");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        assert!(
            status
                .lines()
                .any(|l| l.starts_with("NoNewPrivs:") && l.ends_with('1')),
            "{status}"
        );
        if mode == "default" && common::running_as_root() {
            assert!(line("Max processes").contains("256"), "{limits}");
            let uid = status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .unwrap_or_default();
            assert!(uid.contains("65534"), "{uid}");
        }
    }
}

/// As root, with no dedicated user, stdio children are refused with the
/// reason (never started as root).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_children_never_run_as_root_unless_the_operator_says_so() {
    if !common::running_as_root() {
        println!("SKIPPED: not root, so children cannot run as root here anyway");
        return;
    }
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let mut env = stdio_settings(
        &db,
        &[operator_entry("fixture", &test_upstream_bin(), &["stdio"])],
    );
    env.retain(|(k, _)| k != "SWITCHBOARD_GATEWAY__STDIO_USER");
    let server = Server::start_with(&db, &[], &env_refs(&env));
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    let r = owner
        .post(
            "/api/v1/connections/from-integration",
            json!({"integration": "fixture", "slug": "fx"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = owner
        .post("/api/v1/connections/fx/refresh", json!({}))
        .await;
    assert_eq!(r.body["health"], "disconnected", "{:?}", r.body);
    let why = r.body["last_error"].as_str().unwrap_or_default();
    assert!(why.contains("gateway.stdio_user"), "{why}");
    assert!(server.log().contains("would run as root"));
}

both_backends!(
    only_operators_create_organizations,
    |db: TestDb| async move {
        db.bootstrap("owner@alpha.test", "alpha");
        let server = Server::start(&db);
        let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
        add_member(&owner, "dev@alpha.test", "member").await;
        let dev = Api::sign_in(&server, "dev@alpha.test", PASSWORD).await;
        let r = dev
            .post("/api/v1/orgs", json!({"slug": "devs-own", "name": "Mine"}))
            .await;
        assert_eq!(r.status, 403, "{:?}", r.body);
        assert!(
            r.error_message().contains("instance.org_creation"),
            "{:?}",
            r.body
        );
        assert_eq!(audited(&db, "org.create", "denied").await, 1);
        // The account made at first setup may.
        let r = owner
            .post("/api/v1/orgs", json!({"slug": "second", "name": "Second"}))
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        drop(server);
        // The operator may open it to anyone.
        let server = Server::start_with(
            &db,
            &[],
            &[("SWITCHBOARD_INSTANCE__ORG_CREATION", "anyone")],
        );
        let dev = Api::sign_in(&server, "dev@alpha.test", PASSWORD).await;
        let r = dev
            .post("/api/v1/orgs", json!({"slug": "devs-own", "name": "Mine"}))
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
);

// ---------------------------------------------------------------------------
// 2. An OAuth access token is good only for its resource
// ---------------------------------------------------------------------------

both_backends!(
    oauth_access_tokens_are_refused_by_the_rest_api,
    |db: TestDb| async move {
        use common::oauth::{AuthRequest, Browser, pkce, query_param, register, token};
        db.bootstrap("owner@alpha.test", "alpha");
        let server = Server::start(&db);
        let redirect = "http://127.0.0.1:9/cb";
        let client_id = register(&server, redirect).await;
        let (verifier, challenge) = pkce();
        let req = AuthRequest {
            client_id: client_id.clone(),
            redirect_uri: redirect.into(),
            challenge,
            resource: Some(server.url("/mcp")),
            scope: None,
            state: "s".into(),
        };
        let to = Browser::new(&server)
            .authorize(&req.url(&server), "owner@alpha.test", "alpha")
            .await;
        let code = query_param(&to, "code").expect("code");
        let (status, body, _) = token(
            &server,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", &verifier),
                ("client_id", &client_id),
                ("resource", &server.url("/mcp")),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let access = body["access_token"]
            .as_str()
            .expect("access token")
            .to_owned();
        // Good on /mcp...
        let r = rpc(&server, Some(&access), json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami"}})).await;
        assert!(r.body["result"].is_object(), "{:?}", r.body);
        // ...and nowhere on the REST API.
        let api = Api::with_token(&server, &access);
        for (method, path, body) in [
            ("GET", "/api/v1/me", None),
            ("POST", "/api/v1/teams", Some(json!({"name": "Sneaky"}))),
            ("GET", "/api/v1/connections", None),
        ] {
            let r = api.send(method, path, body).await;
            assert_eq!(r.status, 401, "{method} {path}: {:?}", r.body);
            assert!(r.header("www-authenticate").contains("invalid_token"));
            assert!(
                r.error_message().contains("valid only there"),
                "{:?}",
                r.body
            );
        }
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM teams").await, 0);
    }
);

// ---------------------------------------------------------------------------
// 3 and 4. Password guesses are throttled, atomically, without locking the
// person out from elsewhere
// ---------------------------------------------------------------------------

/// An account that exists, and an org of an attacker who may invite it.
async fn victim_and_attacker(db: &TestDb, server: &Server) -> (Api, String) {
    db.cli_with(
        &[
            "admin",
            "bootstrap",
            "--email",
            "mallory@evil.test",
            "--org-slug",
            "evil",
            "--org-name",
            "Evil",
        ],
        &[("SWITCHBOARD_BOOTSTRAP_PASSWORD", PASSWORD)],
        None,
    );
    let mallory = Api::sign_in(server, "mallory@evil.test", PASSWORD).await;
    let r = mallory
        .post(
            "/api/v1/invitations",
            json!({"email": "victim@alpha.test", "role": "member"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let link = r.body["invitation_token"]
        .as_str()
        .expect("token")
        .to_owned();
    (mallory, link)
}

both_backends!(
    accepting_an_invitation_is_throttled_like_sign_in,
    |db: TestDb| async move {
        db.bootstrap("victim@alpha.test", "alpha");
        let server = Server::start_with(
            &db,
            &[],
            &[("SWITCHBOARD_SERVER__TRUSTED_PROXIES", "127.0.0.1")],
        );
        let (mallory, link) = victim_and_attacker(&db, &server).await;
        let anon = Api {
            token: None,
            cookie: None,
            csrf: None,
            ..mallory.clone()
        };
        let mut statuses = Vec::new();
        for i in 0..12 {
            let r = anon
                .post(
                    "/api/v1/invitations/accept",
                    json!({"token": link, "password": format!("guess number {i} of many")}),
                )
                .await;
            statuses.push(r.status);
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 401).count(),
            5,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 429).count(),
            7,
            "{statuses:?}"
        );
        // Even the right password waits now, from this address...
        let r = anon
            .post(
                "/api/v1/invitations/accept",
                json!({"token": link, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 429, "{:?}", r.body);
        assert!(!r.header("retry-after").is_empty());
        // ...while the person signs in from elsewhere as usual.
        let r = anon
            .http
            .post(server.url("/api/v1/auth/sign-in"))
            .header("x-forwarded-for", "203.0.113.7")
            .json(&json!({"email": "victim@alpha.test", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
);

both_backends!(
    concurrent_guesses_make_at_most_the_limit_of_checks,
    |db: TestDb| async move {
        db.bootstrap("victim@alpha.test", "alpha");
        let server = Server::start(&db);
        let http = reqwest::Client::new();
        let url = server.url("/api/v1/auth/sign-in");
        let guesses = (0..100).map(|i| {
            let http = http.clone();
            let url = url.clone();
            async move {
                // The right password is among them, late.
                let password = if i == 60 {
                    PASSWORD.to_owned()
                } else {
                    format!("wrong guess {i} here")
                };
                http.post(&url)
                    .json(&json!({"email": "victim@alpha.test", "password": password}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        });
        let statuses = futures_join_all(guesses).await;
        let checked = statuses.iter().filter(|s| **s != 429).count();
        println!(
            "100 concurrent guesses: {checked} password checks, {} throttled",
            100 - checked
        );
        assert!(checked <= 5, "{checked} guesses were checked: {statuses:?}");
        assert!(
            statuses.iter().all(|s| matches!(s, 200 | 401 | 429)),
            "{statuses:?}"
        );
    }
);

/// `futures::future::join_all` without the dependency: spawn and collect.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

both_backends!(
    a_stranger_cannot_lock_a_person_out_from_elsewhere,
    |db: TestDb| async move {
        db.bootstrap("victim@alpha.test", "alpha");
        let server = Server::start_with(
            &db,
            &[],
            &[("SWITCHBOARD_SERVER__TRUSTED_PROXIES", "127.0.0.1")],
        );
        let http = reqwest::Client::new();
        let sign_in = |from: &'static str, email: String, password: String| {
            let http = http.clone();
            let url = server.url("/api/v1/auth/sign-in");
            async move {
                http.post(url)
                    .header("x-forwarded-for", from)
                    .json(&json!({"email": email, "password": password}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        for _ in 0..8 {
            sign_in(
                "198.51.100.1",
                "victim@alpha.test".into(),
                "not it at all".into(),
            )
            .await;
        }
        assert_eq!(
            sign_in("198.51.100.1", "victim@alpha.test".into(), PASSWORD.into()).await,
            429
        );
        assert_eq!(
            sign_in("192.0.2.44", "victim@alpha.test".into(), PASSWORD.into()).await,
            200,
            "the person signs in from elsewhere"
        );
        // Spraying one password over many emails from one address is slowed
        // by the per-address limit.
        let mut throttled = 0;
        for i in 0..60 {
            if sign_in(
                "198.51.100.9",
                format!("user{i}@alpha.test"),
                "Summer2026!".into(),
            )
            .await
                == 429
            {
                throttled += 1;
            }
        }
        assert!(
            throttled >= 10,
            "{throttled} of 60 sprayed guesses were throttled"
        );
    }
);

// ---------------------------------------------------------------------------
// 5. Idle and slow connections are bounded and closed
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_are_bounded_and_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    raise_own_file_limit();
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = Server::start_with(
        &db,
        &[],
        &[("SWITCHBOARD_SERVER__HEADER_TIMEOUT_SECS", "2")],
    );
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for i in 0..2000 {
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        if i % 10 == 0 {
            // Slowloris: a request head that never ends.
            let _ = s
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await;
        }
        held.push(s);
    }
    let health = reqwest::get(server.url("/healthz")).await.expect("healthz");
    assert_eq!(
        health.status(),
        200,
        "the server answers with 2,000 idle connections open"
    );
    // Each is closed by the server after the header timeout.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut open = held.len();
    for s in &mut held {
        let mut buf = [0u8; 64];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => open -= 1,
            Ok(Ok(_)) => open -= 1, // an error answer, then the close
            Err(_) => break,
        }
    }
    assert_eq!(
        open, 0,
        "{open} idle connections were still open after 20 s"
    );
    drop(held);

    // With a cap, connections beyond it wait (and it is logged), and the
    // server still answers once the idle ones are gone.
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start_with(
        &db,
        &[],
        &[
            ("SWITCHBOARD_SERVER__HEADER_TIMEOUT_SECS", "2"),
            ("SWITCHBOARD_SERVER__MAX_CONNECTIONS", "32"),
        ],
    );
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..64 {
        held.push(
            tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect"),
        );
    }
    let started = Instant::now();
    let health = tokio::time::timeout(
        Duration::from_secs(15),
        reqwest::get(server.url("/healthz")),
    )
    .await
    .expect("healthz answered in time")
    .expect("healthz");
    assert_eq!(health.status(), 200);
    println!(
        "healthz behind 64 idle connections (cap 32): {:?}",
        started.elapsed()
    );
    assert!(
        server.log().contains("connection limit is reached"),
        "{}",
        server.log()
    );
}

fn raise_own_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

// ---------------------------------------------------------------------------
// 6. A NUL character is refused at the boundary; no request can fail another's
// ---------------------------------------------------------------------------

both_backends!(
    nul_characters_are_refused_and_cannot_fail_other_requests,
    |db: TestDb| async move {
        db.bootstrap("owner@alpha.test", "alpha");
        db.cli_with(
            &[
                "admin",
                "bootstrap",
                "--email",
                "owner@beta.test",
                "--org-slug",
                "beta",
                "--org-name",
                "Beta",
            ],
            &[("SWITCHBOARD_BOOTSTRAP_PASSWORD", PASSWORD)],
            None,
        );
        let server = Server::start(&db);
        let alpha = db.token(
            "owner@alpha.test",
            "alpha",
            "org",
            "read:org,write:org,read:tasks,write:tasks",
        );
        let beta = db.token("owner@beta.test", "beta", "org", "read:org");
        let api = Api::with_token(&server, &alpha);
        // REST: 422, nothing stored.
        let r = api
            .post("/api/v1/teams", json!({"name": "bad\u{0}team"}))
            .await;
        assert_eq!(r.status, 422, "{:?}", r.body);
        assert!(r.error_message().contains("NUL"), "{:?}", r.body);
        let r = api.get("/api/v1/connections/a%00b").await;
        assert_eq!(r.status, 400, "{:?}", r.body);
        assert_eq!(r.error_code(), "bad_request");
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM teams").await, 0);
        // MCP (both eras) and JSON-RPC: -32602.
        let mcp = Mcp::new(&server, Some(&alpha));
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "who\u{0}ami", "arguments": {}}});
        let r = mcp.post_raw(body.to_string(), None, &[]).await;
        assert_eq!(r.status, 400, "{:?}", r.body);
        assert_eq!(message(&r)["error"]["code"], -32602, "{:?}", r.body);
        let r = rpc(
            &server,
            Some(&alpha),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "createTeam", "arguments": {"name": "x\u{0}y"}}}),
        )
        .await;
        assert_eq!(r.body["error"]["code"], -32602, "{:?}", r.body);
        // While one org sends such calls, another org's calls all succeed.
        let noisy = {
            let server_url = server.base.clone();
            let alpha = alpha.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for i in 0..200 {
                    let _ = http
                        .post(format!("{server_url}/mcp/rpc"))
                        .bearer_auth(&alpha)
                        .json(&json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                                  "params": {"name": format!("tool\u{0}{i}"), "arguments": {}}}))
                        .send()
                        .await;
                }
            })
        };
        let mut failed = 0;
        for i in 0..200 {
            let r = rpc(
                &server,
                Some(&beta),
                json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": "listMembers", "arguments": {}}}),
            )
            .await;
            if r.body["result"]["isError"] == true || r.body.get("error").is_some() {
                failed += 1;
            }
        }
        noisy.await.unwrap();
        assert_eq!(failed, 0, "{failed} of 200 calls of another org failed");
    }
);

both_backends!(
    long_names_are_cut_in_the_audit_log_and_errors,
    |db: TestDb| async move {
        db.bootstrap("owner@alpha.test", "alpha");
        let server =
            Server::start_with(&db, &[], &[("SWITCHBOARD_MCP__MAX_BODY_BYTES", "4194304")]);
        let token = db.token("owner@alpha.test", "alpha", "personal", ALL_SCOPES);
        let name = "x".repeat(1024 * 1024);
        let r = rpc(
            &server,
            Some(&token),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": name, "arguments": {}}}),
        )
        .await;
        let text = r.body.to_string();
        assert!(text.len() < 4096, "the answer echoes {} bytes", text.len());
        assert!(text.contains("1048576 characters"), "{text}");
        let longest = db
            .scalar_i64("SELECT MAX(LENGTH(action)) FROM audit_events")
            .await;
        assert!(longest < 300, "an audit action of {longest} characters");
    }
);

// ---------------------------------------------------------------------------
// Bugs and weaknesses
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_holds_a_bounded_number_of_sessions() {
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = Server::start_with(
        &db,
        &[],
        &[("SWITCHBOARD_MCP__MAX_SESSIONS_PER_TOKEN", "5")],
    );
    let token = db.token("owner@alpha.test", "alpha", "personal", ALL_SCOPES);
    // Five sessions, all in use: a sixth is refused with the reason.
    let mut sessions = Vec::new();
    for _ in 0..5 {
        let mut c = Mcp::new(&server, Some(&token));
        let r = c.initialize().await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        sessions.push(c);
    }
    let mut sixth = Mcp::new(&server, Some(&token));
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "switchboard-tests", "version": "1"}}});
    let r = sixth.post_raw(init.to_string(), None, &[]).await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert!(
        message(&r)["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("at most 5")
    );
    assert!(
        r.header("mcp-session-id").is_empty(),
        "a refused initialize opened a session"
    );
    // Once the oldest is idle, it makes room, and it is gone.
    db.sql(&format!(
        "UPDATE mcp_sessions SET last_seen_at = last_seen_at - 3600000 WHERE id = '{}'",
        sessions[0].session.as_deref().unwrap()
    ))
    .await;
    let r = sixth.initialize().await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = sessions[0].legacy("tools/list", json!({})).await;
    assert_eq!(
        r.status, 404,
        "the ended session still answers: {:?}",
        r.body
    );
    assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM mcp_sessions").await, 5);
}

both_backends!(
    dynamic_registration_refuses_misleading_redirects,
    |db: TestDb| async move {
        let server = Server::start(&db);
        for uri in [
            "https://trusted.example@evil.example/cb",
            "https://user:pass@app.example/cb",
            "urn:ietf:wg:oauth:2.0:oob",
        ] {
            let r = reqwest::Client::new()
                .post(server.url("/oauth/register"))
                .json(&json!({"redirect_uris": [uri], "client_name": "App"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{uri}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "invalid_redirect_uri", "{uri}: {body}");
        }
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM oauth_clients").await, 0);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_clear_answers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = Server::start(&db);
    let token = db.token("owner@alpha.test", "alpha", "personal", ALL_SCOPES);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let raw = |request: String| {
        let addr = addr.clone();
        async move {
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            s.write_all(request.as_bytes()).await.unwrap();
            let mut out = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
            String::from_utf8_lossy(&out).into_owned()
        }
    };
    // Two Host headers: 400.
    let out = raw(format!(
        "GET /api/v1/me HTTP/1.1\r\nHost: {addr}\r\nHost: evil.example\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    ))
    .await;
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(out.contains("more than one Host"), "{out}");
    // Invalid UTF-8 in a REST path: the JSON error body.
    let out = raw(format!(
        "GET /api/v1/connections/%FF%FE HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    ))
    .await;
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(out.contains("\"code\":\"bad_request\""), "{out}");
    // The bearer scheme is case-insensitive on REST as on /mcp.
    let r = reqwest::Client::new()
        .get(server.url("/api/v1/me"))
        .header("authorization", format!("BEARER {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // /mcp without "jsonrpc": 400 with -32600.
    let r = Mcp::new(&server, Some(&token))
        .post_raw(
            json!({"id": 1, "method": "tools/list"}).to_string(),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(message(&r)["error"]["code"], -32600, "{:?}", r.body);
    // An oversized OAuth body: 413.
    let r = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upstream_is_explained_in_a_sentence() {
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = Server::start(&db);
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    let r = owner
        .post(
            "/api/v1/connections",
            json!({"slug": "local", "name": "Local", "transport": "streamable_http", "url": "http://localhost:9/mcp"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = owner
        .post("/api/v1/connections/local/refresh", json!({}))
        .await;
    let why = r.body["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(why.contains("loopback"), "{why}");
    for internal in ["Error {", "kind:", "reqwest::", "hyper", "Some(", "source:"] {
        assert!(!why.contains(internal), "'{internal}' in: {why}");
    }
}

/// The shipped `filesystem` integration, published by the operator on a
/// directory of its choosing, completes its handshake (it answers a
/// slow first `npx` start after the discover probe gave up) and lists its
/// tools; the child may use that directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filesystem_integration_works_when_the_operator_publishes_it() {
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let env = stdio_settings(&db, &[]);
    let server = Server::start_with(&db, &[], &env_refs(&env));
    let shared = std::env::temp_dir().join(format!("sb-files-{}", std::process::id()));
    std::fs::create_dir_all(&shared).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    std::fs::write(shared.join("hello.txt"), "hello from the host").unwrap();
    let settings = json!({"directories": [shared.to_string_lossy()]});
    let out = db.cli_with(
        &[
            "connection",
            "from-integration",
            "--email",
            "owner@alpha.test",
            "--org",
            "alpha",
            "--integration",
            "filesystem",
            "--settings",
            &settings.to_string(),
        ],
        &env_refs(&env),
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    let r = owner
        .post("/api/v1/connections/filesystem/refresh", json!({}))
        .await;
    assert_eq!(
        r.body["health"],
        "connected",
        "{:?}\n{}",
        r.body,
        server.log()
    );
    assert!(
        r.body["tool_count"].as_u64().unwrap_or(0) >= 5,
        "{:?}",
        r.body
    );
    let r = owner
        .post(
            "/api/v1/connections/filesystem/grants",
            json!({"kind": "org"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let token = db.token("owner@alpha.test", "alpha", "personal", ALL_SCOPES);
    let fs = Mcp::at(&server.url("/mcp/servers/filesystem"), Some(&token));
    let r = fs
        .call_2026("read_text_file", json!({"path": shared.join("hello.txt")}))
        .await;
    assert!(
        message(&r).to_string().contains("hello from the host"),
        "{:?}",
        r.body
    );
    let _ = std::fs::remove_dir_all(&shared);
}
