//! The server process: first-start setup link, probes, OpenAPI, graceful shutdown.
// Test code states its expectations: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;

both_backends!(
    the_setup_link_creates_the_first_owner_once,
    |db: TestDb| async move {
        let server = Server::start(&db);
        let setup = server
            .setup_url
            .clone()
            .expect("a first start prints a setup URL");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let page = http.get(&setup).send().await.expect("get");
        assert_eq!(page.status().as_u16(), 200);
        assert_eq!(page.headers()["x-frame-options"], "DENY");
        assert_eq!(page.headers()["referrer-policy"], "same-origin");
        assert!(
            page.headers()["content-security-policy"]
                .to_str()
                .unwrap_or_default()
                .contains("frame-ancestors 'none'")
        );
        assert!(
            page.text()
                .await
                .unwrap_or_default()
                .contains("Set up Switchboard")
        );

        let form = [
            ("email", "owner@example.com"),
            ("display_name", "Olive"),
            ("password", PASSWORD),
            ("org_name", "Example Org"),
            ("org_slug", "example"),
        ];
        // A cross-origin post is refused.
        let r = http
            .post(&setup)
            .header("origin", "https://evil.example")
            .form(&form)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status().as_u16(), 403);
        let r = http.post(&setup).form(&form).send().await.expect("post");
        assert_eq!(r.status().as_u16(), 303, "{:?}", r.text().await);
        let cookie = r.headers()["set-cookie"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        assert!(cookie.starts_with("switchboard_session="));
        let home = http
            .get(server.url("/"))
            .header("cookie", cookie.split(';').next().unwrap_or_default())
            .send()
            .await
            .expect("home");
        assert!(
            home.text()
                .await
                .unwrap_or_default()
                .contains("Example Org")
        );
        // Single use.
        let r = http.post(&setup).form(&form).send().await.expect("post");
        assert_eq!(r.status().as_u16(), 404);
        assert_eq!(
            http.get(&setup)
                .send()
                .await
                .expect("get")
                .status()
                .as_u16(),
            404
        );
        drop(server);
        // Once an owner exists, no setup link is offered.
        let again = Server::start(&db);
        assert!(again.setup_url.is_none());
        Api::sign_in(&again, "owner@example.com", PASSWORD).await;
    }
);

both_backends!(probes_status_and_openapi, |db: TestDb| async move {
    db.bootstrap("ada@example.com", "acme");
    let server = Server::start(&db);
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(server.url("/healthz"))
            .send()
            .await
            .expect("h")
            .text()
            .await
            .unwrap_or_default(),
        "ok"
    );
    assert_eq!(
        http.get(server.url("/readyz"))
            .send()
            .await
            .expect("r")
            .status()
            .as_u16(),
        200
    );
    let api = Api::with_token(
        &server,
        &db.token("ada@example.com", "acme", "personal", "read:org"),
    );
    let st = api.get("/api/v1/status").await;
    assert_eq!(st.status, 200);
    let backend = if db.backend == Backend::Sqlite {
        "sqlite"
    } else {
        "postgres"
    };
    assert_eq!(st.body["database"]["backend"], backend);
    assert_eq!(st.body["database"]["reachable"], true);
    assert!(st.header("x-request-id").len() >= 32);

    let doc: serde_json::Value = http
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("o")
        .json()
        .await
        .expect("json");
    assert!(
        doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.")
    );
    for path in [
        "/api/v1/me",
        "/api/v1/members/{id}",
        "/api/v1/invitations/accept",
        "/api/v1/tasks/{id}/commits",
        "/api/v1/audit-events",
        "/api/v1/tokens",
    ] {
        assert!(doc["paths"].get(path).is_some(), "OpenAPI lacks {path}");
    }
    assert!(doc["components"]["schemas"].get("TaskView").is_some());
});

both_backends!(
    sigterm_finishes_cleanly_and_data_survives_restart,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let token = db.token("ada@example.com", "acme", "personal", ALL_SCOPES);
        let mut server = Server::start(&db);
        let api = Api::with_token(&server, &token);
        assert_eq!(
            api.post("/api/v1/projects", serde_json::json!({"name": "Kept"}))
                .await
                .status,
            201
        );
        let status = server.signal("TERM").expect("server exits after SIGTERM");
        assert!(status.success(), "exit status {status:?}");
        let log = server.log();
        assert!(
            log.contains("shutting down") && log.contains("stopped"),
            "{log}"
        );
        assert!(!log.contains(&token), "tokens never appear in logs");
        let again = Server::start(&db);
        let api = Api::with_token(&again, &token);
        assert_eq!(
            api.get("/api/v1/projects").await.body["items"][0]["name"],
            "Kept"
        );
    }
);

both_backends!(web_sign_in_and_invitation_pages, |db: TestDb| async move {
    db.bootstrap("ada@example.com", "acme");
    let server = Server::start(&db);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let home = http.get(server.url("/")).send().await.expect("home");
    assert_eq!(home.status().as_u16(), 303);
    assert_eq!(home.headers()["location"], "/sign-in");

    let bad = http
        .post(server.url("/sign-in"))
        .form(&[("email", "ada@example.com"), ("password", "wrong password")])
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status().as_u16(), 401);
    let page = bad.text().await.unwrap_or_default();
    assert!(page.contains("the email or password is wrong"), "{page}");
    assert!(
        page.contains("value=\"ada@example.com\""),
        "the form keeps the email"
    );

    let ok = http
        .post(server.url("/sign-in"))
        .form(&[("email", "ada@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .expect("post");
    assert_eq!(ok.status().as_u16(), 303);
    let cookie = ok.headers()["set-cookie"]
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let home = http
        .get(server.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("home")
        .text()
        .await
        .unwrap_or_default();
    assert!(
        home.contains("Org acme") && home.contains("<strong>ada@example.com</strong> (owner)"),
        "{home}"
    );

    // Invite someone through the API, accept through the page.
    let owner = Api::with_token(
        &server,
        &db.token("ada@example.com", "acme", "personal", ALL_SCOPES),
    );
    let inv = owner
        .post(
            "/api/v1/invitations",
            serde_json::json!({"email": "bob@example.com"}),
        )
        .await;
    let accept_url = inv.body["accept_url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(accept_url.starts_with(&server.base), "{accept_url}");
    let page = http.get(&accept_url).send().await.expect("get");
    assert_eq!(page.status().as_u16(), 200);
    let r = http
        .post(&accept_url)
        .form(&[("display_name", "Bob"), ("password", "short")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 422);
    assert!(
        r.text()
            .await
            .unwrap_or_default()
            .contains("at least 10 characters")
    );
    let r = http
        .post(&accept_url)
        .form(&[("display_name", "Bob"), ("password", PASSWORD)])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.text()
            .await
            .unwrap_or_default()
            .contains("You have joined the organization")
    );
    Api::sign_in(&server, "bob@example.com", PASSWORD).await;
    let r = http
        .post(&accept_url)
        .form(&[("password", PASSWORD)])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 404, "the link works once");
});
