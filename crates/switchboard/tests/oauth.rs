//! The OAuth authorization server end to end, against the real binary:
//! discovery, registration, the authorization pages, codes, tokens,
//! refresh rotation, revocation, audience binding on `/mcp`, and every
//! refusal the issue lists. A Rust HTTP client plays the member's browser
//! here; real clients (Python SDK, mcp-remote, the conformance suite with
//! headless Chromium) run in `oauth_clients.rs`.
// Test code states its expectations: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
// A test that meets an unexpected shape should stop right there.
#![allow(clippy::unwrap_used)]

mod common;

use common::mcp::{Mcp, message, rpc, structured};
use common::oauth::{AuthRequest, Browser, pkce, query_param, register, token};
use common::{Api, Backend, PASSWORD, Server, TestDb, add_member};
use serde_json::{Value, json};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

struct Setup {
    db: TestDb,
    server: Server,
}

async fn setup(backend: Backend, extra: &[&str]) -> Setup {
    let db = TestDb::new(backend).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = Server::start_with(&db, extra, &[]);
    Setup { db, server }
}

impl Setup {
    fn request(&self, client_id: &str) -> (AuthRequest, String) {
        let (verifier, challenge) = pkce();
        (
            AuthRequest {
                client_id: client_id.to_owned(),
                redirect_uri: REDIRECT.to_owned(),
                challenge,
                resource: Some(self.server.url("/mcp")),
                scope: None,
                state: "st-123".into(),
            },
            verifier,
        )
    }

    /// A whole authorization for `email` in `org`: returns the token response.
    async fn tokens_for(&self, client_id: &str, email: &str, org: &str) -> Value {
        let (req, verifier) = self.request(client_id);
        let to = Browser::new(&self.server)
            .authorize(&req.url(&self.server), email, org)
            .await;
        let code = query_param(&to, "code").expect("code");
        let (status, body, _) = token(
            &self.server,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
                ("client_id", client_id),
                ("resource", &self.server.url("/mcp")),
            ],
        )
        .await;
        assert_eq!(status, 200, "token: {body}");
        body
    }
}

async fn whoami(server: &Server, token: &str) -> (u16, Value) {
    let r = Mcp::new(server, Some(token))
        .call_2026("whoami", json!({}))
        .await;
    (r.status, r.body.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_documents_agree_byte_for_byte() {
    let s = setup(Backend::Sqlite, &[]).await;
    let issuer = s.server.base.trim_end_matches('/').to_owned();
    let http = reqwest::Client::new();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let v: Value = http
            .get(s.server.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["issuer"], issuer, "{path}");
        assert_eq!(v["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(v["client_id_metadata_document_supported"], true);
        assert_eq!(v["authorization_response_iss_parameter_supported"], true);
        assert_eq!(
            v["registration_endpoint"],
            format!("{issuer}/oauth/register")
        );
        assert_eq!(v["revocation_endpoint"], format!("{issuer}/oauth/revoke"));
        assert_eq!(
            v["authorization_endpoint"],
            format!("{issuer}/oauth/authorize")
        );
        assert_eq!(v["token_endpoint"], format!("{issuer}/oauth/token"));
        assert!(
            v["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("read:tasks"))
        );
        assert!(
            v["token_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("none"))
        );
    }
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource/mcp/rpc",
        "/.well-known/oauth-protected-resource",
    ] {
        let v: Value = http
            .get(s.server.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["resource"], format!("{issuer}/mcp"), "{path}");
        assert_eq!(v["authorization_servers"], json!([issuer]), "{path}");
        assert!(v["scopes_supported"].as_array().unwrap().len() >= 7);
    }
    // The 401 challenge names the document.
    let r = Mcp::new(&s.server, None)
        .call_2026("whoami", json!({}))
        .await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").contains(&format!(
        "resource_metadata=\"{issuer}/.well-known/oauth-protected-resource/mcp\""
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_registration_infers_and_validates() {
    let s = setup(Backend::Sqlite, &[]).await;
    let http = reqwest::Client::new();
    let reg = |body: Value| {
        let http = http.clone();
        let url = s.server.url("/oauth/register");
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Older clients send no application_type: a loopback redirect means native, public.
    let (st, v) =
        reg(json!({"redirect_uris": ["http://127.0.0.1:4567/cb"], "client_name": "CLI"})).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["application_type"], "native");
    assert_eq!(v["token_endpoint_auth_method"], "none");
    assert!(v.get("client_secret").is_none());
    // A web app on https gets a secret (client_secret_basic by default).
    let (st, v) = reg(json!({"redirect_uris": ["https://app.example.com/cb"]})).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["application_type"], "web");
    assert_eq!(v["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(v["client_secret"].as_str().unwrap().len(), 64);
    // Refusals name the problem.
    let (st, v) = reg(json!({"redirect_uris": ["http://app.example.com/cb"]})).await;
    assert_eq!(st, 400);
    assert_eq!(v["error"], "invalid_redirect_uri");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("plain http")
    );
    let (st, v) = reg(json!({"redirect_uris": []})).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_redirect_uri"))
    );
    let (st, v) = reg(json!({"redirect_uris": ["javascript:alert(1)"]})).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_redirect_uri"))
    );
    let (st, v) = reg(
        json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"]}),
    )
    .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_client_metadata"))
    );
    let (st, v) = reg(json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"})).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_client_metadata"))
    );
    let r = http
        .post(s.server.url("/oauth/register"))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Registration is audited (server-level event, no org).
    assert!(
        s.db.scalar_i64(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'oauth.client_registered'"
        )
        .await
            >= 2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_rate_limited_per_address() {
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = Server::start_with(
        &db,
        &[],
        &[("SWITCHBOARD_OAUTH__REGISTRATIONS_PER_HOUR", "3")],
    );
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = http
            .post(server.url("/oauth/register"))
            .json(&json!({"redirect_uris": ["http://127.0.0.1/cb"]}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, vec![201, 201, 201, 429]);
}

both_backends!(
    full_flow_then_refresh_revoke_and_disconnect,
    |db: TestDb| async move {
        db.bootstrap("owner@alpha.test", "alpha");
        let s = Setup {
            server: Server::start(&db),
            db,
        };
        let client = register(&s.server, REDIRECT).await;
        let (req, verifier) = s.request(&client);
        let browser = Browser::new(&s.server);

        // The pages: security headers on every step.
        let page = browser.open(&req.url(&s.server)).await;
        assert_eq!(page.status, 200);
        assert!(page.is_step("oauth-sign-in"), "{}", page.html);
        let csp = page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(page.headers["x-frame-options"], "DENY");
        assert!(page.html.contains("Test App"));
        assert!(page.html.contains(REDIRECT));
        let page = browser.sign_in(&page, "owner@alpha.test").await;
        assert!(page.is_step("oauth-pick-org"));
        assert!(page.html.contains("value=\"alpha\""));
        let csp = page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("form-action 'self' http://127.0.0.1:9"),
            "{csp}"
        );

        // A forged form (wrong CSRF token) changes nothing.
        let action = page.form_action("oauth-pick-org").unwrap();
        let forged = browser
            .post(&action, &[("csrf_token", "x"), ("org", "alpha")])
            .await;
        assert_eq!(forged.status, 403);
        let cross = browser
            .http
            .post(s.server.url(&action))
            .header("origin", "https://evil.example")
            .form(&[
                ("csrf_token", page.input("csrf_token").unwrap().as_str()),
                ("org", "alpha"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(cross.status(), 403);

        let after = browser.pick(&page, "alpha").await;
        assert_eq!(after.status, 303);
        let consent = browser.get(after.location.as_deref().unwrap()).await;
        assert!(consent.is_step("oauth-consent"));
        assert!(consent.html.contains("Org alpha"), "names the org");
        assert!(
            consent.html.contains(&s.server.url("/mcp")),
            "names the resource"
        );
        assert!(consent.html.contains("read:tasks"), "names the scopes");
        let done = browser.decide(&consent, "approve").await;
        assert_eq!(done.status, 303);
        let to = done.location.unwrap();
        assert!(to.starts_with(REDIRECT), "{to}");
        assert_eq!(query_param(&to, "state").as_deref(), Some("st-123"));
        assert_eq!(
            query_param(&to, "iss").as_deref(),
            Some(s.server.base.trim_end_matches('/'))
        );
        let code = query_param(&to, "code").unwrap();

        let (status, body, headers) = token(
            &s.server,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
                ("client_id", &client),
                ("resource", &s.server.url("/mcp")),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(
            headers["cache-control"]
                .to_str()
                .unwrap()
                .contains("no-store")
        );
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3600);
        let access = body["access_token"].as_str().unwrap().to_owned();
        let refresh = body["refresh_token"].as_str().unwrap().to_owned();
        // Stored hashed: the secret itself is nowhere in the database.
        assert_eq!(
            s.db.scalar_i64(&format!(
                "SELECT COUNT(*) FROM tokens WHERE token_hash = '{access}'"
            ))
            .await,
            0
        );

        // The token works on /mcp and /mcp/rpc as the member, in the org picked.
        let (st, v) = whoami(&s.server, &access).await;
        assert_eq!(st, 200, "{v}");
        let me = structured(
            &Mcp::new(&s.server, Some(&access))
                .call_2026("whoami", json!({}))
                .await,
        );
        assert_eq!(me["account"]["email"], "owner@alpha.test");
        assert_eq!(me["token_kind"], "oauth");
        assert_eq!(me["org"]["slug"], "alpha");
        let r = rpc(&s.server, Some(&access), json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami"}})).await;
        assert_eq!(r.status, 200);
        assert!(r.body["result"].is_object(), "{:?}", r.body);

        // Refresh rotates: a new pair, the old access token still valid until
        // it expires, the spent refresh token dead.
        let (status, rotated, _) = token(
            &s.server,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", &client),
            ],
        )
        .await;
        assert_eq!(status, 200, "{rotated}");
        let access2 = rotated["access_token"].as_str().unwrap().to_owned();
        let refresh2 = rotated["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(refresh2, refresh);
        assert_eq!(whoami(&s.server, &access2).await.0, 200);

        // Revocation (RFC 7009) of the refresh token ends the whole family.
        let r = reqwest::Client::new()
            .post(s.server.url("/oauth/revoke"))
            .form(&[("token", refresh2.as_str()), ("client_id", client.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(whoami(&s.server, &access).await.0, 401);
        assert_eq!(whoami(&s.server, &access2).await.0, 401);
        let (status, body, _) = token(
            &s.server,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh2),
                ("client_id", &client),
            ],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        // An unknown token is not an error (RFC 7009 §2.2).
        let r = reqwest::Client::new()
            .post(s.server.url("/oauth/revoke"))
            .form(&[("token", "nonsense"), ("client_id", client.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        // Consent is remembered: the next authorization skips the consent page.
        let (req2, verifier2) = s.request(&client);
        let page = browser.open(&req2.url(&s.server)).await;
        assert!(
            page.is_step("oauth-pick-org"),
            "still signed in: {}",
            page.html
        );
        let after = browser.pick(&page, "alpha").await;
        assert_eq!(after.status, 303);
        let to = after.location.unwrap();
        assert!(to.starts_with(REDIRECT), "consent remembered: {to}");
        let code2 = query_param(&to, "code").unwrap();
        let (status, body, _) = token(
            &s.server,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code2),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier2),
                ("client_id", &client),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let access3 = body["access_token"].as_str().unwrap().to_owned();

        // The member sees the connected app on the home page and over the API,
        // and disconnects it: access ends at once.
        let home = browser.get("/").await;
        assert!(home.html.contains("id=\"connected-apps\""), "{}", home.html);
        assert!(home.html.contains("Test App"));
        let me_api = Api::sign_in(&s.server, "owner@alpha.test", PASSWORD).await;
        let apps = me_api.get("/api/v1/connected-apps").await;
        assert_eq!(apps.status, 200);
        assert_eq!(apps.body.as_array().unwrap().len(), 1, "{:?}", apps.body);
        assert_eq!(apps.body[0]["client_name"], "Test App");
        let grant = apps.body[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(whoami(&s.server, &access3).await.0, 200);
        let r = me_api
            .delete(&format!("/api/v1/connected-apps/{grant}"))
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
        assert_eq!(whoami(&s.server, &access3).await.0, 401);
        assert_eq!(me_api.get("/api/v1/connected-apps").await.body, json!([]));

        // Every step is in the audit log.
        for action in [
            "oauth.authorize",
            "oauth.token",
            "oauth.refresh",
            "oauth.revoke",
            "oauth.grant_revoked",
        ] {
            let n =
                s.db.scalar_i64(&format!(
                    "SELECT COUNT(*) FROM audit_events WHERE action = '{action}'"
                ))
                .await;
            assert!(n >= 1, "no audit event {action}");
        }
        // No secret in the log or the audit table.
        let log = s.server.log();
        for secret in [&access, &refresh, &code] {
            assert!(!log.contains(secret.as_str()));
            assert_eq!(
                s.db.scalar_i64(&format!(
                    "SELECT COUNT(*) FROM audit_events WHERE args LIKE '%{secret}%'"
                ))
                .await,
                0
            );
        }
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_are_single_use_and_pkce_is_checked() {
    let s = setup(Backend::Sqlite, &[]).await;
    let client = register(&s.server, REDIRECT).await;
    let browser = Browser::new(&s.server);

    // Wrong verifier: refused, and the code is burnt.
    let (req, verifier) = s.request(&client);
    let to = browser
        .authorize(&req.url(&s.server), "owner@alpha.test", "alpha")
        .await;
    let code = query_param(&to, "code").unwrap();
    let (wrong, _) = pkce();
    let form = |code: &str, v: &str| {
        vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            ("redirect_uri".to_owned(), REDIRECT.to_owned()),
            ("code_verifier".to_owned(), v.to_owned()),
            ("client_id".to_owned(), client.clone()),
        ]
    };
    let send = |f: Vec<(String, String)>| {
        let srv = s.server.url("/oauth/token");
        async move {
            let r = reqwest::Client::new()
                .post(srv)
                .form(&f)
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap())
        }
    };
    let (st, v) = send(form(&code, &wrong)).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_grant")));
    assert!(v["error_description"].as_str().unwrap().contains("PKCE"));
    let (st, v) = send(form(&code, &verifier)).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "burnt by the wrong verifier"
    );

    // Reused code: the second exchange fails and revokes what the first issued.
    let (req, verifier) = s.request(&client);
    let to = browser
        .authorize(&req.url(&s.server), "owner@alpha.test", "alpha")
        .await;
    let code = query_param(&to, "code").unwrap();
    let (st, first) = send(form(&code, &verifier)).await;
    assert_eq!(st, 200);
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(whoami(&s.server, access).await.0, 200);
    let (st, v) = send(form(&code, &verifier)).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_grant")));
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    assert_eq!(
        whoami(&s.server, access).await.0,
        401,
        "replay revokes the family"
    );

    // redirect_uri at the token endpoint must be the one authorized.
    let (req, verifier) = s.request(&client);
    let to = browser
        .authorize(&req.url(&s.server), "owner@alpha.test", "alpha")
        .await;
    let code = query_param(&to, "code").unwrap();
    let mut f = form(&code, &verifier);
    f[2].1 = "http://127.0.0.1:10/callback".into();
    let (st, v) = send(f).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_grant")));

    // Another resource at the token endpoint than the one authorized.
    let (req, verifier) = s.request(&client);
    let to = browser
        .authorize(&req.url(&s.server), "owner@alpha.test", "alpha")
        .await;
    let code = query_param(&to, "code").unwrap();
    let mut f = form(&code, &verifier);
    f.push(("resource".into(), s.server.url("/mcp/servers/github")));
    let (st, v) = send(f).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_target")));

    // Public client presenting a secret; unknown client; unsupported grant.
    let (st, v) = send(vec![
        ("grant_type".into(), "authorization_code".into()),
        ("client_id".into(), "sbc_nope".into()),
        ("code".into(), "x".into()),
        ("code_verifier".into(), "y".into()),
    ])
    .await;
    assert_eq!((st, v["error"].as_str()), (401, Some("invalid_client")));
    let (st, v) = send(vec![
        ("grant_type".into(), "password".into()),
        ("client_id".into(), client.clone()),
    ])
    .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let r = reqwest::Client::new()
        .post(s.server.url("/oauth/token"))
        .json(&json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        400,
        "JSON bodies are refused with a clear error"
    );
    // Refusals are audited.
    assert!(
        s.db.scalar_i64(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'oauth.token' AND outcome = 'denied'"
        )
        .await
            >= 4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_request_refusals() {
    let s = setup(Backend::Sqlite, &[]).await;
    let client = register(&s.server, "http://127.0.0.1/callback").await;
    let browser = Browser::new(&s.server);
    let base = |s: &Setup| {
        let (mut r, _) = s.request(&client);
        r.redirect_uri = "http://127.0.0.1/callback".into();
        r
    };

    // An unregistered redirect URI: an error page, never a redirect.
    let mut r = base(&s);
    r.redirect_uri = "https://evil.example/cb".into();
    let page = browser.open(&r.url(&s.server)).await;
    assert_eq!(page.status, 400);
    assert!(page.location.is_none());
    assert!(page.html.contains("id=\"oauth-error\""));
    assert!(page.html.contains("not registered"), "{}", page.html);

    // A loopback IP redirect matches on any port (RFC 8252 §7.3).
    let mut r = base(&s);
    r.redirect_uri = "http://127.0.0.1:49152/callback".into();
    let page = browser.open(&r.url(&s.server)).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.is_step("oauth-sign-in"));

    // Missing resource → back to the client with invalid_target.
    let mut r = base(&s);
    r.resource = None;
    let page = browser.open(&r.url(&s.server)).await;
    assert_eq!(page.status, 303);
    let to = page.location.unwrap();
    assert!(to.starts_with("http://127.0.0.1/callback"), "{to}");
    assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_target"));
    assert_eq!(query_param(&to, "state").as_deref(), Some("st-123"));
    // A resource that is not ours.
    let mut r = base(&s);
    r.resource = Some("https://elsewhere.example/mcp".into());
    let to = browser.open(&r.url(&s.server)).await.location.unwrap();
    assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_target"));
    // PKCE plain is refused; missing challenge too.
    let url = base(&s)
        .url(&s.server)
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    let to = browser.open(&url).await.location.unwrap();
    assert_eq!(
        query_param(&to, "error").as_deref(),
        Some("invalid_request")
    );
    assert!(
        query_param(&to, "error_description")
            .unwrap()
            .contains("S256")
    );
    // Unknown scope.
    let mut r = base(&s);
    r.scope = Some("read:tasks admin:everything".into());
    let to = browser.open(&r.url(&s.server)).await.location.unwrap();
    assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_scope"));
    // Unknown client: a page.
    let mut r = base(&s);
    r.client_id = "sbc_unknown".into();
    let page = browser.open(&r.url(&s.server)).await;
    assert_eq!(page.status, 400);
    assert!(page.html.contains("not registered"));
    // Deny: back to the client with access_denied.
    let r = base(&s);
    let page = browser.open(&r.url(&s.server)).await;
    let page = browser.sign_in(&page, "owner@alpha.test").await;
    let after = browser.pick(&page, "alpha").await;
    let consent = browser.get(after.location.as_deref().unwrap()).await;
    let done = browser.decide(&consent, "deny").await;
    let to = done.location.unwrap();
    assert_eq!(query_param(&to, "error").as_deref(), Some("access_denied"));
    assert!(query_param(&to, "code").is_none());
    // Another browser cannot continue someone else's request.
    let r = base(&s);
    let first = browser.get(&r.url(&s.server)).await;
    let step = first.location.unwrap();
    let other = Browser::new(&s.server).get(&step).await;
    assert_eq!(other.status, 400);
    assert!(other.html.contains("oauth-error"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_org_pending_and_disabled_orgs_cannot_be_authorized() {
    let s = setup(Backend::Sqlite, &[]).await;
    let owner = Api::sign_in(&s.server, "owner@alpha.test", PASSWORD).await;
    add_member(&owner, "alice@alpha.test", "member").await;
    // A second org, whose owner invites alice (pending: not accepted).
    s.db.bootstrap("owner@beta.test", "beta");
    let beta = Api::sign_in(&s.server, "owner@beta.test", PASSWORD).await;
    let r = beta
        .post(
            "/api/v1/invitations",
            json!({"email": "alice@alpha.test", "role": "member"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    // And a third org alice is active in, with MCP turned off.
    s.db.bootstrap("owner@gamma.test", "gamma");
    let gamma = Api::sign_in(&s.server, "owner@gamma.test", PASSWORD).await;
    add_member(&gamma, "alice@alpha.test", "member").await;
    let r = gamma
        .patch("/api/v1/org", json!({"mcp_policy": {"mcp_enabled": false}}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let client = register(&s.server, REDIRECT).await;
    let (req, verifier) = s.request(&client);
    let browser = Browser::new(&s.server);
    let page = browser.open(&req.url(&s.server)).await;
    let page = browser.sign_in(&page, "alice@alpha.test").await;
    assert!(page.is_step("oauth-pick-org"));
    assert!(page.html.contains("value=\"alpha\""));
    assert!(
        !page.html.contains("value=\"beta\""),
        "a pending invitation is not offered"
    );
    assert!(
        page.html.contains("MCP access is turned off"),
        "gamma shown as unavailable"
    );
    // Forged choices are refused, and audited.
    for org in ["beta", "gamma"] {
        let r = browser.pick(&page, org).await;
        assert_eq!(r.status, 403, "{org}: {}", r.html);
        assert!(r.html.contains("oauth-error"));
    }
    assert!(
        s.db.scalar_i64("SELECT COUNT(*) FROM audit_events WHERE action = 'oauth.authorize' AND outcome = 'denied'")
            .await
            >= 2
    );
    // Alpha works; the token is bound to alpha only.
    let after = browser.pick(&page, "alpha").await;
    let consent = browser.get(after.location.as_deref().unwrap()).await;
    // A member's role cannot back write:org: not granted, and said so.
    assert!(consent.html.contains("Not granted"), "{}", consent.html);
    let to = browser.decide(&consent, "approve").await.location.unwrap();
    let code = query_param(&to, "code").unwrap();
    let (st, body, _) = token(
        &s.server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", &client),
        ],
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(
        !body["scope"].as_str().unwrap().contains("write:org"),
        "{body}"
    );
    let access = body["access_token"].as_str().unwrap();
    let me = structured(
        &Mcp::new(&s.server, Some(access))
            .call_2026("whoami", json!({}))
            .await,
    );
    assert_eq!(me["org"]["slug"], "alpha");

    // MCP turned off later: refresh is refused.
    let r = owner
        .patch("/api/v1/org", json!({"mcp_policy": {"mcp_enabled": false}}))
        .await;
    assert_eq!(r.status, 200);
    let (st, body, _) = token(
        &s.server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ("client_id", &client),
        ],
    )
    .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audience_expiry_refresh_reuse_and_step_up() {
    let s = setup(Backend::Sqlite, &[]).await;
    let client = register(&s.server, REDIRECT).await;

    // A token for a virtual server is refused on /mcp and /mcp/rpc (401).
    let (mut req, verifier) = s.request(&client);
    req.resource = Some(s.server.url("/mcp/servers/github"));
    let to = Browser::new(&s.server)
        .authorize(&req.url(&s.server), "owner@alpha.test", "alpha")
        .await;
    let code = query_param(&to, "code").unwrap();
    let (st, body, _) = token(
        &s.server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", &client),
        ],
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let other = body["access_token"].as_str().unwrap();
    let r = Mcp::new(&s.server, Some(other))
        .call_2026("whoami", json!({}))
        .await;
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate");
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert!(challenge.contains("/mcp/servers/github"), "{challenge}");
    let r = rpc(
        &s.server,
        Some(other),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;
    assert_eq!(r.status, 401);

    // Expired access token → 401 naming the expiry.
    let body = s.tokens_for(&client, "owner@alpha.test", "alpha").await;
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(whoami(&s.server, &access).await.0, 200);
    s.db.sql("UPDATE tokens SET expires_at = 1000 WHERE kind = 'oauth'")
        .await;
    let r = Mcp::new(&s.server, Some(&access))
        .call_2026("whoami", json!({}))
        .await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").contains("expired"));

    // Refresh reuse: rotate once, replay the first → the family is revoked.
    let (st, rotated, _) = token(
        &s.server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client),
        ],
    )
    .await;
    assert_eq!(st, 200);
    let fresh = rotated["access_token"].as_str().unwrap().to_owned();
    let refresh2 = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(whoami(&s.server, &fresh).await.0, 200);
    let (st, v, _) = token(
        &s.server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client),
        ],
    )
    .await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_grant")));
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    assert_eq!(whoami(&s.server, &fresh).await.0, 401, "family revoked");
    let (st, _, _) = token(
        &s.server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh2),
            ("client_id", &client),
        ],
    )
    .await;
    assert_eq!(st, 400, "the newer refresh token is revoked too");
    assert_eq!(
        s.db.scalar_i64("SELECT COUNT(*) FROM audit_events WHERE action = 'oauth.refresh_reuse'")
            .await,
        1
    );

    // Step-up: a token with only read:org → a write tool gets 403
    // insufficient_scope naming the scope; the client asks for more.
    let (mut req, verifier) = s.request(&client);
    req.scope = Some("read:org".into());
    let to = Browser::new(&s.server)
        .authorize(&req.url(&s.server), "owner@alpha.test", "alpha")
        .await;
    let code = query_param(&to, "code").unwrap();
    let (_, body, _) = token(
        &s.server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", &client),
        ],
    )
    .await;
    assert_eq!(body["scope"], "read:org");
    let narrow = body["access_token"].as_str().unwrap();
    let r = Mcp::new(&s.server, Some(narrow))
        .call_2026("listProjects", json!({}))
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let ch = r.header("www-authenticate");
    assert!(ch.contains("error=\"insufficient_scope\""), "{ch}");
    assert!(ch.contains("read:tasks"), "{ch}");
    // A refresh may narrow but never widen.
    let (st, v, _) = token(
        &s.server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ("client_id", &client),
            ("scope", "read:org read:tasks"),
        ],
    )
    .await;
    assert_eq!((st, v["error"].as_str()), (400, Some("invalid_scope")));
    let _ = message;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preregistered_confidential_client_via_cli() {
    let s = setup(Backend::Sqlite, &[]).await;
    let out = s.db.cli(&[
        "oauth-client",
        "register",
        "--name",
        "Team Bot",
        "--redirect-uri",
        "https://bot.example.com/cb",
        "--confidential",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = v["client_id"].as_str().unwrap().to_owned();
    let secret = v["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(v["token_endpoint_auth_method"], "client_secret_basic");
    let out = s.db.cli(&[
        "oauth-client",
        "register",
        "--name",
        "X",
        "--redirect-uri",
        "http://example.com/cb",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("plain http"));

    let (verifier, challenge) = pkce();
    let req = AuthRequest {
        client_id: id.clone(),
        redirect_uri: "https://bot.example.com/cb".into(),
        challenge,
        resource: Some(s.server.url("/mcp")),
        scope: Some("read:org".into()),
        state: "s".into(),
    };
    let browser = Browser::new(&s.server);
    let page = browser.open(&req.url(&s.server)).await;
    assert!(
        !page.html.contains("not verified"),
        "an operator-registered name is trusted"
    );
    let to = browser
        .authorize(&req.url(&s.server), "owner@alpha.test", "alpha")
        .await;
    let code = query_param(&to, "code").unwrap();
    let post = |auth: Option<(&str, &str)>| {
        let mut r = reqwest::Client::new()
            .post(s.server.url("/oauth/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", "https://bot.example.com/cb"),
                ("code_verifier", verifier.as_str()),
            ]);
        if let Some((u, p)) = auth {
            r = r.basic_auth(u, Some(p));
        }
        r.send()
    };
    let r = post(Some((&id, "wrong"))).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let r = post(None).await.unwrap();
    assert_eq!(r.status(), 401, "no credentials at all");
    let r = post(Some((&id, &secret))).await.unwrap();
    assert_eq!(r.status(), 200);

    // The operator lists and revokes it; its tokens end.
    let body: Value = r.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(whoami(&s.server, access).await.0, 200);
    let out = s.db.cli(&["oauth-client", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Team Bot"));
    let out = s.db.cli(&["oauth-client", "revoke", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(whoami(&s.server, access).await.0, 401);
    let page = browser.open(&req.url(&s.server)).await;
    assert!(page.html.contains("revoked"));
}

// Two replicas on one database redeem the same code, and then the same
// refresh token, at the same moment: exactly one wins each race.
both_backends!(
    racing_replicas_get_exactly_one_winner,
    |db: TestDb| async move {
        db.bootstrap("owner@alpha.test", "alpha");
        let a = Server::start(&db);
        let b = Server::start(&db);
        let s = Setup { server: a, db };
        let client = register(&s.server, REDIRECT).await;
        for round in 0..3 {
            let (req, verifier) = s.request(&client);
            let to = Browser::new(&s.server)
                .authorize(&req.url(&s.server), "owner@alpha.test", "alpha")
                .await;
            let code = query_param(&to, "code").unwrap();
            let form = vec![
                ("grant_type", "authorization_code".to_owned()),
                ("code", code.clone()),
                ("redirect_uri", REDIRECT.to_owned()),
                ("code_verifier", verifier.clone()),
                ("client_id", client.clone()),
            ];
            let (ra, rb) = tokio::join!(
                reqwest::Client::new()
                    .post(s.server.url("/oauth/token"))
                    .form(&form)
                    .send(),
                reqwest::Client::new()
                    .post(b.url("/oauth/token"))
                    .form(&form)
                    .send(),
            );
            let mut statuses = [ra.unwrap().status().as_u16(), rb.unwrap().status().as_u16()];
            statuses.sort();
            assert_eq!(statuses, [200, 400], "round {round}: code race");
            // The loser's replay revoked the winner's tokens (RFC 6749 §4.1.2),
            // so the refresh race starts from a fresh authorization.
            let fresh = s.tokens_for(&client, "owner@alpha.test", "alpha").await;
            let refresh = fresh["refresh_token"].as_str().unwrap().to_owned();
            let form = vec![
                ("grant_type", "refresh_token".to_owned()),
                ("refresh_token", refresh),
                ("client_id", client.clone()),
            ];
            let (ra, rb) = tokio::join!(
                reqwest::Client::new()
                    .post(s.server.url("/oauth/token"))
                    .form(&form)
                    .send(),
                reqwest::Client::new()
                    .post(b.url("/oauth/token"))
                    .form(&form)
                    .send(),
            );
            let mut statuses = [ra.unwrap().status().as_u16(), rb.unwrap().status().as_u16()];
            statuses.sort();
            assert_eq!(statuses, [200, 400], "round {round}: refresh race");
        }
        // Sign-in throttling is shared by the replicas too: failures on A lock B.
        let bad = |srv: &Server| {
            reqwest::Client::new()
                .post(srv.url("/api/v1/auth/sign-in"))
                .json(&json!({"email": "owner@alpha.test", "password": "wrong password!"}))
                .send()
        };
        for _ in 0..5 {
            bad(&s.server).await.unwrap();
        }
        assert_eq!(bad(&b).await.unwrap().status(), 429);
    }
);

/// A tiny HTTP server on loopback for client metadata documents: answers
/// every request with `body` after `delay`, and counts connections.
struct DocServer {
    port: u16,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

async fn doc_server(body: fn(u16) -> String, delay: std::time::Duration) -> DocServer {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            let text = body(port);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\ncache-control: max-age=600\r\nconnection: close\r\n\r\n",
                    text.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                tokio::time::sleep(delay).await;
                let _ = sock.write_all(text.as_bytes()).await;
            });
        }
    });
    DocServer { port, connections }
}

fn good_doc(port: u16) -> String {
    json!({
        "client_id": format!("http://127.0.0.1:{port}/client.json"),
        "client_name": "Doc Client",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_metadata_documents_are_fetched_safely() {
    use std::sync::atomic::Ordering;
    // Default rules: loopback and private addresses are never fetched.
    let s = setup(Backend::Sqlite, &[]).await;
    let docs = doc_server(good_doc, std::time::Duration::ZERO).await;
    let browser = Browser::new(&s.server);
    for client_id in [
        format!("https://127.0.0.1:{}/client.json", docs.port),
        format!("https://localhost:{}/client.json", docs.port),
        "https://10.0.0.1/client.json".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        format!("http://127.0.0.1:{}/client.json", docs.port),
    ] {
        let (mut req, _) = s.request("x");
        req.client_id = client_id.clone();
        let started = std::time::Instant::now();
        let page = browser.open(&req.url(&s.server)).await;
        assert_eq!(page.status, 400, "{client_id}: {}", page.html);
        assert!(page.html.contains("oauth-error"), "{client_id}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(4),
            "{client_id}: refused before any connection attempt"
        );
    }
    assert_eq!(
        docs.connections.load(Ordering::SeqCst),
        0,
        "no request reached the private address"
    );

    // With loopback allowed (tests, local development), the document is
    // fetched, validated, cached, and the flow works with the URL as client id.
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = Server::start_with(
        &db,
        &[],
        &[
            ("SWITCHBOARD_OAUTH__CLIENT_METADATA_ALLOW_LOOPBACK", "true"),
            ("SWITCHBOARD_OAUTH__CLIENT_METADATA_MAX_BYTES", "4096"),
            ("SWITCHBOARD_OAUTH__CLIENT_METADATA_TIMEOUT_MS", "1000"),
        ],
    );
    let s = Setup { db, server };
    let client_id = format!("http://127.0.0.1:{}/client.json", docs.port);
    let body = s.tokens_for(&client_id, "owner@alpha.test", "alpha").await;
    assert!(body["access_token"].is_string());
    assert_eq!(
        s.db.scalar_i64("SELECT COUNT(*) FROM oauth_clients WHERE kind = 'metadata_document' AND name = 'Doc Client'").await,
        1
    );
    let fetched = docs.connections.load(Ordering::SeqCst);
    assert_eq!(fetched, 1);
    s.tokens_for(&client_id, "owner@alpha.test", "alpha").await;
    assert_eq!(
        docs.connections.load(Ordering::SeqCst),
        1,
        "cached for its max-age"
    );

    // A document naming another client id, an oversized one, a slow one.
    let liar = doc_server(
        |_| json!({"client_id": "https://evil.example/c", "redirect_uris": [REDIRECT]}).to_string(),
        std::time::Duration::ZERO,
    )
    .await;
    let big = doc_server(|port| {
        json!({"client_id": format!("http://127.0.0.1:{port}/client.json"), "redirect_uris": [REDIRECT], "pad": "x".repeat(100_000)}).to_string()
    }, std::time::Duration::ZERO).await;
    let slow = doc_server(good_doc, std::time::Duration::from_secs(20)).await;
    let browser = Browser::new(&s.server);
    for (docs, expect) in [
        (&liar, "another client_id"),
        (&big, "4096"),
        (&slow, "no complete answer within"),
    ] {
        let (mut req, _) = s.request("x");
        req.client_id = format!("http://127.0.0.1:{}/client.json", docs.port);
        let started = std::time::Instant::now();
        let page = browser.open(&req.url(&s.server)).await;
        assert_eq!(page.status, 400, "{}", page.html);
        assert!(page.html.contains("oauth-error"));
        assert!(page.html.contains(expect), "{expect}: {}", page.html);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "bounded by the fetch timeout"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_take_the_host_prefix_over_https() {
    // Behind a TLS-terminating proxy the public URL is https: the flow's
    // cookie is `__Host-` prefixed and Secure. (Over plain-http loopback, as
    // in the other tests, browsers would refuse both.)
    let db = TestDb::new(Backend::Sqlite).await;
    db.bootstrap("owner@alpha.test", "alpha");
    let server = Server::start_with(&db, &["--public-url", "https://hub.example.test"], &[]);
    let r = reqwest::Client::new()
        .post(server.url("/oauth/register"))
        .json(&json!({"redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap();
    let client = r.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, challenge) = pkce();
    let req = AuthRequest {
        client_id: client,
        redirect_uri: REDIRECT.into(),
        challenge,
        resource: Some("https://hub.example.test/mcp".into()),
        scope: None,
        state: "s".into(),
    };
    let page = Browser::new(&server).get(&req.url(&server)).await;
    assert_eq!(page.status, 303, "{}", page.html);
    let cookie = page.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-switchboard_oauth="), "{cookie}");
    assert!(
        cookie.contains("; Secure") && cookie.contains("Path=/") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // The issuer follows the public URL byte for byte.
    let v: Value = reqwest::Client::new()
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["issuer"], "https://hub.example.test");
}
