//! The query set, one module per aggregate. Every function takes any
//! executor (the pool for reads, `&mut *tx` inside a transaction), and every
//! org-owned row is addressed with its `org_id`, so an id from another
//! organization finds nothing.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod connections;
pub mod mcp;
pub mod oauth;
pub mod orgs;
pub mod people;
pub mod tokens;
pub mod virtual_servers;
pub mod work;

pub use accounts::*;
pub use audit::*;
pub use auth::*;
pub use connections::*;
pub use mcp::*;
pub use oauth::*;
pub use orgs::*;
pub use people::*;
pub use tokens::*;
pub use virtual_servers::*;
pub use work::*;

/// Any executor on the `Any` driver: `&AnyPool` or `&mut AnyConnection`.
pub trait Exec<'c>: sqlx::Executor<'c, Database = sqlx::Any> {}
impl<'c, T: sqlx::Executor<'c, Database = sqlx::Any>> Exec<'c> for T {}

/// A bind value for statements whose shape is built at run time.
#[derive(Debug, Clone)]
pub enum Arg {
    Text(String),
    Int(i64),
}

/// Builds SQL with numbered `$n` placeholders (valid on both backends) for
/// filters that vary per request; values are always bound, never inlined.
#[derive(Debug, Default)]
pub struct SqlBuilder {
    pub sql: String,
    pub args: Vec<Arg>,
}

impl SqlBuilder {
    pub fn new(base: &str) -> Self {
        SqlBuilder {
            sql: base.to_owned(),
            args: Vec::new(),
        }
    }

    pub fn push(&mut self, s: &str) -> &mut Self {
        self.sql.push_str(s);
        self
    }

    /// Appends a placeholder bound to `arg`.
    pub fn bind(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        self.sql.push_str(&format!("${}", self.args.len()));
        self
    }

    pub fn query_as<'q, T>(
        &'q self,
    ) -> sqlx::query::QueryAs<'q, sqlx::Any, T, sqlx::any::AnyArguments>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let mut q = sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(self.sql.clone()));
        for a in &self.args {
            q = match a {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

/// Keyset pagination: items after `cursor` (an id), at most `limit`.
#[derive(Debug, Clone)]
pub struct Page {
    pub cursor: Option<String>,
    pub limit: i64,
}
