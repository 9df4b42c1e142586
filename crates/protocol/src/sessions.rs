//! rmcp's session store on our database: a legacy (2025-11-25) session
//! opened on one replica is rebuilt on any other (or after a restart) by
//! replaying the client's initialize params, so a client behind a load
//! balancer never sees "session not found" while its session is alive.

use rmcp::transport::streamable_http_server::session::store::{
    SessionState, SessionStore, SessionStoreError,
};
use switchboard_storage::{self as storage, Db};

/// Sessions idle longer than this are gone (their rows are purged).
pub const SESSION_IDLE_MS: i64 = 24 * 3600 * 1000;

pub struct DbSessionStore {
    pub db: Db,
}

#[async_trait::async_trait]
impl SessionStore for DbSessionStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let Some(row) = storage::mcp_session(self.db.pool(), session_id).await? else {
            return Ok(None);
        };
        if row.last_seen_at < switchboard_core::now_ms() - SESSION_IDLE_MS {
            return Ok(None);
        }
        let Some(params) = row.init_params else {
            return Ok(None);
        };
        Ok(Some(serde_json::from_str(&params)?))
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let params = serde_json::to_string(state)?;
        storage::save_mcp_session_params(
            self.db.pool(),
            session_id,
            &params,
            switchboard_core::now_ms(),
        )
        .await?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        storage::delete_mcp_session(self.db.pool(), session_id).await?;
        Ok(())
    }
}

/// Purges idle sessions every few minutes, for as long as the process runs.
pub fn spawn_reaper(db: Db) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
        loop {
            tick.tick().await;
            let cutoff = switchboard_core::now_ms() - SESSION_IDLE_MS;
            match storage::purge_mcp_sessions(db.pool(), cutoff).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "purged idle MCP sessions"),
                Err(e) => tracing::warn!(error = %e, "could not purge idle MCP sessions"),
            }
        }
    });
}
