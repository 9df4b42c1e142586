//! What went wrong with an outbound request, in words an operator or a
//! client developer can act on.

use std::fmt::Write as _;
use std::time::Duration;

use crate::BlockedAddress;

/// Why an outbound request did not happen or did not complete.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EgressError {
    /// Every address of the host (or the IP literal itself) is in a range
    /// the policy refuses. No connection was made to any of them.
    #[error(
        "refused to connect to {} for host {host}: the server does not call loopback, private, link-local or other non-public addresses unless the operator's allow-list covers that network",
        list(blocked)
    )]
    Refused {
        /// The host as the URL named it (or the peer address).
        host: String,
        /// Each refused address with its range class.
        blocked: Vec<BlockedAddress>,
    },
    /// The URL (or a redirect's target) is not one the server fetches.
    #[error("'{url}' is not fetched: {reason}")]
    BadUrl {
        /// The URL refused.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The chain of redirects was longer than the limit.
    #[error("'{url}' was redirected more than {limit} times; use the final address directly")]
    TooManyRedirects {
        /// The URL first requested.
        url: String,
        /// The redirects allowed.
        limit: usize,
    },
    /// The host name does not resolve.
    #[error("the host {host} could not be resolved: {reason}")]
    Unresolvable {
        /// The host name.
        host: String,
        /// The resolver's answer.
        reason: String,
    },
    /// The exchange, body included, took longer than the limit.
    #[error(
        "no complete answer within {after:?}: the remote server is unreachable or too slow; try again later"
    )]
    Timeout {
        /// The limit that ran out.
        after: Duration,
    },
    /// The response body is larger than the limit.
    #[error(
        "the response is larger than the limit of {limit} bytes; the server does not read more"
    )]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Connecting or talking to the remote server failed.
    #[error("the request failed: {0}")]
    Transport(String),
    /// The HTTP client could not be built.
    #[error("the outbound HTTP client could not be built: {0}")]
    Setup(String),
}

/// One sentence for a failed outbound exchange, whatever wrapped it (an
/// SDK's transport error around reqwest's around ours): the policy's own
/// refusal when there is one, else the innermost cause, which is the one
/// that says what happened ("Connection refused"). Never a type name.
pub fn explain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut innermost = error;
    while let Some(e) = current {
        if let Some(ours) = e.downcast_ref::<EgressError>() {
            return ours.to_string();
        }
        innermost = e;
        current = e.source();
    }
    let text = innermost.to_string();
    // A cause that is only a type's name says nothing: say what kind it was.
    if text.contains("::") || text.contains('[') {
        "the connection failed".to_owned()
    } else {
        text
    }
}

fn list(blocked: &[BlockedAddress]) -> String {
    let mut out = String::new();
    for (i, b) in blocked.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{b}");
    }
    out
}

/// The [`EgressError`] a guard put inside a reqwest error chain, if one of
/// them is what stopped the request.
pub(crate) fn guard_error_in(e: &(dyn std::error::Error + 'static)) -> Option<EgressError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(found) = err.downcast_ref::<EgressError>() {
            return Some(found.clone());
        }
        cur = err.source();
    }
    None
}

/// A reqwest error with its whole chain of causes, for the log and the
/// `Transport` message.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let part = s.to_string();
        if !msg.contains(&part) {
            msg.push_str(": ");
            msg.push_str(&part);
        }
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn refusal_names_every_address_and_what_to_do() {
        let e = EgressError::Refused {
            host: "example.internal".into(),
            blocked: vec![
                BlockedAddress {
                    addr: "10.0.0.5".parse().unwrap(),
                    class: "private",
                },
                BlockedAddress {
                    addr: "fd00::5".parse().unwrap(),
                    class: "unique local",
                },
            ],
        };
        assert_eq!(
            e.to_string(),
            "refused to connect to 10.0.0.5 (private), fd00::5 (unique local) for host example.internal: the server does not call loopback, private, link-local or other non-public addresses unless the operator's allow-list covers that network"
        );
    }

    #[test]
    fn limits_are_named() {
        assert_eq!(
            EgressError::Timeout {
                after: Duration::from_millis(800)
            }
            .to_string(),
            "no complete answer within 800ms: the remote server is unreachable or too slow; try again later"
        );
        assert!(
            EgressError::TooLarge { limit: 1000 }
                .to_string()
                .contains("limit of 1000 bytes")
        );
    }
}
