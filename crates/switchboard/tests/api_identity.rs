//! Identity, tokens, sessions and "which org" through the REST API, on both backends.
// Test code states its expectations: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;
use serde_json::json;

both_backends!(me_describes_the_caller_and_token, |db: TestDb| async move {
    db.bootstrap("ada@example.com", "acme");
    let server = Server::start(&db);
    let token = db.token("ada@example.com", "acme", "personal", "read:org,read:tasks");
    let api = Api::with_token(&server, &token);
    let r = api.get("/api/v1/me").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["account"]["email"], "ada@example.com");
    assert_eq!(r.body["org"]["slug"], "acme");
    assert_eq!(r.body["role"], "owner");
    assert_eq!(r.body["credential"], "personal");
    assert_eq!(r.body["scopes"], json!(["read:org", "read:tasks"]));
    assert!(r.body["token_id"].is_string());
    // The token is never echoed back.
    assert!(!r.body.to_string().contains(&token));
});

both_backends!(
    missing_bad_and_malformed_tokens_get_401_with_a_challenge,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let server = Server::start(&db);
        let r = Api::new(&server).get("/api/v1/me").await;
        assert_eq!(r.status, 401);
        assert_eq!(
            r.header("www-authenticate"),
            r#"Bearer realm="switchboard""#
        );
        assert_eq!(r.error_code(), "unauthenticated");

        let r = Api::with_token(&server, &"ab".repeat(32))
            .get("/api/v1/me")
            .await;
        assert_eq!(r.status, 401);
        assert!(
            r.header("www-authenticate")
                .contains(r#"error="invalid_token""#)
        );
        assert_eq!(r.error_message(), "the bearer token is not valid");

        let r = Api::with_token(&server, "not-a-token")
            .get("/api/v1/me")
            .await;
        assert_eq!(r.status, 401);
        assert!(
            r.error_message().contains("64 hex characters"),
            "{}",
            r.error_message()
        );
    }
);

both_backends!(
    tokens_are_stored_hashed_with_a_prefix,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let token = db.token("ada@example.com", "acme", "personal", "read:org");
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        let plain = db
        .scalar_i64(&format!("SELECT COUNT(*) FROM tokens WHERE token_hash = '{token}' OR scopes LIKE '%{token}%'"))
        .await;
        assert_eq!(plain, 0, "the token itself must not be stored");
        let prefixed = db
            .scalar_i64(&format!(
                "SELECT COUNT(*) FROM tokens WHERE prefix = '{}'",
                &token[..8]
            ))
            .await;
        assert_eq!(prefixed, 1);
    }
);

both_backends!(
    revoked_and_expired_tokens_are_refused_on_the_next_request_on_every_replica,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let a = Server::start(&db);
        let b = Server::start(&db);
        let token = db.token("ada@example.com", "acme", "personal", "read:org");
        assert_eq!(
            Api::with_token(&a, &token).get("/api/v1/me").await.status,
            200
        );
        assert_eq!(
            Api::with_token(&b, &token).get("/api/v1/me").await.status,
            200
        );

        // Revoke through replica A's API (with a session), then use it on replica B.
        let owner = Api::sign_in(&a, "ada@example.com", PASSWORD).await;
        let list = owner.get("/api/v1/tokens").await;
        let id = list.body[0]["id"].as_str().expect("token id").to_owned();
        let r = owner.delete(&format!("/api/v1/tokens/{id}")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["revoked"], true);
        let r = Api::with_token(&b, &token).get("/api/v1/me").await;
        assert_eq!(r.status, 401);
        assert_eq!(r.error_message(), "the bearer token has been revoked");

        // Expiry: a token whose expiry has passed is refused at once.
        let t2 = db.token("ada@example.com", "acme", "personal", "read:org");
        assert_eq!(Api::with_token(&b, &t2).get("/api/v1/me").await.status, 200);
        db.sql(&format!(
            "UPDATE tokens SET expires_at = 1000 WHERE prefix = '{}'",
            &t2[..8]
        ))
        .await;
        let r = Api::with_token(&a, &t2).get("/api/v1/me").await;
        assert_eq!(r.status, 401);
        assert!(
            r.error_message()
                .starts_with("the bearer token expired at 1970-01-01"),
            "{}",
            r.error_message()
        );
        let r = Api::with_token(&b, &t2).get("/api/v1/me").await;
        assert_eq!(r.status, 401, "{:?}", r.body);

        // Each replica keeps a token's principal between requests; whatever
        // it is built from, changed behind both replicas' backs (here with
        // plain SQL, as another replica or the CLI would), shows at once.
        let t3 = db.token("ada@example.com", "acme", "personal", "read:org");
        for replica in [&a, &b] {
            let me = Api::with_token(replica, &t3).get("/api/v1/me").await;
            assert_ne!(
                me.body["account"]["display_name"], "Ada Lovelace",
                "{:?}",
                me.body
            );
            assert_eq!(me.body["role"], "owner");
        }
        db.sql("UPDATE accounts SET display_name = 'Ada Lovelace' WHERE email = 'ada@example.com'")
            .await;
        for replica in [&a, &b] {
            let me = Api::with_token(replica, &t3).get("/api/v1/me").await;
            assert_eq!(me.body["account"]["display_name"], "Ada Lovelace");
        }
        db.sql("UPDATE roles SET name = 'founder' WHERE name = 'owner'")
            .await;
        for replica in [&a, &b] {
            let me = Api::with_token(replica, &t3).get("/api/v1/me").await;
            assert_eq!(me.body["role"], "founder");
        }
        db.sql("UPDATE roles SET permissions = '[]' WHERE name = 'founder'")
            .await;
        let me = Api::with_token(&b, &t3).get("/api/v1/me").await;
        assert_eq!(me.body["permissions"], json!([]), "{:?}", me.body);
    }
);

both_backends!(
    last_used_is_recorded_but_not_on_every_request,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let server = Server::start(&db);
        let token = db.token("ada@example.com", "acme", "personal", "read:org");
        let api = Api::with_token(&server, &token);
        api.get("/api/v1/me").await;
        let first = db
            .scalar_i64("SELECT COALESCE(MAX(last_used_at), 0) FROM tokens")
            .await;
        assert!(first > 0);
        for _ in 0..5 {
            api.get("/api/v1/me").await;
        }
        let later = db
            .scalar_i64("SELECT COALESCE(MAX(last_used_at), 0) FROM tokens")
            .await;
        assert_eq!(
            first, later,
            "last_used_at is written at most once a minute"
        );
    }
);

both_backends!(
    missing_scope_is_403_insufficient_scope_naming_it,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let server = Server::start(&db);
        let token = db.token("ada@example.com", "acme", "personal", "read:tasks");
        let api = Api::with_token(&server, &token);
        let r = api
            .post("/api/v1/projects", json!({"name": "Apollo"}))
            .await;
        assert_eq!(r.status, 403);
        assert_eq!(r.error_code(), "insufficient_scope");
        assert_eq!(r.body["error"]["details"]["required_scope"], "write:tasks");
        assert!(
            r.header("www-authenticate")
                .contains(r#"error="insufficient_scope", scope="write:tasks""#)
        );
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM projects").await, 0);
        // The refusal is audited.
        assert_eq!(
        db.scalar_i64("SELECT COUNT(*) FROM audit_events WHERE action = 'project.create' AND outcome = 'denied'").await,
        1
    );
    }
);

both_backends!(
    removed_or_demoted_members_lose_access_at_once,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let server = Server::start(&db);
        let owner = Api::with_token(
            &server,
            &db.token("ada@example.com", "acme", "personal", ALL_SCOPES),
        );
        let bob_membership = add_member(&owner, "bob@example.com", "admin").await;
        let bob_token = db.token(
            "bob@example.com",
            "acme",
            "personal",
            "read:org,write:org,read:tasks,write:tasks",
        );
        let bob = Api::with_token(&server, &bob_token);
        assert_eq!(
            bob.post("/api/v1/teams", json!({"name": "Core"}))
                .await
                .status,
            201
        );

        // Demote: the same token loses teams.manage on its next request.
        let r = owner
            .patch(
                &format!("/api/v1/members/{bob_membership}"),
                json!({"role": "viewer"}),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let r = bob.post("/api/v1/teams", json!({"name": "Other"})).await;
        assert_eq!(r.status, 403);
        assert!(
            r.error_message()
                .contains("your role 'viewer' does not include the permission 'teams.manage'"),
            "{}",
            r.error_message()
        );

        // A session keeps working only while the membership does.
        let bob_session = Api::sign_in(&server, "bob@example.com", PASSWORD).await;
        assert_eq!(bob_session.get("/api/v1/me").await.status, 200);
        let r = owner
            .delete(&format!("/api/v1/members/{bob_membership}"))
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
        assert_eq!(bob.get("/api/v1/me").await.status, 401);
        assert_eq!(bob_session.get("/api/v1/me").await.status, 401);
        // Their tokens were revoked too, so re-inviting them does not revive old tokens.
        let revoked = db
            .scalar_i64("SELECT COUNT(*) FROM tokens WHERE revoked_at IS NOT NULL")
            .await;
        assert_eq!(revoked, 1);
    }
);

both_backends!(
    org_tokens_need_mcp_manage_and_act_org_wide,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let server = Server::start(&db);
        let owner = Api::with_token(
            &server,
            &db.token("ada@example.com", "acme", "personal", ALL_SCOPES),
        );
        add_member(&owner, "admin@example.com", "admin").await;

        let out = db.cli(&[
            "token",
            "create",
            "--email",
            "admin@example.com",
            "--org",
            "acme",
            "--name",
            "x",
            "--kind",
            "org",
            "--scopes",
            "read:tasks",
        ]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("the permission 'mcp.manage'"), "{err}");

        let org_token = db.token(
            "ada@example.com",
            "acme",
            "org",
            "read:tasks,write:tasks,read:org",
        );
        let bot = Api::with_token(&server, &org_token);
        let me = bot.get("/api/v1/me").await;
        assert_eq!(me.body["credential"], "org");
        assert_eq!(me.body["role"], serde_json::Value::Null);
        assert_eq!(
            bot.post("/api/v1/projects", json!({"name": "Pipeline"}))
                .await
                .status,
            201
        );
        // Org tokens never change MCP policy or mint tokens.
        let r = bot
            .patch("/api/v1/org", json!({"mcp_policy": {"allow_write": false}}))
            .await;
        assert_eq!(r.status, 403, "{:?}", r.body);
        let r = bot
            .post(
                "/api/v1/tokens",
                json!({"name": "x", "kind": "personal", "scopes": ["read:org"]}),
            )
            .await;
        assert_eq!(r.status, 403);
        assert!(
            r.error_message().contains("not a bearer token"),
            "{}",
            r.error_message()
        );
    }
);

both_backends!(
    sessions_cookies_csrf_and_sign_out,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let server = Server::start(&db);
        let anon = Api::new(&server);
        let r = anon
            .post(
                "/api/v1/auth/sign-in",
                json!({"email": "ADA@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let cookie = r.header("set-cookie");
        assert!(cookie.starts_with("switchboard_session="), "{cookie}");
        assert!(
            cookie.contains("HttpOnly")
                && cookie.contains("SameSite=Lax")
                && cookie.contains("Path=/"),
            "{cookie}"
        );
        assert!(
            !cookie.contains("Secure"),
            "plain-HTTP loopback: no Secure flag ({cookie})"
        );

        let session = Api::sign_in(&server, "ada@example.com", PASSWORD).await;
        assert_eq!(
            session.get("/api/v1/me").await.body["credential"],
            "session"
        );
        // A state change with the cookie but without the CSRF header is refused and changes nothing.
        let no_csrf = Api {
            csrf: None,
            ..session.clone()
        };
        let r = no_csrf.post("/api/v1/projects", json!({"name": "X"})).await;
        assert_eq!(r.status, 403);
        assert_eq!(r.error_code(), "csrf_token_invalid");
        let wrong = Api {
            csrf: Some("0".repeat(64)),
            ..session.clone()
        };
        assert_eq!(
            wrong
                .post("/api/v1/projects", json!({"name": "X"}))
                .await
                .status,
            403
        );
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM projects").await, 0);
        assert_eq!(
            session
                .post("/api/v1/projects", json!({"name": "X"}))
                .await
                .status,
            201
        );
        // A foreign Origin is refused even with the token.
        let r = session
            .http
            .post(format!("{}/api/v1/projects", server.base))
            .header("cookie", session.cookie.clone().unwrap_or_default())
            .header("x-csrf-token", session.csrf.clone().unwrap_or_default())
            .header("origin", "https://evil.example")
            .json(&json!({"name": "Y"}))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 403);

        let r = session.post("/api/v1/auth/sign-out", json!({})).await;
        assert_eq!(r.status, 204);
        assert_eq!(session.get("/api/v1/me").await.status, 401);
    }
);

both_backends!(
    repeated_failed_sign_ins_are_throttled_across_replicas,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let a = Server::start(&db);
        let b = Server::start(&db);
        for i in 0..5 {
            let s = if i % 2 == 0 { &a } else { &b };
            let r = Api::new(s)
                .post(
                    "/api/v1/auth/sign-in",
                    json!({"email": "ada@example.com", "password": "wrong password!"}),
                )
                .await;
            assert_eq!(r.status, 401, "attempt {i}");
            assert_eq!(r.error_message(), "the email or password is wrong");
        }
        // Locked now, even with the right password, on the other replica too.
        let r = Api::new(&b)
            .post(
                "/api/v1/auth/sign-in",
                json!({"email": "ada@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 429, "{:?}", r.body);
        assert!(r.header("retry-after").parse::<i64>().unwrap_or(0) > 0);
        assert!(r.error_message().starts_with("too many sign-in attempts"));
        // Unknown accounts get the same answer as wrong passwords.
        let r = Api::new(&a)
            .post(
                "/api/v1/auth/sign-in",
                json!({"email": "nobody@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 401);
        assert_eq!(r.error_message(), "the email or password is wrong");
    }
);

both_backends!(
    password_change_ends_other_sessions,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let server = Server::start(&db);
        let s1 = Api::sign_in(&server, "ada@example.com", PASSWORD).await;
        let s2 = Api::sign_in(&server, "ada@example.com", PASSWORD).await;
        let r = s1
            .post(
                "/api/v1/auth/password",
                json!({"current_password": "wrong one!!", "new_password": "another long password"}),
            )
            .await;
        assert_eq!(r.status, 422);
        assert_eq!(r.body["error"]["details"]["field"], "current_password");
        let r = s1
            .post(
                "/api/v1/auth/password",
                json!({"current_password": PASSWORD, "new_password": "short"}),
            )
            .await;
        assert_eq!(r.status, 422);
        assert!(r.error_message().contains("at least 10 characters"));
        let r = s1
            .post(
                "/api/v1/auth/password",
                json!({"current_password": PASSWORD, "new_password": "another long password"}),
            )
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
        assert_eq!(s1.get("/api/v1/me").await.status, 200);
        assert_eq!(s2.get("/api/v1/me").await.status, 401);
        Api::sign_in(&server, "ada@example.com", "another long password").await;
    }
);

both_backends!(
    a_session_switches_org_and_a_token_stays_in_its_org,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        db.bootstrap("ada@example.com", "globex");
        let server = Server::start(&db);
        let s = Api::sign_in(&server, "ada@example.com", PASSWORD).await;
        let me = s.get("/api/v1/me").await;
        let first = me.body["org"]["slug"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(me.body["orgs"].as_array().map(|a| a.len()), Some(2));
        let other = if first == "acme" { "globex" } else { "acme" };
        let r = s
            .post("/api/v1/auth/switch-org", json!({"org": other}))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["org"]["slug"], other);
        assert_eq!(s.get("/api/v1/me").await.body["org"]["slug"], other);
        let r = s
            .post("/api/v1/auth/switch-org", json!({"org": "initech"}))
            .await;
        assert_eq!(r.status, 404);

        let t = db.token("ada@example.com", "acme", "personal", ALL_SCOPES);
        let r = Api::with_token(&server, &t)
            .post("/api/v1/auth/switch-org", json!({"org": "globex"}))
            .await;
        assert_eq!(r.status, 403);
    }
);

both_backends!(
    client_ip_comes_from_forwarded_for_only_behind_a_trusted_proxy,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let token = db.token("ada@example.com", "acme", "personal", ALL_SCOPES);
        for (trusted, expected) in [(false, "127.0.0.1"), (true, "203.0.113.7")] {
            let env: Vec<(&str, &str)> = if trusted {
                vec![("SWITCHBOARD_SERVER__TRUSTED_PROXIES", "127.0.0.1")]
            } else {
                vec![]
            };
            let server = Server::start_with(&db, &[], &env);
            let api = Api::with_token(&server, &token);
            let name = format!("P-{trusted}");
            let r = api
                .http
                .post(format!("{}/api/v1/projects", server.base))
                .bearer_auth(&token)
                .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
                .json(&json!({"name": name}))
                .send()
                .await
                .expect("send");
            assert_eq!(r.status().as_u16(), 201);
            let ev = api
                .get("/api/v1/audit-events?action=project.create&limit=1")
                .await;
            assert_eq!(
                ev.body["items"][0]["client_ip"], expected,
                "trusted={trusted}: {:?}",
                ev.body
            );
        }
    }
);

both_backends!(a_session_lists_and_creates_orgs, |db: TestDb| async move {
    db.bootstrap("ada@example.com", "acme");
    let server = Server::start(&db);
    let s = Api::sign_in(&server, "ada@example.com", PASSWORD).await;
    let r = s
        .post(
            "/api/v1/orgs",
            json!({"slug": "initech", "name": "Initech"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = s
        .post("/api/v1/orgs", json!({"slug": "initech", "name": "Again"}))
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.error_code(), "org_slug_taken");
    let r = s
        .post("/api/v1/orgs", json!({"slug": "Not Valid", "name": "X"}))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["error"]["details"]["field"], "slug");
    let orgs = s.get("/api/v1/orgs").await;
    let slugs: Vec<&str> = orgs
        .body
        .as_array()
        .map(|a| a.iter().filter_map(|o| o["slug"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(slugs, vec!["acme", "initech"]);
    // The creator owns the new org.
    let r = s
        .post("/api/v1/auth/switch-org", json!({"org": "initech"}))
        .await;
    assert_eq!(r.body["role"], "owner");
    // A token cannot create orgs.
    let t = Api::with_token(
        &server,
        &db.token("ada@example.com", "acme", "personal", ALL_SCOPES),
    );
    assert_eq!(
        t.post("/api/v1/orgs", json!({"slug": "x-corp", "name": "X"}))
            .await
            .status,
        403
    );
    // Sign-out and the switch are audited.
    s.post("/api/v1/auth/sign-out", json!({})).await;
    assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM audit_events WHERE outcome = 'ok' AND action IN ('session.sign_out', 'session.switch_org', 'org.create')").await, 3);
    // The token's attempt to create an organization is on record as refused.
    assert_eq!(
        db.scalar_i64(
            "SELECT COUNT(*) FROM audit_events WHERE outcome = 'denied' AND action = 'org.create'"
        )
        .await,
        1
    );
});

both_backends!(
    https_public_url_gives_secure_host_prefixed_cookies,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let server = Server::start_with(&db, &["--public-url", "https://hub.example.com"], &[]);
        let r = Api::new(&server)
            .post(
                "/api/v1/auth/sign-in",
                json!({"email": "ada@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 200);
        let cookie = r.header("set-cookie");
        assert!(
            cookie.starts_with("__Host-switchboard_session="),
            "{cookie}"
        );
        assert!(
            cookie.contains("; Secure") && cookie.contains("Path=/") && cookie.contains("HttpOnly"),
            "{cookie}"
        );
        assert!(
            !cookie.contains("Domain="),
            "__Host- cookies carry no Domain: {cookie}"
        );
    }
);
