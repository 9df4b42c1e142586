//! Work items, the audit log, pagination and bad input, on both backends.
// Test code states its expectations: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;
use serde_json::{Value, json};

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

both_backends!(
    projects_requirements_tasks_comments_and_commits,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let server = Server::start(&db);
        let owner = Api::with_token(
            &server,
            &db.token("ada@example.com", "acme", "personal", ALL_SCOPES),
        );
        let bob_id = add_member(&owner, "bob@example.com", "member").await;
        let p = owner
            .post(
                "/api/v1/projects",
                json!({"name": "Apollo", "description": "moon"}),
            )
            .await;
        assert_eq!(p.status, 201);
        let pid = p.body["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(
            owner
                .post("/api/v1/projects", json!({"name": "Apollo"}))
                .await
                .error_code(),
            "project_name_taken"
        );

        let req = owner
            .post(
                "/api/v1/requirements",
                json!({"project_id": pid, "title": "Land", "body": "Land safely."}),
            )
            .await;
        assert_eq!(req.status, 201, "{:?}", req.body);
        let rid = req.body["id"].as_str().unwrap_or_default().to_owned();
        let t = owner
        .post("/api/v1/tasks", json!({"project_id": pid, "title": "Build lander", "priority": "high", "assignee_ids": [bob_id], "requirement_ids": [rid]}))
        .await;
        assert_eq!(t.status, 201, "{:?}", t.body);
        assert_eq!(t.body["status"], "TODO");
        assert_eq!(t.body["assignees"][0]["email"], "bob@example.com");
        assert_eq!(t.body["requirement_ids"], json!([rid]));
        let tid = t.body["id"].as_str().unwrap_or_default().to_owned();
        owner
            .post(
                "/api/v1/tasks",
                json!({"project_id": pid, "title": "Unassigned"}),
            )
            .await;

        // Bob lists his own tasks and moves his through the workflow.
        let bob = Api::with_token(
            &server,
            &db.token(
                "bob@example.com",
                "acme",
                "personal",
                "read:tasks,write:tasks,write:commits,read:requirements",
            ),
        );
        assert_eq!(
            ids(&bob.get("/api/v1/tasks?assignee=me").await.body),
            vec![tid.clone()]
        );
        assert_eq!(
            ids(&bob
                .get(&format!("/api/v1/tasks?requirement_id={rid}"))
                .await
                .body),
            vec![tid.clone()]
        );
        let r = bob
            .patch(&format!("/api/v1/tasks/{tid}"), json!({"status": "DONE"}))
            .await;
        assert_eq!(r.status, 409);
        assert_eq!(r.error_code(), "invalid_status_transition");
        assert!(
            r.error_message()
                .contains("from TODO the next status can be IN_PROGRESS"),
            "{}",
            r.error_message()
        );
        for s in ["IN_PROGRESS", "IN_REVIEW", "DONE"] {
            let r = bob
                .patch(&format!("/api/v1/tasks/{tid}"), json!({"status": s}))
                .await;
            assert_eq!(r.status, 200, "{s}: {:?}", r.body);
            assert_eq!(r.body["status"], s);
        }
        assert_eq!(
            ids(&bob.get("/api/v1/tasks?status=DONE").await.body),
            vec![tid.clone()]
        );
        let r = bob.get("/api/v1/tasks?status=FINISHED").await;
        assert_eq!(r.status, 422);

        let c = bob
            .post(
                &format!("/api/v1/tasks/{tid}/comments"),
                json!({"body": "done, see commit"}),
            )
            .await;
        assert_eq!(c.status, 201, "{:?}", c.body);
        let ce = bob
            .post(
                &format!("/api/v1/tasks/{tid}/commits"),
                json!({"message": "Add lander", "commit_hash": "ABCDEF1234"}),
            )
            .await;
        assert_eq!(ce.status, 201, "{:?}", ce.body);
        assert_eq!(ce.body["commit_hash"], "abcdef1234");
        let r = bob
            .post(
                &format!("/api/v1/tasks/{tid}/commits"),
                json!({"message": "x", "commit_hash": "zz"}),
            )
            .await;
        assert_eq!(r.status, 422);
        assert_eq!(r.body["error"]["details"]["field"], "commit_hash");
        assert_eq!(
            bob.get(&format!("/api/v1/tasks/{tid}/commits")).await.body["items"][0]["message"],
            "Add lander"
        );
        assert_eq!(
            bob.get(&format!("/api/v1/requirements/{rid}")).await.body["body"],
            "Land safely."
        );

        // Unlink and relink a requirement.
        let r = owner
            .delete(&format!("/api/v1/tasks/{tid}/requirements/{rid}"))
            .await;
        assert_eq!(r.body["requirement_ids"], json!([]));
        let r = owner
            .send(
                "PUT",
                &format!("/api/v1/tasks/{tid}/requirements/{rid}"),
                None,
            )
            .await;
        assert_eq!(r.body["requirement_ids"], json!([rid]));

        // A viewer reads but cannot write.
        add_member(&owner, "vic@example.com", "viewer").await;
        let viewer = Api::sign_in(&server, "vic@example.com", PASSWORD).await;
        assert_eq!(
            viewer.get(&format!("/api/v1/tasks/{tid}")).await.status,
            200
        );
        let r = viewer
            .patch(&format!("/api/v1/tasks/{tid}"), json!({"title": "x"}))
            .await;
        assert_eq!(r.status, 403);
        assert!(
            r.error_message()
                .contains("'viewer' does not include the permission 'tasks.write'")
        );
    }
);

both_backends!(
    every_change_is_audited_and_the_log_filters_and_pages,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let server = Server::start(&db);
        let owner = Api::with_token(
            &server,
            &db.token("ada@example.com", "acme", "personal", ALL_SCOPES),
        );
        for i in 0..7 {
            let r = owner
                .post("/api/v1/projects", json!({"name": format!("P{i}")}))
                .await;
            assert_eq!(r.status, 201);
        }
        let projects = db.scalar_i64("SELECT COUNT(*) FROM projects").await;
        let events = db.scalar_i64("SELECT COUNT(*) FROM audit_events WHERE action = 'project.create' AND outcome = 'ok'").await;
        assert_eq!(projects, events);

        let me = owner.get("/api/v1/me").await;
        let actor = me.body["account"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!(
                    "/api/v1/audit-events?action=project.create&actor_id={actor}&limit=3&cursor={c}"
                ),
                None => {
                    format!("/api/v1/audit-events?action=project.create&actor_id={actor}&limit=3")
                }
            };
            let r = owner.get(&path).await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            let items = r.body["items"].as_array().cloned().unwrap_or_default();
            assert!(items.len() <= 3);
            for it in &items {
                assert_eq!(it["action"], "project.create");
                assert_eq!(it["surface"], "api");
                assert_eq!(it["token_kind"], "personal");
                assert!(it["request_id"].is_string());
                seen.push(it["target"].as_str().unwrap_or_default().to_owned());
            }
            cursor = r.body["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(seen.len(), 7, "{seen:?}");
        let mut dedup = seen.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 7, "pages must not overlap");

        // Time filters.
        let r = owner
            .get("/api/v1/audit-events?since=2999-01-01T00:00:00Z")
            .await;
        assert_eq!(r.body["items"], json!([]));
        let r = owner
            .get("/api/v1/audit-events?until=2000-01-01T00:00:00Z")
            .await;
        assert_eq!(r.body["items"], json!([]));
        let r = owner.get("/api/v1/audit-events?since=yesterday").await;
        assert_eq!(r.status, 400);
        assert!(r.error_message().contains("RFC 3339"));

        // Members without audit.read cannot read the log.
        add_member(&owner, "bob@example.com", "member").await;
        let bob = Api::sign_in(&server, "bob@example.com", PASSWORD).await;
        assert_eq!(bob.get("/api/v1/audit-events").await.status, 403);
    }
);

both_backends!(lists_page_in_a_stable_order, |db: TestDb| async move {
    db.bootstrap("ada@example.com", "acme");
    let server = Server::start(&db);
    let owner = Api::with_token(
        &server,
        &db.token("ada@example.com", "acme", "personal", ALL_SCOPES),
    );
    let p = owner.post("/api/v1/projects", json!({"name": "P"})).await;
    let pid = p.body["id"].as_str().unwrap_or_default().to_owned();
    let mut created = Vec::new();
    for i in 0..8 {
        let t = owner
            .post(
                "/api/v1/tasks",
                json!({"project_id": pid, "title": format!("T{i}")}),
            )
            .await;
        created.push(t.body["id"].as_str().unwrap_or_default().to_owned());
    }
    let mut all = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let r = owner
            .get(&format!(
                "/api/v1/tasks?project_id={pid}&limit=3&cursor={cursor}"
            ))
            .await;
        all.extend(ids(&r.body));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(all, created);
    for bad in ["limit=0", "limit=201", "limit=abc", "bogus=1"] {
        let r = owner.get(&format!("/api/v1/tasks?{bad}")).await;
        assert!(r.status == 400 || r.status == 422, "{bad}: {}", r.status);
        assert!(!r.error_message().is_empty());
    }
});

both_backends!(
    bad_input_gets_a_clear_error_and_changes_nothing,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let server = Server::start(&db);
        let token = db.token("ada@example.com", "acme", "personal", ALL_SCOPES);
        let api = Api::with_token(&server, &token);
        let raw = |body: &'static str, ct: &'static str| {
            let http = api.http.clone();
            let url = format!("{}/api/v1/projects", server.base);
            let token = token.clone();
            async move {
                let r = http
                    .post(url)
                    .bearer_auth(token)
                    .header("content-type", ct)
                    .body(body)
                    .send()
                    .await
                    .expect("send");
                let status = r.status().as_u16();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                (status, v)
            }
        };
        let (s, v) = raw("{\"name\": ", "application/json").await;
        assert_eq!(s, 400);
        assert_eq!(v["error"]["code"], "malformed_json");
        let (s, v) = raw("{\"name\": \"x\"}", "text/plain").await;
        assert_eq!(s, 415);
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("application/json")
        );
        let (s, v) = raw("{\"name\": 5}", "application/json").await;
        assert_eq!(s, 422);
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("name"),
            "{v}"
        );
        let (s, v) = raw("{\"name\": \"x\", \"owner\": \"me\"}", "application/json").await;
        assert_eq!(s, 422);
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("unknown field `owner`"),
            "{v}"
        );
        let r = api.post("/api/v1/projects", json!({"name": "   "})).await;
        assert_eq!(r.status, 422);
        assert_eq!(r.body["error"]["details"]["field"], "name");
        assert_eq!(r.error_message(), "name: must not be empty");
        let r = api
            .post("/api/v1/projects", json!({"name": "x".repeat(300 * 1024)}))
            .await;
        assert_eq!(r.status, 413);
        assert_eq!(r.error_code(), "body_too_large");
        let r = api
            .post("/api/v1/invitations", json!({"email": "not-an-email"}))
            .await;
        assert_eq!(r.status, 422);
        assert!(
            r.error_message()
                .contains("'not-an-email' is not an email address")
        );
        assert_eq!(api.get("/api/v1/projects/does-not-exist").await.status, 404);
        let r = api.get("/api/v1/nothing-here").await;
        assert_eq!(r.status, 404);
        assert_eq!(r.error_code(), "not_found");
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM projects").await, 0);
        assert_eq!(
            api.get("/api/v1/me").await.status,
            200,
            "the server keeps serving"
        );
    }
);
