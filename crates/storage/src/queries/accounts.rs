//! Accounts: people, identified by email.

use crate::{Exec, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRow {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub password_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str = "id, email, display_name, password_hash, created_at, updated_at";

/// Makes the account an instance operator if the instance has none yet
/// (the account made at first setup). Returns whether it is one now.
pub async fn claim_first_operator<'c>(e: impl Exec<'c>, account_id: &str) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE accounts SET instance_operator = 1 WHERE id = $1
           AND NOT EXISTS (SELECT 1 FROM accounts WHERE instance_operator = 1)",
    )
    .bind(account_id)
    .execute(e)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Whether the account is an instance operator.
pub async fn is_instance_operator<'c>(e: impl Exec<'c>, account_id: &str) -> Result<bool> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE id = $1 AND instance_operator = 1")
            .bind(account_id)
            .fetch_one(e)
            .await?;
    Ok(n > 0)
}

pub async fn insert_account<'c>(e: impl Exec<'c>, a: &AccountRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO accounts (id, email, display_name, password_hash, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&a.id)
    .bind(&a.email)
    .bind(&a.display_name)
    .bind(&a.password_hash)
    .bind(a.created_at)
    .bind(a.updated_at)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn account_by_email<'c>(e: impl Exec<'c>, email: &str) -> Result<Option<AccountRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM accounts WHERE email = $1"
    )))
    .bind(email)
    .fetch_optional(e)
    .await?)
}

pub async fn account_by_id<'c>(e: impl Exec<'c>, id: &str) -> Result<Option<AccountRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM accounts WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(e)
    .await?)
}

pub async fn set_password<'c>(e: impl Exec<'c>, id: &str, hash: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE accounts SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(now)
        .bind(id)
        .execute(e)
        .await?;
    Ok(())
}

pub async fn set_display_name<'c>(e: impl Exec<'c>, id: &str, name: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE accounts SET display_name = $1, updated_at = $2 WHERE id = $3")
        .bind(name)
        .bind(now)
        .bind(id)
        .execute(e)
        .await?;
    Ok(())
}
