//! An OAuth client for tests that plays both the app and the member's
//! browser with plain HTTP: it registers, sends the member through the
//! authorization pages (a cookie jar, forms posted as a browser would,
//! redirects NOT followed so each step is visible), and redeems the code.

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{PASSWORD, Server};

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client")
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("random");
    let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Dynamic registration of a public native client; returns its id.
pub async fn register(server: &Server, redirect: &str) -> String {
    let r = reqwest::Client::new()
        .post(server.url("/oauth/register"))
        .json(&json!({"redirect_uris": [redirect], "client_name": "Test App"}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.expect("json");
    v["client_id"].as_str().expect("client_id").to_owned()
}

/// What the authorization request carries.
#[derive(Clone)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub challenge: String,
    pub resource: Option<String>,
    pub scope: Option<String>,
    pub state: String,
}

impl AuthRequest {
    pub fn url(&self, server: &Server) -> String {
        let mut u = url::Url::parse(&server.url("/oauth/authorize")).expect("url");
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("state", &self.state)
                .append_pair("code_challenge", &self.challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(r) = &self.resource {
                q.append_pair("resource", r);
            }
            if let Some(s) = &self.scope {
                q.append_pair("scope", s);
            }
        }
        u.to_string()
    }
}

/// A member's browser: a cookie jar, and the last page seen.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
}

/// One answer of the pages.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub html: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    /// The value of a hidden or text input named `name`.
    pub fn input(&self, name: &str) -> Option<String> {
        let needle = format!("name=\"{name}\" value=\"");
        let i = self.html.find(&needle)? + needle.len();
        let end = self.html[i..].find('"')? + i;
        Some(self.html[i..end].to_owned())
    }

    /// The form action of the form with this id.
    pub fn form_action(&self, id: &str) -> Option<String> {
        let i = self.html.find(&format!("id=\"{id}\""))?;
        let a = self.html[i..].find("action=\"")? + i + 8;
        let end = self.html[a..].find('"')? + a;
        Some(self.html[a..end].to_owned())
    }

    pub fn is_step(&self, form_id: &str) -> bool {
        self.html.contains(&format!("id=\"{form_id}\""))
    }
}

impl Browser {
    pub fn new(server: &Server) -> Browser {
        Browser {
            http: http(),
            base: server.base.clone(),
        }
    }

    async fn page(resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let html = resp.text().await.unwrap_or_default();
        Page {
            status,
            location,
            html,
            headers,
        }
    }

    pub async fn get(&self, url: &str) -> Page {
        let url = if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_owned()
        };
        Self::page(self.http.get(url).send().await.expect("GET")).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        Self::page(
            self.http
                .post(format!("{}{path}", self.base))
                .header("origin", &self.base)
                .form(form)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    /// Opens the authorization URL; returns the first step page (after the
    /// redirect to the request's own page), or the error/redirect answer.
    pub async fn open(&self, authorize_url: &str) -> Page {
        let first = self.get(authorize_url).await;
        match first.location.as_deref() {
            Some(l) if first.status == 303 && l.starts_with("/oauth/authorize/") => {
                self.get(l).await
            }
            _ => first,
        }
    }

    pub async fn sign_in(&self, page: &Page, email: &str) -> Page {
        let action = page.form_action("oauth-sign-in").expect("sign-in form");
        let r = self
            .post(&action, &[("email", email), ("password", PASSWORD)])
            .await;
        assert_eq!(r.status, 303, "sign-in: {}", r.html);
        self.get(r.location.as_deref().expect("location")).await
    }

    /// Picks an org; returns the answer to the post (303 to consent, or
    /// straight to the client when consent is remembered).
    pub async fn pick(&self, page: &Page, org: &str) -> Page {
        let action = page.form_action("oauth-pick-org").expect("picker form");
        let csrf = page.input("csrf_token").expect("csrf");
        self.post(&action, &[("csrf_token", &csrf), ("org", org)])
            .await
    }

    pub async fn decide(&self, page: &Page, decision: &str) -> Page {
        let action = page.form_action("oauth-consent").expect("consent form");
        let csrf = page.input("csrf_token").expect("csrf");
        self.post(&action, &[("csrf_token", &csrf), ("decision", decision)])
            .await
    }

    /// The whole happy path: sign in (if needed), pick `org`, approve.
    /// Returns the final redirect to the client.
    pub async fn authorize(&self, authorize_url: &str, email: &str, org: &str) -> String {
        let mut page = self.open(authorize_url).await;
        assert_eq!(
            page.status, 200,
            "authorize: {:?} {}",
            page.location, page.html
        );
        if page.is_step("oauth-sign-in") {
            page = self.sign_in(&page, email).await;
        }
        assert!(
            page.is_step("oauth-pick-org"),
            "expected the picker: {}",
            page.html
        );
        let after = self.pick(&page, org).await;
        assert_eq!(after.status, 303, "pick: {}", after.html);
        let to = after.location.expect("location");
        if !to.starts_with("/oauth/authorize/") {
            return to; // consent remembered
        }
        let consent = self.get(&to).await;
        assert!(
            consent.is_step("oauth-consent"),
            "expected consent: {}",
            consent.html
        );
        let done = self.decide(&consent, "approve").await;
        assert_eq!(done.status, 303, "consent: {}", done.html);
        done.location.expect("redirect to the client")
    }
}

/// Posts a form to the token endpoint; returns (status, body, headers).
pub async fn token(
    server: &Server,
    form: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .form(form)
        .send()
        .await
        .expect("token");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}
