//! Handlers, one module per resource. Each handler is a thin adapter:
//! extract, call one core use case, return its view as JSON.

pub mod audit;
pub mod auth;
pub mod connections;
pub mod members;
pub mod oauth;
pub mod org;
pub mod roles;
pub mod system;
pub mod tokens;
pub mod work;

use serde::Deserialize;
use switchboard_core::PageRequest;
use utoipa::IntoParams;

/// Keyset pagination: pass the previous page's `next_cursor` as `cursor`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    pub cursor: Option<String>,
    /// Page size (default 50, at most 200).
    pub limit: Option<u32>,
}

impl From<PageParams> for PageRequest {
    fn from(p: PageParams) -> Self {
        PageRequest {
            cursor: p.cursor,
            limit: p.limit,
        }
    }
}
