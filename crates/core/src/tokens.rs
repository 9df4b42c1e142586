//! Personal and org tokens: 256 random bits shown once, stored as a hash
//! with a visible prefix.

use serde::Deserialize;
use serde_json::json;
use switchboard_domain::{Environment, Permission, TokenKind, parse_scopes, validate_name};
use switchboard_storage::{self as storage, TokenRow};
use utoipa::ToSchema;

use crate::access::ops;
use crate::audit::{AuditEntry, DirectEvent};
use crate::secret::{hash_secret, new_secret, token_prefix};
use crate::views::{CreatedToken, TokenView};
use crate::{Core, CoreError, Ctx};

/// Longest lifetime a token may be given: two years.
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 2 * 366 * 24 * 3600;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    /// `personal` (acts as you; needs mcp.create) or `org` (org-wide; needs mcp.manage).
    pub kind: String,
    pub scopes: Vec<String>,
    /// Lifetime in seconds; absent means the token does not expire.
    pub expires_in_seconds: Option<i64>,
    /// Restrict the token to `sandbox` or `production`.
    pub environment: Option<String>,
}

impl Core {
    pub async fn create_token(
        &self,
        ctx: Ctx<'_>,
        input: CreateToken,
    ) -> Result<CreatedToken, CoreError> {
        let p = ctx.principal;
        let id = storage::new_id();
        let secret = new_secret();
        let now = ctx.meta.now_ms;
        let args = json!({"name": input.name, "kind": input.kind, "scopes": input.scopes,
            "expires_in_seconds": input.expires_in_seconds, "environment": input.environment});
        // What the token may be is decided before any transaction: its kind
        // needs its permission, and a personal token carries only scopes the
        // member's role can use.
        let kind: TokenKind = input
            .kind
            .parse()
            .map_err(|m| CoreError::invalid("kind", m))?;
        let op = match kind {
            TokenKind::Personal => &ops::TOKEN_CREATE_PERSONAL,
            TokenKind::Org => &ops::TOKEN_CREATE_ORG,
            TokenKind::OAuth => {
                return Err(CoreError::invalid(
                    "kind",
                    "OAuth tokens are issued by the authorization server: use 'personal' or 'org'",
                ));
            }
        };
        let scopes = parse_scopes(input.scopes.iter().map(String::as_str))
            .map_err(|m| CoreError::invalid("scopes", m))?;
        if kind == TokenKind::Personal {
            let grantable = crate::access::grantable_scopes(&p.permissions);
            if let Some(s) = scopes.iter().find(|s| !grantable.contains(s)) {
                let refusal = CoreError::Forbidden(format!(
                    "your role '{}' cannot use the scope '{s}' (it needs the permission '{}')",
                    p.role_name.as_deref().unwrap_or("-"),
                    s.backing_permission()
                ));
                self.refuse_audited(ctx, op, Some(&id), Err(refusal))
                    .await?;
            }
        }
        let row = self
            .write(
                ctx,
                AuditEntry::new(op, Some(&id), args),
                async |conn, _| {
                    let name = validate_name("name", &input.name, 100)?;
                    let expires_at = match input.expires_in_seconds {
                        Some(s) if !(60..=MAX_TOKEN_LIFETIME_SECS).contains(&s) => {
                            return Err(CoreError::invalid(
                                "expires_in_seconds",
                                format!(
                                    "must be between 60 and {MAX_TOKEN_LIFETIME_SECS} (two years)"
                                ),
                            ));
                        }
                        Some(s) => Some(now + s * 1000),
                        None => None,
                    };
                    let environment = match &input.environment {
                        Some(e) => Some(
                            e.parse::<Environment>()
                                .map_err(|m| CoreError::invalid("environment", m))?,
                        ),
                        None => None,
                    };
                    let row = TokenRow {
                        id: id.clone(),
                        org_id: p.org_id.clone(),
                        account_id: p.account_id.clone(),
                        kind: kind.as_str().into(),
                        name,
                        prefix: token_prefix(&secret),
                        token_hash: hash_secret(&secret),
                        scopes: scopes
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(" "),
                        environment: environment.map(|e| e.as_str().to_owned()),
                        created_at: now,
                        expires_at,
                        last_used_at: None,
                        revoked_at: None,
                    };
                    storage::insert_token(&mut *conn, &row).await?;
                    Ok(row)
                },
            )
            .await?;
        Ok(CreatedToken {
            token: secret,
            info: TokenView::from(row),
        })
    }

    /// The caller's personal tokens, plus the org's tokens for those who manage them.
    pub async fn list_tokens(&self, ctx: Ctx<'_>) -> Result<Vec<TokenView>, CoreError> {
        let p = ctx.principal;
        self.authorize(ctx, &ops::TOKEN_LIST, None).await?;
        let include_org = p.permissions.contains(Permission::McpManage);
        Ok(
            storage::list_tokens(self.db.pool(), &p.org_id, Some(&p.account_id), include_org)
                .await?
                .into_iter()
                .map(TokenView::from)
                .collect(),
        )
    }

    /// Revokes a token: your own personal token, or any token of the org if
    /// you hold mcp.manage. Refused on the very next request everywhere.
    pub async fn revoke_token(&self, ctx: Ctx<'_>, id: &str) -> Result<TokenView, CoreError> {
        let p = ctx.principal;
        let now = ctx.meta.now_ms;
        self.write(
            ctx,
            AuditEntry::new(&ops::TOKEN_REVOKE, Some(id), json!({})),
            async |conn, _| {
                let t = storage::token_by_org_id(&mut *conn, &p.org_id, id)
                    .await?
                    .ok_or(CoreError::NotFound("token"))?;
                let own = t.kind == "personal" && t.account_id == p.account_id;
                if !own && !p.permissions.contains(Permission::McpManage) {
                    return Err(CoreError::NotFound("token"));
                }
                if !storage::revoke_token(&mut *conn, &p.org_id, id, now).await? {
                    return Err(CoreError::conflict(
                        "already_revoked",
                        "this token was already revoked",
                    ));
                }
                let t = storage::token_by_id(&mut *conn, id)
                    .await?
                    .ok_or(CoreError::NotFound("token"))?;
                Ok(TokenView::from(t))
            },
        )
        .await
    }

    /// The operator revokes a token by id from the CLI, whatever its org.
    pub async fn operator_revoke_token(
        &self,
        id: &str,
        meta: &crate::RequestMeta,
    ) -> Result<TokenView, CoreError> {
        let mut tx = self.db.begin_write().await?;
        let t = storage::token_by_id(&mut *tx, id)
            .await?
            .ok_or(CoreError::NotFound("token"))?;
        if !storage::revoke_token(&mut *tx, &t.org_id, id, meta.now_ms).await? {
            return Err(CoreError::conflict(
                "already_revoked",
                "this token was already revoked",
            ));
        }
        DirectEvent {
            org_id: &t.org_id,
            actor_id: None,
            actor: "operator (cli)",
            action: "token.revoke",
            target: Some(id),
            args: json!({}),
        }
        .insert(&mut tx, meta)
        .await?;
        let t = storage::token_by_id(&mut *tx, id)
            .await?
            .ok_or(CoreError::NotFound("token"))?;
        switchboard_storage::Db::commit(tx).await?;
        Ok(TokenView::from(t))
    }
}
