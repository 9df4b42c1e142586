//! `/oauth/authorize` and the pages a member walks through: sign in, pick
//! ONE organization, consent. Plain HTML forms that work without
//! JavaScript; the flow is bound to the browser that started it by a
//! cookie, every form carries the session's CSRF token (sign-in: the
//! request's own unguessable id plus that cookie) and must be same-origin.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::CookieJar;
use switchboard_core::oauth::{AfterPick, AuthorizeError, AuthorizeParams, ClientKind};
use switchboard_core::{CoreError, Credential, Principal, RequestMeta, Surface, new_secret};

use crate::OAuthState;
use crate::endpoints::MAX_BODY;

pub(crate) fn router() -> Router<OAuthState> {
    Router::new()
        .route("/oauth/authorize", get(authorize))
        .route("/oauth/authorize/{id}", get(step))
        .route("/oauth/authorize/{id}/sign-in", post(sign_in))
        .route("/oauth/authorize/{id}/org", post(pick_org))
        .route("/oauth/authorize/{id}/consent", post(consent))
}

/// The cookie binding an authorization to the browser that started it.
fn browser_cookie_name(s: &OAuthState) -> &'static str {
    if s.api.http.secure_cookies() {
        "__Host-switchboard_oauth"
    } else {
        "switchboard_oauth"
    }
}

fn browser_secret(s: &OAuthState, jar: &CookieJar) -> Option<String> {
    jar.get(browser_cookie_name(s))
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Security headers of every page. `form-action` must allow the client's
/// redirect URI: browsers apply it to the redirect that follows a form post.
fn secure(mut resp: Response, form_target: Option<&str>) -> Response {
    let form_action = match form_target.and_then(form_action_source) {
        Some(src) => format!("'self' {src}"),
        None => "'self'".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action {form_action}"
    );
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The CSP source matching a redirect URI: its origin, or `scheme:` for an
/// app's private-use scheme.
fn form_action_source(redirect_uri: &str) -> Option<String> {
    let u = url::Url::parse(redirect_uri).ok()?;
    let src = match u.scheme() {
        "http" | "https" => u.origin().ascii_serialization(),
        other => format!("{other}:"),
    };
    // Never let a stored value break out of the header.
    src.bytes()
        .all(|b| b.is_ascii_graphic() && b != b';' && b != b',' && b != b'\'')
        .then_some(src)
}

fn render(t: impl Template, status: StatusCode, form_target: Option<&str>) -> Response {
    let resp = match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "page could not be rendered",
            )
                .into_response()
        }
    };
    secure(resp, form_target)
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    heading: &'a str,
    message: &'a str,
}

fn error_page(status: StatusCode, message: &str) -> Response {
    render(
        ErrorPage {
            heading: "This app cannot be connected",
            message,
        },
        status,
        None,
    )
}

fn see_other(to: &str) -> Response {
    // 303: after a form post the browser follows with a GET.
    let mut resp = Redirect::to(to).into_response();
    *resp.status_mut() = StatusCode::SEE_OTHER;
    resp
}

fn authorize_error(e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Page(m) => error_page(StatusCode::BAD_REQUEST, &m),
        AuthorizeError::Redirect { location } => secure(see_other(&location), None),
    }
}

fn meta(parts: &Parts, s: &OAuthState) -> RequestMeta {
    switchboard_api::meta_for(parts, &s.api, Surface::OAuth)
}

fn same_origin(headers: &HeaderMap, s: &OAuthState) -> bool {
    match headers.get(header::ORIGIN) {
        Some(o) => o.as_bytes() == s.api.http.public_origin().as_bytes(),
        None => true,
    }
}

/// `GET /oauth/authorize`: validates the request and sends the browser to
/// its first step.
async fn authorize(State(s): State<OAuthState>, jar: CookieJar, parts: Parts) -> Response {
    let meta = meta(&parts, &s);
    let query = parts.uri.query().unwrap_or("");
    if query.len() > MAX_BODY {
        return error_page(
            StatusCode::URI_TOO_LONG,
            "the authorization request is too long",
        );
    }
    let f = match crate::endpoints::parse_form(query.as_bytes()) {
        Ok(f) => f,
        Err(m) => return error_page(StatusCode::BAD_REQUEST, &m),
    };
    let params = AuthorizeParams {
        response_type: f.get("response_type"),
        client_id: f.get("client_id"),
        redirect_uri: f.get("redirect_uri"),
        state: f.get("state"),
        code_challenge: f.get("code_challenge"),
        code_challenge_method: f.get("code_challenge_method"),
        resources: f.resources.clone(),
        scope: f.get("scope"),
    };
    // A client known by its metadata document: fetch (or refresh) it first.
    if let Some(id) = &params.client_id
        && crate::client_metadata::is_metadata_url(id)
        && let Err(m) = s.metadata.ensure(&s.api.core, id, meta.now_ms).await
    {
        return error_page(StatusCode::BAD_REQUEST, &m);
    }
    let secret = browser_secret(&s, &jar).unwrap_or_else(new_secret);
    match s.api.core.start_authorization(params, &secret, &meta).await {
        Ok(id) => {
            let mut resp = secure(see_other(&format!("/oauth/authorize/{id}")), None);
            let secure_attr = if s.api.http.secure_cookies() {
                "; Secure"
            } else {
                ""
            };
            let cookie = format!(
                "{}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600{secure_attr}",
                browser_cookie_name(&s)
            );
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e) => authorize_error(e),
    }
}

/// The signed-in person, if the browser has a live session.
async fn session(s: &OAuthState, jar: &CookieJar, now: i64) -> Option<Principal> {
    let cookie = jar.get(s.api.http.session_cookie_name())?;
    s.api
        .core
        .authenticate_session(cookie.value(), now)
        .await
        .ok()
}

fn csrf_of(p: &Principal) -> &str {
    match &p.credential {
        Credential::Session { csrf_token, .. } => csrf_token,
        _ => "",
    }
}

fn csrf_ok(p: &Principal, given: &str) -> bool {
    use subtle::ConstantTimeEq;
    let expected = csrf_of(p);
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    request_id: &'a str,
    client_name: &'a str,
    client_verified: bool,
    redirect_uri: &'a str,
    email: &'a str,
    error: Option<String>,
}

struct OrgOption {
    slug: String,
    name: String,
    mcp_enabled: bool,
    selected: bool,
}

#[derive(Template)]
#[template(path = "pick_org.html")]
struct PickOrgPage<'a> {
    request_id: &'a str,
    client_name: &'a str,
    client_verified: bool,
    redirect_uri: &'a str,
    email: &'a str,
    csrf_token: &'a str,
    orgs: Vec<OrgOption>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    request_id: &'a str,
    client_name: &'a str,
    client_verified: bool,
    redirect_uri: &'a str,
    email: &'a str,
    org_name: &'a str,
    org_slug: &'a str,
    resource: &'a str,
    scopes: Vec<(&'static str, &'static str)>,
    dropped: Vec<&'static str>,
    csrf_token: &'a str,
}

/// `GET /oauth/authorize/{id}`: whichever step the member is at.
async fn step(
    State(s): State<OAuthState>,
    Path(id): Path<String>,
    jar: CookieJar,
    parts: Parts,
) -> Response {
    let now = meta(&parts, &s).now_ms;
    let Some(secret) = browser_secret(&s, &jar) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "this browser did not start this authorization (its cookie is missing): start again from the application",
        );
    };
    show_step(&s, &id, &secret, &jar, now, None).await
}

async fn show_step(
    s: &OAuthState,
    id: &str,
    secret: &str,
    jar: &CookieJar,
    now: i64,
    error: Option<String>,
) -> Response {
    let pending = match s.api.core.pending_authorization(id, secret, now).await {
        Ok(p) => p,
        Err(e) => return authorize_error(e),
    };
    let verified = pending.client.kind == ClientKind::Registered;
    let Some(me) = session(s, jar, now).await else {
        return render(
            SignInPage {
                request_id: id,
                client_name: &pending.client.client_name,
                client_verified: verified,
                redirect_uri: &pending.redirect_uri,
                email: "",
                error,
            },
            StatusCode::OK,
            None,
        );
    };
    if pending.account_id.as_deref() != Some(me.account_id.as_str()) {
        if let Err(e) = s
            .api
            .core
            .attach_account(id, secret, &me.account_id, now)
            .await
        {
            return authorize_error(e);
        }
        return pick_page(s, &pending, &me, verified, error).await;
    }
    let Some(org_id) = &pending.org_id else {
        return pick_page(s, &pending, &me, verified, error).await;
    };
    let orgs = match s.api.core.oauth_org_choices(&me.account_id).await {
        Ok(o) => o,
        Err(e) => return authorize_error(e.into()),
    };
    let Some(org) = orgs.iter().find(|o| &o.id == org_id) else {
        return pick_page(s, &pending, &me, verified, error).await;
    };
    let role_scopes = match s
        .api
        .core
        .grantable_scopes_of(&org.id, &me.account_id)
        .await
    {
        Ok(v) => v,
        Err(e) => return authorize_error(e.into()),
    };
    let scopes = pending
        .scopes
        .iter()
        .filter(|sc| role_scopes.contains(sc))
        .map(|sc| (sc.as_str(), crate::scope_description(*sc)))
        .collect();
    let dropped = pending
        .scopes
        .iter()
        .filter(|sc| !role_scopes.contains(sc))
        .map(|sc| sc.as_str())
        .collect();
    render(
        ConsentPage {
            request_id: id,
            client_name: &pending.client.client_name,
            client_verified: verified,
            redirect_uri: &pending.redirect_uri,
            email: &me.email,
            org_name: &org.name,
            org_slug: &org.slug,
            resource: &pending.resource,
            scopes,
            dropped,
            csrf_token: csrf_of(&me),
        },
        StatusCode::OK,
        Some(&pending.redirect_uri),
    )
}

/// The scopes a member's role in an org can back (for the consent page; the
/// grant itself is decided in the core with the same rule).
async fn pick_page(
    s: &OAuthState,
    pending: &switchboard_core::oauth::PendingAuthorization,
    me: &Principal,
    verified: bool,
    error: Option<String>,
) -> Response {
    let orgs = match s.api.core.oauth_org_choices(&me.account_id).await {
        Ok(o) => o,
        Err(e) => return authorize_error(e.into()),
    };
    if !orgs.iter().any(|o| o.mcp_enabled) {
        return error_page(
            StatusCode::FORBIDDEN,
            "none of your organizations allows MCP access (it is turned off by their admins, or your invitation is still pending): ask an admin",
        );
    }
    let preferred = if orgs.iter().any(|o| o.id == me.org_id && o.mcp_enabled) {
        me.org_id.clone()
    } else {
        orgs.iter()
            .find(|o| o.mcp_enabled)
            .map(|o| o.id.clone())
            .unwrap_or_default()
    };
    let options = orgs
        .into_iter()
        .map(|o| OrgOption {
            selected: o.id == preferred,
            slug: o.slug,
            name: o.name,
            mcp_enabled: o.mcp_enabled,
        })
        .collect();
    render(
        PickOrgPage {
            request_id: &pending.id,
            client_name: &pending.client.client_name,
            client_verified: verified,
            redirect_uri: &pending.redirect_uri,
            email: &me.email,
            csrf_token: csrf_of(me),
            orgs: options,
            error,
        },
        StatusCode::OK,
        Some(&pending.redirect_uri),
    )
}

/// The form fields of a page post.
async fn page_form(body: axum::body::Body) -> Result<crate::endpoints::FormFields, Response> {
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| error_page(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large"))?;
    crate::endpoints::parse_form(&bytes).map_err(|m| error_page(StatusCode::BAD_REQUEST, &m))
}

/// Common checks of a page post: same origin, this browser's flow.
fn post_checks(s: &OAuthState, parts: &Parts, jar: &CookieJar) -> Result<String, Response> {
    if !same_origin(&parts.headers, s) {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "cross-origin form submission refused",
        ));
    }
    browser_secret(s, jar).ok_or_else(|| {
        error_page(
            StatusCode::BAD_REQUEST,
            "this browser did not start this authorization (its cookie is missing): start again from the application",
        )
    })
}

/// `POST /oauth/authorize/{id}/sign-in`.
async fn sign_in(
    State(s): State<OAuthState>,
    Path(id): Path<String>,
    jar: CookieJar,
    req: axum::extract::Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let secret = match post_checks(&s, &parts, &jar) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let f = match page_form(body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let meta = meta(&parts, &s);
    // The request must still be live before a password is checked.
    let pending = match s
        .api
        .core
        .pending_authorization(&id, &secret, meta.now_ms)
        .await
    {
        Ok(p) => p,
        Err(e) => return authorize_error(e),
    };
    let email = f.get("email").unwrap_or_default();
    let password = f.get("password").unwrap_or_default();
    match s.api.core.sign_in(&email, &password, None, &meta).await {
        Ok(session) => {
            let account = match s
                .api
                .core
                .authenticate_session(&session.cookie_secret, meta.now_ms)
                .await
            {
                Ok(p) => p.account_id,
                Err(e) => return authorize_error(e.into()),
            };
            if let Err(e) = s
                .api
                .core
                .attach_account(&id, &secret, &account, meta.now_ms)
                .await
            {
                return authorize_error(e);
            }
            let mut resp = secure(see_other(&format!("/oauth/authorize/{id}")), None);
            let cookie = s.api.http.session_cookie(
                &session.cookie_secret,
                (session.expires_at_ms - meta.now_ms) / 1000,
            );
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e) => {
            let status = match &e {
                CoreError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                CoreError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::UNAUTHORIZED,
            };
            let message = match &e {
                CoreError::Internal(_) => {
                    "something went wrong on the server; the error was logged".to_owned()
                }
                other => other.to_string(),
            };
            render(
                SignInPage {
                    request_id: &id,
                    client_name: &pending.client.client_name,
                    client_verified: pending.client.kind == ClientKind::Registered,
                    redirect_uri: &pending.redirect_uri,
                    email: &email,
                    error: Some(message),
                },
                status,
                None,
            )
        }
    }
}

/// A form post from a signed-in member, checked: same origin, this
/// browser's flow, the session's CSRF token. Without a session the browser
/// goes back to the step page (which asks it to sign in).
struct SignedInPost {
    secret: String,
    form: crate::endpoints::FormFields,
    meta: RequestMeta,
    me: Principal,
}

async fn signed_in_post(
    s: &OAuthState,
    id: &str,
    jar: &CookieJar,
    req: axum::extract::Request,
) -> Result<SignedInPost, Response> {
    let (parts, body) = req.into_parts();
    let secret = post_checks(s, &parts, jar)?;
    let form = page_form(body).await?;
    let meta = meta(&parts, s);
    let Some(me) = session(s, jar, meta.now_ms).await else {
        return Err(see_other(&format!("/oauth/authorize/{id}")));
    };
    if !csrf_ok(&me, &form.get("csrf_token").unwrap_or_default()) {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "the form's CSRF token does not match your session: reload the page and try again",
        ));
    }
    Ok(SignedInPost {
        secret,
        form,
        meta,
        me,
    })
}

/// `POST /oauth/authorize/{id}/org`.
async fn pick_org(
    State(s): State<OAuthState>,
    Path(id): Path<String>,
    jar: CookieJar,
    req: axum::extract::Request,
) -> Response {
    let SignedInPost {
        secret,
        form: f,
        meta,
        me,
    } = match signed_in_post(&s, &id, &jar, req).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(org) = f.get("org") else {
        return show_step(
            &s,
            &id,
            &secret,
            &jar,
            meta.now_ms,
            Some("choose an organization".into()),
        )
        .await;
    };
    match s
        .api
        .core
        .pick_org(&id, &secret, &me.account_id, &me.email, &org, &meta)
        .await
    {
        Ok(AfterPick::Consent) => secure(see_other(&format!("/oauth/authorize/{id}")), None),
        Ok(AfterPick::Redirect(location)) => secure(see_other(&location), None),
        Err(AuthorizeError::Page(m)) => error_page(StatusCode::FORBIDDEN, &m),
        Err(e) => authorize_error(e),
    }
}

/// `POST /oauth/authorize/{id}/consent`.
async fn consent(
    State(s): State<OAuthState>,
    Path(id): Path<String>,
    jar: CookieJar,
    req: axum::extract::Request,
) -> Response {
    let SignedInPost {
        secret,
        form: f,
        meta,
        me,
    } = match signed_in_post(&s, &id, &jar, req).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let approve = match f.get("decision").as_deref() {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "the decision must be 'approve' or 'deny'",
            );
        }
    };
    match s
        .api
        .core
        .decide(&id, &secret, &me.account_id, &me.email, approve, &meta)
        .await
    {
        Ok(location) => secure(see_other(&location), None),
        Err(AuthorizeError::Page(m)) => error_page(StatusCode::FORBIDDEN, &m),
        Err(e) => authorize_error(e),
    }
}
