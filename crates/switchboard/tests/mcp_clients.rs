//! Real MCP clients against the real binary: the official Python SDK
//! (legacy and 2026-07-28 modes), the TypeScript SDK, the Inspector CLI, and
//! the official conformance suite (`@modelcontextprotocol/conformance`
//! 0.2.0-alpha.12 under Node 22) scenario by scenario. `scripts/mcp-tools.sh`
//! installs them (the test command runs it first).
//!
//! The conformance suite cannot send an Authorization header, so a small
//! loopback proxy (`tests/clients/auth_proxy.mjs`) adds a test token and
//! passes Host and Origin through unchanged: the product has no bypass.
// Test code states its expectations: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
// A test that meets an unexpected shape should stop right there.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::mcp::*;
use common::*;
use serde_json::{Value, json};

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.stdin(Stdio::null()).output().expect("spawn");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs one of the client drivers and returns its JSON report.
fn driver(
    program: &str,
    script: &str,
    url: &str,
    token: &str,
    mode: &str,
    calls: &[(&str, Value)],
) -> Value {
    let tools = tools_dir();
    let mut cmd = Command::new(tools.join(program));
    cmd.arg(clients_dir().join(script)).args([
        "--url",
        url,
        "--token",
        token,
        "--mode",
        mode,
        "--timeout",
        "60",
    ]);
    cmd.env("SWITCHBOARD_MCP_TOOLS", &tools);
    for (name, args) in calls {
        cmd.args(["--call", name, "--args", &args.to_string()]);
    }
    let (ok, stdout, stderr) = run(&mut cmd);
    assert!(ok, "{script} --mode {mode} failed:\n{stderr}\n{stdout}");
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}):\n{stdout}\n{stderr}"))
}

fn check_report(report: &Value, what: &str, expected_protocol: &str) {
    assert_eq!(report["protocol"], expected_protocol, "{what}: {report}");
    let tools: Vec<&str> = report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for t in ["whoami", "listMyTasks", "updateTaskStatus", "getTask"] {
        assert!(tools.contains(&t), "{what}: {t} missing from {tools:?}");
    }
    let calls = report["calls"].as_array().unwrap();
    assert_eq!(calls[0]["name"], "whoami");
    assert_eq!(calls[0]["isError"], false, "{what}: {report}");
    assert_eq!(
        calls[0]["structuredContent"]["account"]["email"],
        "ada@example.com"
    );
    assert_eq!(calls[1]["isError"], false, "{what}: {report}");
    assert_eq!(
        calls[1]["structuredContent"]["items"][0]["title"], "ship it",
        "{what}: {report}"
    );
}

async fn owner_with_a_task(db: &TestDb, server: &Server) -> String {
    let token = db.token("ada@example.com", "acme", "personal", ALL_SCOPES);
    let api = Api::with_token(server, &token);
    let me = api.get("/api/v1/me").await.body;
    let pid = api
        .post("/api/v1/projects", json!({"name": "P"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = api
        .post(
            "/api/v1/tasks",
            json!({"project_id": pid, "title": "ship it", "assignee_ids": [me["membership_id"]]}),
        )
        .await;
    assert_eq!(t.status, 201);
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_typescript_and_inspector_clients_list_and_call_tools() {
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("ada@example.com", "acme");
    let server = Server::start(&db);
    let token = owner_with_a_task(&db, &server).await;
    let url = server.url("/mcp");
    let calls = [("whoami", json!({})), ("listMyTasks", json!({}))];

    let py = |mode: &str| driver("py/bin/python", "py_client.py", &url, &token, mode, &calls);
    check_report(&py("legacy"), "python legacy", V2025);
    check_report(&py("2026-07-28"), "python 2026-07-28", V2026);
    check_report(&py("auto"), "python auto", V2026);
    let ts = |mode: &str| {
        driver(
            "node22/bin/node",
            "ts_client.mjs",
            &url,
            &token,
            mode,
            &calls,
        )
    };
    check_report(&ts("legacy"), "typescript legacy", V2025);
    check_report(&ts("auto"), "typescript auto", V2026);

    // A client without the token is refused, and says so.
    let tools = tools_dir();
    let (ok, _, _) = run(Command::new(tools.join("py/bin/python"))
        .arg(clients_dir().join("py_client.py"))
        .args([
            "--url",
            &url,
            "--token",
            &"0".repeat(64),
            "--mode",
            "legacy",
            "--timeout",
            "30",
        ]));
    assert!(!ok, "a bad token must not connect");

    // The Inspector CLI lists the tools.
    let (ok, stdout, stderr) = run(Command::new(tools.join("bin/mcp-inspector-cli"))
        .current_dir(db.dir.path())
        .args([
            "--cli",
            &url,
            "--transport",
            "http",
            "--header",
            &format!("Authorization: Bearer {token}"),
            "--method",
            "tools/list",
        ]));
    assert!(ok, "inspector failed: {stderr}");
    let listed: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("inspector output ({e}): {stdout}"));
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"whoami") && names.contains(&"listMyTasks"),
        "{names:?}"
    );

    // Each client request was audited with the client's surface and token.
    assert!(db.scalar_i64("SELECT COUNT(*) FROM audit_events WHERE surface = 'mcp' AND action = 'whoami' AND outcome = 'ok'").await >= 5);
}

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_proxy(target: &str, token: &str) -> (Proxy, u16) {
    let tools = tools_dir();
    let mut child = Command::new(tools.join("node22/bin/node"))
        .arg(clients_dir().join("auth_proxy.mjs"))
        .args(["--target", target, "--token", token])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the proxy");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("proxy line");
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("proxy said {line:?}"));
    (Proxy(child), port)
}

/// The scenarios that do not need the reference fixture's tools, resources
/// and prompts (those run through the gateway's fixture server).
const SCENARIOS_2025: &[&str] = &[
    "server-initialize",
    "ping",
    "logging-set-level",
    "tools-list",
    "completion-complete",
    "resources-list",
    "prompts-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
    "server-session-lifecycle",
];
const SCENARIOS_2026: &[&str] = &[
    "server-stateless",
    "tools-list",
    "completion-complete",
    "resources-list",
    "prompts-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
    "sep-2164-resource-not-found",
    "caching",
    "http-header-validation",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_conformance_scenarios_pass() {
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("ada@example.com", "acme");
    let token = db.token("ada@example.com", "acme", "personal", ALL_SCOPES);
    // The suite addresses the proxy as localhost:PORT; the operator's
    // allow-list admits that host (any port), as it would a load balancer's.
    let cfg = db.dir.path().join("conformance.toml");
    std::fs::write(&cfg, "[server]\nallowed_hosts = [\"localhost\"]\n").unwrap();
    let server = Server::start_with(&db, &["--config", cfg.to_str().unwrap()], &[]);
    let (_proxy, port) = start_proxy(&server.base, &token);
    let url = format!("http://localhost:{port}/mcp");
    let expected = clients_dir().join("conformance-expected-failures.yaml");

    let tools = tools_dir();
    let mut failures = Vec::new();
    let mut passed = 0;
    for (version, scenarios) in [
        ("2025-11-25", SCENARIOS_2025),
        ("2026-07-28", SCENARIOS_2026),
    ] {
        for scenario in scenarios.iter().copied() {
            let mut cmd = Command::new(tools.join("bin/conformance"));
            cmd.current_dir(db.dir.path()).args([
                "server",
                "--url",
                &url,
                "--scenario",
                scenario,
                "--spec-version",
                version,
            ]);
            if scenario == "server-stateless" {
                cmd.arg("--expected-failures").arg(&expected);
            }
            let (ok, stdout, stderr) = run(&mut cmd);
            let clean: String = stdout.replace('\u{1b}', "");
            let summary = clean
                .lines()
                .filter(|l| l.contains("Passed:") || l.contains("Baseline"))
                .collect::<Vec<_>>()
                .join(" | ");
            eprintln!(
                "conformance {version} {scenario}: {} {summary}",
                if ok { "ok" } else { "FAILED" }
            );
            if ok {
                passed += 1;
            } else {
                failures.push(format!("{version} {scenario}:\n{clean}\n{stderr}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "conformance failures:\n{}",
        failures.join("\n\n")
    );
    assert_eq!(passed, SCENARIOS_2025.len() + SCENARIOS_2026.len());
}
