//! Outbound HTTP under the operator's network rules. Its one job: make
//! server-side request forgery impossible by construction for every URL a
//! client, an admin or a document hands the server (client metadata
//! documents now, upstream MCP servers next), and bound what comes back.
//!
//! **Invariant:** every outbound connection's address is checked against
//! the [`NetworkPolicy`] — names by the client's resolver, which drops
//! refused addresses at connect time (first request, every redirect hop,
//! every reconnect, so DNS rebinding gains nothing); IP literals, which
//! never reach a resolver, by [`EgressClient::check_url`] before sending
//! and by the redirect policy on each hop. A connector layer re-checks the
//! peer of every new connection before the request is written, so even a
//! caller of [`EgressClient::http_client`] that skipped `check_url` cannot
//! reach a refused address. No proxy is used (it would connect for us).
//!
//! [`EgressClient::get`] also reads the body against a size limit and the
//! whole exchange against a deadline. TLS is rustls with the ring provider
//! and the webpki roots; nothing process-wide is needed.

#![deny(missing_docs)]

mod client;
mod error;
mod guard;
mod policy;

pub use client::{EgressClient, Fetched, Limits};
pub use error::{EgressError, explain};
pub use policy::{BlockedAddress, NetworkPolicy, special_class};
