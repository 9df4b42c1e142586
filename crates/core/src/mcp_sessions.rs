//! 2025-11-25 MCP sessions as the core sees them: who opened one, and how
//! many a token may hold. A session costs memory on the replica that serves
//! it and a row every replica can restore from, so both are bounded: a
//! token's oldest idle session is ended to make room for its new one, and
//! when none of them is idle the new one is refused with the reason.

use switchboard_storage as storage;

use crate::{Core, CoreError, Principal};

/// A session used more recently than this is "in use" and never ended to
/// make room for another.
const IN_USE_MS: i64 = 60 * 1000;

impl Core {
    /// Makes room for one more session of `principal`'s token: ends its
    /// oldest idle sessions beyond the per-token limit, and, when the
    /// instance is full, the instance's oldest idle ones. Returns the ids it
    /// ended (the surface closes them where they live). Refused, with a
    /// sentence, when every session that would have to go is in use.
    pub async fn admit_mcp_session(
        &self,
        principal: &Principal,
        now: i64,
        idle_ms: i64,
    ) -> Result<Vec<String>, CoreError> {
        let pool = self.db.pool();
        let key = principal
            .token_id()
            .unwrap_or(principal.account_id.as_str());
        let (mine, total) = storage::count_mcp_sessions(pool, key, now - idle_ms).await?;
        let per_token = i64::from(self.config.mcp_max_sessions_per_token);
        let all = i64::from(self.config.mcp_max_sessions);
        let mut ended = Vec::new();
        if mine >= per_token {
            let over = mine - per_token + 1;
            let idle = storage::idle_mcp_sessions(pool, Some(key), now - IN_USE_MS, over).await?;
            if (idle.len() as i64) < over {
                return Err(CoreError::Throttled {
                    message: format!(
                        "this token already holds {mine} open MCP sessions (at most {per_token}), all used within the last minute: end one (DELETE /mcp with its Mcp-Session-Id) or reuse it"
                    ),
                    retry_after_secs: IN_USE_MS / 1000,
                });
            }
            ended.extend(idle);
        }
        if total - (ended.len() as i64) >= all {
            let over = total - (ended.len() as i64) - all + 1;
            let idle = storage::idle_mcp_sessions(pool, None, now - IN_USE_MS, over).await?;
            if (idle.len() as i64) < over {
                return Err(CoreError::Throttled {
                    message: format!(
                        "this server holds {total} open MCP sessions, its limit (mcp.max_sessions), all in use: try again shortly"
                    ),
                    retry_after_secs: IN_USE_MS / 1000,
                });
            }
            ended.extend(idle);
        }
        for id in &ended {
            storage::delete_mcp_session(pool, id).await?;
        }
        if !ended.is_empty() {
            tracing::info!(
                sessions = ended.len(),
                "ended idle MCP sessions to make room for a new one"
            );
        }
        Ok(ended)
    }

    /// Records who opened session `id` (its account, org and token).
    pub async fn record_mcp_session(
        &self,
        id: &str,
        principal: &Principal,
        now: i64,
    ) -> Result<(), CoreError> {
        let key = principal
            .token_id()
            .unwrap_or(principal.account_id.as_str());
        storage::bind_mcp_session(
            self.db.pool(),
            id,
            &principal.account_id,
            &principal.org_id,
            Some(key),
            now,
        )
        .await?;
        Ok(())
    }
}

/// What is kept of a session, for the surfaces that serve it.
impl Core {
    /// Whether `principal` may use session `id`: it exists, was used within
    /// `idle_ms`, and was opened by the same account in the same org (token
    /// rotation keeps both). Records the use, at most once per `touch_ms`.
    pub async fn mcp_session_owner_ok(
        &self,
        id: &str,
        principal: &Principal,
        now: i64,
        idle_ms: i64,
        touch_ms: i64,
    ) -> Result<bool, CoreError> {
        let pool = self.db.pool();
        let Some(row) = storage::mcp_session(pool, id).await? else {
            return Ok(false);
        };
        if row.last_seen_at < now - idle_ms {
            return Ok(false);
        }
        let owner_ok = row.account_id.as_deref() == Some(principal.account_id.as_str())
            && row.org_id.as_deref() == Some(principal.org_id.as_str());
        if owner_ok && let Err(e) = storage::touch_mcp_session(pool, id, now, touch_ms).await {
            tracing::warn!(error = %e, "could not record MCP session activity");
        }
        Ok(owner_ok)
    }

    /// The client's initialize parameters of a live session (to rebuild it
    /// on this replica), if it has them and is not idle past `idle_ms`.
    pub async fn mcp_session_params(
        &self,
        id: &str,
        now: i64,
        idle_ms: i64,
    ) -> Result<Option<String>, CoreError> {
        Ok(storage::mcp_session(self.db.pool(), id)
            .await?
            .filter(|r| r.last_seen_at >= now - idle_ms)
            .and_then(|r| r.init_params))
    }

    pub async fn save_mcp_session_params(
        &self,
        id: &str,
        params: &str,
        now: i64,
    ) -> Result<(), CoreError> {
        Ok(storage::save_mcp_session_params(self.db.pool(), id, params, now).await?)
    }

    /// Ends a session; whether it existed.
    pub async fn end_mcp_session(&self, id: &str) -> Result<bool, CoreError> {
        Ok(storage::delete_mcp_session(self.db.pool(), id).await?)
    }

    /// Ends sessions idle since before `cutoff`; how many.
    pub async fn purge_mcp_sessions(&self, cutoff: i64) -> Result<u64, CoreError> {
        Ok(storage::purge_mcp_sessions(self.db.pool(), cutoff).await?)
    }

    /// The log level a session asked for (`logging/setLevel`).
    pub async fn mcp_session_log_level(&self, id: &str) -> Result<Option<String>, CoreError> {
        Ok(storage::mcp_session(self.db.pool(), id)
            .await?
            .and_then(|r| r.log_level))
    }

    pub async fn set_mcp_session_log_level(&self, id: &str, level: &str) -> Result<(), CoreError> {
        Ok(storage::set_mcp_session_log_level(self.db.pool(), id, level).await?)
    }

    /// The resource URIs a session subscribed to (a JSON array), kept so a
    /// replica that picks the session up subscribes again.
    pub async fn mcp_session_resources(&self, id: &str) -> Result<Option<String>, CoreError> {
        Ok(storage::mcp_session_resources(self.db.pool(), id).await?)
    }

    pub async fn set_mcp_session_resources(&self, id: &str, uris: &str) -> Result<(), CoreError> {
        Ok(storage::set_mcp_session_resources(self.db.pool(), id, uris).await?)
    }
}
