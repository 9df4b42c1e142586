//! Group commit for audit events of requests that changed nothing (reads,
//! lists, refusals, failures). Each caller waits until its event is durable,
//! but one writer task commits every event that queued up meanwhile in ONE
//! transaction: a burst of N reads costs one fsync, not N, and on SQLite one
//! writer lock instead of N contending ones.

use std::sync::{Arc, OnceLock};

use switchboard_storage::{self as storage, AuditRow, Db};
use tokio::sync::{mpsc, oneshot};

use crate::CoreError;

/// Events a single commit takes at most; more wait for the next one.
const MAX_BATCH: usize = 256;
/// Requests waiting for the writer at most; beyond it callers wait to queue
/// (back-pressure instead of unbounded memory).
const QUEUE_DEPTH: usize = 4096;

type Ack = oneshot::Sender<Result<(), String>>;

/// The handle callers send events through. The writer task starts on first
/// use (inside the runtime), so building a `Core` needs no runtime.
#[derive(Clone)]
pub(crate) struct AuditQueue {
    db: Db,
    sender: Arc<OnceLock<mpsc::Sender<(AuditRow, Ack)>>>,
}

impl std::fmt::Debug for AuditQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditQueue")
    }
}

impl AuditQueue {
    pub(crate) fn new(db: Db) -> Self {
        AuditQueue {
            db,
            sender: Arc::new(OnceLock::new()),
        }
    }

    /// Queues an event and waits until it is committed.
    pub(crate) async fn record(&self, row: AuditRow) -> Result<(), CoreError> {
        let sender = self.sender.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
            tokio::spawn(run_writer(self.db.clone(), rx));
            tx
        });
        let (ack, done) = oneshot::channel();
        sender
            .send((row, ack))
            .await
            .map_err(|_| CoreError::Internal("the audit writer has stopped".into()))?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(CoreError::Internal(format!(
                "could not write the audit log: {e}"
            ))),
            Err(_) => Err(CoreError::Internal("the audit writer has stopped".into())),
        }
    }
}

async fn run_writer(db: Db, mut rx: mpsc::Receiver<(AuditRow, Ack)>) {
    let mut batch: Vec<(AuditRow, Ack)> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let rows: Vec<AuditRow> = batch.iter().map(|(r, _)| r.clone()).collect();
        let result = commit(&db, &rows).await.map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, events = rows.len(), "could not commit a batch of audit events");
        }
        for (_, ack) in batch.drain(..) {
            // The caller may have gone (client disconnected): nothing to tell.
            let _ = ack.send(result.clone());
        }
    }
}

async fn commit(db: &Db, rows: &[AuditRow]) -> Result<(), storage::StorageError> {
    let mut tx = db.begin_write().await?;
    storage::insert_audit_batch(&mut tx, rows).await?;
    Db::commit(tx).await
}
