//! Field validation with messages that name the field and the rule.

use std::fmt;

/// A bad field: which one, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Lower-cases and checks an email address (a practical check, not RFC 5322).
pub fn normalize_email(field: &str, raw: &str) -> Result<String, FieldError> {
    let email = raw.trim().to_ascii_lowercase();
    if email.len() > 254 {
        return Err(FieldError::new(field, "must be at most 254 characters"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(FieldError::new(
            field,
            format!(
                "'{}' is not an email address (expected name@domain)",
                raw.trim()
            ),
        ));
    };
    if local.is_empty()
        || local.len() > 64
        || local.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(FieldError::new(
            field,
            format!(
                "'{}' is not an email address (expected name@domain)",
                raw.trim()
            ),
        ));
    }
    normalize_domain(field, domain)?;
    Ok(email)
}

/// Lower-cases and checks a DNS domain name such as `example.com`.
pub fn normalize_domain(field: &str, raw: &str) -> Result<String, FieldError> {
    let domain = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let bad = || {
        FieldError::new(
            field,
            format!(
                "'{}' is not a valid domain name (for example: example.com)",
                raw.trim()
            ),
        )
    };
    if domain.is_empty() || domain.len() > 253 || !domain.contains('.') {
        return Err(bad());
    }
    for label in domain.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(domain)
}

/// Slugs are `[a-z0-9-]`, 2 to 63 characters, no leading or trailing hyphen.
/// No underscore: virtual servers join slugs and tool names with one.
pub fn validate_slug(field: &str, slug: &str) -> Result<(), FieldError> {
    let ok_chars = slug
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if slug.len() < 2
        || slug.len() > 63
        || !ok_chars
        || slug.starts_with('-')
        || slug.ends_with('-')
    {
        return Err(FieldError::new(
            field,
            format!(
                "'{slug}' is not a valid slug: use 2 to 63 characters from a-z, 0-9 and '-', not starting or ending with '-'"
            ),
        ));
    }
    Ok(())
}

/// A display name or title: trimmed, non-empty, at most `max` characters, no control characters.
pub fn validate_name(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(v.to_owned())
}

/// Passwords: 10 to 256 characters. Length is what matters; no composition rules.
pub fn validate_password(field: &str, password: &str) -> Result<(), FieldError> {
    let n = password.chars().count();
    if n < 10 {
        return Err(FieldError::new(field, "must be at least 10 characters"));
    }
    if n > 256 {
        return Err(FieldError::new(field, "must be at most 256 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            normalize_email("email", " Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "ada",
            "@example.com",
            "ada@",
            "ada@localhost",
            "a b@example.com",
            "ada@ex_ample.com",
        ] {
            let err = normalize_email("email", bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad}");
        }
    }

    #[test]
    fn slugs() {
        assert!(validate_slug("slug", "acme-corp").is_ok());
        for bad in ["a", "Acme", "acme_corp", "-acme", "acme-", "ac me"] {
            let err = validate_slug("slug", bad).unwrap_err();
            assert!(err.message.contains("not a valid slug"), "{bad}");
        }
    }

    #[test]
    fn names_and_passwords() {
        assert_eq!(validate_name("name", "  Acme ", 10).unwrap(), "Acme");
        assert!(
            validate_name("name", "   ", 10)
                .unwrap_err()
                .message
                .contains("empty")
        );
        assert!(validate_name("name", "x".repeat(11).as_str(), 10).is_err());
        assert!(validate_password("password", "short").is_err());
        assert!(validate_password("password", "long enough pass").is_ok());
    }
}
