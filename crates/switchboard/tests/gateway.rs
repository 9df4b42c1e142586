//! The gateway end to end: real upstreams (`@modelcontextprotocol/server-
//! everything` over Streamable HTTP and over stdio), published as
//! connections, used through virtual servers `/mcp/servers/{slug}` in both
//! protocol eras, with grants, the org's policy, tool rules and audit.
// Test code states its expectations: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::mcp::{Mcp, message, tools_dir};
use common::{ALL_SCOPES, Api, Backend, PASSWORD, Server, TestDb, add_member};
use serde_json::{Value, json};

const PLANTED_ENV: &str = "planted-env-value-8d1f0c";

const MEMBER_SCOPES: &str = "read:org,read:tasks,connections:use";

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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_everything_http(port: u16) -> Everything {
    let child = std::process::Command::new(tools_dir().join("bin/mcp-server-everything"))
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start server-everything (scripts/mcp-tools.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server-everything did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Everything {
        child,
        url: format!("http://127.0.0.1:{port}/mcp"),
    }
}

fn everything_cmd() -> String {
    tools_dir()
        .join("bin/mcp-server-everything")
        .to_string_lossy()
        .into_owned()
}

/// A server that may reach loopback upstreams and run the tests' stdio
/// servers (the operator's catalog: server-everything, server-memory and
/// the test upstream in both eras).
fn gateway_server(db: &TestDb, extra_env: &[(&str, &str)]) -> Server {
    let settings = server_settings(db);
    let mut env = vec![("SWITCHBOARD_GATEWAY__ALLOW_LOOPBACK_UPSTREAMS", "true")];
    env.extend(common::env_refs(&settings));
    env.extend_from_slice(extra_env);
    Server::start_with(db, &[], &env)
}

/// The operator catalog settings [`gateway_server`] uses, for the CLI.
fn server_settings(db: &TestDb) -> Vec<(String, String)> {
    let memory = tools_dir()
        .join("bin/mcp-server-memory")
        .to_string_lossy()
        .into_owned();
    let bin = test_upstream_bin();
    common::stdio_settings(
        db,
        &[
            common::operator_entry("everything-local", &everything_cmd(), &["stdio"]),
            common::operator_entry("fixture", &bin, &["stdio"]),
            common::operator_entry("fixture-legacy", &bin, &["stdio", "--legacy"]),
            memory_entry(&memory),
        ],
    )
}

/// A directory the operator gives a stdio server: writable by the
/// children's user (nobody, when the tests run as root), outside the
/// server's own files.
fn host_dir_for_children(db: &TestDb, name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let outer = std::env::temp_dir().join(format!(
        "sb-host-{}-{}",
        std::process::id(),
        db.dir.path().file_name().unwrap().to_string_lossy()
    ));
    let dir = outer.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&outer, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// server-memory as an operator entry: its file is a path on the host, a
/// setting only the operator may give.
fn memory_entry(command: &str) -> Value {
    json!({
        "id": "memory-local", "name": "Memory", "description": "server-memory",
        "transport": "stdio", "command": command, "args": [],
        "config": {"type": "object", "additionalProperties": false, "properties": {
            "memory_file_path": {"type": "string", "x-switchboard-target": "env:MEMORY_FILE_PATH",
                                 "x-switchboard-host-path": true}}}
    })
}

fn tool_names(msg: &Value) -> Vec<String> {
    msg["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {msg}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

fn text_of(msg: &Value) -> String {
    msg["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content in {msg}"))
        .to_owned()
}

async fn publish(owner: &Api, body: Value) {
    let slug = body["slug"].as_str().unwrap().to_owned();
    let path = if body.get("integration").is_some() {
        "/api/v1/connections/from-integration"
    } else {
        "/api/v1/connections"
    };
    let r = owner.post(path, body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = owner
        .post(&format!("/api/v1/connections/{slug}/refresh"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["health"], "connected", "{:?}", r.body);
}

/// Grants connection `slug` (`{"kind": …, "id": …}`); the connection after.
async fn grant(owner: &Api, slug: &str, grantee: Value) -> Value {
    let r = owner
        .post(&format!("/api/v1/connections/{slug}/grants"), grantee)
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body
}

async fn grant_org(owner: &Api, slug: &str) {
    grant(owner, slug, json!({"kind": "org"})).await;
}

/// The `id` of the first item of a list whose `key` is `value`.
fn id_where(items: &Value, key: &str, value: &str) -> String {
    items
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {items}"))
        .iter()
        .find(|i| i[key] == value)
        .and_then(|i| i["id"].as_str())
        .unwrap_or_else(|| panic!("no item with {key} = {value} in {items}"))
        .to_owned()
}

async fn virtual_server_over_http(backend: Backend) {
    let upstream = start_everything_http(free_port());
    let db = TestDb::new(backend).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = gateway_server(&db, &[]);
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    add_member(&owner, "dev@alpha.test", "member").await;
    add_member(&owner, "other@alpha.test", "member").await;
    publish(
        &owner,
        json!({"slug": "everything", "name": "Everything", "transport": "streamable_http",
               "url": upstream.url, "tool_deny": ["get-env"],
               "tool_overrides": {"echo": {"read_only": true}}}),
    )
    .await;
    // Granted to dev only (as a member grant), not to other.
    let members = owner.get("/api/v1/members").await;
    let dev_id = id_where(&members.body["items"], "email", "dev@alpha.test");
    grant(
        &owner,
        "everything",
        json!({"kind": "member", "id": dev_id}),
    )
    .await;

    let dev_token = db.token("dev@alpha.test", "alpha", "personal", MEMBER_SCOPES);
    let url = server.url("/mcp/servers/everything");

    // 2026-07-28, stateless: tools listed unprefixed, the denied one absent.
    let dev = Mcp::at(&url, Some(&dev_token));
    let r = dev.stateless("tools/list", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let names = tool_names(&message(&r));
    assert!(names.contains(&"echo".to_owned()), "{names:?}");
    assert!(names.contains(&"get-sum".to_owned()), "{names:?}");
    assert!(
        !names.contains(&"get-env".to_owned()),
        "denied tool listed: {names:?}"
    );
    let echo = message(&r)["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "echo")
        .cloned()
        .unwrap();
    assert_eq!(echo["annotations"]["readOnlyHint"], true, "{echo}");

    let r = dev
        .call_2026("echo", json!({"message": "hello upstream"}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(text_of(&message(&r)), "Echo: hello upstream");
    // The upstream's content passes through as it came (numbers included).
    let r = dev.call_2026("get-sum", json!({"a": 2, "b": 40})).await;
    assert!(text_of(&message(&r)).contains("42"), "{:?}", r.body);
    // Arguments are validated against the upstream's schema before the call.
    let r = dev.call_2026("get-sum", json!({"a": "two"})).await;
    let m = message(&r);
    assert_eq!(m["result"]["isError"], true, "{m}");
    assert!(text_of(&m).contains("do not match its input schema"), "{m}");
    // A denied tool cannot be called either.
    let r = dev.call_2026("get-env", json!({})).await;
    assert!(message(&r)["error"].is_object(), "{:?}", r.body);

    // 2025-11-25 session on the same server: resources and prompts pass through.
    let mut legacy = Mcp::at(&url, Some(&dev_token));
    let init = legacy.initialize().await;
    let init = message(&init);
    assert!(
        init["result"]["capabilities"]["resources"].is_object(),
        "{init}"
    );
    let r = legacy
        .call_legacy("echo", json!({"message": "legacy"}))
        .await;
    assert_eq!(text_of(&message(&r)), "Echo: legacy");
    let r = legacy.legacy("resources/list", json!({})).await;
    let m = message(&r);
    let first = m["result"]["resources"][0]["uri"]
        .as_str()
        .unwrap_or_else(|| panic!("no resources: {m}"))
        .to_owned();
    let r = legacy.legacy("resources/read", json!({"uri": first})).await;
    let m = message(&r);
    assert!(m["result"]["contents"].is_array(), "{m}");
    let r = legacy.legacy("prompts/list", json!({})).await;
    assert!(message(&r)["result"]["prompts"].is_array(), "{:?}", r.body);
    // Progress the upstream reports reaches the caller, under the caller's token.
    let r = legacy
        .legacy(
            "tools/call",
            json!({"name": "trigger-long-running-operation", "arguments": {"duration": 1, "steps": 3},
                   "_meta": {"progressToken": "caller-token-7"}}),
        )
        .await;
    let body = r
        .body
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| r.body.to_string());
    let progress: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .filter(|v| v["method"] == "notifications/progress")
        .collect();
    assert!(progress.len() >= 2, "no progress relayed: {body}");
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "caller-token-7"),
        "{progress:?}"
    );
    assert!(message(&r)["result"]["content"].is_array(), "{body}");

    // On the org endpoint, list_connections names it with its server URL.
    let org = Mcp::at(&server.url("/mcp"), Some(&dev_token));
    let r = org.call_2026("list_connections", json!({})).await;
    let items = &message(&r)["result"]["structuredContent"]["items"];
    assert_eq!(items[0]["slug"], "everything", "{items}");
    assert_eq!(items[0]["server_url"], json!(url), "{items}");

    // Without a grant: the server does not exist for you, and says so.
    let other_token = db.token("other@alpha.test", "alpha", "personal", MEMBER_SCOPES);
    let other = Mcp::at(&url, Some(&other_token));
    let r = other.stateless("tools/list", json!({})).await;
    let m = message(&r);
    assert_eq!(m["error"]["code"], -32001, "{m}");
    assert!(
        m["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no MCP server 'everything' you may use"),
        "{m}"
    );
    let r = other.call_2026("echo", json!({"message": "x"})).await;
    assert!(message(&r)["error"].is_object(), "{:?}", r.body);
    let r = Mcp::at(&server.url("/mcp"), Some(&other_token))
        .call_2026("list_connections", json!({}))
        .await;
    assert_eq!(
        message(&r)["result"]["structuredContent"]["items"],
        json!([])
    );

    // A second replica on the same database caches each member's granted
    // connections against the org's access version (bumped by database
    // triggers): grants and team memberships changed through the first
    // replica hold on the second at its very next request.
    let replica = gateway_server(&db, &[]);
    let dev2 = Mcp::at(&replica.url("/mcp/servers/everything"), Some(&dev_token));
    let r = dev2.call_2026("echo", json!({"message": "replica"})).await;
    assert_eq!(text_of(&message(&r)), "Echo: replica");
    let team = owner
        .post("/api/v1/teams", json!({"name": "Gateway users"}))
        .await;
    assert_eq!(team.status, 201, "{:?}", team.body);
    let team_id = team.body["id"].as_str().unwrap().to_owned();
    let r = owner
        .post(
            &format!("/api/v1/teams/{team_id}/members"),
            json!({"membership_id": dev_id}),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let connection = grant(&owner, "everything", json!({"kind": "team", "id": team_id})).await;
    let member_grant = id_where(&connection["grants"], "kind", "member");
    let r = owner
        .delete(&format!(
            "/api/v1/connections/everything/grants/{member_grant}"
        ))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = dev2.call_2026("echo", json!({"message": "by team"})).await;
    assert_eq!(text_of(&message(&r)), "Echo: by team");
    let r = owner
        .delete(&format!("/api/v1/teams/{team_id}/members/{dev_id}"))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = dev2.stateless("tools/list", json!({})).await;
    assert_eq!(message(&r)["error"]["code"], -32001, "{:?}", r.body);
    let r = dev2.call_2026("echo", json!({"message": "gone"})).await;
    assert!(message(&r)["error"].is_object(), "{:?}", r.body);
    grant(
        &owner,
        "everything",
        json!({"kind": "member", "id": dev_id}),
    )
    .await;
    let r = dev2.call_2026("echo", json!({"message": "back"})).await;
    assert_eq!(text_of(&message(&r)), "Echo: back");
    drop(replica);

    // The org's policy: read-only. echo (marked read-only by the admin)
    // still works; get-sum (an upstream tool is a write unless marked) is
    // refused and no longer listed.
    let r = owner
        .patch("/api/v1/org", json!({"mcp_policy": {"allow_write": false}}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = dev.stateless("tools/list", json!({})).await;
    let names = tool_names(&message(&r));
    assert!(
        names.contains(&"echo".to_owned()) && !names.contains(&"get-sum".to_owned()),
        "{names:?}"
    );
    let r = dev.call_2026("echo", json!({"message": "still"})).await;
    assert_eq!(text_of(&message(&r)), "Echo: still");
    let r = dev.call_2026("get-sum", json!({"a": 1, "b": 2})).await;
    let m = message(&r);
    assert_eq!(m["result"]["isError"], true, "{m}");
    assert!(text_of(&m).contains("read-only"), "{m}");

    // Every call is audited under its capability id, refusals included.
    assert!(
        db.scalar_i64(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'everything/echo' AND outcome = 'ok'"
        )
        .await
            >= 3
    );
    assert!(
        db.scalar_i64(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'everything/get-sum' AND outcome = 'denied'"
        )
        .await
            >= 1
    );
    assert!(
        db.scalar_i64(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'resources/read' AND outcome = 'ok'"
        )
        .await
            >= 1
    );
    // The client's token never reaches the upstream: the hub talks to it
    // with its own session (checked on the wire in connections.rs with a
    // Switchboard upstream that records what it receives).
    assert!(!server.log().contains(&dev_token));

    // Health and metrics from the traffic above.
    let status = owner.get("/api/v1/status").await;
    assert_eq!(status.body["connections"]["total"], 1, "{:?}", status.body);
    assert_eq!(
        status.body["connections"]["connected"], 1,
        "{:?}",
        status.body
    );
    let metrics = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("switchboard_upstream_requests_total{")
                && l.contains("outcome=\"ok\"")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_server_over_http_sqlite() {
    virtual_server_over_http(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_server_over_http_postgres() {
    virtual_server_over_http(Backend::Postgres).await;
}

/// The pids of the processes whose command line contains `needle`.
fn pids_running(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmd).contains(needle)
        {
            out.push(pid);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_upstream_runs_supervised_with_only_its_own_environment() {
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = gateway_server(&db, &[("SWITCHBOARD_GATEWAY__STDIO_IDLE_SECS", "600")]);
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    // Not a catalog entry's command line: refused with the reason, nothing saved.
    let r = owner
        .post(
            "/api/v1/connections",
            json!({"slug": "sh", "name": "Shell", "transport": "stdio", "command": "/bin/sh"}),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(r.error_message().contains("catalog"), "{:?}", r.body);

    // A unique marker in the arguments finds this test's children.
    let marker = format!("stdio-{}", std::process::id());
    publish(
        &owner,
        json!({"integration": "everything-local", "slug": "local", "name": "Local everything",
               "config": {"marker": marker, "api_key": PLANTED_ENV}}),
    )
    .await;
    grant_org(&owner, "local").await;
    let token = db.token("owner@alpha.test", "alpha", "personal", ALL_SCOPES);
    let client = Mcp::at(&server.url("/mcp/servers/local"), Some(&token));
    let r = client
        .call_2026("echo", json!({"message": "over stdio"}))
        .await;
    assert_eq!(text_of(&message(&r)), "Echo: over stdio", "{:?}", r.body);

    // One child for the connection, however many calls.
    for i in 0..5 {
        let r = client
            .call_2026("echo", json!({"message": format!("n{i}")}))
            .await;
        assert_eq!(text_of(&message(&r)), format!("Echo: n{i}"));
    }
    let process = owner.get("/api/v1/connections/local/process").await;
    assert_eq!(process.status, 200, "{:?}", process.body);
    assert_eq!(process.body["running"], true, "{:?}", process.body);
    assert_eq!(process.body["starts"], 1, "{:?}", process.body);
    let pid = process.body["pid"].as_u64().unwrap() as u32;
    assert!(pids_running(&marker).contains(&pid));

    // Its environment: the declared variable, PATH and friends, nothing of
    // the server's own (no SWITCHBOARD_* anywhere).
    // The child really has the secret (so the checks below can fail)...
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(
        environ.contains(&format!("UPSTREAM_API_KEY={PLANTED_ENV}")),
        "{environ}"
    );
    let r = client.call_2026("get-env", json!({})).await;
    let env_text = text_of(&message(&r));
    assert!(env_text.contains("UPSTREAM_API_KEY"), "{env_text}");
    assert!(!env_text.contains("SWITCHBOARD_"), "{env_text}");
    assert!(!env_text.contains("RUST_LOG"), "{env_text}");
    // ...but an upstream echoing it does not show it to the caller.
    assert!(!env_text.contains(PLANTED_ENV), "{env_text}");
    assert!(env_text.contains("****"), "{env_text}");
    // Nor is it anywhere on the hub: log, audit, database (plain, base64, URL-encoded).
    let encodings = {
        use base64::Engine as _;
        [
            PLANTED_ENV.to_owned(),
            base64::engine::general_purpose::STANDARD.encode(PLANTED_ENV),
        ]
    };
    for needle in &encodings {
        assert!(
            !server.log().contains(needle.as_str()),
            "the log holds the secret"
        );
        assert_eq!(
            db.scalar_i64(&format!(
                "SELECT COUNT(*) FROM audit_events WHERE args LIKE '%{needle}%' OR COALESCE(target, '') LIKE '%{needle}%'"
            ))
            .await,
            0
        );
        let files: Vec<_> = std::fs::read_dir(db.data_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        assert!(
            files.iter().any(|p| p.ends_with("switchboard.db")),
            "{files:?}"
        );
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds the secret",
                file.display()
            );
        }
    }

    // Killed under the gateway's feet: the next call starts a new child.
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(300));
    let mut answered = false;
    for _ in 0..3 {
        let r = client.call_2026("echo", json!({"message": "again"})).await;
        let m = message(&r);
        if m["result"]["content"][0]["text"] == "Echo: again" {
            answered = true;
            break;
        }
        // The call that found the child dead says so clearly.
        let text = m.to_string();
        assert!(
            text.contains("closed the connection") || text.contains("unavailable"),
            "{text}"
        );
    }
    assert!(answered, "the child was not restarted");
    let process = owner.get("/api/v1/connections/local/process").await;
    let new_pid = process.body["pid"].as_u64().unwrap() as u32;
    assert_ne!(new_pid, pid);
    // No zombie left of the old child.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    assert!(!status.contains("zombie"), "{status}");

    // Shutting the server down kills the child's whole process group.
    let mut server = server;
    server.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pids_running(&marker).is_empty() {
        assert!(
            Instant::now() < deadline,
            "children outlived the server: {:?}",
            pids_running(&marker)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the official Python SDK driver against `url` and returns its report.
fn python_client(url: &str, token: &str, mode: &str, calls: &[(&str, Value)]) -> Value {
    let tools = tools_dir();
    let mut cmd = std::process::Command::new(tools.join("py/bin/python"));
    cmd.arg(common::mcp::clients_dir().join("py_client.py"))
        .args([
            "--url",
            url,
            "--token",
            token,
            "--mode",
            mode,
            "--timeout",
            "60",
        ])
        .stdin(std::process::Stdio::null());
    for (name, args) in calls {
        cmd.args(["--call", name, "--args", &args.to_string()]);
    }
    let out = cmd.output().expect("run the Python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "py_client --mode {mode} on {url} failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("no JSON ({e}): {stdout}"))
}

fn call_text(report: &Value, i: usize) -> String {
    let call = &report["calls"][i];
    assert_eq!(call["isError"], false, "{report}");
    call["text"].as_str().unwrap_or_default().to_owned()
}

/// The official Python SDK, in both protocol eras, through virtual servers
/// over three real upstreams: server-everything over Streamable HTTP and
/// over stdio, and server-memory over stdio (its storage file passed as a
/// shared environment value).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_reaches_real_upstreams_through_virtual_servers() {
    let upstream = start_everything_http(free_port());
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = gateway_server(&db, &[]);
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    for body in [
        json!({"slug": "remote", "name": "Everything (HTTP)", "transport": "streamable_http", "url": upstream.url}),
        json!({"slug": "local", "name": "Everything (stdio)", "transport": "stdio",
               "command": everything_cmd(), "args": ["stdio"]}),
    ] {
        let slug = body["slug"].as_str().unwrap().to_owned();
        publish(&owner, body).await;
        grant_org(&owner, &slug).await;
    }
    // The memory file is a path on the host: an org admin may not set it...
    let memory_dir = host_dir_for_children(&db, "memory");
    let memory_file = memory_dir.join("memory.jsonl");
    let config = json!({"memory_file_path": memory_file.to_string_lossy()});
    let r = owner
        .post(
            "/api/v1/connections/from-integration",
            json!({"integration": "memory-local", "slug": "memory", "config": config}),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(r.error_message().contains("operator"), "{:?}", r.body);
    // ...the operator may, on the server's command line.
    let out = db.cli_with(
        &[
            "connection",
            "from-integration",
            "--email",
            "owner@alpha.test",
            "--org",
            "alpha",
            "--integration",
            "memory-local",
            "--slug",
            "memory",
            "--settings",
            &config.to_string(),
        ],
        &common::env_refs(&server_settings(&db)),
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = owner
        .post("/api/v1/connections/memory/refresh", json!({}))
        .await;
    assert_eq!(r.body["health"], "connected", "{:?}", r.body);
    grant_org(&owner, "memory").await;
    add_member(&owner, "dev@alpha.test", "member").await;
    let token = db.token("dev@alpha.test", "alpha", "personal", MEMBER_SCOPES);

    for mode in ["legacy", "2026-07-28"] {
        for slug in ["remote", "local"] {
            let url = server.url(&format!("/mcp/servers/{slug}"));
            let report = python_client(
                &url,
                &token,
                mode,
                &[
                    ("echo", json!({"message": format!("{slug} {mode}")})),
                    ("get-sum", json!({"a": 19, "b": 23})),
                ],
            );
            let tools: Vec<&str> = report["tools"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert!(
                tools.contains(&"echo") && tools.contains(&"get-sum"),
                "{report}"
            );
            assert_eq!(call_text(&report, 0), format!("Echo: {slug} {mode}"));
            assert!(call_text(&report, 1).contains("42"), "{report}");
        }
        let report = python_client(
            &server.url("/mcp/servers/memory"),
            &token,
            mode,
            &[
                (
                    "create_entities",
                    json!({"entities": [{"name": format!("Ada-{mode}"), "entityType": "person", "observations": ["wrote the first program"]}]}),
                ),
                ("read_graph", json!({})),
            ],
        );
        assert!(
            call_text(&report, 1).contains(&format!("Ada-{mode}")),
            "{report}"
        );
    }
    // The memory server wrote where its connection told it to.
    let stored = std::fs::read_to_string(&memory_file).expect("memory file");
    assert!(
        stored.contains("Ada-legacy") && stored.contains("Ada-2026-07-28"),
        "{stored}"
    );
    // A saved virtual server over two connections: tools prefixed with
    // their connection's slug, calls routed by that prefix.
    let r = owner
        .post(
            "/api/v1/virtual-servers",
            json!({"slug": "combo", "name": "Combo", "connections": ["remote", "nope"]}),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert!(
        r.error_message().contains("no connection 'nope'"),
        "{:?}",
        r.body
    );
    let r = owner
        .post(
            "/api/v1/virtual-servers",
            json!({"slug": "local", "name": "Taken", "connections": ["remote", "memory"]}),
        )
        .await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    let r = owner
        .post(
            "/api/v1/virtual-servers",
            json!({"slug": "combo", "name": "Combo", "connections": ["remote", "memory"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["connections"], json!(["memory", "remote"]));
    let report = python_client(
        &server.url("/mcp/servers/combo"),
        &token,
        "legacy",
        &[
            ("remote_echo", json!({"message": "combined"})),
            ("memory_read_graph", json!({})),
        ],
    );
    let tools = report["tools"].to_string();
    assert!(
        tools.contains("remote_get-sum")
            && tools.contains("memory_create_entities")
            && !tools.contains("\"echo\""),
        "{tools}"
    );
    assert_eq!(call_text(&report, 0), "Echo: combined");
    assert!(call_text(&report, 1).contains("Ada-legacy"), "{report}");

    // The org's own endpoint still lists only the org's tools.
    let report = python_client(&server.url("/mcp"), &token, "legacy", &[]);
    let tools = report["tools"].to_string();
    assert!(
        tools.contains("whoami") && !tools.contains("get-sum"),
        "{tools}"
    );
}

/// Faults: an upstream that hangs (the call times out and says so), an
/// answer over the size limit (refused at the limit, with the figures), an
/// upstream down when first used (`disconnected` with the reason), then
/// back (the next call works and health returns to `connected`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_faults_get_clear_errors_and_recovery() {
    let port = free_port();
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = gateway_server(
        &db,
        &[
            ("SWITCHBOARD_GATEWAY__CALL_TIMEOUT_SECS", "2"),
            ("SWITCHBOARD_GATEWAY__MAX_RESPONSE_BYTES", "4096"),
        ],
    );
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    let url = format!("http://127.0.0.1:{port}/mcp");
    // Down at start: saved, and the refresh says why it is disconnected.
    let r = owner
        .post(
            "/api/v1/connections",
            json!({"slug": "flaky", "name": "Flaky", "transport": "streamable_http", "url": url}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    grant_org(&owner, "flaky").await;
    let r = owner
        .post("/api/v1/connections/flaky/refresh", json!({}))
        .await;
    assert_eq!(r.body["health"], "disconnected", "{:?}", r.body);
    assert!(
        r.body["last_error"].as_str().unwrap().contains("connect"),
        "{:?}",
        r.body
    );

    // Back up: after the backoff (at most a second here), it recovers.
    let _upstream = start_everything_http(port);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = owner
            .post("/api/v1/connections/flaky/refresh", json!({}))
            .await;
        if r.body["health"] == "connected" {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered: {:?}", r.body);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let token = db.token("owner@alpha.test", "alpha", "personal", ALL_SCOPES);
    let client = Mcp::at(&server.url("/mcp/servers/flaky"), Some(&token));
    let r = client.call_2026("echo", json!({"message": "back"})).await;
    assert_eq!(text_of(&message(&r)), "Echo: back");

    // Hangs longer than the call timeout: a clear error, in about that time.
    let started = Instant::now();
    let r = client
        .call_2026(
            "trigger-long-running-operation",
            json!({"duration": 30, "steps": 3}),
        )
        .await;
    let m = message(&r);
    assert_eq!(m["result"]["isError"], true, "{m}");
    assert!(text_of(&m).contains("did not answer within 2 s"), "{m}");
    assert!(started.elapsed() < Duration::from_secs(15));

    // Over the size limit: refused, naming the size and the limit.
    let big = "x".repeat(6000);
    let r = client.call_2026("echo", json!({"message": big})).await;
    let m = message(&r);
    assert_eq!(m["result"]["isError"], true, "{m}");
    let text = text_of(&m);
    assert!(
        text.contains("over the gateway's limit of 4096 bytes"),
        "{text}"
    );
    assert!(!text.contains(&big));
    // The upstream still works afterwards.
    let r = client.call_2026("echo", json!({"message": "fine"})).await;
    assert_eq!(text_of(&message(&r)), "Echo: fine");
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// 1,000 sequential client sessions on a stdio virtual server leave the
/// number of children, the server's open descriptors and the stored
/// session rows flat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_sessions_leave_children_descriptors_and_sessions_flat() {
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = gateway_server(&db, &[]);
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    let marker = format!("sessions-{}", std::process::id());
    publish(
        &owner,
        json!({"integration": "everything-local", "slug": "local", "name": "Local",
               "config": {"marker": marker}}),
    )
    .await;
    grant_org(&owner, "local").await;
    let token = db.token("owner@alpha.test", "alpha", "personal", ALL_SCOPES);
    let url = server.url("/mcp/servers/local");
    let server_pid = server.child.id();

    let session = |i: usize| {
        let url = url.clone();
        let token = token.clone();
        async move {
            let mut c = Mcp::at(&url, Some(&token));
            c.initialize().await;
            let r = c
                .call_legacy("echo", json!({"message": format!("s{i}")}))
                .await;
            assert_eq!(text_of(&message(&r)), format!("Echo: s{i}"));
            let d = c.delete_session().await;
            assert!(matches!(d.status, 200 | 202 | 204), "{:?}", d.status);
        }
    };
    // Warm up, then measure.
    for i in 0..20 {
        session(i).await;
    }
    let fds_before = open_fds(server_pid);
    let children_before = pids_running(&marker).len();
    let rows_before = db.scalar_i64("SELECT COUNT(*) FROM mcp_sessions").await;
    for i in 0..1000 {
        session(i).await;
    }
    let fds_after = open_fds(server_pid);
    let children_after = pids_running(&marker).len();
    let rows_after = db.scalar_i64("SELECT COUNT(*) FROM mcp_sessions").await;
    println!(
        "after 1000 sessions: children {children_before} -> {children_after}, fds {fds_before} -> {fds_after}, session rows {rows_before} -> {rows_after}"
    );
    assert_eq!(children_before, children_after);
    assert!(children_after >= 1, "the child is not running");
    assert_eq!(rows_before, rows_after);
    assert!(
        fds_after <= fds_before + 8,
        "descriptors grew: {fds_before} -> {fds_after}"
    );
}

/// With `gateway.stdio_user`, children run as that user, so the server's
/// key file (0600, the server's own user) is out of their reach. Starting
/// processes as another user needs root: CI runs as root; elsewhere the
/// test says it was skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_children_run_as_the_configured_user() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .unwrap();
    if uid != "0" {
        println!("SKIPPED: not root, so the server cannot start children as another user");
        return;
    }
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = gateway_server(&db, &[("SWITCHBOARD_GATEWAY__STDIO_USER", "nobody")]);
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    let marker = format!("as-nobody-{}", std::process::id());
    publish(
        &owner,
        json!({"integration": "everything-local", "slug": "jailed", "name": "Jailed",
               "config": {"marker": marker}}),
    )
    .await;
    let process = owner.get("/api/v1/connections/jailed/process").await;
    let pid = process.body["pid"].as_u64().expect("a child runs") as u32;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let child_uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_owned();
    assert!(child_uid.contains("65534"), "{child_uid}");
    // The key file is the server's alone: nobody cannot open it.
    let key = db.data_dir().join("secret-keys.json");
    let meta = std::fs::metadata(&key).expect("the key file exists");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), 0);
    let read_as_nobody = std::process::Command::new("runuser")
        .args(["-u", "nobody", "--", "cat"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        !read_as_nobody.status.success(),
        "nobody could read the key file"
    );
}

/// The integration catalog: listed with how each entry was verified;
/// creating a connection from an entry checks its settings (a missing one
/// is named, nothing is saved) and seals the credential it produces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_created_from_the_integration_catalog() {
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = gateway_server(&db, &[]);
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    let list = owner.get("/api/v1/integrations").await;
    assert_eq!(list.status, 200);
    let entries = list.body.as_array().unwrap();
    let by_id = |id: &str| entries.iter().find(|e| e["id"] == id).cloned().unwrap();
    for id in [
        "everything",
        "memory",
        "filesystem",
        "sequential-thinking",
        "notion",
        "stripe",
        "sentry",
        "hubspot",
        "github",
    ] {
        assert_eq!(by_id(id)["verified"], "registry", "{id}");
    }
    assert_eq!(by_id("notion")["package"], "@notionhq/notion-mcp-server");

    // A missing required setting is named; nothing is created.
    let r = owner
        .post(
            "/api/v1/connections/from-integration",
            json!({"integration": "notion", "config": {}}),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert!(r.error_message().contains("'api_token'"), "{:?}", r.body);
    let r = owner
        .post(
            "/api/v1/connections/from-integration",
            json!({"integration": "nope"}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM connections").await, 0);
    // The catalog's own pins (checked here so a bump cannot go unnoticed).
    assert_eq!(by_id("sequential-thinking")["version"], "2026.8.31");

    // A stdio entry runs its pinned command line without the operator
    // listing `npx`; `npx` with any other package is refused.
    let r = owner
        .post(
            "/api/v1/connections/from-integration",
            json!({"integration": "sequential-thinking"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["command"], "npx");
    assert_eq!(
        r.body["args"],
        json!([
            "-y",
            "@modelcontextprotocol/server-sequential-thinking@2026.8.31"
        ])
    );
    let r = owner
        .post(
            "/api/v1/connections",
            json!({"slug": "sneaky", "name": "Sneaky", "transport": "stdio", "command": "npx",
                   "args": ["-y", "some-other-package"]}),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(r.error_message().contains("catalog"), "{:?}", r.body);

    // A remote entry: its URL, the key as a sealed Authorization header.
    let key = "lin_api_planted_0123456789";
    let r = owner
        .post(
            "/api/v1/connections/from-integration",
            json!({"integration": "linear", "config": {"api_key": key}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["slug"], "linear");
    assert_eq!(r.body["transport"], "streamable_http");
    assert_eq!(r.body["url"], "https://mcp.linear.app/mcp");
    assert_eq!(r.body["secret_headers"], json!(["Authorization"]));
    assert!(!r.body.to_string().contains(key));
    assert_eq!(
        db.scalar_i64(&format!(
            "SELECT COUNT(*) FROM connection_secrets WHERE sealed LIKE '%{key}%'"
        ))
        .await,
        0
    );

    // The org's own entry: checked, listed as custom, used like the others.
    let custom = json!({
        "id": "acme-crm", "name": "ACME CRM", "description": "Our CRM's MCP server.",
        "transport": "streamable_http", "url": "https://crm.acme.test/mcp",
        "config": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "additionalProperties": false, "required": ["token"],
            "properties": {"token": {"type": "string", "title": "CRM token", "secret": true,
                "x-switchboard-target": "header:Authorization", "x-switchboard-format": "Bearer {value}"}}}
    });
    let mut broken = custom.clone();
    broken.as_object_mut().unwrap().remove("url");
    let r = owner.post("/api/v1/integrations", broken).await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    let r = owner.post("/api/v1/integrations", custom.clone()).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = owner.post("/api/v1/integrations", custom).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    let list = owner.get("/api/v1/integrations").await;
    let mine = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "acme-crm")
        .cloned()
        .unwrap();
    assert_eq!(mine["verified"], "custom");
    let r = owner
        .post(
            "/api/v1/connections/from-integration",
            json!({"integration": "acme-crm", "config": {}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.error_message().contains("'token'"), "{:?}", r.body);
    let r = owner
        .post(
            "/api/v1/connections/from-integration",
            json!({"integration": "acme-crm", "config": {"token": "crm-secret-42abc"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["url"], "https://crm.acme.test/mcp");
    assert_eq!(
        owner.delete("/api/v1/integrations/acme-crm").await.status,
        204
    );
}

use common::test_upstream_bin;

/// Faults of a stdio upstream mid-call, with the test upstream's fault
/// tools: killed during a call, exiting during a call, writing garbage to
/// its stdout, answering over the size limit. Each gets a clear error, the
/// next call gets a fresh child, and no zombie is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_upstream_that_dies_or_misbehaves_mid_call() {
    let bin = test_upstream_bin();
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = gateway_server(&db, &[("SWITCHBOARD_GATEWAY__MAX_RESPONSE_BYTES", "65536")]);
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    publish(
        &owner,
        json!({"slug": "fx", "name": "Fixture", "transport": "stdio", "command": bin, "args": ["stdio"]}),
    )
    .await;
    grant_org(&owner, "fx").await;
    let token = db.token("owner@alpha.test", "alpha", "personal", ALL_SCOPES);
    let client = Mcp::at(&server.url("/mcp/servers/fx"), Some(&token));
    let pid_of = |r: &common::Resp| {
        message(r)["result"]["structuredContent"]["pid"]
            .as_u64()
            .unwrap() as u32
    };
    let first = pid_of(&client.call_2026("pid", json!({})).await);

    // Killed while a call is in flight.
    let url = server.url("/mcp/servers/fx");
    let token2 = token.clone();
    let hanging = tokio::spawn(async move {
        Mcp::at(&url, Some(&token2))
            .call_2026("hang", json!({"seconds": 30}))
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = std::process::Command::new("kill")
        .args(["-9", &first.to_string()])
        .status();
    let r = tokio::time::timeout(Duration::from_secs(10), hanging)
        .await
        .expect("the call ended")
        .unwrap();
    let m = message(&r);
    assert_eq!(m["result"]["isError"], true, "{m}");
    assert!(
        text_of(&m).contains("closed the connection before answering"),
        "{m}"
    );
    let second = pid_of(&client.call_2026("pid", json!({})).await);
    assert_ne!(first, second, "a new child serves the next call");
    std::thread::sleep(Duration::from_millis(300));
    let status = std::fs::read_to_string(format!("/proc/{first}/status")).unwrap_or_default();
    assert!(
        !status.contains("zombie"),
        "the killed child is a zombie: {status}"
    );

    // Exits by itself during a call.
    let r = client.call_2026("crash", json!({})).await;
    assert!(
        text_of(&message(&r)).contains("closed the connection"),
        "{:?}",
        r.body
    );
    let third = pid_of(&client.call_2026("pid", json!({})).await);
    assert_ne!(second, third);

    // Garbage on its stdout: the call still ends clearly, and the next works.
    let r = client.call_2026("garbage", json!({})).await;
    let m = message(&r);
    assert!(m["result"].is_object() || m["error"].is_object(), "{m}");
    let r = client
        .call_2026("echo", json!({"text": "after garbage"}))
        .await;
    assert_eq!(text_of(&message(&r)), "after garbage");

    // Over the size limit: refused with the figures, the child keeps serving.
    let r = client
        .call_2026("big_output", json!({"bytes": 200_000}))
        .await;
    let text = text_of(&message(&r));
    assert!(
        text.contains("over the gateway's limit of 65536 bytes"),
        "{text}"
    );
    let r = client
        .call_2026("echo", json!({"text": "still here"}))
        .await;
    assert_eq!(text_of(&message(&r)), "still here");
    let process = owner.get("/api/v1/connections/fx/process").await;
    assert!(
        process.body["starts"].as_u64().unwrap() >= 3,
        "{:?}",
        process.body
    );
}

/// The catalog refreshes itself: on a schedule (a new connection's catalog
/// is fetched without anyone asking), and when the upstream says its tool
/// list changed (the new tool is listed shortly after, with no refresh
/// call).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogs_refresh_on_schedule_and_on_list_changed() {
    let bin = test_upstream_bin();
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = gateway_server(&db, &[("SWITCHBOARD_GATEWAY__CATALOG_REFRESH_SECS", "1")]);
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    let r = owner
        .post(
            "/api/v1/connections",
            json!({"slug": "fx", "name": "Fixture", "transport": "stdio", "command": bin, "args": ["stdio"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["tool_count"], 0);
    grant_org(&owner, "fx").await;
    // Scheduled: nobody refreshes, the catalog arrives.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = owner.get("/api/v1/connections/fx").await;
        if c.body["tool_count"].as_u64().unwrap_or(0) > 5 {
            assert_eq!(c.body["health"], "connected");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the catalog never arrived: {:?}",
            c.body
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // list_changed: the upstream adds a tool and says so.
    let token = db.token("owner@alpha.test", "alpha", "personal", ALL_SCOPES);
    let client = Mcp::at(&server.url("/mcp/servers/fx"), Some(&token));
    let names = tool_names(&message(&client.stateless("tools/list", json!({})).await));
    assert!(!names.contains(&"fresh_tool".to_owned()));
    let r = client
        .call_2026("add_tool", json!({"name": "fresh_tool"}))
        .await;
    assert_eq!(text_of(&message(&r)), "added fresh_tool");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let names = tool_names(&message(&client.stateless("tools/list", json!({})).await));
        if names.contains(&"fresh_tool".to_owned()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "fresh_tool never listed: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = client.call_2026("fresh_tool", json!({})).await;
    assert_eq!(text_of(&message(&r)), "fresh_tool ran");

    // The health carries the median latency of the last calls and when it
    // was last checked, written every few seconds (here every second).
    let before = owner.get("/api/v1/connections/fx").await.body;
    let checked_before = before["health_checked_at"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        !checked_before.is_empty(),
        "checked at the refresh: {before}"
    );
    client.call_2026("test_simple_text", json!({})).await;
    let view = eventually("the latency in the health", || async {
        let v = owner.get("/api/v1/connections/fx").await.body;
        let recorded = v["latency_ms"].as_i64().is_some()
            && v["health_checked_at"]
                .as_str()
                .is_some_and(|t| t > checked_before.as_str());
        (recorded, v)
    })
    .await;
    let latency = view["latency_ms"].as_i64().unwrap_or(-1);
    assert!((0..60_000).contains(&latency), "{view}");
    assert_eq!(view["health"], "connected", "{view}");
}

/// The next SSE event's JSON `data` on an open stream, within `secs`.
async fn next_event(
    stream: &mut reqwest::Response,
    buffer: &mut String,
    secs: u64,
) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let data: String = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .collect();
            if let Ok(v) = serde_json::from_str::<Value>(&data) {
                return Some(v);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.chunk()).await {
            Ok(Ok(Some(bytes))) => {
                buffer.push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n"))
            }
            _ => return None,
        }
    }
}

// Callers of a virtual server hear of list changes: a 2026-07-28
// `subscriptions/listen` stream and a 2025-11-25 session's own stream.
// Both outlive the request that opened them: once the caller's grant is
// gone, the next change ends the listen stream with a refusal, and the
// session is told nothing more about a server it may no longer use.
#[tokio::test]
async fn list_changes_reach_both_eras_until_the_grant_is_removed() {
    let bin = test_upstream_bin();
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = gateway_server(&db, &[]);
    let owner = Api::with_token(
        &server,
        &db.token("owner@alpha.test", "alpha", "personal", ALL_SCOPES),
    );
    let dev = add_member(&owner, "dev@alpha.test", "member").await;
    publish(
        &owner,
        json!({"slug": "fx", "name": "fx", "transport": "stdio", "command": bin, "args": ["stdio"]}),
    )
    .await;
    let me = owner.get("/api/v1/me").await.body;
    let mine = me["membership_id"].as_str().expect("membership").to_owned();
    grant(&owner, "fx", json!({"kind": "member", "id": mine})).await;
    let granted = grant(&owner, "fx", json!({"kind": "member", "id": dev})).await;
    let grant_id = id_where(&granted["grants"], "grantee_id", &dev);
    let dev_token = db.token("dev@alpha.test", "alpha", "personal", "connections:use");
    let url = server.url("/mcp/servers/fx");
    let (mut stream, mut buffer) =
        listen(&url, &dev_token, json!({"toolsListChanged": true})).await;

    // A 2025-11-25 session hears of changes on its own stream.
    let (_legacy, mut session_stream) = legacy_session(&url, &dev_token).await;
    let mut session_buffer = String::new();

    let fx = Mcp::at(&url, Some(&dev_token));
    fx.call_2026("add_tool", json!({"name": "first_added"}))
        .await;
    let changed = next_event(&mut stream, &mut buffer, 5)
        .await
        .expect("a change");
    assert_eq!(
        changed["method"], "notifications/tools/list_changed",
        "{changed}"
    );
    let changed = next_event(&mut session_stream, &mut session_buffer, 5)
        .await
        .expect("a change on the session's stream");
    assert_eq!(
        changed["method"], "notifications/tools/list_changed",
        "{changed}"
    );

    let r = owner
        .delete(&format!("/api/v1/connections/fx/grants/{grant_id}"))
        .await;
    assert!(r.status == 200 || r.status == 204, "{:?}", r.body);
    let admin = Mcp::at(
        &url,
        Some(&db.token("owner@alpha.test", "alpha", "personal", ALL_SCOPES)),
    );
    admin
        .call_2026("add_tool", json!({"name": "second_added"}))
        .await;
    let ended = next_event(&mut stream, &mut buffer, 5)
        .await
        .expect("the end");
    // The session is told nothing more either.
    let after = next_event(&mut session_stream, &mut session_buffer, 2).await;
    assert!(after.is_none(), "{after:?}");
    // A new stream is refused outright, before any acknowledgment.
    let r = fx
        .stateless(
            "subscriptions/listen",
            json!({"notifications": {"toolsListChanged": true}}),
        )
        .await;
    let refused = message(&r);
    assert_eq!(refused["error"]["code"], -32001, "{:?}", r.body);
    assert!(!r.body.to_string().contains("acknowledged"), "{:?}", r.body);
    assert_eq!(ended["error"]["code"], -32001, "{ended}");
    assert!(
        ended["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("may no longer use the MCP server 'fx'")),
        "{ended}"
    );
}

/// Opens a 2026-07-28 `subscriptions/listen` stream on `url` for `filter`
/// and reads its acknowledgment.
async fn listen(url: &str, token: &str, filter: Value) -> (reqwest::Response, String) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen", "params": {
        "_meta": common::mcp::meta_2026(), "notifications": filter}});
    let mut stream = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", common::mcp::V2026)
        .header("mcp-method", "subscriptions/listen")
        .body(body.to_string())
        .send()
        .await
        .expect("listen");
    assert_eq!(stream.status(), 200);
    let mut buffer = String::new();
    let ack = next_event(&mut stream, &mut buffer, 5)
        .await
        .expect("the acknowledgment");
    assert!(
        ack["method"]
            .as_str()
            .is_some_and(|m| m.contains("acknowledged")),
        "{ack}"
    );
    (stream, buffer)
}

/// Opens a 2025-11-25 session on `url` and its own stream.
async fn legacy_session(url: &str, token: &str) -> (Mcp, reqwest::Response) {
    let mut session = Mcp::at(url, Some(token));
    session.initialize().await;
    let id = session.session.clone().expect("session");
    let stream = session_stream(url, token, &id).await;
    (session, stream)
}

/// The own stream (GET) of the 2025-11-25 session `id`, opened on `url`.
async fn session_stream(url: &str, token: &str, id: &str) -> reqwest::Response {
    let stream = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", common::mcp::V2025)
        .header("mcp-session-id", id)
        .send()
        .await
        .expect("the session's stream");
    assert_eq!(stream.status(), 200);
    stream
}

// Subscriptions pass through: a caller subscribed to a resource hears of
// its updates (a 2026-07-28 listen stream with `resourceSubscriptions`, a
// 2025-11-25 session with `resources/subscribe`), whatever era the
// upstream speaks, and of no other resource's.
#[tokio::test]
async fn resource_updates_reach_subscribers_in_both_eras() {
    let bin = test_upstream_bin();
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = gateway_server(&db, &[]);
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    // The same fixture as a 2026-07-28 upstream and as a 2025-11-25 one.
    for (slug, args) in [
        ("now", json!(["stdio"])),
        ("old", json!(["stdio", "--legacy"])),
    ] {
        publish(
            &owner,
            json!({"slug": slug, "name": slug, "transport": "stdio", "command": bin, "args": args}),
        )
        .await;
        grant_org(&owner, slug).await;
    }
    let token = db.token("owner@alpha.test", "alpha", "personal", ALL_SCOPES);
    let watched = "test://watched-resource";
    for slug in ["now", "old"] {
        let url = server.url(&format!("/mcp/servers/{slug}"));
        let (mut stream, mut buffer) =
            listen(&url, &token, json!({"resourceSubscriptions": [watched]})).await;
        let (session, mut session_stream) = legacy_session(&url, &token).await;
        let mut session_buffer = String::new();
        let r = message(
            &session
                .legacy("resources/subscribe", json!({"uri": watched}))
                .await,
        );
        assert!(r["result"].is_object(), "{slug}: {r}");

        let caller = Mcp::at(&url, Some(&token));
        caller
            .call_2026("update_resource", json!({"uri": "test://static-text"}))
            .await;
        caller
            .call_2026("update_resource", json!({"uri": watched}))
            .await;
        for (era, s, b) in [
            ("2026-07-28", &mut stream, &mut buffer),
            ("2025-11-25", &mut session_stream, &mut session_buffer),
        ] {
            let n = next_event(s, b, 5)
                .await
                .unwrap_or_else(|| panic!("{slug}, {era}: no update"));
            assert_eq!(
                n["method"], "notifications/resources/updated",
                "{slug}, {era}: {n}"
            );
            assert_eq!(n["params"]["uri"], watched, "{slug}, {era}: {n}");
        }

        // Unsubscribed, the session hears nothing more; the stream still does.
        let r = message(
            &session
                .legacy("resources/unsubscribe", json!({"uri": watched}))
                .await,
        );
        assert!(r["result"].is_object(), "{slug}: {r}");
        caller
            .call_2026("update_resource", json!({"uri": watched}))
            .await;
        let n = next_event(&mut stream, &mut buffer, 5)
            .await
            .unwrap_or_else(|| panic!("{slug}: the stream's second update"));
        assert_eq!(n["params"]["uri"], watched, "{slug}: {n}");
        let after = next_event(&mut session_stream, &mut session_buffer, 2).await;
        assert!(after.is_none(), "{slug}: {after:?}");
    }
    let audited = db
        .scalar_i64(
            "SELECT COUNT(*) FROM audit_events WHERE method IN ('resources/subscribe', 'resources/unsubscribe')",
        )
        .await;
    assert!(audited >= 4, "{audited}");
}

// A 2025-11-25 session's subscriptions are kept with the session: the
// replica that picks it up subscribes its own upstream session again.
#[tokio::test]
async fn a_session_keeps_its_resource_subscriptions_on_another_replica() {
    let bin = test_upstream_bin();
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let first = gateway_server(&db, &[]);
    let owner = Api::sign_in(&first, "owner@alpha.test", PASSWORD).await;
    publish(
        &owner,
        json!({"slug": "now", "name": "now", "transport": "stdio", "command": bin, "args": ["stdio"]}),
    )
    .await;
    grant_org(&owner, "now").await;
    let token = db.token("owner@alpha.test", "alpha", "personal", ALL_SCOPES);
    let watched = "test://watched-resource";
    let (session, _first_stream) = legacy_session(&first.url("/mcp/servers/now"), &token).await;
    let r = message(
        &session
            .legacy("resources/subscribe", json!({"uri": watched}))
            .await,
    );
    assert!(r["result"].is_object(), "{r}");

    // The same session, on a second replica.
    let second = gateway_server(&db, &[]);
    let url = second.url("/mcp/servers/now");
    let id = session.session.clone().expect("session");
    let mut stream = session_stream(&url, &token, &id).await;
    let mut buffer = String::new();
    Mcp::at(&url, Some(&token))
        .call_2026("update_resource", json!({"uri": watched}))
        .await;
    let n = next_event(&mut stream, &mut buffer, 5)
        .await
        .expect("an update on the second replica");
    assert_eq!(n["method"], "notifications/resources/updated", "{n}");
    assert_eq!(n["params"]["uri"], watched, "{n}");
}

/// Polls `check` every 200 ms for up to 10 s; the last value on failure.
async fn eventually<F, Fut>(what: &str, mut check: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (bool, Value)>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (done, seen) = check().await;
        if done {
            return seen;
        }
        assert!(Instant::now() < deadline, "{what} never happened: {seen}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn names_in(msg: &Value, list: &str, key: &str) -> Vec<String> {
    msg["result"][list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {msg}"))
        .iter()
        .map(|i| i[key].as_str().unwrap_or_default().to_owned())
        .collect()
}

// Resources, resource templates and prompts are in the catalog with the
// tools: listed from it (not by asking the upstream on every request),
// refreshed when the upstream says a list changed. Tools the gateway
// cannot offer are named in the connection's health.
#[tokio::test]
async fn lists_come_from_the_catalog_and_hidden_tools_show_in_health() {
    let bin = test_upstream_bin();
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = gateway_server(&db, &[]);
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    for slug in ["fx", "other"] {
        publish(
            &owner,
            json!({"slug": slug, "name": slug, "transport": "stdio", "command": bin, "args": ["stdio"]}),
        )
        .await;
        grant_org(&owner, slug).await;
    }
    let token = db.token("owner@alpha.test", "alpha", "personal", ALL_SCOPES);
    let fx = Mcp::at(&server.url("/mcp/servers/fx"), Some(&token));
    let list = |method: &'static str| {
        let fx = &fx;
        async move { message(&fx.stateless(method, json!({})).await) }
    };
    let resources = names_in(&list("resources/list").await, "resources", "uri");
    assert_eq!(
        resources,
        [
            "test://static-text",
            "test://static-binary",
            "test://watched-resource"
        ]
    );
    let templates = list("resources/templates/list").await;
    assert_eq!(
        names_in(&templates, "resourceTemplates", "uriTemplate"),
        ["test://template/{id}/data"]
    );
    let prompts = names_in(&list("prompts/list").await, "prompts", "name");
    assert!(
        prompts.contains(&"test_prompt_with_image".to_owned()),
        "{prompts:?}"
    );
    // A cursor means nothing here: everything comes in one page.
    let r = message(&fx.stateless("prompts/list", json!({"cursor": "2"})).await);
    assert_eq!(r["error"]["code"], -32602, "{r}");

    // The upstream adds a prompt and says so: listed once the catalog has it.
    let r = fx.call_2026("test_trigger_prompt_change", json!({})).await;
    let added = text_of(&message(&r))
        .trim_start_matches("added ")
        .to_owned();
    assert!(added.starts_with("dynamic_prompt_"), "{added}");
    eventually("the added prompt being listed", || async {
        let m = list("prompts/list").await;
        (names_in(&m, "prompts", "name").contains(&added), m)
    })
    .await;
    // The child dies; a new one (started on demand) knows nothing of that
    // prompt, and the list still has it: it is the catalog's, not a live
    // call's.
    let pid = text_of(&message(&fx.call_2026("pid", json!({})).await));
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let prompts = names_in(&list("prompts/list").await, "prompts", "name");
    assert!(prompts.contains(&added), "{prompts:?}");
    let again = text_of(&message(&fx.call_2026("pid", json!({})).await));
    assert_ne!(again, pid, "a new child answers");

    // A tool no client could take (a name over 128 characters) is not
    // offered, and the connection's health says which and why.
    let long = "t".repeat(130);
    fx.call_2026("add_tool", json!({"name": long})).await;
    let view = eventually("the long tool in the health", || async {
        let v = owner.get("/api/v1/connections/fx").await.body;
        (
            v["hidden_tools"].as_array().is_some_and(|h| !h.is_empty()),
            v,
        )
    })
    .await;
    assert_eq!(view["hidden_tools"][0]["name"], long);
    assert_eq!(
        view["hidden_tools"][0]["reason"],
        "the name is empty or longer than 128 characters"
    );
    let names = tool_names(&list("tools/list").await);
    assert!(!names.contains(&long));
    let status = owner.get("/api/v1/status").await.body;
    let attention = status["connections"]["attention"].to_string();
    assert!(attention.contains(r#""hidden_tools":1"#), "{status}");
    assert!(attention.contains(r#""slug":"fx""#), "{status}");

    // In a saved server over fx and other, tools are `fx_{tool}`: a name
    // that fits alone but not prefixed is refused at saving time, and left
    // out when it appears later.
    let r = owner
        .post(
            "/api/v1/virtual-servers",
            json!({"slug": "both", "name": "Both", "connections": ["fx", "other"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let fits_alone = "u".repeat(126);
    fx.call_2026("add_tool", json!({"name": fits_alone})).await;
    let view = eventually("the prefixed tool in the health", || async {
        let v = owner.get("/api/v1/connections/fx").await.body;
        (v["hidden_tools"].to_string().contains(&fits_alone), v)
    })
    .await;
    assert!(
        view["hidden_tools"].to_string().contains(&format!(
            "left out of saved virtual servers: 'fx_{fits_alone}' would be 129 characters, over 128"
        )),
        "{view}"
    );
    assert!(tool_names(&list("tools/list").await).contains(&fits_alone));
    let both = Mcp::at(&server.url("/mcp/servers/both"), Some(&token));
    let combined = tool_names(&message(&both.stateless("tools/list", json!({})).await));
    assert!(combined.contains(&"fx_echo".to_owned()), "{combined:?}");
    assert!(
        combined.iter().all(|n| n.chars().count() <= 128),
        "{combined:?}"
    );
    let r = message(&both.call_2026(&format!("fx_{fits_alone}"), json!({})).await);
    assert!(
        r["error"].is_object() || r["result"]["isError"] == true,
        "{r}"
    );
}
