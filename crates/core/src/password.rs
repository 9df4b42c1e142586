//! Password hashing with Argon2id, off the async executor.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::CoreError;

pub(crate) async fn hash_password(password: String) -> Result<String, CoreError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| CoreError::Internal(format!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| CoreError::Internal(e.to_string()))?
}

/// Verifies against a stored hash; with no hash (an account that never set a
/// password) it still spends the same work, so timing does not reveal it.
pub(crate) async fn verify_password(
    password: String,
    hash: Option<String>,
) -> Result<bool, CoreError> {
    tokio::task::spawn_blocking(move || {
        let argon = Argon2::default();
        match hash {
            Some(h) => Ok(argon
                .verify_password(password.as_bytes(), h.as_str())
                .is_ok()),
            None => {
                let _ = argon.hash_password(password.as_bytes());
                Ok(false)
            }
        }
    })
    .await
    .map_err(|e| CoreError::Internal(e.to_string()))?
}
