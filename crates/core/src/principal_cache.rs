//! Bearer-token principals kept per replica, each served only after the
//! org's access version has been read again for the request.
//!
//! The version covers everything a principal is built from (migrations 0008
//! and 0009), so a revocation, removal or demotion made on any replica is
//! seen by the very next request. What the cache saves is the join: a hit
//! costs one primary-key read of the version, and that read is shared by
//! every request of the org that arrived before it started (see
//! [`FreshVersions`]), so under load most requests make no read at all.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_storage::{self as storage, Db};

use crate::{AccessCache, CoreError, Principal};

/// Most tokens (and orgs) kept per replica.
const MAX_CACHED: usize = 10_000;

/// A principal as it was built, with what is checked without the database.
#[derive(Clone)]
pub(crate) struct CachedToken {
    pub principal: Principal,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

pub(crate) struct PrincipalCache {
    /// Keyed by the token's hash (never the token).
    tokens: AccessCache<String, CachedToken>,
    versions: FreshVersions,
}

impl std::fmt::Debug for PrincipalCache {
    // Entries hold principals; none of them belongs in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrincipalCache")
    }
}

impl PrincipalCache {
    pub fn new() -> Self {
        PrincipalCache {
            tokens: AccessCache::new(MAX_CACHED),
            versions: FreshVersions::default(),
        }
    }

    /// The cached principal for `token_hash` if the org's access version,
    /// read after this call began, is still the one it was built at. The
    /// principal carries that fresh version.
    pub async fn get(&self, db: &Db, token_hash: &str) -> Result<Option<CachedToken>, CoreError> {
        let Some((built_at, cached)) = self.tokens.peek(token_hash) else {
            return Ok(None);
        };
        let current = self.versions.read(db, &cached.principal.org_id).await?;
        Ok((current == Some(built_at)).then_some(cached))
    }

    pub fn put(&self, token_hash: String, entry: CachedToken) {
        let version = entry.principal.access_version;
        self.tokens.put(token_hash, version, entry);
    }
}

/// Reads of an org's access version, shared between concurrent requests
/// without ever answering a request with a read that began before it.
///
/// A request notes how many reads had begun when it arrived, then waits for
/// the org's single read slot. The first read that began after its arrival
/// answers it: if one finished while it waited, it takes that value; if
/// not, it reads itself, and every request that arrived before that read
/// began takes its value. A change committed before a request arrived is
/// therefore always seen, and with N requests in flight there are about two
/// reads instead of N.
#[derive(Default)]
pub(crate) struct FreshVersions {
    orgs: Mutex<HashMap<String, Arc<OrgReads>>>,
}

#[derive(Default)]
struct OrgReads {
    /// Reads begun so far; a read takes its number before it queries.
    begun: AtomicU64,
    /// The number and result of the latest finished read.
    latest: tokio::sync::Mutex<(u64, Option<i64>)>,
}

impl FreshVersions {
    pub async fn read(&self, db: &Db, org_id: &str) -> Result<Option<i64>, CoreError> {
        let reads = self.slot(org_id);
        self.read_with(&reads, || async {
            Ok(storage::org_access_version(db.pool(), org_id).await?)
        })
        .await
    }

    fn slot(&self, org_id: &str) -> Arc<OrgReads> {
        let Ok(mut orgs) = self.orgs.lock() else {
            // A poisoned map only costs sharing: read alone.
            return Arc::default();
        };
        if let Some(reads) = orgs.get(org_id) {
            return reads.clone();
        }
        if orgs.len() >= MAX_CACHED {
            orgs.clear();
        }
        orgs.entry(org_id.to_owned()).or_default().clone()
    }

    async fn read_with<F, Fut>(&self, reads: &OrgReads, query: F) -> Result<Option<i64>, CoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<i64>, CoreError>>,
    {
        // Any read numbered above this begins after this request arrived.
        let needed = reads.begun.load(Ordering::SeqCst) + 1;
        let mut latest = reads.latest.lock().await;
        if latest.0 >= needed {
            return Ok(latest.1);
        }
        let number = reads.begun.fetch_add(1, Ordering::SeqCst) + 1;
        let value = query().await?;
        *latest = (number, value);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicI64;
    use std::time::Duration;

    /// A stand-in for the database: a counter of queries and a value that
    /// a "writer" changes. No database is needed to check the ordering.
    struct FakeDb {
        queries: AtomicU64,
        value: AtomicI64,
    }

    impl FakeDb {
        async fn query(&self) -> Result<Option<i64>, CoreError> {
            self.queries.fetch_add(1, Ordering::SeqCst);
            let v = self.value.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(Some(v))
        }
    }

    #[tokio::test]
    async fn concurrent_requests_share_reads() {
        let versions = Arc::new(FreshVersions::default());
        let reads = Arc::new(OrgReads::default());
        let db = Arc::new(FakeDb {
            queries: AtomicU64::new(0),
            value: AtomicI64::new(7),
        });
        let mut all = tokio::task::JoinSet::new();
        for _ in 0..32 {
            let (versions, reads, db) = (versions.clone(), reads.clone(), db.clone());
            all.spawn(async move { versions.read_with(&reads, || db.query()).await });
        }
        let results = all.join_all().await;
        assert_eq!(results.len(), 32);
        assert!(results.iter().all(|r| matches!(r, Ok(Some(7)))));
        let queries = db.queries.load(Ordering::SeqCst);
        assert!(queries <= 2, "32 concurrent requests made {queries} reads");
    }

    #[tokio::test]
    async fn a_request_never_takes_a_read_that_began_before_it() {
        let versions = Arc::new(FreshVersions::default());
        let reads = Arc::new(OrgReads::default());
        let db = Arc::new(FakeDb {
            queries: AtomicU64::new(0),
            value: AtomicI64::new(1),
        });
        // A read is under way when the value changes…
        let first = {
            let (versions, reads, db) = (versions.clone(), reads.clone(), db.clone());
            tokio::spawn(async move { versions.read_with(&reads, || db.query()).await })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        db.value.store(2, Ordering::SeqCst);
        // …so a request arriving now must not be answered with that read.
        let second = versions.read_with(&reads, || db.query()).await;
        assert!(matches!(first.await, Ok(Ok(Some(1)))));
        assert!(matches!(second, Ok(Some(2))), "{second:?}");
        assert_eq!(db.queries.load(Ordering::SeqCst), 2);
    }
}
