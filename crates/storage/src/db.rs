//! The database handle: connecting, pragmas, migrations, transactions.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use crate::{Result, StorageError};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StorageError::UnsupportedUrl(redact_url(url)))
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// How long SQLite waits on a locked database before giving up.
    pub busy_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// A pool on one backend. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// How this pool was opened, so a task can open its own (see
    /// [`Db::connect_dedicated`]).
    url: std::sync::Arc<str>,
    opts: DbOptions,
}

// By hand: the URL may hold a password.
impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .field("url", &redact_url(&self.url))
            .finish()
    }
}

pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

impl Db {
    /// The default database: `switchboard.db` inside the data directory.
    pub fn sqlite_url_for_dir(data_dir: &Path) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("switchboard.db").display()
        )
    }

    pub async fn connect(url: &str, opts: &DbOptions) -> Result<Db> {
        Self::connect_sized(url, opts, opts.max_connections).await
    }

    /// A one-connection pool on the same database, for a task that runs on
    /// its own thread and runtime (the audit writer): its connection's I/O
    /// and wake-ups then never queue behind request tasks.
    pub async fn connect_dedicated(&self) -> Result<Db> {
        Self::connect_sized(&self.url, &self.opts, 1).await
    }

    async fn connect_sized(url: &str, opts: &DbOptions, max: u32) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let connect = AnyConnectOptions::from_str(url)?;
        let busy_ms = opts.busy_timeout.as_millis();
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // SQLite serializes writers anyway; a few readers in WAL suffice.
                Backend::Sqlite => max.min(8),
                Backend::Postgres => max,
            })
            .acquire_timeout(opts.acquire_timeout)
            // A SQLite connection is a local file that cannot go stale: a
            // ping before every acquire would only add a round trip to the
            // connection's worker thread on every query.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL for concurrent readers; FULL so that an acknowledged
                        // commit survives power loss, not just a process crash.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute(sqlx::AssertSqlSafe(format!(
                            "PRAGMA busy_timeout = {busy_ms}"
                        )))
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        Ok(Db {
            pool,
            backend,
            url: url.into(),
            opts: opts.clone(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies every pending migration of this backend's folder.
    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Begins a transaction that will write: `BEGIN IMMEDIATE` on SQLite
    /// takes the write lock up front (waiting up to the busy timeout).
    pub async fn begin_write(&self) -> Result<Tx> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Commits, mapping the error into ours.
    pub async fn commit(tx: Tx) -> Result<()> {
        tx.commit().await?;
        Ok(())
    }

    /// A cheap liveness query for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned. On SQLite
    /// this checkpoints the WAL as the last connection closes.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Masks the password in a database URL for logs and `check-config`.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or("");
                if userinfo.contains(':') {
                    format!("{scheme}://{user}:****@{host}")
                } else {
                    format!("{scheme}://{user}@{host}")
                }
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend_and_passwords_are_masked() {
        assert_eq!(
            Backend::from_url("sqlite://x.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert!(Backend::from_url("mysql://x").is_err());
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:****@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}
