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
