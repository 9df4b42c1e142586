//! Server-rendered pages: the one-time setup link, sign-in, invitation
//! acceptance and a home page. Forms post back to the same page; every
//! page forbids framing and sends no referrer to other sites (setup and invitation links
//! carry secrets in their path).
//!
//! Architecture Invariant: pages call the same core use cases as the REST
//! API; no page decides authorization on its own.

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Router, extract::FromRequestParts};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use switchboard_api::ApiState;
use switchboard_core::accounts::BootstrapInput;
use switchboard_core::members::AcceptInvitation;
use switchboard_core::{CoreError, Credential, Ctx, RequestMeta, Surface, now_ms};
use tower_http::set_header::SetResponseHeaderLayer;

/// Constant-time equality for the sign-out form's CSRF token.
fn eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

pub fn router(state: ApiState) -> Router {
    let headers = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        // `same-origin`, not `no-referrer`: with no referrer at all, browsers send
        // `Origin: null` on form posts and the same-origin check refuses them.
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
        (HeaderName::from_static("x-content-type-options"), "nosniff"),
    ];
    let mut r = Router::new()
        .route("/", get(home))
        .route("/sign-in", get(sign_in_page).post(sign_in_submit))
        .route("/sign-out", axum::routing::post(sign_out))
        .route(
            "/connected-apps/{id}/disconnect",
            axum::routing::post(disconnect_app),
        )
        .route("/setup/{token}", get(setup_page).post(setup_submit))
        .route("/invite/{token}", get(invite_page).post(invite_submit))
        .with_state(state);
    for (name, value) in headers {
        r = r.layer(SetResponseHeaderLayer::overriding(
            name,
            HeaderValue::from_static(value),
        ));
    }
    r
}

fn render(t: impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "page could not be rendered",
            )
                .into_response()
        }
    }
}

/// Request metadata on the web surface, plus a same-origin check for forms.
struct WebRequest {
    meta: RequestMeta,
    same_origin: bool,
}

impl FromRequestParts<ApiState> for WebRequest {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let origin_ok = match parts.headers.get(header::ORIGIN) {
            Some(o) => o.as_bytes() == state.http.public_origin().as_bytes(),
            None => true,
        };
        Ok(WebRequest {
            meta: switchboard_api::meta_for(parts, state, Surface::Web),
            same_origin: origin_ok,
        })
    }
}

fn cross_origin() -> Response {
    (
        StatusCode::FORBIDDEN,
        "cross-origin form submission refused",
    )
        .into_response()
}

fn message(status: StatusCode, heading: &str, message: &str) -> Response {
    (status, render(MessagePage { heading, message })).into_response()
}

fn user_message(e: &CoreError) -> String {
    match e {
        CoreError::Internal(_) => "something went wrong on the server; the error was logged".into(),
        other => other.to_string(),
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    heading: &'a str,
    message: &'a str,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    email: String,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    email: String,
    display_name: String,
    org_name: String,
    org_slug: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    display_name: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    org_name: String,
    email: String,
    role: String,
    seats_taken: i64,
    seat_limit: Option<i64>,
    mcp_enabled: bool,
    csrf_token: String,
    mcp_url: String,
    apps: Vec<switchboard_core::oauth::ConnectedAppView>,
}

async fn home(State(s): State<ApiState>, jar: CookieJar, req: WebRequest) -> Response {
    let Some(cookie) = jar.get(s.http.session_cookie_name()) else {
        return Redirect::to("/sign-in").into_response();
    };
    let Ok(principal) = s
        .core
        .authenticate_session(cookie.value(), req.meta.now_ms)
        .await
    else {
        return Redirect::to("/sign-in").into_response();
    };
    let ctx = Ctx {
        principal: &principal,
        meta: &req.meta,
    };
    let me = match s.core.me(ctx).await {
        Ok(me) => me,
        Err(e) => {
            return message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                &user_message(&e),
            );
        }
    };
    let apps = match s.core.list_connected_apps(ctx, false).await {
        Ok(a) => a,
        Err(e) => {
            return message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                &user_message(&e),
            );
        }
    };
    render(HomePage {
        mcp_url: format!("{}/mcp", s.http.public_url.as_str().trim_end_matches('/')),
        apps,
        org_name: me.org.name,
        email: me.account.email,
        role: me.role.unwrap_or_default(),
        seats_taken: me.org.seats_taken,
        seat_limit: me.org.seat_limit,
        mcp_enabled: me.org.mcp_policy.mcp_enabled,
        csrf_token: me.csrf_token.unwrap_or_default(),
    })
}

async fn sign_in_page() -> Response {
    render(SignInPage {
        email: String::new(),
        error: None,
        notice: None,
    })
}

#[derive(Deserialize)]
struct SignInForm {
    email: String,
    password: String,
}

fn cookie_response(s: &ApiState, secret: &str, max_age_secs: i64, to: &str) -> Response {
    let cookie = s.http.session_cookie(secret, max_age_secs);
    let mut resp = Redirect::to(to).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

async fn sign_in_submit(
    State(s): State<ApiState>,
    req: WebRequest,
    Form(f): Form<SignInForm>,
) -> Response {
    if !req.same_origin {
        return cross_origin();
    }
    match s.core.sign_in(&f.email, &f.password, None, &req.meta).await {
        Ok(session) => cookie_response(
            &s,
            &session.cookie_secret,
            (session.expires_at_ms - req.meta.now_ms) / 1000,
            "/",
        ),
        Err(e) => {
            let status = match &e {
                CoreError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                CoreError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::UNAUTHORIZED,
            };
            (
                status,
                render(SignInPage {
                    email: f.email,
                    error: Some(user_message(&e)),
                    notice: None,
                }),
            )
                .into_response()
        }
    }
}

#[derive(Deserialize)]
struct SignOutForm {
    csrf_token: String,
}

async fn sign_out(
    State(s): State<ApiState>,
    jar: CookieJar,
    req: WebRequest,
    Form(f): Form<SignOutForm>,
) -> Response {
    let Some(cookie) = jar.get(s.http.session_cookie_name()) else {
        return Redirect::to("/sign-in").into_response();
    };
    if let Ok(p) = s
        .core
        .authenticate_session(cookie.value(), req.meta.now_ms)
        .await
        && let Credential::Session { csrf_token, .. } = &p.credential
    {
        if !eq(csrf_token, &f.csrf_token) || !req.same_origin {
            return (
                StatusCode::FORBIDDEN,
                "sign-out refused: the form's CSRF token does not match",
            )
                .into_response();
        }
        let ctx = Ctx {
            principal: &p,
            meta: &req.meta,
        };
        if let Err(e) = s.core.sign_out(ctx).await {
            return message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                &user_message(&e),
            );
        }
    }
    cookie_response(&s, "", 0, "/sign-in")
}

/// Disconnects one of the caller's connected apps (its tokens end at once).
async fn disconnect_app(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    jar: CookieJar,
    req: WebRequest,
    Form(f): Form<SignOutForm>,
) -> Response {
    let Some(cookie) = jar.get(s.http.session_cookie_name()) else {
        return Redirect::to("/sign-in").into_response();
    };
    let Ok(p) = s
        .core
        .authenticate_session(cookie.value(), req.meta.now_ms)
        .await
    else {
        return Redirect::to("/sign-in").into_response();
    };
    let Credential::Session { csrf_token, .. } = &p.credential else {
        return Redirect::to("/sign-in").into_response();
    };
    if !eq(csrf_token, &f.csrf_token) || !req.same_origin {
        return (
            StatusCode::FORBIDDEN,
            "refused: the form's CSRF token does not match",
        )
            .into_response();
    }
    let ctx = Ctx {
        principal: &p,
        meta: &req.meta,
    };
    match s.core.revoke_connected_app(ctx, &id).await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(CoreError::NotFound(_)) => message(
            StatusCode::NOT_FOUND,
            "Not found",
            "that app is not connected (any more)",
        ),
        Err(e) => message(StatusCode::FORBIDDEN, "Refused", &user_message(&e)),
    }
}

async fn setup_page(State(s): State<ApiState>, Path(token): Path<String>) -> Response {
    match s.core.setup_token_valid(&token, now_ms()).await {
        Ok(true) => render(SetupPage {
            email: String::new(),
            display_name: String::new(),
            org_name: String::new(),
            org_slug: String::new(),
            error: None,
        }),
        Ok(false) => message(
            StatusCode::NOT_FOUND,
            "Setup link not valid",
            "This setup link has expired or was already used. Restart the server to print a new one, or use `switchboard admin bootstrap`.",
        ),
        Err(e) => message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            &user_message(&e),
        ),
    }
}

#[derive(Deserialize)]
struct SetupForm {
    email: String,
    #[serde(default)]
    display_name: String,
    password: String,
    org_name: String,
    org_slug: String,
}

async fn setup_submit(
    State(s): State<ApiState>,
    Path(token): Path<String>,
    req: WebRequest,
    Form(f): Form<SetupForm>,
) -> Response {
    if !req.same_origin {
        return cross_origin();
    }
    let input = BootstrapInput {
        email: f.email.clone(),
        display_name: Some(f.display_name.clone()).filter(|n| !n.trim().is_empty()),
        password: f.password.clone(),
        org_slug: f.org_slug.clone(),
        org_name: f.org_name.clone(),
    };
    match s.core.complete_setup(&token, input, &req.meta).await {
        Ok(out) => match s
            .core
            .sign_in(&out.email, &f.password, Some(&out.org_slug), &req.meta)
            .await
        {
            Ok(session) => cookie_response(
                &s,
                &session.cookie_secret,
                (session.expires_at_ms - req.meta.now_ms) / 1000,
                "/",
            ),
            Err(_) => Redirect::to("/sign-in").into_response(),
        },
        Err(CoreError::NotFound(_)) => message(
            StatusCode::NOT_FOUND,
            "Setup link not valid",
            "This setup link has expired or was already used.",
        ),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            render(SetupPage {
                email: f.email,
                display_name: f.display_name,
                org_name: f.org_name,
                org_slug: f.org_slug,
                error: Some(user_message(&e)),
            }),
        )
            .into_response(),
    }
}

async fn invite_page(Path(_token): Path<String>) -> Response {
    render(InvitePage {
        display_name: String::new(),
        error: None,
    })
}

#[derive(Deserialize)]
struct InviteForm {
    #[serde(default)]
    display_name: String,
    password: String,
}

async fn invite_submit(
    State(s): State<ApiState>,
    Path(token): Path<String>,
    req: WebRequest,
    Form(f): Form<InviteForm>,
) -> Response {
    if !req.same_origin {
        return cross_origin();
    }
    let input = AcceptInvitation {
        token,
        password: f.password,
        display_name: Some(f.display_name.clone()).filter(|n| !n.trim().is_empty()),
    };
    match s.core.accept_invitation(input, &req.meta).await {
        Ok(_) => render(SignInPage {
            email: String::new(),
            error: None,
            notice: Some("You have joined the organization. Sign in to continue.".into()),
        }),
        Err(e) => {
            let status = match e {
                CoreError::NotFound(_) => StatusCode::NOT_FOUND,
                CoreError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            (
                status,
                render(InvitePage {
                    display_name: f.display_name,
                    error: Some(user_message(&e)),
                }),
            )
                .into_response()
        }
    }
}
