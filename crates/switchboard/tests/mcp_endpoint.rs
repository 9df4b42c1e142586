//! The org MCP endpoint on the wire: both protocol eras on `/mcp`, legacy
//! sessions across processes, the exact HTTP refusals, `/mcp/rpc` batches,
//! bad input, pagination and the audit of every request.
// Test code states its expectations: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
// A test that meets an unexpected shape should stop right there.
#![allow(clippy::unwrap_used)]

mod common;

use common::mcp::*;
use common::*;
use serde_json::{Value, json};

/// An owner with a project and two tasks assigned to them (and one not).
async fn seed(server: &Server, token: &str) -> (String, Vec<String>) {
    let api = Api::with_token(server, token);
    let me = api.get("/api/v1/me").await.body;
    let mid = me["membership_id"].as_str().unwrap().to_owned();
    let p = api
        .post("/api/v1/projects", json!({"name": "Apollo"}))
        .await;
    assert_eq!(p.status, 201, "{:?}", p.body);
    let pid = p.body["id"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for (title, mine) in [("mine one", true), ("mine two", true), ("not mine", false)] {
        let assignees: Vec<&str> = if mine { vec![&mid] } else { vec![] };
        let t = api
            .post(
                "/api/v1/tasks",
                json!({"project_id": pid, "title": title, "assignee_ids": assignees}),
            )
            .await;
        assert_eq!(t.status, 201, "{:?}", t.body);
        tasks.push(t.body["id"].as_str().unwrap().to_owned());
    }
    (pid, tasks)
}

fn tool_names(m: &Value) -> Vec<String> {
    m["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

both_backends!(
    both_eras_serve_the_same_tools_and_every_request_is_audited,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let token = db.token("ada@example.com", "acme", "personal", ALL_SCOPES);
        let server = Server::start(&db);
        let (_, tasks) = seed(&server, &token).await;

        // 2025-11-25: a session, SSE answers.
        let mut legacy = Mcp::new(&server, Some(&token));
        let init = legacy.initialize().await;
        let init = message(&init);
        assert_eq!(init["result"]["protocolVersion"], V2025);
        assert_eq!(init["result"]["serverInfo"]["name"], "switchboard");
        let list = legacy.legacy("tools/list", json!({})).await;
        assert!(list.header("content-type").starts_with("text/event-stream"));
        let legacy_names = tool_names(&message(&list));
        for t in [
            "whoami",
            "listMyTasks",
            "updateTaskStatus",
            "createCommitEntry",
            "listTasks",
            "getRequirement",
            "removeMember",
        ] {
            assert!(
                legacy_names.contains(&t.to_owned()),
                "{t} missing from {legacy_names:?}"
            );
        }
        let mut sorted = legacy_names.clone();
        sorted.sort();
        assert_eq!(legacy_names, sorted, "tools are listed in name order");
        let tools = message(&list)["result"]["tools"].clone();
        let remove = tools
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "removeMember")
            .unwrap();
        assert_eq!(remove["annotations"]["destructiveHint"], true);
        let who = tools
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "whoami")
            .unwrap();
        assert_eq!(who["annotations"]["readOnlyHint"], true);
        assert_eq!(who["outputSchema"]["type"], "object");

        let me = structured(&legacy.call_legacy("whoami", json!({})).await);
        assert_eq!(me["account"]["email"], "ada@example.com");
        assert_eq!(me["role"], "owner");
        assert_eq!(me["token_kind"], "personal");
        assert_eq!(me["org"]["slug"], "acme");
        let mine = structured(&legacy.call_legacy("listMyTasks", json!({})).await);
        assert_eq!(mine["items"].as_array().unwrap().len(), 2);
        let ping = message(&legacy.legacy("ping", json!({})).await);
        assert_eq!(ping["result"], json!({}));
        let level = message(
            &legacy
                .legacy("logging/setLevel", json!({"level": "warning"}))
                .await,
        );
        assert_eq!(level["result"], json!({}));

        // 2026-07-28: stateless, per-request _meta, cache hints, same tools.
        let stateless = Mcp::new(&server, Some(&token));
        let d = stateless.stateless("server/discover", json!({})).await;
        assert_eq!(d.status, 200, "{:?}", d.body);
        let d = message(&d);
        assert!(
            d["result"]["supportedVersions"]
                .as_array()
                .unwrap()
                .contains(&json!(V2026)),
            "{d}"
        );
        let list = message(&stateless.stateless("tools/list", json!({})).await);
        assert_eq!(tool_names(&list), legacy_names);
        assert_eq!(list["result"]["cacheScope"], "private");
        assert!(list["result"]["ttlMs"].is_u64());
        let done = structured(
            &stateless
                .call_2026(
                    "updateTaskStatus",
                    json!({"task_id": tasks[0], "status": "IN_PROGRESS"}),
                )
                .await,
        );
        assert_eq!(done["status"], "IN_PROGRESS");
        // "My tasks" tools reach only the caller's tasks with a personal token.
        let r = message(
            &stateless
                .call_2026(
                    "updateTaskStatus",
                    json!({"task_id": tasks[2], "status": "IN_PROGRESS"}),
                )
                .await,
        );
        assert_eq!(r["result"]["isError"], true);
        assert!(
            r["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("not assigned to you"),
            "{r}"
        );
        let commit = structured(
            &stateless
                .call_2026(
                    "createCommitEntry",
                    json!({"task_id": tasks[0], "message": "wire it", "commit_hash": "abcdef1"}),
                )
                .await,
        );
        assert_eq!(commit["commit_hash"], "abcdef1");
        // An initialize carrying 2026 _meta only is not a 2026 method: 404 / -32601.
        let r = stateless.stateless("initialize", json!({})).await;
        assert_eq!(r.status, 404, "{:?}", r.body);
        assert_eq!(message(&r)["error"]["code"], -32601);
        let r = stateless.stateless("ping", json!({})).await;
        assert_eq!(r.status, 404);

        // Every MCP request is one audit event, with method, tool and outcome.
        let n = |q: &'static str| db.scalar_i64(q);
        assert_eq!(
            n("SELECT COUNT(*) FROM audit_events WHERE surface = 'mcp' AND method = 'initialize'")
                .await,
            1
        );
        assert_eq!(
            n("SELECT COUNT(*) FROM audit_events WHERE surface = 'mcp' AND method = 'tools/list'")
                .await,
            2
        );
        assert_eq!(n("SELECT COUNT(*) FROM audit_events WHERE surface = 'mcp' AND action = 'whoami' AND outcome = 'ok'").await, 1);
        assert_eq!(n("SELECT COUNT(*) FROM audit_events WHERE surface = 'mcp' AND action = 'updateTaskStatus' AND outcome = 'ok'").await, 1);
        assert_eq!(n("SELECT COUNT(*) FROM audit_events WHERE surface = 'mcp' AND action = 'updateTaskStatus' AND outcome = 'denied'").await, 1);
        assert_eq!(n("SELECT COUNT(*) FROM audit_events WHERE surface = 'mcp' AND action = 'createCommitEntry'").await, 1);
        assert_eq!(
            n("SELECT COUNT(*) FROM audit_events WHERE surface = 'mcp' AND method = 'ping'").await,
            1
        );
        assert_eq!(
            n("SELECT COUNT(*) FROM audit_events WHERE surface = 'mcp' AND token_id IS NULL").await,
            0
        );
        // The write's event names the use case it ran and the tool's arguments.
        let api = Api::with_token(&server, &token);
        let ev = api
            .get("/api/v1/audit-events?action=updateTaskStatus")
            .await;
        let items = ev.body["items"].as_array().unwrap();
        let ok = items
            .iter()
            .find(|e| e["outcome"] == "ok")
            .expect("ok event");
        assert_eq!(ok["args"]["operation"], "task.update");
        assert_eq!(ok["args"]["status"], "IN_PROGRESS");
        assert_eq!(ok["surface"], "mcp");
    }
);

both_backends!(
    a_legacy_session_survives_restarts_and_moves_between_replicas,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let token = db.token("ada@example.com", "acme", "personal", ALL_SCOPES);
        let mut a = Server::start(&db);
        let b = Server::start(&db);
        let mut on_a = Mcp::new(&a, Some(&token));
        on_a.initialize().await;
        let session = on_a.session.clone().unwrap();

        // The same session on another process sharing the database.
        let mut on_b = Mcp::new(&b, Some(&token));
        on_b.session = Some(session.clone());
        let me = structured(&on_b.call_legacy("whoami", json!({})).await);
        assert_eq!(me["account"]["email"], "ada@example.com");

        // The process that opened it dies; a new one picks the session up.
        a.signal("KILL");
        let c = Server::start(&db);
        let mut on_c = Mcp::new(&c, Some(&token));
        on_c.session = Some(session.clone());
        let r = on_c.legacy("tools/list", json!({})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert!(tool_names(&message(&r)).contains(&"whoami".to_owned()));

        // Someone else's token cannot ride the session.
        let api = Api::with_token(&c, &token);
        add_member(&api, "eve@example.com", "member").await;
        let eve = db.token("eve@example.com", "acme", "personal", "read:org,read:tasks");
        let mut as_eve = Mcp::new(&c, Some(&eve));
        as_eve.session = Some(session.clone());
        let r = as_eve.call_legacy("whoami", json!({})).await;
        assert_eq!(r.status, 404, "{:?}", r.body);

        // Ending it on one replica ends it everywhere.
        let r = on_b.delete_session().await;
        assert!(
            r.status == 200 || r.status == 202 || r.status == 204,
            "{}",
            r.status
        );
        let r = on_c.call_legacy("whoami", json!({})).await;
        assert_eq!(r.status, 404, "{:?}", r.body);
        let r = on_b.call_legacy("whoami", json!({})).await;
        assert_eq!(r.status, 404, "{:?}", r.body);
    }
);

both_backends!(refusals_on_the_wire_are_exact, |db: TestDb| async move {
    db.bootstrap("ada@example.com", "acme");
    let token = db.token("ada@example.com", "acme", "personal", "read:org,read:tasks");
    let server = Server::start(&db);
    let prm = format!("{}/.well-known/oauth-protected-resource/mcp", server.base);

    // No token: 401 with the resource-metadata challenge.
    let anon = Mcp::new(&server, None);
    let r = anon.call_2026("whoami", json!({})).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        format!("Bearer resource_metadata=\"{prm}\"")
    );
    // A bad token: 401 invalid_token, saying why.
    let bad = Mcp::new(&server, Some(&"0".repeat(64)));
    let r = bad.call_2026("whoami", json!({})).await;
    assert_eq!(r.status, 401);
    let ch = r.header("www-authenticate");
    assert!(
        ch.starts_with("Bearer error=\"invalid_token\"") && ch.contains(&prm),
        "{ch}"
    );
    // The metadata document names the resource and scopes.
    let doc = Api::new(&server)
        .get("/.well-known/oauth-protected-resource/mcp")
        .await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["resource"], format!("{}/mcp", server.base));
    assert_eq!(doc.body["authorization_servers"][0], server.base);
    assert!(
        doc.body["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("write:tasks"))
    );

    // DNS rebinding: a foreign Host or Origin is 403 even with a valid token.
    let ok = Mcp::new(&server, Some(&token));
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}, "_meta": meta_2026()}}).to_string();
    let std_headers = [("mcp-method", "tools/call"), ("mcp-name", "whoami")];
    let r = ok
        .post_raw(
            body.clone(),
            Some(V2026),
            &[std_headers[0], std_headers[1], ("host", "evil.example")],
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let r = ok
        .post_raw(
            body.clone(),
            Some(V2026),
            &[
                std_headers[0],
                std_headers[1],
                ("origin", "http://evil.example"),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let own_origin = server.base.clone();
    let r = ok
        .post_raw(
            body.clone(),
            Some(V2026),
            &[
                std_headers[0],
                std_headers[1],
                ("origin", own_origin.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // A tool whose scope the token lacks: 403 insufficient_scope naming it.
    let (_, tasks) = {
        let owner = db.token("ada@example.com", "acme", "personal", ALL_SCOPES);
        seed(&server, &owner).await
    };
    let r = ok
        .call_2026(
            "updateTaskStatus",
            json!({"task_id": tasks[0], "status": "IN_PROGRESS"}),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let ch = r.header("www-authenticate");
    assert!(
        ch.starts_with("Bearer error=\"insufficient_scope\", scope=\"write:tasks\""),
        "{ch}"
    );
    assert!(ch.contains(&prm), "{ch}");
    // …and it is not listed.
    let list = message(&ok.stateless("tools/list", json!({})).await);
    let names = tool_names(&list);
    assert!(
        !names.contains(&"updateTaskStatus".to_owned())
            && names.contains(&"listMyTasks".to_owned()),
        "{names:?}"
    );
    // The same on a legacy session.
    let mut legacy = Mcp::new(&server, Some(&token));
    legacy.initialize().await;
    let r = legacy
        .call_legacy(
            "updateTaskStatus",
            json!({"task_id": tasks[0], "status": "IN_PROGRESS"}),
        )
        .await;
    assert_eq!(r.status, 403);
    // Unknown tool: -32602, not a 404.
    let r = ok.call_2026("noSuchTool", json!({})).await;
    assert_eq!(message(&r)["error"]["code"], -32602, "{:?}", r.body);
    let r = legacy.call_legacy("noSuchTool", json!({})).await;
    assert_eq!(message(&r)["error"]["code"], -32602);
    // Nothing changed, and every refusal is audited.
    assert_eq!(
        db.scalar_i64("SELECT COUNT(*) FROM tasks WHERE status <> 'TODO'")
            .await,
        0
    );
    assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM audit_events WHERE action = 'updateTaskStatus' AND outcome = 'denied'").await, 2);
});

both_backends!(
    bad_input_gets_the_right_status_and_the_server_keeps_serving,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let token = db.token("ada@example.com", "acme", "personal", ALL_SCOPES);
        let server = Server::start(&db);
        let c = Mcp::new(&server, Some(&token));

        let r = c.post_raw("{not json".into(), Some(V2026), &[]).await;
        assert_eq!(r.status, 400);
        assert_eq!(r.body["error"]["code"], -32700);
        let r = c
            .post_raw(
                "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]".into(),
                Some(V2025),
                &[],
            )
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(r.body["error"]["code"], -32600);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("/mcp/rpc")
        );
        // Unknown method on the stateless wire: 404 / -32601.
        let r = c.stateless("tasks/frobnicate", json!({})).await;
        assert_eq!(r.status, 404);
        assert_eq!(message(&r)["error"]["code"], -32601);
        // Arguments that violate the schema: an error result naming the problem.
        let r = message(
            &c.call_2026(
                "updateTaskStatus",
                json!({"task_id": "x", "status": "FINISHED"}),
            )
            .await,
        );
        assert_eq!(r["result"]["isError"], true);
        assert!(
            r["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("/status"),
            "{r}"
        );
        let r = message(&c.call_2026("whoami", json!({"extra": 1})).await);
        assert_eq!(r["result"]["isError"], true);
        // Header and body disagree: 400 / -32020.
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}, "_meta": meta_2026()}}).to_string();
        let r = c
            .post_raw(
                body.clone(),
                Some(V2026),
                &[("mcp-method", "tools/call"), ("mcp-name", "listTasks")],
            )
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(message(&r)["error"]["code"], -32020);
        // An unsupported protocol version: 400 / -32022.
        let mut meta = meta_2026();
        meta["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
        let odd =
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}})
                .to_string();
        let r = c
            .post_raw(odd, Some("2099-01-01"), &[("mcp-method", "tools/list")])
            .await;
        assert_eq!(r.status, 400, "{:?}", r.body);
        // Wrong Accept and wrong Content-Type.
        let raw = reqwest::Client::new();
        let r = raw
            .post(server.url("/mcp"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .header("accept", "text/html")
            .header("mcp-protocol-version", V2026)
            .header("mcp-method", "tools/call")
            .header("mcp-name", "whoami")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 406);
        let r = raw
            .post(server.url("/mcp"))
            .bearer_auth(&token)
            .header("content-type", "text/plain")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", V2026)
            .header("mcp-method", "tools/call")
            .header("mcp-name", "whoami")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 415);
        // A request without a session on the legacy wire: 400, not a crash.
        let r = c
            .post_raw(
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string(),
                Some(V2025),
                &[],
            )
            .await;
        assert_eq!(r.status, 400);
        // Oversized bodies: 413.
        let big = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"whoami\",\"arguments\":{{\"x\":\"{}\"}}}}}}",
            "a".repeat(2 * 1024 * 1024)
        );
        let r = c
            .post_raw(
                big.clone(),
                Some(V2026),
                &[("mcp-method", "tools/call"), ("mcp-name", "whoami")],
            )
            .await;
        assert_eq!(r.status, 413);
        let r = rpc(&server, Some(&token), serde_json::from_str(&big).unwrap()).await;
        assert_eq!(r.status, 413);
        // Still serving.
        assert_eq!(
            structured(&c.call_2026("whoami", json!({})).await)["role"],
            "owner"
        );
    }
);

both_backends!(
    json_rpc_takes_batches_and_maps_every_refusal,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let token = db.token("ada@example.com", "acme", "personal", "read:org,read:tasks");
        let server = Server::start(&db);

        let batch = json!([
            {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            {"jsonrpc": "2.0", "id": "two", "method": "tools/call", "params": {"name": "whoami", "arguments": {}}},
            {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "whoami"}},
            {"jsonrpc": "1.0", "id": 4, "method": "ping"},
            {"jsonrpc": "2.0", "id": 5, "method": "resources/list"},
            {"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "updateTaskStatus", "arguments": {"task_id": "t", "status": "DONE"}}},
            {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "nope"}},
            {"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "getTask", "arguments": {"task_id": 5}}},
            {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "getTask", "arguments": {"task_id": "missing"}}},
            7
        ]);
        let r = rpc(&server, Some(&token), batch).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let out = r.body.as_array().expect("an array");
        assert_eq!(out.len(), 9, "the notification gets no entry: {out:?}");
        let by_id = |id: Value| {
            out.iter()
                .find(|o| o["id"] == id)
                .cloned()
                .unwrap_or(Value::Null)
        };
        assert!(by_id(json!(1))["result"]["tools"].as_array().unwrap().len() > 3);
        assert_eq!(
            by_id(json!("two"))["result"]["structuredContent"]["role"],
            "owner"
        );
        assert_eq!(by_id(json!(5))["error"]["code"], -32601);
        let scope = by_id(json!(6));
        assert_eq!(scope["error"]["code"], -32001);
        assert_eq!(scope["error"]["data"]["scopes"], json!(["write:tasks"]));
        assert_eq!(by_id(json!(7))["error"]["code"], -32602);
        assert_eq!(by_id(json!(8))["error"]["code"], -32602);
        let missing = by_id(json!(9));
        assert_eq!(missing["result"]["isError"], true, "{missing}");
        let invalid: Vec<&Value> = out
            .iter()
            .filter(|o| o["error"]["code"] == -32600)
            .collect();
        assert_eq!(
            invalid.len(),
            2,
            "the 1.0 request and the bare number: {out:?}"
        );

        let r = rpc(&server, Some(&token), json!([])).await;
        assert_eq!(r.body["error"]["code"], -32600);
        let r = reqwest::Client::new()
            .post(server.url("/mcp/rpc"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{oops")
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], -32700);
        let r = rpc(
            &server,
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;
        assert_eq!(r.status, 401);
        assert_eq!(r.body["error"]["code"], -32000);
        assert!(
            r.header("www-authenticate")
                .contains("oauth-protected-resource/mcp/rpc")
        );
        let many: Vec<Value> = (0..101)
            .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "ping"}))
            .collect();
        let r = rpc(&server, Some(&token), Value::Array(many)).await;
        assert_eq!(r.body["error"]["code"], -32600);

        // ?token= is refused unless the operator turns it on.
        let q = reqwest::Client::new()
            .post(format!("{}?token={token}", server.url("/mcp/rpc")))
            .header("content-type", "application/json")
            .body(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(q.status().as_u16(), 401);
        // Each request of a batch is its own audit event.
        assert_eq!(
            db.scalar_i64(
                "SELECT COUNT(*) FROM audit_events WHERE surface = 'rpc' AND action = 'whoami'"
            )
            .await,
            2
        );
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM audit_events WHERE surface = 'rpc' AND action = 'updateTaskStatus' AND outcome = 'denied'").await, 1);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_token_works_only_when_allowed_and_pages_follow_the_page_size() {
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("ada@example.com", "acme");
    let token = db.token("ada@example.com", "acme", "personal", ALL_SCOPES);
    let cfg = db.dir.path().join("mcp.toml");
    std::fs::write(&cfg, "[mcp]\nallow_query_token = true\npage_size = 3\n").unwrap();
    let server = Server::start_with(&db, &["--config", cfg.to_str().unwrap()], &[]);
    let q = reqwest::Client::new().post(format!("{}?token={token}", server.url("/mcp/rpc"))).header("content-type", "application/json").body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami"}}).to_string()).send().await.unwrap();
    assert_eq!(q.status().as_u16(), 200);
    let v: Value = q.json().await.unwrap();
    assert_eq!(v["result"]["structuredContent"]["role"], "owner");

    // tools/list in pages of 3, in order, on both surfaces.
    let c = Mcp::new(&server, Some(&token));
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let params = match &cursor {
            Some(cu) => json!({"cursor": cu}),
            None => json!({}),
        };
        let m = message(&c.stateless("tools/list", params).await);
        let page = tool_names(&m);
        assert!(page.len() <= 3);
        names.extend(page);
        pages += 1;
        match m["result"]["nextCursor"].as_str() {
            Some(n) => cursor = Some(n.to_owned()),
            None => break,
        }
    }
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted, "ordered, no repeats");
    assert_eq!(pages, names.len().div_ceil(3));
    assert!(names.len() >= 20, "{names:?}");
    let r = message(&c.stateless("tools/list", json!({"cursor": "zz"})).await);
    assert_eq!(r["error"]["code"], -32602);
    let r = rpc(
        &server,
        Some(&token),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;
    assert_eq!(r.body["result"]["tools"].as_array().unwrap().len(), 3);
    assert!(r.body["result"]["nextCursor"].is_string());

    // List tools page by the same size.
    let (pid, _) = seed(&server, &token).await;
    let api = Api::with_token(&server, &token);
    for i in 0..4 {
        api.post(
            "/api/v1/tasks",
            json!({"project_id": pid, "title": format!("extra {i}")}),
        )
        .await;
    }
    let first = structured(&c.call_2026("listTasks", json!({})).await);
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let mut seen = 3;
    let mut next = first["next_cursor"].as_str().map(str::to_owned);
    while let Some(cu) = next {
        let p = structured(&c.call_2026("listTasks", json!({"cursor": cu})).await);
        seen += p["items"].as_array().unwrap().len();
        next = p["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, 7);
}
