//! The refusals on the wire, from one table: each row is a request a user
//! would send and the answer docs/mcp.md and docs/gateway.md promise for
//! it, on every MCP surface.
// Test code states its expectations: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::mcp::{Mcp, message, rpc};
use common::{
    ALL_SCOPES, Api, Backend, PASSWORD, Server, TestDb, env_refs, operator_entry, stdio_settings,
    test_upstream_bin,
};
use serde_json::json;

/// What a row expects.
struct Expect {
    status: u16,
    /// A JSON-RPC error code in the body (`None`: a result).
    code: Option<i64>,
    /// The step-up challenge naming this scope.
    challenge: Option<&'static str>,
    /// No `Mcp-Session-Id` may be handed out.
    no_session: bool,
}

fn check(what: &str, r: &common::Resp, e: &Expect) {
    assert_eq!(r.status, e.status, "{what}: {:?}", r.body);
    let m = message(r);
    match e.code {
        Some(code) => assert_eq!(m["error"]["code"], code, "{what}: {m}"),
        None => assert!(m.get("result").is_some(), "{what}: {m}"),
    }
    if let Some(scope) = e.challenge {
        let challenge = r.header("www-authenticate");
        assert!(
            challenge.contains("insufficient_scope") && challenge.contains(scope),
            "{what}: {challenge}"
        );
    }
    if e.no_session {
        assert!(
            r.header("mcp-session-id").is_empty(),
            "{what}: a session was handed out"
        );
    }
}

fn init_body() -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "refusals", "version": "1"}}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_follow_the_documented_table_on_every_surface() {
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let mut env = stdio_settings(
        &db,
        &[operator_entry("fixture", &test_upstream_bin(), &["stdio"])],
    );
    env.push((
        "SWITCHBOARD_GATEWAY__ALLOW_LOOPBACK_UPSTREAMS".into(),
        "true".into(),
    ));
    let server = Server::start_with(&db, &[], &env_refs(&env));
    let owner = Api::sign_in(&server, "owner@alpha.test", PASSWORD).await;
    for (slug, grant) in [("granted", true), ("private", false)] {
        let r = owner
            .post(
                "/api/v1/connections/from-integration",
                json!({"integration": "fixture", "slug": slug}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let r = owner
            .post(&format!("/api/v1/connections/{slug}/refresh"), json!({}))
            .await;
        assert_eq!(r.body["health"], "connected", "{:?}", r.body);
        if grant {
            let me = owner.get("/api/v1/me").await.body;
            let mine = me["membership_id"].as_str().unwrap().to_owned();
            let r = owner
                .post(
                    &format!("/api/v1/connections/{slug}/grants"),
                    json!({"kind": "member", "id": mine}),
                )
                .await;
            assert_eq!(r.status, 201, "{:?}", r.body);
        }
    }
    let full = db.token("owner@alpha.test", "alpha", "personal", ALL_SCOPES);
    let no_connections = db.token(
        "owner@alpha.test",
        "alpha",
        "personal",
        "read:org,read:tasks",
    );
    let no_tasks = db.token(
        "owner@alpha.test",
        "alpha",
        "personal",
        "read:org,connections:use",
    );

    let forbidden_scope = |scope| Expect {
        status: 403,
        code: Some(-32001),
        challenge: Some(scope),
        no_session: true,
    };
    let not_found = Expect {
        status: 404,
        code: Some(-32001),
        challenge: None,
        no_session: true,
    };
    let ok = Expect {
        status: 200,
        code: None,
        challenge: None,
        no_session: false,
    };

    // The org endpoint.
    let mcp = Mcp::new(&server, Some(&no_tasks));
    check(
        "/mcp 2026 listMyTasks without read:tasks",
        &mcp.call_2026("listMyTasks", json!({})).await,
        &forbidden_scope("read:tasks"),
    );
    let mcp = Mcp::new(&server, Some(&no_connections));
    check(
        "/mcp 2026 {slug}/{tool} without connections:use",
        &mcp.call_2026("granted/echo", json!({"text": "x"})).await,
        &forbidden_scope("connections:use"),
    );
    let mut legacy = Mcp::new(&server, Some(&no_tasks));
    legacy.initialize().await;
    check(
        "/mcp legacy listMyTasks without read:tasks",
        &legacy.call_legacy("listMyTasks", json!({})).await,
        &forbidden_scope("read:tasks"),
    );
    let ended = legacy.delete_session().await;
    assert_eq!(ended.status, 204, "ending a session");
    // JSON-RPC: -32001 with the scopes named.
    let r = rpc(&server, Some(&no_tasks), json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "listMyTasks"}})).await;
    assert_eq!(r.body["error"]["code"], -32001, "{:?}", r.body);
    assert_eq!(
        r.body["error"]["data"]["scopes"],
        json!(["read:tasks"]),
        "{:?}",
        r.body
    );

    // A virtual server, without connections:use: every method, both eras.
    let vs = |slug: &str, token: &str| {
        Mcp::at(&server.url(&format!("/mcp/servers/{slug}")), Some(token))
    };
    let r = vs("granted", &no_connections)
        .post_raw(init_body(), None, &[])
        .await;
    check(
        "virtual server legacy initialize without connections:use",
        &r,
        &forbidden_scope("connections:use"),
    );
    let r = vs("granted", &no_connections)
        .stateless("tools/list", json!({}))
        .await;
    check(
        "virtual server 2026 tools/list without connections:use",
        &r,
        &forbidden_scope("connections:use"),
    );
    let r = vs("granted", &no_connections)
        .call_2026("echo", json!({"text": "x"}))
        .await;
    check(
        "virtual server 2026 tools/call without connections:use",
        &r,
        &forbidden_scope("connections:use"),
    );

    // One you may not use answers exactly like one that does not exist.
    let private = vs("private", &full).post_raw(init_body(), None, &[]).await;
    let unknown = vs("no-such-server", &full)
        .post_raw(init_body(), None, &[])
        .await;
    check("a server you may not use", &private, &not_found);
    check("a server that does not exist", &unknown, &not_found);
    let sentence = |r: &common::Resp, slug: &str| {
        message(r)["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .replace(slug, "SLUG")
    };
    assert_eq!(
        sentence(&private, "private"),
        sentence(&unknown, "no-such-server")
    );
    let r = vs("private", &full)
        .stateless("tools/list", json!({}))
        .await;
    check("a server you may not use, 2026", &r, &not_found);

    // The granted one works.
    let r = vs("granted", &full)
        .call_2026("echo", json!({"text": "hello"}))
        .await;
    check("the granted server", &r, &ok);
    let mut session = vs("granted", &full);
    session.initialize().await;
    assert_eq!(session.delete_session().await.status, 204);

    // MCP off: initialize opens no session.
    let r = owner
        .patch("/api/v1/org", json!({"mcp_policy": {"mcp_enabled": false, "allow_write": true, "allow_production": false}}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = Mcp::new(&server, Some(&full))
        .post_raw(init_body(), None, &[])
        .await;
    check(
        "initialize while MCP is off",
        &r,
        &Expect {
            status: 403,
            code: Some(-32001),
            challenge: None,
            no_session: true,
        },
    );

    // Every refusal above is on record.
    let denied = db
        .scalar_i64("SELECT COUNT(*) FROM audit_events WHERE outcome = 'denied'")
        .await;
    assert!(denied >= 9, "{denied} refusals audited");
}
