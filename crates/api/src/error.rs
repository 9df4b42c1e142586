//! One error type for the REST surface: `{"error": {"code", "message",
//! "details"}}` with the right status. Internal failures are logged with the
//! request id and answered with a generic message.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchboard_core::CoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
    /// `WWW-Authenticate`, `Retry-After` and the like.
    pub headers: Vec<(HeaderName, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Value::Null,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn unauthenticated(message: impl Into<String>, token_presented: bool) -> Self {
        let challenge = if token_presented {
            r#"Bearer realm="switchboard", error="invalid_token""#
        } else {
            r#"Bearer realm="switchboard""#
        };
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
            .with_header(header::WWW_AUTHENTICATE, challenge.to_owned())
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let code = e.code();
        match e {
            CoreError::Unauthenticated(m) => ApiError::unauthenticated(m, true),
            CoreError::InsufficientScope { scope, message } => {
                ApiError::new(StatusCode::FORBIDDEN, code, message)
                    .with_details(json!({"required_scope": scope.as_str()}))
                    .with_header(
                        header::WWW_AUTHENTICATE,
                        format!(
                            r#"Bearer realm="switchboard", error="insufficient_scope", scope="{}""#,
                            scope.as_str()
                        ),
                    )
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
            CoreError::Throttled {
                message,
                retry_after_secs,
            } => ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
                .with_header(header::RETRY_AFTER, retry_after_secs.to_string()),
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"code": self.code, "message": self.message, "details": self.details}});
        let mut resp = (self.status, axum::Json(body)).into_response();
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
        resp
    }
}
