//! Gateway connections over the REST API against the real binary: what
//! admins may publish (and what is refused, with the field named), shared
//! credentials sealed at rest and never returned, grants deciding who sees
//! a connection, and the keyring's rules per backend.
// Test code states its expectations: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};

const PLANTED: &str = "planted-secret-7f3a9c21e4b5";

fn http_connection(slug: &str) -> Value {
    json!({
        "slug": slug,
        "name": "Issue tracker",
        "transport": "streamable_http",
        "url": "https://tracker.example.com/mcp",
        "credential_mode": "shared",
        "headers": {"Authorization": format!("Bearer {PLANTED}")},
        "tool_deny": ["delete_everything"],
        "tool_overrides": {"search": {"read_only": true}},
    })
}

both_backends!(publish_seal_and_grant, |db: TestDb| async move {
    db.bootstrap("owner@alpha.test", "alpha");
    let server = Server::start(&db);
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    let member_id = add_member(&owner, "dev@alpha.test", "member").await;
    add_member(&owner, "other@alpha.test", "member").await;
    let dev = Api::sign_in(&server, "dev@alpha.test", PASSWORD).await;
    let other = Api::sign_in(&server, "other@alpha.test", PASSWORD).await;

    // Publish: the secret's name is shown, its value never.
    let r = owner
        .post("/api/v1/connections", http_connection("tracker"))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["secret_headers"], json!(["Authorization"]));
    assert_eq!(r.body["tool_overrides"]["search"]["read_only"], true);
    assert!(!r.body.to_string().contains(PLANTED));
    let got = owner.get(&format!("/api/v1/connections/{id}")).await;
    assert_eq!(got.status, 200);
    assert!(!got.body.to_string().contains(PLANTED));
    let by_slug = owner.get("/api/v1/connections/tracker").await;
    assert_eq!(by_slug.body["id"], json!(id));

    // Sealed at rest: neither the value nor its base64 is in the table.
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("Bearer {PLANTED}"))
    };
    for needle in [PLANTED, b64.as_str()] {
        assert_eq!(
            db.scalar_i64(&format!(
                "SELECT COUNT(*) FROM connection_secrets WHERE sealed LIKE '%{needle}%'"
            ))
            .await,
            0
        );
        assert_eq!(
            db.scalar_i64(&format!(
                "SELECT COUNT(*) FROM audit_events WHERE args LIKE '%{needle}%'"
            ))
            .await,
            0
        );
    }
    assert_eq!(
        db.scalar_i64("SELECT COUNT(*) FROM connection_secrets")
            .await,
        1
    );
    assert!(!server.log().contains(PLANTED));

    // Refusals name the field and change nothing.
    let cases = [
        (
            json!({"slug": "bad_slug", "name": "x", "transport": "streamable_http", "url": "https://a.example/mcp"}),
            "slug",
        ),
        (
            json!({"slug": "aa", "name": "x", "transport": "carrier-pigeon"}),
            "transport",
        ),
        (
            json!({"slug": "aa", "name": "x", "transport": "streamable_http"}),
            "url",
        ),
        (
            json!({"slug": "aa", "name": "x", "transport": "streamable_http", "url": "https://u:p@a.example/mcp"}),
            "url",
        ),
        (
            json!({"slug": "aa", "name": "x", "transport": "streamable_http", "url": "https://a.example/mcp", "credential_mode": "shared", "headers": {"Host": "evil"}}),
            "headers",
        ),
        (
            json!({"slug": "aa", "name": "x", "transport": "streamable_http", "url": "https://a.example/mcp", "headers": {"X-Key": "v"}}),
            "credential_mode",
        ),
        (
            json!({"slug": "aa", "name": "x", "transport": "streamable_http", "url": "https://a.example/mcp", "credential_mode": "per_member"}),
            "credential_mode",
        ),
    ];
    for (body, field) in cases {
        let r = owner.post("/api/v1/connections", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {:?}", r.body);
        assert!(
            r.error_message().starts_with(field),
            "{body}: {}",
            r.error_message()
        );
    }
    // A stdio command line must be a catalog entry's (403, audited).
    for body in [
        json!({"slug": "aa", "name": "x", "transport": "stdio", "command": "bash", "args": ["-c", "cat /etc/shadow"]}),
        json!({"slug": "aa", "name": "x", "transport": "stdio", "command": "npx", "credential_mode": "shared", "env": {"SWITCHBOARD_SECRET_KEY": "x"}}),
    ] {
        let r = owner.post("/api/v1/connections", body.clone()).await;
        assert_eq!(r.status, 403, "{body}: {:?}", r.body);
        assert!(
            r.error_message().contains("catalog"),
            "{}",
            r.error_message()
        );
    }
    let r = owner
        .post("/api/v1/connections", http_connection("tracker"))
        .await;
    assert_eq!(r.status, 409);
    // A catalog entry's stdio command line with a variable it declares
    // (sealed too).
    let r = owner
        .post(
            "/api/v1/connections",
            json!({"slug": "notion", "name": "Notion", "transport": "stdio", "command": "npx",
                   "args": ["-y", "@notionhq/notion-mcp-server@2.5.2"], "credential_mode": "shared",
                   "env": {"NOTION_TOKEN": PLANTED}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["secret_env"], json!(["NOTION_TOKEN"]));
    assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM connections").await, 2);

    // Members cannot publish, and see nothing until granted.
    let r = dev
        .post("/api/v1/connections", http_connection("mine"))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(dev.get("/api/v1/connections").await.body, json!([]));
    assert_eq!(
        dev.get(&format!("/api/v1/connections/{id}")).await.status,
        404
    );
    assert_eq!(
        dev.get("/api/v1/connections?scope=manageable").await.status,
        403
    );

    // A team grant reaches the team's members only.
    let team = owner.post("/api/v1/teams", json!({"name": "devs"})).await;
    let team_id = team.body["id"].as_str().unwrap().to_owned();
    let r = owner
        .post(
            &format!("/api/v1/teams/{team_id}/members"),
            json!({"membership_id": member_id}),
        )
        .await;
    assert!(
        r.status == 200 || r.status == 201 || r.status == 204,
        "{:?}",
        r.body
    );
    let r = owner
        .post(
            &format!("/api/v1/connections/{id}/grants"),
            json!({"kind": "team", "id": team_id}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let listed = dev.get("/api/v1/connections").await;
    assert_eq!(
        listed.body.as_array().unwrap().len(),
        1,
        "{:?}",
        listed.body
    );
    assert_eq!(listed.body[0]["slug"], "tracker");
    assert!(!listed.body.to_string().contains(PLANTED));
    assert_eq!(other.get("/api/v1/connections").await.body, json!([]));
    // An org grant reaches everyone; removing it takes it away again.
    let r = owner
        .post(
            &format!("/api/v1/connections/{id}/grants"),
            json!({"kind": "org"}),
        )
        .await;
    let org_grant = r.body["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "org")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        other
            .get("/api/v1/connections")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = owner
        .delete(&format!("/api/v1/connections/{id}/grants/{org_grant}"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(other.get("/api/v1/connections").await.body, json!([]));
    let r = owner
        .post(
            &format!("/api/v1/connections/{id}/grants"),
            json!({"kind": "team", "id": "nope"}),
        )
        .await;
    assert_eq!(r.status, 422);

    // Changes: a null removes a header; disabling hides it from members.
    let r = owner
        .patch(
            &format!("/api/v1/connections/{id}"),
            json!({"headers": {"Authorization": null, "X-Api-Key": "k2"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["secret_headers"], json!(["X-Api-Key"]));
    let r = owner
        .patch(
            &format!("/api/v1/connections/{id}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(r.body["enabled"], false);
    assert_eq!(dev.get("/api/v1/connections").await.body, json!([]));
    assert_eq!(
        owner
            .get("/api/v1/connections?scope=manageable")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let r = owner.delete(&format!("/api/v1/connections/{id}")).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        db.scalar_i64(&format!(
            "SELECT COUNT(*) FROM connection_secrets WHERE connection_id = '{id}'"
        ))
        .await,
        0
    );
    for action in [
        "connection.create",
        "connection.grant",
        "connection.update",
        "connection.delete",
    ] {
        assert!(
            db.scalar_i64(&format!(
                "SELECT COUNT(*) FROM audit_events WHERE action = '{action}'"
            ))
            .await
                >= 1,
            "{action}"
        );
    }
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_makes_a_private_key_file() {
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let _server = Server::start(&db);
    let path = db.data_dir().join("secret-keys.json");
    let meta = std::fs::metadata(&path).expect("key file created on first start");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_requires_an_explicit_key() {
    let db = TestDb::new(Backend::Postgres).await;
    let out = db.cli(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SWITCHBOARD_SECRET_KEY"), "{err}");
}

/// Key rotation on SQLite's key file: interrupted after one value, resumed,
/// every value opens under the new key, and the old key goes only when
/// nothing uses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_key_is_resumable_and_keeps_every_value_openable() {
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let mut server = Server::start(&db);
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    for slug in ["one", "two", "three"] {
        let r = owner
            .post("/api/v1/connections", http_connection(slug))
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    server.signal("TERM");
    let key_ids = || {
        let text = std::fs::read_to_string(db.data_dir().join("secret-keys.json")).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        v["keys"].as_array().unwrap().len()
    };
    assert_eq!(key_ids(), 1);
    let old_key = db
        .scalar_i64("SELECT COUNT(DISTINCT key_id) FROM connection_secrets")
        .await;
    assert_eq!(old_key, 1);

    // "Crash" after one value: the run stops and says how many remain.
    let out = db.cli(&["secrets", "rotate-key", "--limit", "1"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("re-sealed 1 secret value(s)") && text.contains("2 still under older keys"),
        "{text}"
    );
    assert_eq!(key_ids(), 2);
    assert_eq!(
        db.scalar_i64("SELECT COUNT(DISTINCT key_id) FROM connection_secrets")
            .await,
        2
    );
    // Both keys open everything meanwhile.
    let out = db.cli(&["secrets", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 secret value(s) open; 0 do not"));
    // Pruning now would lose values: refused.
    let out = db.cli(&["secrets", "prune-keys"]);
    assert!(!out.status.success());
    // Resume: no third key is added, the rest moves to the new key.
    let out = db.cli(&["secrets", "rotate-key"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("re-sealed 2 secret value(s)") && text.contains("0 still under older keys"),
        "{text}"
    );
    assert_eq!(key_ids(), 2);
    assert_eq!(
        db.scalar_i64("SELECT COUNT(DISTINCT key_id) FROM connection_secrets")
            .await,
        1
    );
    let out = db.cli(&["secrets", "prune-keys"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(key_ids(), 1);
    let out = db.cli(&["secrets", "verify", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["opened"], 3);
    assert_eq!(v["failed"], json!([]));
    // The planted value is still nowhere in the clear.
    assert_eq!(
        db.scalar_i64(&format!(
            "SELECT COUNT(*) FROM connection_secrets WHERE sealed LIKE '%{PLANTED}%'"
        ))
        .await,
        0
    );
    // A server restarted on the new key file still serves the connections.
    let server = Server::start(&db);
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    let r = owner.get("/api/v1/connections?scope=manageable").await;
    assert_eq!(r.body.as_array().unwrap().len(), 3);
}

/// `@modelcontextprotocol/server-everything` over Streamable HTTP on
/// loopback, as a child of the test.
struct Everything {
    child: std::process::Child,
    url: String,
}

impl Drop for Everything {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_everything() -> Everything {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child =
        std::process::Command::new(common::mcp::tools_dir().join("bin/mcp-server-everything"))
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start server-everything (scripts/mcp-tools.sh installs it)");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "server-everything did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Everything {
        child,
        url: format!("http://127.0.0.1:{port}/mcp"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_refresh_reaches_a_real_upstream_only_where_allowed() {
    let upstream = start_everything();
    let body = |slug: &str| {
        json!({"slug": slug, "name": "Everything", "transport": "streamable_http", "url": upstream.url,
               "credential_mode": "shared", "headers": {"X-Api-Key": PLANTED}})
    };
    // Loopback upstreams refused by default: the connection says why.
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = Server::start(&db);
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    let r = owner.post("/api/v1/connections", body("everything")).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = owner
        .post("/api/v1/connections/everything/refresh", json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["health"], "disconnected");
    let err = r.body["last_error"].as_str().unwrap();
    assert!(
        err.contains("refused to connect") && err.contains("127.0.0.1"),
        "{err}"
    );
    assert_eq!(r.body["tool_count"], 0);
    drop(server);

    // With loopback allowed (as for a hub next to its upstreams), the tool
    // list is fetched and cached; members never trigger it.
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = Server::start_with(
        &db,
        &[],
        &[("SWITCHBOARD_GATEWAY__ALLOW_LOOPBACK_UPSTREAMS", "true")],
    );
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    add_member(&owner, "dev@alpha.test", "member").await;
    let dev = Api::sign_in(&server, "dev@alpha.test", PASSWORD).await;
    let r = owner.post("/api/v1/connections", body("everything")).await;
    assert_eq!(r.status, 201);
    let r = owner
        .post("/api/v1/connections/everything/refresh", json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["health"], "connected", "{:?}", r.body);
    assert!(r.body["last_error"].is_null());
    assert!(r.body["tool_count"].as_u64().unwrap() >= 5, "{:?}", r.body);
    let tools = owner.get("/api/v1/connections/everything/tools").await;
    let names: Vec<&str> = tools
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(names.contains(&"echo"), "{names:?}");
    assert_eq!(
        db.scalar_i64("SELECT COUNT(*) FROM connection_tools WHERE name = 'echo' AND credential_key = 'shared'").await,
        1
    );
    assert_eq!(
        dev.post("/api/v1/connections/everything/refresh", json!({}))
            .await
            .status,
        403
    );
    assert!(!server.log().contains(PLANTED));
    assert!(
        db.scalar_i64("SELECT COUNT(*) FROM audit_events WHERE action = 'connection.refresh'")
            .await
            >= 1
    );
}

/// Another Switchboard as the upstream: hub A's connection carries a
/// personal token of hub B as its shared `Authorization` header. B answers
/// the catalog refresh only if it received that token (so this test can
/// fail), and afterwards the token is nowhere on A: not in any API
/// response, the server log, the audit table, or the database files, plain
/// or base64- or URL-encoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_secret_reaches_the_upstream_and_nothing_else() {
    let b_db = TestDb::new(Backend::Sqlite).await;
    b_db.bootstrap("owner@beta.test", "beta");
    let b = Server::start(&b_db);
    let b_token = b_db.token("owner@beta.test", "beta", "personal", ALL_SCOPES);

    let a_db = TestDb::new(Backend::Sqlite).await;
    a_db.bootstrap("owner@alpha.test", "alpha");
    let a = Server::start_with(
        &a_db,
        &[],
        &[("SWITCHBOARD_GATEWAY__ALLOW_LOOPBACK_UPSTREAMS", "true")],
    );
    let owner = Api::sign_in(&a, "owner@alpha.test", PASSWORD).await;
    let mut responses = Vec::new();
    let r = owner
        .post(
            "/api/v1/connections",
            json!({"slug": "beta-hub", "name": "Beta", "transport": "streamable_http", "url": b.url("/mcp"),
                   "credential_mode": "shared", "headers": {"Authorization": format!("Bearer {b_token}")}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    responses.push(r.body.to_string());
    let r = owner
        .post("/api/v1/connections/beta-hub/refresh", json!({}))
        .await;
    assert_eq!(r.body["health"], "connected", "{:?}", r.body);
    responses.push(r.body.to_string());
    let tools = owner.get("/api/v1/connections/beta-hub/tools").await;
    assert!(
        tools.body.as_array().unwrap().contains(&json!("whoami")),
        "{:?}",
        tools.body
    );
    responses.push(tools.body.to_string());
    // B saw A's calls under the planted token (it authenticated them).
    assert!(
        b_db.scalar_i64(
            "SELECT COUNT(*) FROM audit_events WHERE surface = 'mcp' AND token_kind = 'personal'"
        )
        .await
            >= 1
    );
    for path in [
        "/api/v1/connections?scope=manageable",
        "/api/v1/connections/beta-hub",
        "/api/v1/audit-events",
    ] {
        responses.push(owner.get(path).await.body.to_string());
    }
    drop(a); // flush and close A before reading its files

    let needles = {
        use base64::Engine as _;
        let bearer = format!("Bearer {b_token}");
        vec![
            b_token.clone(),
            base64::engine::general_purpose::STANDARD.encode(&b_token),
            base64::engine::general_purpose::STANDARD.encode(&bearer),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&b_token),
            bearer.replace(' ', "%20"),
        ]
    };
    let mut haystacks: Vec<(String, Vec<u8>)> = responses
        .into_iter()
        .enumerate()
        .map(|(i, r)| (format!("response {i}"), r.into_bytes()))
        .collect();
    for entry in std::fs::read_dir(a_db.dir.path())
        .unwrap()
        .chain(std::fs::read_dir(a_db.data_dir()).unwrap())
    {
        let path = entry.unwrap().path();
        if path.is_file() {
            haystacks.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    assert!(
        haystacks.iter().any(|(n, _)| n.ends_with("switchboard.db")),
        "the database file was searched"
    );
    for (name, bytes) in &haystacks {
        for needle in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "the secret appears in {name}"
            );
        }
    }
    assert_eq!(
        a_db.scalar_i64("SELECT COUNT(*) FROM audit_events WHERE action = 'connection.create'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_pointing_back_at_its_own_hub_is_refused_as_a_loop() {
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = Server::start_with(
        &db,
        &[],
        &[("SWITCHBOARD_GATEWAY__ALLOW_LOOPBACK_UPSTREAMS", "true")],
    );
    let token = db.token("owner@alpha.test", "alpha", "personal", ALL_SCOPES);
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    let r = owner
        .post(
            "/api/v1/connections",
            json!({"slug": "myself", "name": "Me", "transport": "streamable_http", "url": server.url("/mcp"),
                   "credential_mode": "shared", "headers": {"Authorization": format!("Bearer {token}")}}),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = owner
        .post("/api/v1/connections/myself/refresh", json!({}))
        .await;
    assert_eq!(r.body["health"], "disconnected", "{:?}", r.body);
    let err = r.body["last_error"].as_str().unwrap();
    assert!(err.contains("508") || err.contains("Loop"), "{err}");
    // The hub refused before authenticating or auditing anything as a call.
    assert_eq!(
        db.scalar_i64("SELECT COUNT(*) FROM audit_events WHERE surface = 'mcp'")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_publishes_grants_and_deletes_with_secrets_from_stdin() {
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let who = ["--email", "owner@alpha.test", "--org", "alpha"];
    let mut args = vec!["connection", "create"];
    args.extend(who);
    args.extend([
        "--slug",
        "tracker",
        "--name",
        "Tracker",
        "--transport",
        "streamable_http",
        "--url",
        "https://tracker.example.com/mcp",
        "--secrets-from-stdin",
        "--json",
    ]);
    let out = db.cli_with(
        &args,
        &[],
        Some(&format!("header:Authorization=Bearer {PLANTED}\n")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["credential_mode"], "shared");
    assert_eq!(v["secret_headers"], json!(["Authorization"]));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(PLANTED));
    // A malformed stdin line is refused with its line number; nothing changes.
    let mut bad = vec!["connection", "create"];
    bad.extend(who);
    bad.extend([
        "--slug",
        "other",
        "--name",
        "O",
        "--transport",
        "streamable_http",
        "--url",
        "https://o.example/mcp",
        "--secrets-from-stdin",
    ]);
    let out = db.cli_with(&bad, &[], Some("Authorization: Bearer x\n"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stdin line 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut grant = vec!["connection", "grant"];
    grant.extend(who);
    grant.extend(["tracker", "--to", "org"]);
    let out = db.cli(&grant);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut list = vec!["connection", "list"];
    list.extend(who);
    let out = db.cli(&list);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("tracker") && text.contains("streamable_http") && !text.contains("other"),
        "{text}"
    );
    let mut del = vec!["connection", "delete"];
    del.extend(who);
    del.push("tracker");
    assert!(db.cli(&del).status.success());
    assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM connections").await, 0);
    // The CLI publishes as the named admin, audited on the cli surface.
    assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM audit_events WHERE action = 'connection.create' AND surface = 'cli'").await, 1);
}
