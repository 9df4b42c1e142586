//! Members, invitations, teams and roles: the organization's rules, on both backends.
// Test code states its expectations: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;
use serde_json::json;

both_backends!(
    invitations_follow_the_seat_limit_and_domain_rules,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let server = Server::start(&db);
        let owner = Api::sign_in(&server, "ada@example.com", PASSWORD).await;
        let r = owner
            .patch(
                "/api/v1/org",
                json!({"seat_limit": 3, "allowed_email_domains": ["Example.com", "example.org"]}),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(
            r.body["allowed_email_domains"],
            json!(["example.com", "example.org"])
        );

        let r = owner
            .post("/api/v1/invitations", json!({"email": "eve@evil.com"}))
            .await;
        assert_eq!(r.status, 409);
        assert_eq!(r.error_code(), "email_domain_not_allowed");
        assert!(
            r.error_message().contains("'evil.com' is not allowed"),
            "{}",
            r.error_message()
        );

        add_member(&owner, "bob@example.com", "member").await;
        let pending = owner
            .post("/api/v1/invitations", json!({"email": "cy@example.org"}))
            .await;
        assert_eq!(pending.status, 201);
        assert_eq!(pending.body["invitation"]["status"], "pending");
        assert!(
            pending.body["accept_url"]
                .as_str()
                .unwrap_or_default()
                .contains("/invite/")
        );
        // Three seats: ada, bob, and cy's pending invitation.
        let r = owner
            .post("/api/v1/invitations", json!({"email": "dee@example.com"}))
            .await;
        assert_eq!(r.status, 409);
        assert_eq!(r.error_code(), "seat_limit_reached");
        assert!(
            r.error_message().starts_with("seat limit of 3 reached"),
            "{}",
            r.error_message()
        );
        assert_eq!(owner.get("/api/v1/org").await.body["seats_taken"], 3);
        // Lowering the limit below usage is refused with the rule.
        let r = owner.patch("/api/v1/org", json!({"seat_limit": 2})).await;
        assert_eq!(r.status, 409);
        assert_eq!(r.error_code(), "seat_limit_below_usage");

        // Revoking the pending invitation frees its seat.
        let inv_id = pending.body["invitation"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            owner
                .delete(&format!("/api/v1/invitations/{inv_id}"))
                .await
                .status,
            204
        );
        let token = pending.body["invitation_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let r = Api::new(&server)
            .post(
                "/api/v1/invitations/accept",
                json!({"token": token, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 404, "a revoked invitation cannot be accepted");
        assert_eq!(
            owner
                .post("/api/v1/invitations", json!({"email": "dee@example.com"}))
                .await
                .status,
            201
        );

        // Duplicates are explained.
        let r = owner
            .post("/api/v1/invitations", json!({"email": "bob@example.com"}))
            .await;
        assert_eq!(r.error_code(), "already_member");
        let r = owner
            .post("/api/v1/invitations", json!({"email": "dee@example.com"}))
            .await;
        assert_eq!(r.error_code(), "already_invited");
    }
);

both_backends!(invitation_tokens_work_once, |db: TestDb| async move {
    db.bootstrap("ada@example.com", "acme");
    let server = Server::start(&db);
    let owner = Api::sign_in(&server, "ada@example.com", PASSWORD).await;
    let team = owner.post("/api/v1/teams", json!({"name": "Core"})).await;
    let team_id = team.body["id"].as_str().unwrap_or_default().to_owned();
    let inv = owner
        .post(
            "/api/v1/invitations",
            json!({"email": "bob@example.com", "role": "member", "team_ids": [team_id]}),
        )
        .await;
    let token = inv.body["invitation_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let anon = Api::new(&server);
    let r = anon
        .post(
            "/api/v1/invitations/accept",
            json!({"token": token, "password": "short"}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["error"]["details"]["field"], "password");
    let r = anon
        .post(
            "/api/v1/invitations/accept",
            json!({"token": token, "password": PASSWORD, "display_name": "Bob"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["org_slug"], "acme");
    let r = anon
        .post(
            "/api/v1/invitations/accept",
            json!({"token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 404);
    // Bob joined the team named in the invitation and can sign in.
    let members = owner.get(&format!("/api/v1/teams/{team_id}/members")).await;
    assert_eq!(members.body[0]["email"], "bob@example.com");
    let bob = Api::sign_in(&server, "bob@example.com", PASSWORD).await;
    let me = bob.get("/api/v1/me").await;
    assert_eq!(me.body["role"], "member");
    assert_eq!(me.body["account"]["display_name"], "Bob");
});

both_backends!(
    pending_invitees_cannot_join_teams,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let server = Server::start(&db);
        let owner = Api::sign_in(&server, "ada@example.com", PASSWORD).await;
        let team = owner.post("/api/v1/teams", json!({"name": "Core"})).await;
        let team_id = team.body["id"].as_str().unwrap_or_default().to_owned();
        owner
            .post("/api/v1/invitations", json!({"email": "cy@example.com"}))
            .await;
        let members = owner.get("/api/v1/members").await;
        let cy = members.body["items"]
            .as_array()
            .and_then(|a| a.iter().find(|m| m["email"] == "cy@example.com"))
            .cloned()
            .expect("invited member listed");
        assert_eq!(cy["status"], "invited");
        let r = owner
            .post(
                &format!("/api/v1/teams/{team_id}/members"),
                json!({"membership_id": cy["id"]}),
            )
            .await;
        assert_eq!(r.status, 409);
        assert_eq!(r.error_code(), "membership_pending");
        assert!(
            r.error_message()
                .contains("cy@example.com has not accepted their invitation yet"),
            "{}",
            r.error_message()
        );
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM team_members").await, 0);
    }
);

both_backends!(
    nobody_grants_above_their_own_and_the_last_owner_stays,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let server = Server::start(&db);
        let owner = Api::sign_in(&server, "ada@example.com", PASSWORD).await;
        let ada_id = owner.get("/api/v1/me").await.body["membership_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let bob_id = add_member(&owner, "bob@example.com", "admin").await;
        let admin = Api::sign_in(&server, "bob@example.com", PASSWORD).await;
        let cy_id = add_member(&admin, "cy@example.com", "member").await;

        // An admin cannot make someone an owner, nor invite one.
        let r = admin
            .patch(
                &format!("/api/v1/members/{cy_id}"),
                json!({"role": "owner"}),
            )
            .await;
        assert_eq!(r.status, 409);
        assert_eq!(r.error_code(), "role_above_own");
        assert!(r.error_message().contains("mcp.manage"));
        let r = admin
            .post(
                "/api/v1/invitations",
                json!({"email": "dee@example.com", "role": "owner"}),
            )
            .await;
        assert_eq!(r.error_code(), "role_above_own");
        // An admin cannot remove or demote an owner.
        let r = admin.delete(&format!("/api/v1/members/{ada_id}")).await;
        assert_eq!(r.status, 409);
        assert_eq!(r.error_code(), "member_above_own");
        // The last owner cannot be demoted or removed, even by themselves.
        let r = owner
            .patch(
                &format!("/api/v1/members/{ada_id}"),
                json!({"role": "admin"}),
            )
            .await;
        assert_eq!(r.error_code(), "last_owner");
        assert!(r.error_message().contains("cannot demote the last owner"));
        let r = owner.delete(&format!("/api/v1/members/{ada_id}")).await;
        assert_eq!(r.error_code(), "last_owner");
        // With a second owner, the first may step down.
        assert_eq!(
            owner
                .patch(
                    &format!("/api/v1/members/{bob_id}"),
                    json!({"role": "owner"})
                )
                .await
                .status,
            200
        );
        assert_eq!(
            owner
                .patch(
                    &format!("/api/v1/members/{ada_id}"),
                    json!({"role": "admin"})
                )
                .await
                .status,
            200
        );
        // A member cannot manage members at all.
        let member = Api::sign_in(&server, "cy@example.com", PASSWORD).await;
        let r = member.delete(&format!("/api/v1/members/{bob_id}")).await;
        assert_eq!(r.status, 403);
        assert!(r.error_message().contains("'members.manage'"));
    }
);

both_backends!(custom_roles_and_sync, |db: TestDb| async move {
    db.bootstrap("ada@example.com", "acme");
    let server = Server::start(&db);
    let owner = Api::sign_in(&server, "ada@example.com", PASSWORD).await;
    let roles = owner.get("/api/v1/roles").await;
    let names: Vec<&str> = roles
        .body
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names.len(), 4);
    for n in ["owner", "admin", "member", "viewer"] {
        assert!(names.contains(&n), "{names:?}");
    }
    let r = owner
        .post(
            "/api/v1/roles",
            json!({"name": "triager", "permissions": ["org.read", "tasks.read", "tasks.write"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let role_id = r.body["id"].as_str().unwrap_or_default().to_owned();
    let r = owner
        .post(
            "/api/v1/roles",
            json!({"name": "bad", "permissions": ["tasks.fly"]}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.error_message().contains("unknown permission 'tasks.fly'"));
    let r = owner
        .post("/api/v1/roles", json!({"name": "admin", "permissions": []}))
        .await;
    assert_eq!(r.status, 422);
    let bob = add_member(&owner, "bob@example.com", "triager").await;
    let r = owner.delete(&format!("/api/v1/roles/{role_id}")).await;
    assert_eq!(r.error_code(), "role_in_use");
    owner
        .patch(&format!("/api/v1/members/{bob}"), json!({"role": "member"}))
        .await;
    assert_eq!(
        owner
            .delete(&format!("/api/v1/roles/{role_id}"))
            .await
            .status,
        204
    );

    // Built-in roles are fixed; "sync roles" restores their permission sets.
    let member_role = roles
        .body
        .as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == "member"))
        .cloned()
        .unwrap_or_default();
    let r = owner
        .patch(
            &format!(
                "/api/v1/roles/{}",
                member_role["id"].as_str().unwrap_or_default()
            ),
            json!({"permissions": ["org.read"]}),
        )
        .await;
    assert_eq!(r.error_code(), "builtin_role");
    db.sql("UPDATE roles SET permissions = '[\"org.read\"]' WHERE name = 'member'")
        .await;
    let r = owner.post("/api/v1/roles/sync", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let synced = r
        .body
        .as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == "member"))
        .cloned()
        .unwrap_or_default();
    assert!(
        synced["permissions"]
            .as_array()
            .map(|p| p.len())
            .unwrap_or(0)
            >= 5,
        "{synced:?}"
    );
    let ev = owner.get("/api/v1/audit-events?action=roles.sync").await;
    assert_eq!(ev.body["items"][0]["args"]["changed"], json!(["member"]));
});

both_backends!(
    mcp_policy_is_for_owners_at_a_session,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let server = Server::start(&db);
        let owner = Api::sign_in(&server, "ada@example.com", PASSWORD).await;
        add_member(&owner, "bob@example.com", "admin").await;
        let admin = Api::sign_in(&server, "bob@example.com", PASSWORD).await;
        let r = admin
            .patch("/api/v1/org", json!({"mcp_policy": {"mcp_enabled": false}}))
            .await;
        assert_eq!(r.status, 403);
        let owner_token = Api::with_token(
            &server,
            &db.token("ada@example.com", "acme", "personal", ALL_SCOPES),
        );
        let r = owner_token
            .patch("/api/v1/org", json!({"mcp_policy": {"mcp_enabled": false}}))
            .await;
        assert_eq!(r.status, 403);
        assert!(r.error_message().contains("not a bearer token"));
        let r = owner.patch("/api/v1/org", json!({"mcp_policy": {"allow_write": false, "allow_production": true}, "feature_flags": {"mcp_connections_enabled": true}})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(
            r.body["mcp_policy"],
            json!({"mcp_enabled": true, "allow_production": true, "allow_write": false})
        );
        assert_eq!(
            r.body["feature_flags"],
            json!({"mcp_connections_enabled": true})
        );
        let r = owner
            .patch("/api/v1/org", json!({"feature_flags": {"Bad Flag": true}}))
            .await;
        assert_eq!(r.status, 422);
        // An admin may rename and change the domain list.
        assert_eq!(
            admin
                .patch("/api/v1/org", json!({"name": "Acme Inc"}))
                .await
                .status,
            200
        );
    }
);

both_backends!(
    tokens_of_one_org_never_reach_another,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        db.bootstrap("gus@example.com", "globex");
        let server = Server::start(&db);
        let acme = Api::with_token(
            &server,
            &db.token("ada@example.com", "acme", "personal", ALL_SCOPES),
        );
        let globex = Api::with_token(
            &server,
            &db.token("gus@example.com", "globex", "personal", ALL_SCOPES),
        );
        let project = acme
            .post("/api/v1/projects", json!({"name": "Secret"}))
            .await;
        let pid = project.body["id"].as_str().unwrap_or_default().to_owned();
        let task = acme
            .post("/api/v1/tasks", json!({"project_id": pid, "title": "T"}))
            .await;
        let tid = task.body["id"].as_str().unwrap_or_default().to_owned();
        let acme_member = acme.get("/api/v1/me").await.body["membership_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();

        for path in [
            format!("/api/v1/projects/{pid}"),
            format!("/api/v1/tasks/{tid}"),
            format!("/api/v1/tasks/{tid}/comments"),
            format!("/api/v1/members/{acme_member}"),
        ] {
            let r = globex.get(&path).await;
            assert_eq!(r.status, 404, "{path}: {:?}", r.body);
        }
        let r = globex
            .patch(&format!("/api/v1/tasks/{tid}"), json!({"title": "pwned"}))
            .await;
        assert_eq!(r.status, 404);
        let r = globex
            .delete(&format!("/api/v1/members/{acme_member}"))
            .await;
        assert_eq!(r.status, 404);
        let r = globex
            .post("/api/v1/tasks", json!({"project_id": pid, "title": "x"}))
            .await;
        assert_eq!(r.status, 422);
        assert_eq!(
            globex.get("/api/v1/projects").await.body["items"],
            json!([])
        );
        assert_eq!(
            acme.get(&format!("/api/v1/tasks/{tid}")).await.body["title"],
            "T"
        );
    }
);
