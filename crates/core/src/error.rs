//! The core's error type: each variant is a kind of answer a surface maps
//! to its own wire form (HTTP status, JSON-RPC code, tool result).

use switchboard_domain::{FieldError, RuleViolation, Scope};
use switchboard_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// No valid credential. The message says which problem (missing, expired…).
    #[error("{0}")]
    Unauthenticated(String),
    /// The token lacks a scope; clients can step up by asking for it.
    #[error("this token lacks the scope '{scope}': {message}")]
    InsufficientScope { scope: Scope, message: String },
    /// The role, policy or credential kind does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing with this id in the caller's organization.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A field is malformed.
    #[error("{0}")]
    Invalid(FieldError),
    /// A domain rule refused the change.
    #[error("{0}")]
    Rule(RuleViolation),
    /// The change conflicts with existing data (a duplicate name, say).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Too many attempts, or a limit reached; the message says which and
    /// when to try again.
    #[error("{message}")]
    Throttled {
        message: String,
        retry_after_secs: i64,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        CoreError::Invalid(FieldError::new(field, message))
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        CoreError::Conflict {
            code,
            message: message.into(),
        }
    }

    /// A refusal (as opposed to a failure): audited as `denied`.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            CoreError::InsufficientScope { .. } | CoreError::Forbidden(_) | CoreError::Rule(_)
        )
    }

    pub fn code(&self) -> &'static str {
        match self {
            CoreError::Unauthenticated(_) => "unauthenticated",
            CoreError::InsufficientScope { .. } => "insufficient_scope",
            CoreError::Forbidden(_) => "forbidden",
            CoreError::NotFound(_) => "not_found",
            CoreError::Invalid(_) => "invalid_field",
            CoreError::Rule(r) => r.code,
            CoreError::Conflict { code, .. } => code,
            CoreError::Throttled { .. } => "too_many_attempts",
            CoreError::Internal(_) => "internal",
        }
    }
}

impl From<StorageError> for CoreError {
    fn from(e: StorageError) -> Self {
        CoreError::Internal(e.to_string())
    }
}

impl From<FieldError> for CoreError {
    fn from(e: FieldError) -> Self {
        CoreError::Invalid(e)
    }
}

impl From<RuleViolation> for CoreError {
    fn from(e: RuleViolation) -> Self {
        CoreError::Rule(e)
    }
}
