//! One error type for the REST surface: `{"error": {"code", "message",
//! "details"}}` with the right status. Internal failures are logged with the
//! request id and answered with a generic message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchboard_core::CoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Value,
    pub www_authenticate: Option<String>,
    pub retry_after: Option<i64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_owned(),
            message: message.into(),
            details: Value::Null,
            www_authenticate: None,
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn unauthenticated(message: impl Into<String>, token_presented: bool) -> Self {
        let mut e = ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message);
        e.www_authenticate = Some(if token_presented {
            r#"Bearer realm="switchboard", error="invalid_token""#.to_owned()
        } else {
            r#"Bearer realm="switchboard""#.to_owned()
        });
        e
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let code = e.code();
        match e {
            CoreError::Unauthenticated(m) => ApiError::unauthenticated(m, true),
            CoreError::InsufficientScope { scope, message } => {
                let mut err = ApiError::new(StatusCode::FORBIDDEN, code, message)
                    .with_details(json!({"required_scope": scope.as_str()}));
                err.www_authenticate = Some(format!(
                    r#"Bearer realm="switchboard", error="insufficient_scope", scope="{}""#,
                    scope.as_str()
                ));
                err
            }
            CoreError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, code, m),
            CoreError::NotFound(what) => {
                ApiError::new(StatusCode::NOT_FOUND, code, format!("{what} not found"))
            }
            CoreError::Invalid(f) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, f.to_string())
                    .with_details(json!({"field": f.field}))
            }
            CoreError::Rule(r) => ApiError::new(StatusCode::CONFLICT, code, r.message),
            CoreError::Conflict { message, .. } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            CoreError::Throttled { retry_after_secs } => {
                let mut err =
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, e_msg(retry_after_secs));
                err.retry_after = Some(retry_after_secs);
                err
            }
            CoreError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    code,
                    "something went wrong on the server; the error was logged",
                )
            }
        }
    }
}

fn e_msg(secs: i64) -> String {
    format!("too many failed sign-in attempts: try again in {secs} seconds")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"code": self.code, "message": self.message, "details": self.details}});
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(v) = self
            .www_authenticate
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}
