//! The authorization matrix of the org's own tools, generated from the
//! declared tables of DESIGN.md (role permissions, token scopes, the org's
//! MCP policy): every tool × every built-in role and the org token × every
//! policy switch, listed or not and allowed or refused as declared, on both
//! `/mcp` and `/mcp/rpc`. Plus: one org's token never reaches another's data.
// Test code states its expectations: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
// A test that meets an unexpected shape should stop right there.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::mcp::*;
use common::*;
use serde_json::{Value, json};

/// DESIGN.md's permission table.
fn role_has(role: &str, permission: &str) -> bool {
    match role {
        "owner" => true,
        "admin" => !matches!(permission, "mcp.manage" | "production.access"),
        "member" => matches!(
            permission,
            "org.read" | "tasks.read" | "connections.use" | "mcp.create" | "tasks.write"
        ),
        "viewer" => matches!(permission, "org.read" | "tasks.read"),
        // An org token acts org-wide with everything but mcp.manage.
        "org-token" => permission != "mcp.manage",
        other => panic!("unknown role {other}"),
    }
}

struct ToolRule {
    name: &'static str,
    permission: Option<&'static str>,
    scope: Option<&'static str>,
    writes: bool,
    /// Only for callers acting as one person (not org tokens).
    person_only: bool,
    /// Arguments that pass the schema and, once authorized, end in success
    /// or "not found", never in a refusal.
    probe: fn() -> Value,
}

/// The tools DESIGN.md and the issue declare, with the permission and scope
/// each needs (the scope table of DESIGN.md).
fn rules() -> Vec<ToolRule> {
    let r = |name, permission, scope, writes, probe| ToolRule {
        name,
        permission: Some(permission),
        scope: Some(scope),
        writes,
        person_only: false,
        probe,
    };
    let mut v = vec![
        ToolRule {
            name: "whoami",
            permission: None,
            scope: None,
            writes: false,
            person_only: false,
            probe: || json!({}),
        },
        r("listMembers", "org.read", "read:org", false, || json!({})),
        r(
            "listInvitations",
            "members.invite",
            "read:org",
            false,
            || json!({}),
        ),
        r(
            "inviteMember",
            "members.invite",
            "write:org",
            true,
            || json!({"email": "probe@example.com", "role": "no-such-role"}),
        ),
        r(
            "revokeInvitation",
            "members.invite",
            "write:org",
            true,
            || json!({"invitation_id": "nope"}),
        ),
        r(
            "updateAllowedDomains",
            "members.manage",
            "write:org",
            true,
            || json!({"domains": []}),
        ),
        r(
            "changeMemberRole",
            "members.manage",
            "write:org",
            true,
            || json!({"membership_id": "nope", "role": "viewer"}),
        ),
        r(
            "removeMember",
            "members.manage",
            "write:org",
            true,
            || json!({"membership_id": "nope"}),
        ),
        r(
            "list_connections",
            "connections.use",
            "connections:use",
            false,
            || json!({}),
        ),
        r("listTeams", "org.read", "read:org", false, || json!({})),
        r(
            "createTeam",
            "teams.manage",
            "write:org",
            true,
            || json!({"name": format!("probe {}", std::process::id() as u128 * 1_000_000 + now_nanos())}),
        ),
        r(
            "addTeamMember",
            "teams.manage",
            "write:org",
            true,
            || json!({"team_id": "nope", "membership_id": "nope"}),
        ),
        r(
            "removeTeamMember",
            "teams.manage",
            "write:org",
            true,
            || json!({"team_id": "nope", "membership_id": "nope"}),
        ),
        r(
            "listTasksByReq",
            "tasks.read",
            "read:tasks",
            false,
            || json!({"requirement_id": "nope"}),
        ),
        r(
            "updateTaskStatus",
            "tasks.write",
            "write:tasks",
            true,
            || json!({"task_id": "nope", "status": "DONE"}),
        ),
        r(
            "createCommitEntry",
            "tasks.write",
            "write:commits",
            true,
            || json!({"task_id": "nope", "message": "m"}),
        ),
        r("listProjects", "tasks.read", "read:tasks", false, || {
            json!({})
        }),
        r("listTasks", "tasks.read", "read:tasks", false, || json!({})),
        r(
            "getTask",
            "tasks.read",
            "read:tasks",
            false,
            || json!({"task_id": "nope"}),
        ),
        r(
            "updateTask",
            "tasks.write",
            "write:tasks",
            true,
            || json!({"task_id": "nope", "title": "t"}),
        ),
        r(
            "listRequirements",
            "tasks.read",
            "read:requirements",
            false,
            || json!({}),
        ),
        r(
            "getRequirement",
            "tasks.read",
            "read:requirements",
            false,
            || json!({"requirement_id": "nope"}),
        ),
    ];
    v.push(ToolRule {
        name: "listMyTasks",
        permission: Some("tasks.read"),
        scope: Some("read:tasks"),
        writes: false,
        person_only: true,
        probe: || json!({}),
    });
    v
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[derive(Clone, Copy, Debug)]
struct Policy {
    enabled: bool,
    allow_write: bool,
}

struct Caller {
    role: &'static str,
    token: String,
    scopes: BTreeSet<&'static str>,
}

fn allowed(rule: &ToolRule, caller: &Caller, policy: Policy) -> bool {
    policy.enabled
        && (!rule.writes || policy.allow_write)
        && rule.permission.is_none_or(|p| role_has(caller.role, p))
        && !(rule.person_only && caller.role == "org-token")
        && rule.scope.is_none_or(|s| caller.scopes.contains(s))
}

/// The sentences a refusal by policy, role or audience carries.
fn is_refusal_text(text: &str) -> bool {
    [
        "does not include the permission",
        "org tokens cannot use",
        "MCP access is turned off",
        "allows read-only tools only",
        "acts for no one person",
    ]
    .iter()
    .any(|p| text.contains(p))
}

both_backends!(
    every_tool_role_token_kind_and_policy_switch_is_allowed_or_refused_as_declared,
    |db: TestDb| async move {
        db.bootstrap("owner@example.com", "acme");
        let server = Server::start(&db);
        let owner_session = Api::sign_in(&server, "owner@example.com", PASSWORD).await;
        for (email, role) in [
            ("admin@example.com", "admin"),
            ("member@example.com", "member"),
        ] {
            add_member(&owner_session, email, role).await;
        }
        // A viewer cannot mint tokens (no mcp.create): the token is minted while
        // a member, then the role drops to viewer. Authorization follows the
        // CURRENT role, so the token now acts as a viewer.
        let viewer_id = add_member(&owner_session, "viewer@example.com", "member").await;
        let viewer_token = db.token(
            "viewer@example.com",
            "acme",
            "personal",
            "read:org,read:tasks,read:requirements",
        );
        let r = owner_session
            .patch(
                &format!("/api/v1/members/{viewer_id}"),
                json!({"role": "viewer"}),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        // Each token carries every scope its role can hold.
        let scopes_for = |role: &str| -> Vec<&'static str> {
            match role {
                "member" => vec![
                    "read:org",
                    "read:tasks",
                    "write:tasks",
                    "write:commits",
                    "read:requirements",
                    "connections:use",
                ],
                "viewer" => vec!["read:org", "read:tasks", "read:requirements"],
                _ => ALL_SCOPES.split(',').collect(),
            }
        };
        let mut callers = Vec::new();
        for (email, role, kind) in [
            ("owner@example.com", "owner", "personal"),
            ("admin@example.com", "admin", "personal"),
            ("member@example.com", "member", "personal"),
            ("viewer@example.com", "viewer", "personal"),
            ("owner@example.com", "org-token", "org"),
        ] {
            let scopes = scopes_for(role);
            let token = if role == "viewer" {
                viewer_token.clone()
            } else {
                db.token(email, "acme", kind, &scopes.join(","))
            };
            callers.push(Caller {
                role,
                token,
                scopes: scopes.into_iter().collect(),
            });
        }
        let rules = rules();
        let mut checked = 0;
        for policy in [
            Policy {
                enabled: true,
                allow_write: true,
            },
            Policy {
                enabled: true,
                allow_write: false,
            },
            Policy {
                enabled: false,
                allow_write: true,
            },
        ] {
            let r = owner_session
            .patch("/api/v1/org", json!({"mcp_policy": {"mcp_enabled": policy.enabled, "allow_write": policy.allow_write}}))
            .await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            for caller in &callers {
                let expected: BTreeSet<&str> = rules
                    .iter()
                    .filter(|r| allowed(r, caller, policy))
                    .map(|r| r.name)
                    .collect();
                let what = format!("{} under {policy:?}", caller.role);

                // Listed exactly when allowed, on both surfaces.
                let mcp = Mcp::new(&server, Some(&caller.token));
                let listed = message(&mcp.stateless("tools/list", json!({})).await);
                let listed: BTreeSet<String> = listed["result"]["tools"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["name"].as_str().unwrap().to_owned())
                    .collect();
                let listed: BTreeSet<&str> = listed
                    .iter()
                    .map(String::as_str)
                    .filter(|n| rules.iter().any(|r| r.name == *n))
                    .collect();
                assert_eq!(listed, expected, "tools/list on /mcp for {what}");
                let r = rpc(
                    &server,
                    Some(&caller.token),
                    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
                )
                .await;
                let rpc_listed: BTreeSet<String> = r.body["result"]["tools"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["name"].as_str().unwrap().to_owned())
                    .collect();
                let rpc_listed: BTreeSet<&str> = rpc_listed
                    .iter()
                    .map(String::as_str)
                    .filter(|n| rules.iter().any(|r| r.name == *n))
                    .collect();
                assert_eq!(rpc_listed, expected, "tools/list on /mcp/rpc for {what}");

                // Called: allowed or refused as declared, on both surfaces.
                let batch: Vec<Value> = rules.iter().enumerate().map(|(i, rule)| json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": rule.name, "arguments": (rule.probe)()}})).collect();
                let answers = rpc(&server, Some(&caller.token), Value::Array(batch)).await;
                let answers = answers.body.as_array().expect("batch answer").clone();
                for (i, rule) in rules.iter().enumerate() {
                    let want = allowed(rule, caller, policy);
                    let a = answers
                        .iter()
                        .find(|a| a["id"] == json!(i))
                        .expect("an answer per request");
                    let refused = a["error"]["code"] == -32001;
                    assert_eq!(!refused, want, "/mcp/rpc {} for {what}: {a}", rule.name);
                    if refused {
                        assert!(
                            is_refusal_text(a["error"]["message"].as_str().unwrap()),
                            "{a}"
                        );
                    }

                    let r = mcp.call_2026(rule.name, (rule.probe)()).await;
                    assert_eq!(r.status, 200, "/mcp {} for {what}: {:?}", rule.name, r.body);
                    let m = message(&r);
                    let text = m["result"]["content"][0]["text"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    let refused = m["result"]["isError"] == true && is_refusal_text(&text);
                    assert_eq!(!refused, want, "/mcp {} for {what}: {m}", rule.name);
                    checked += 2;
                }
            }
        }
        assert_eq!(checked, 3 * 5 * rules.len() * 2);
        // Every refusal was audited as denied, on each surface.
        let denied_mcp = db
            .scalar_i64(
                "SELECT COUNT(*) FROM audit_events WHERE surface = 'mcp' AND outcome = 'denied'",
            )
            .await;
        let denied_rpc = db
            .scalar_i64(
                "SELECT COUNT(*) FROM audit_events WHERE surface = 'rpc' AND outcome = 'denied'",
            )
            .await;
        assert_eq!(denied_mcp, denied_rpc);
        let expected_denied: i64 = [
            Policy {
                enabled: true,
                allow_write: true,
            },
            Policy {
                enabled: true,
                allow_write: false,
            },
            Policy {
                enabled: false,
                allow_write: true,
            },
        ]
        .iter()
        .map(|p| {
            callers
                .iter()
                .map(|c| rules.iter().filter(|r| !allowed(r, c, *p)).count() as i64)
                .sum::<i64>()
        })
        .sum();
        assert_eq!(denied_mcp, expected_denied);
    }
);

both_backends!(
    one_orgs_token_never_reaches_another_orgs_data,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        db.bootstrap("gus@example.com", "globex");
        let acme = db.token("ada@example.com", "acme", "personal", ALL_SCOPES);
        let globex = db.token("gus@example.com", "globex", "org", ALL_SCOPES);
        let server = Server::start(&db);
        let api = Api::with_token(&server, &acme);
        let me = api.get("/api/v1/me").await.body;
        let pid = api
            .post("/api/v1/projects", json!({"name": "Secret"}))
            .await
            .body["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let task = api.post("/api/v1/tasks", json!({"project_id": pid, "title": "secret task", "assignee_ids": [me["membership_id"]]})).await.body["id"].as_str().unwrap().to_owned();
        let req = api
            .post(
                "/api/v1/requirements",
                json!({"project_id": pid, "title": "secret req", "body": "classified"}),
            )
            .await
            .body["id"]
            .as_str()
            .unwrap()
            .to_owned();

        let spy = Mcp::new(&server, Some(&globex));
        for (tool, args) in [
            ("getTask", json!({"task_id": task})),
            ("getRequirement", json!({"requirement_id": req})),
            ("updateTask", json!({"task_id": task, "title": "pwned"})),
            (
                "updateTaskStatus",
                json!({"task_id": task, "status": "IN_PROGRESS"}),
            ),
            (
                "createCommitEntry",
                json!({"task_id": task, "message": "pwned"}),
            ),
            ("listTasksByReq", json!({"requirement_id": req})),
            (
                "removeMember",
                json!({"membership_id": me["membership_id"]}),
            ),
        ] {
            let m = message(&spy.call_2026(tool, args).await);
            assert_eq!(m["result"]["isError"], true, "{tool}: {m}");
            let text = m["result"]["content"][0]["text"].as_str().unwrap();
            assert!(text.contains("not found"), "{tool}: {text}");
            assert!(
                !text.contains("secret") && !text.contains("classified"),
                "{text}"
            );
        }
        for tool in [
            "listTasks",
            "listProjects",
            "listRequirements",
            "listMembers",
        ] {
            let page = structured(&spy.call_2026(tool, json!({})).await);
            let dump = page.to_string();
            assert!(
                !dump.contains("secret")
                    && !dump.contains("Secret")
                    && !dump.contains("ada@example.com"),
                "{tool}: {dump}"
            );
        }
        let t = api.get(&format!("/api/v1/tasks/{task}")).await.body;
        assert_eq!(t["title"], "secret task");
        assert_eq!(t["status"], "TODO");
        assert_eq!(
            db.scalar_i64("SELECT COUNT(*) FROM commit_entries").await,
            0
        );
    }
);
