//! The audit log.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use switchboard_core::AuditQuery;
use switchboard_core::views::{AuditEventView, Page};
use utoipa::IntoParams;

use crate::extract::ApiQuery;
use crate::{ApiError, ApiState, Caller};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Account id of the actor.
    pub actor_id: Option<String>,
    /// Action name, e.g. `member.remove`.
    pub action: Option<String>,
    pub target: Option<String>,
    /// RFC 3339 time; events at or after it.
    pub since: Option<String>,
    /// RFC 3339 time; events before it.
    pub until: Option<String>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

fn parse_time(field: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    v.as_deref()
        .map(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "bad query parameter: '{field}' must be an RFC 3339 time such as 2026-11-22T10:00:00Z"
                    ))
                })
        })
        .transpose()
}

/// Audit events of the organization, newest first; filter by actor, action, target and time.
#[utoipa::path(get, path = "/audit-events", tag = "audit", params(AuditParams), responses((status = 200, body = Page<AuditEventView>)))]
pub async fn list_audit_events(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditParams>,
) -> Result<Json<Page<AuditEventView>>, ApiError> {
    let query = AuditQuery {
        since: parse_time("since", &q.since)?,
        until: parse_time("until", &q.until)?,
        actor_id: q.actor_id,
        action: q.action,
        target: q.target,
        cursor: q.cursor,
        limit: q.limit,
    };
    Ok(Json(s.core.list_audit_events(caller.ctx(), query).await?))
}
