//! rmcp's session store on our database (through the core): a legacy
//! (2025-11-25) session opened on one replica is rebuilt on any other (or
//! after a restart) by replaying the client's initialize params, so a
//! client behind a load balancer never sees "session not found" while its
//! session is alive.

use rmcp::transport::streamable_http_server::session::store::{
    SessionState, SessionStore, SessionStoreError,
};
use switchboard_core::Core;

/// Sessions idle longer than this are gone (their rows are purged).
pub const SESSION_IDLE_MS: i64 = 24 * 3600 * 1000;

pub struct DbSessionStore {
    pub core: Core,
}

fn store_error(e: switchboard_core::CoreError) -> SessionStoreError {
    SessionStoreError::from(Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
}

#[async_trait::async_trait]
impl SessionStore for DbSessionStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let params = self
            .core
            .mcp_session_params(session_id, switchboard_core::now_ms(), SESSION_IDLE_MS)
            .await
            .map_err(store_error)?;
        match params {
            Some(p) => Ok(Some(serde_json::from_str(&p)?)),
            None => Ok(None),
        }
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let params = serde_json::to_string(state)?;
        self.core
            .save_mcp_session_params(session_id, &params, switchboard_core::now_ms())
            .await
            .map_err(store_error)
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        self.core
            .end_mcp_session(session_id)
            .await
            .map(|_| ())
            .map_err(store_error)
    }
}

/// Purges idle sessions every few minutes, for as long as the process runs.
pub fn spawn_reaper(core: Core) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
        loop {
            tick.tick().await;
            let cutoff = switchboard_core::now_ms() - SESSION_IDLE_MS;
            match core.purge_mcp_sessions(cutoff).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "purged idle MCP sessions"),
                Err(e) => tracing::warn!(error = %e, "could not purge idle MCP sessions"),
            }
        }
    });
}
