//! Accounts, sign-in, sessions, authentication, and creating the first
//! owner (setup link or `admin bootstrap`).

use std::collections::BTreeSet;

use serde_json::json;
use switchboard_domain::{
    BuiltinRole, Environment, McpPolicy, MembershipStatus, Permission, PermissionSet, Scope,
    TokenKind, normalize_email, validate_name, validate_password, validate_slug,
};
use switchboard_storage::{
    self as storage, AccountRow, Conn, Db, MembershipRow, OrgRow, RoleRow, SessionRow,
};

use crate::access::ops;
use crate::audit::{AuditEntry, DirectEvent};
use crate::password::{hash_password, verify_password};
use crate::principal_cache::CachedToken;
use crate::secret::{hash_secret, looks_like_secret, new_secret};
use crate::views::{AccountView, MeView, OrgSummary, OrgView};
use crate::{Core, CoreError, Credential, Ctx, Principal, RequestMeta, Surface};

/// `last_used_at` / session expiry are written at most this often: a read
/// must not turn into a write on every request.
const TOUCH_INTERVAL_MS: i64 = 60_000;

#[derive(Debug, Clone)]
pub struct BootstrapInput {
    pub email: String,
    pub display_name: Option<String>,
    pub password: String,
    pub org_slug: String,
    pub org_name: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BootstrapOutput {
    pub account_id: String,
    pub org_id: String,
    pub membership_id: String,
    pub email: String,
    pub org_slug: String,
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    /// `[a-z0-9-]`, 2 to 63 characters.
    pub slug: String,
    pub name: String,
}

/// A new sign-in session: the cookie value (shown once) and its CSRF token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub cookie_secret: String,
    pub csrf_token: String,
    pub expires_at_ms: i64,
    pub org_slug: String,
}

/// Creates the built-in roles of a new org; returns the owner role's id.
pub(crate) async fn create_builtin_roles(
    conn: &mut Conn,
    org_id: &str,
    now: i64,
) -> Result<String, CoreError> {
    let mut owner_id = String::new();
    for role in BuiltinRole::ALL {
        let id = storage::new_id();
        if role == BuiltinRole::Owner {
            owner_id = id.clone();
        }
        storage::insert_role(
            &mut *conn,
            &RoleRow {
                id,
                org_id: org_id.to_owned(),
                name: role.as_str().to_owned(),
                description: format!("Built-in {} role", role.as_str()),
                builtin: 1,
                permissions: json!(role.permissions().names()).to_string(),
                created_at: now,
                updated_at: now,
            },
        )
        .await?;
    }
    Ok(owner_id)
}

async fn check_slug_free(conn: &mut Conn, slug: &str) -> Result<(), CoreError> {
    if storage::org_by_slug(&mut *conn, slug).await?.is_some() {
        return Err(CoreError::conflict(
            "org_slug_taken",
            format!("an organization with the slug '{slug}' already exists: choose another slug"),
        ));
    }
    Ok(())
}

/// Creates an organization with its built-in roles and `account_id` as its
/// The attempts one sign-in took (see [`Core::reserve_sign_in`]).
#[derive(Debug)]
pub(crate) struct SignInAttempt {
    keys: Vec<String>,
    /// The (email, address) key, which a success clears.
    email_address: Option<String>,
}

/// owner; returns the org and membership ids. The slug must be free.
pub(crate) async fn create_org_owned_by(
    conn: &mut Conn,
    account_id: &str,
    slug: &str,
    name: &str,
    now: i64,
) -> Result<(String, String), CoreError> {
    check_slug_free(conn, slug).await?;
    let org_id = storage::new_id();
    storage::insert_org(
        &mut *conn,
        &OrgRow {
            id: org_id.clone(),
            slug: slug.to_owned(),
            name: name.to_owned(),
            seat_limit: None,
            allowed_domains: "[]".into(),
            feature_flags: "{}".into(),
            mcp_enabled: 1,
            allow_production: 0,
            allow_write: 1,
            created_at: now,
            updated_at: now,
        },
    )
    .await?;
    let owner_role = create_builtin_roles(conn, &org_id, now).await?;
    let membership_id = storage::new_id();
    storage::insert_membership(
        &mut *conn,
        &MembershipRow {
            id: membership_id.clone(),
            org_id: org_id.clone(),
            account_id: account_id.to_owned(),
            role_id: owner_role,
            status: MembershipStatus::Active.as_str().into(),
            created_at: now,
            updated_at: now,
        },
    )
    .await?;
    Ok((org_id, membership_id))
}

impl Core {
    /// Creates (or reuses, if the password matches) an account and a new
    /// organization it owns. Used by `admin bootstrap` and the setup page.
    pub async fn bootstrap(
        &self,
        input: BootstrapInput,
        meta: &RequestMeta,
    ) -> Result<BootstrapOutput, CoreError> {
        let mut tx = self.db.begin_write().await?;
        let out = self.bootstrap_in(&mut tx, input, meta).await?;
        Db::commit(tx).await?;
        Ok(out)
    }

    async fn bootstrap_in(
        &self,
        conn: &mut Conn,
        input: BootstrapInput,
        meta: &RequestMeta,
    ) -> Result<BootstrapOutput, CoreError> {
        let now = meta.now_ms;
        let email = normalize_email("email", &input.email)?;
        validate_slug("org_slug", &input.org_slug)?;
        let org_name = validate_name("org_name", &input.org_name, 200)?;
        let display_name = match &input.display_name {
            Some(n) => validate_name("display_name", n, 200)?,
            None => email.split('@').next().unwrap_or(&email).to_owned(),
        };
        // Checked before hashing a password for a request that would fail anyway.
        check_slug_free(conn, &input.org_slug).await?;
        let account_id = match storage::account_by_email(&mut *conn, &email).await? {
            Some(existing) => {
                if !verify_password(input.password.clone(), existing.password_hash.clone()).await? {
                    return Err(CoreError::Unauthenticated(format!(
                        "an account for {email} already exists and the password does not match it"
                    )));
                }
                existing.id
            }
            None => {
                validate_password("password", &input.password)?;
                let id = storage::new_id();
                storage::insert_account(
                    &mut *conn,
                    &AccountRow {
                        id: id.clone(),
                        email: email.clone(),
                        display_name,
                        password_hash: Some(hash_password(input.password.clone()).await?),
                        created_at: now,
                        updated_at: now,
                    },
                )
                .await?;
                id
            }
        };
        let (org_id, membership_id) =
            create_org_owned_by(conn, &account_id, &input.org_slug, &org_name, now).await?;
        // The account made at first setup operates the instance.
        let operator = storage::claim_first_operator(&mut *conn, &account_id).await?;
        DirectEvent {
                org_id: &org_id,
                actor_id: Some(&account_id),
                actor: &email,
                action: "org.bootstrap",
                target: Some(&org_id),
                args: json!({"org_slug": input.org_slug, "email": email, "instance_operator": operator}),
            }
            .insert(&mut *conn, meta)
            .await?;
        Ok(BootstrapOutput {
            account_id,
            org_id,
            membership_id,
            email,
            org_slug: input.org_slug,
        })
    }

    /// Issues a one-time setup link secret when no owner exists yet.
    pub async fn issue_setup_token(&self, now: i64) -> Result<Option<String>, CoreError> {
        if storage::any_owner_exists(self.db.pool()).await? {
            return Ok(None);
        }
        let secret = new_secret();
        storage::insert_setup_token(
            self.db.pool(),
            &hash_secret(&secret),
            now,
            now + self.config.setup_token_ttl_ms,
        )
        .await?;
        Ok(Some(secret))
    }

    pub async fn setup_token_valid(&self, secret: &str, now: i64) -> Result<bool, CoreError> {
        if !looks_like_secret(secret) {
            return Ok(false);
        }
        Ok(storage::setup_token_valid(self.db.pool(), &hash_secret(secret), now).await?)
    }

    /// Spends a setup link to create the first owner and organization. The
    /// link works once; every other outstanding link dies with it.
    pub async fn complete_setup(
        &self,
        secret: &str,
        input: BootstrapInput,
        meta: &RequestMeta,
    ) -> Result<BootstrapOutput, CoreError> {
        let now = meta.now_ms;
        let mut tx = self.db.begin_write().await?;
        if !looks_like_secret(secret)
            || !storage::consume_setup_token(&mut *tx, &hash_secret(secret), now).await?
        {
            return Err(CoreError::NotFound(
                "setup link (it may have expired or been used already)",
            ));
        }
        if storage::any_owner_exists(&mut *tx).await? {
            return Err(CoreError::conflict(
                "already_set_up",
                "this server already has an owner: sign in instead",
            ));
        }
        let out = self.bootstrap_in(&mut tx, input, meta).await?;
        storage::clear_setup_tokens(&mut *tx).await?;
        Db::commit(tx).await?;
        Ok(out)
    }

    /// Email + password sign-in with throttling kept in the database (so
    /// every replica counts the same failures). Returns a new session.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        org_slug: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<NewSession, CoreError> {
        let now = meta.now_ms;
        let email = normalize_email("email", email)?;
        let attempt = self.reserve_sign_in(&email, meta).await?;
        let account = storage::account_by_email(self.db.pool(), &email).await?;
        let ok = verify_password(
            password.to_owned(),
            account.as_ref().and_then(|a| a.password_hash.clone()),
        )
        .await?;
        let Some(account) = account.filter(|_| ok) else {
            tracing::warn!(email = %email, "failed sign-in");
            return Err(CoreError::Unauthenticated(
                "the email or password is wrong".into(),
            ));
        };
        self.release_sign_in(attempt).await;

        let orgs = storage::orgs_of_account(self.db.pool(), &account.id).await?;
        let org = match org_slug {
            Some(slug) => orgs.into_iter().find(|o| o.slug == slug).ok_or_else(|| {
                CoreError::Forbidden(format!("you are not an active member of the organization '{slug}'"))
            })?,
            None => orgs.into_iter().next().ok_or_else(|| {
                CoreError::Forbidden("you are not an active member of any organization yet: accept an invitation first".into())
            })?,
        };
        let cookie_secret = new_secret();
        let csrf_token = new_secret();
        let expires_at_ms = now + self.config.session_ttl_ms;
        let mut tx = self.db.begin_write().await?;
        storage::insert_session(
            &mut *tx,
            &SessionRow {
                id: storage::new_id(),
                token_hash: hash_secret(&cookie_secret),
                account_id: account.id.clone(),
                active_org_id: Some(org.id.clone()),
                csrf_token: csrf_token.clone(),
                created_at: now,
                expires_at: expires_at_ms,
                last_seen_at: now,
            },
        )
        .await?;
        DirectEvent {
            org_id: &org.id,
            actor_id: Some(&account.id),
            actor: &account.email,
            action: "session.sign_in",
            target: None,
            args: json!({}),
        }
        .insert(&mut tx, meta)
        .await?;
        Db::commit(tx).await?;
        Ok(NewSession {
            cookie_secret,
            csrf_token,
            expires_at_ms,
            org_slug: org.slug,
        })
    }

    /// Reserves one sign-in attempt before the password is checked, with
    /// one conditional write per limit: per (email, client address), per
    /// email and per client address. N concurrent guesses therefore make at
    /// most the limit's number of password checks, on every replica. A
    /// stranger exhausting the (email, address) limit does not lock the
    /// person out from elsewhere; the per-email limit is much looser.
    pub(crate) async fn reserve_sign_in(
        &self,
        email: &str,
        meta: &RequestMeta,
    ) -> Result<SignInAttempt, CoreError> {
        let address = meta.client_ip.as_deref().unwrap_or("-");
        let c = &self.config;
        let limits = [
            (format!("a:{address}"), c.sign_in_max_per_address),
            (format!("ea:{email}|{address}"), c.sign_in_max_failures),
            (format!("e:{email}"), c.sign_in_max_per_email),
        ];
        let now = meta.now_ms;
        let mut reserved: Vec<String> = Vec::with_capacity(limits.len());
        for (key, max) in limits {
            let ok = storage::throttle_reserve(
                self.db.pool(),
                &key,
                now,
                now - c.sign_in_window_ms,
                max,
            )
            .await?;
            if !ok {
                let started = storage::throttle_get(self.db.pool(), &key)
                    .await?
                    .map_or(now, |t| t.window_started_at);
                // The attempt was not made: give back what it took.
                self.release_sign_in(SignInAttempt {
                    keys: reserved,
                    email_address: None,
                })
                .await;
                tracing::warn!(email = %email, "sign-in attempt throttled");
                let retry_after_secs =
                    ((started + c.sign_in_window_ms - now).max(1000) + 999) / 1000;
                return Err(CoreError::Throttled {
                    message: format!(
                        "too many sign-in attempts: try again in {retry_after_secs} seconds"
                    ),
                    retry_after_secs,
                });
            }
            reserved.push(key);
        }
        Ok(SignInAttempt {
            email_address: reserved.get(1).cloned(),
            keys: reserved,
        })
    }

    /// A successful sign-in gives its attempts back: the (email, address)
    /// count starts again, the looser counts lose one. Best effort.
    pub(crate) async fn release_sign_in(&self, attempt: SignInAttempt) {
        for key in &attempt.keys {
            let result = if attempt.email_address.as_ref() == Some(key) {
                storage::throttle_clear(self.db.pool(), key).await
            } else {
                storage::throttle_release(self.db.pool(), key).await
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "could not release a sign-in attempt");
            }
        }
    }

    /// Ends the caller's session.
    pub async fn sign_out(&self, ctx: Ctx<'_>) -> Result<(), CoreError> {
        let Credential::Session { session_id, .. } = &ctx.principal.credential else {
            return Err(CoreError::Forbidden(
                "only a signed-in session can sign out".into(),
            ));
        };
        self.write(
            ctx,
            AuditEntry::new(&ops::SIGN_OUT, None, json!({})),
            async |conn, _| {
                storage::delete_session(&mut *conn, session_id).await?;
                Ok(())
            },
        )
        .await
    }

    /// Organizations the caller is an active member of.
    pub async fn list_my_orgs(&self, ctx: Ctx<'_>) -> Result<Vec<OrgSummary>, CoreError> {
        Ok(
            storage::orgs_of_account(self.db.pool(), &ctx.principal.account_id)
                .await?
                .into_iter()
                .map(|o| OrgSummary {
                    id: o.id,
                    slug: o.slug,
                    name: o.name,
                })
                .collect(),
        )
    }

    /// Creates another organization owned by the caller (a signed-in person).
    pub async fn create_org(
        &self,
        ctx: Ctx<'_>,
        input: CreateOrg,
    ) -> Result<OrgSummary, CoreError> {
        let p = ctx.principal;
        self.authorize(ctx, &ops::ORG_CREATE, None).await?;
        if self.config.org_creation == crate::OrgCreation::Operators
            && !matches!(p.credential, Credential::Cli)
            && !storage::is_instance_operator(self.db.pool(), &p.account_id).await?
        {
            let refusal = CoreError::Forbidden(
                "creating organizations is limited to this instance's operators (instance.org_creation = operators): ask an operator to create it, or to allow anyone".into(),
            );
            self.refuse_audited(ctx, &ops::ORG_CREATE, None, Err(refusal))
                .await?;
        }
        validate_slug("slug", &input.slug)?;
        let name = validate_name("name", &input.name, 200)?;
        let now = ctx.meta.now_ms;
        let mut tx = self.db.begin_write().await?;
        let (org_id, _) =
            create_org_owned_by(&mut tx, &p.account_id, &input.slug, &name, now).await?;
        crate::audit::record_in(
            &mut tx,
            &DirectEvent {
                org_id: &org_id,
                actor_id: Some(&p.account_id),
                actor: &p.email,
                action: "org.create",
                target: Some(&org_id),
                args: json!({"slug": input.slug, "name": name}),
            }
            .row(ctx.meta),
        )
        .await?;
        Db::commit(tx).await?;
        Ok(OrgSummary {
            id: org_id,
            slug: input.slug,
            name,
        })
    }

    /// Authenticates a bearer token: its hash, its state, and the CURRENT
    /// membership and role of the account behind it. A principal built
    /// earlier on this replica is used only when the org's access version,
    /// read again for this request, has not moved since (any change to what
    /// the principal is built from moves it; migrations 0008 and 0009).
    #[tracing::instrument(skip_all)]
    pub async fn authenticate_bearer(&self, token: &str, now: i64) -> Result<Principal, CoreError> {
        if !looks_like_secret(token) {
            return Err(CoreError::Unauthenticated(
                "the bearer token is malformed: expected the 64 hex characters shown when the token was created".into(),
            ));
        }
        let hash = hash_secret(token);
        let (mut entry, mut changed) = match self.principals.get(&self.db, &hash).await? {
            Some(cached) => (cached, false),
            None => (self.load_bearer(&hash).await?, true),
        };
        if let Some(exp) = entry.expires_at
            && exp <= now
        {
            return Err(CoreError::Unauthenticated(format!(
                "the bearer token expired at {}",
                crate::views::rfc3339(exp)
            )));
        }
        if entry
            .last_used_at
            .is_none_or(|t| now - t >= TOUCH_INTERVAL_MS)
        {
            let Credential::Token { id, .. } = &entry.principal.credential else {
                return Err(CoreError::Internal(
                    "a bearer principal without its token".into(),
                ));
            };
            // Best effort: failing to record use must not fail the request.
            if let Err(e) = storage::touch_token(self.db.pool(), id, now, TOUCH_INTERVAL_MS).await {
                tracing::warn!(error = %e, "could not record token use");
            }
            entry.last_used_at = Some(now);
            changed = true;
        }
        if changed {
            self.principals.put(hash, entry.clone());
        }
        Ok(entry.principal)
    }

    /// [`Core::authenticate_bearer`] for the REST API: an OAuth access token
    /// is good only for the resource it was issued for (RFC 8707), which is
    /// an MCP endpoint, never this API.
    pub async fn authenticate_bearer_for_api(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Principal, CoreError> {
        let principal = self.authenticate_bearer(token, now).await?;
        if principal.token_kind() == Some(TokenKind::OAuth) {
            return Err(CoreError::Unauthenticated(format!(
                "this OAuth access token was issued for {}, and is valid only there: the REST API takes personal and org tokens or a signed-in session",
                principal.token_resource().unwrap_or("an MCP endpoint")
            )));
        }
        Ok(principal)
    }

    /// Builds a bearer token's principal from the database (one query).
    async fn load_bearer(&self, hash: &str) -> Result<CachedToken, CoreError> {
        let Some(row) = storage::token_principal(self.db.pool(), hash).await? else {
            return Err(CoreError::Unauthenticated(
                "the bearer token is not valid".into(),
            ));
        };
        if row.revoked_at.is_some() {
            return Err(CoreError::Unauthenticated(
                "the bearer token has been revoked".into(),
            ));
        }
        let kind: TokenKind = row.kind.parse().map_err(CoreError::Internal)?;
        let (Some(membership_id), Some("active"), Some(role_name), Some(perms)) = (
            row.membership_id.clone(),
            row.membership_status.as_deref(),
            row.role_name.clone(),
            row.role_permissions.as_deref(),
        ) else {
            return Err(CoreError::Unauthenticated(
                "the account behind this token is no longer an active member of its organization"
                    .into(),
            ));
        };
        let role_permissions = parse_permissions(perms)?;
        let (permissions, role_name) = match kind {
            // An org token is an org-level service principal; it stays valid
            // only while its creator could still create it.
            TokenKind::Org => {
                if !role_permissions.contains(Permission::McpManage) {
                    return Err(CoreError::Unauthenticated(
                        "this org token's creator no longer holds mcp.manage: an owner must create a new org token".into(),
                    ));
                }
                (Principal::org_token_permissions(), None)
            }
            TokenKind::Personal | TokenKind::OAuth => (role_permissions, Some(role_name)),
        };
        let scopes: BTreeSet<Scope> = row
            .scopes
            .split_whitespace()
            .map(|s| s.parse::<Scope>())
            .collect::<Result<_, _>>()
            .map_err(CoreError::Internal)?;
        let environment = match row.environment.as_deref() {
            Some(e) => Some(e.parse::<Environment>().map_err(CoreError::Internal)?),
            None => None,
        };
        let principal = Principal {
            account_id: row.account_id,
            email: row.email,
            display_name: row.display_name,
            org_id: row.org_id,
            org_slug: row.org_slug,
            org_name: row.org_name,
            membership_id,
            role_name,
            permissions,
            credential: Credential::Token {
                id: row.token_id,
                kind,
                scopes,
                environment,
                resource: row.resource,
            },
            mcp_policy: Some(McpPolicy {
                enabled: row.mcp_enabled != 0,
                allow_production: row.allow_production != 0,
                allow_write: row.allow_write != 0,
            }),
            access_version: Some(row.access_version),
        };
        Ok(CachedToken {
            principal,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
        })
    }

    /// Authenticates a session cookie value. If the session's active org no
    /// longer has this person as an active member, another org they belong
    /// to becomes active; with none left, the session is refused.
    #[tracing::instrument(skip_all)]
    pub async fn authenticate_session(
        &self,
        cookie_secret: &str,
        now: i64,
    ) -> Result<Principal, CoreError> {
        if !looks_like_secret(cookie_secret) {
            return Err(CoreError::Unauthenticated(
                "the session cookie is malformed: sign in again".into(),
            ));
        }
        let Some(session) =
            storage::session_by_hash(self.db.pool(), &hash_secret(cookie_secret)).await?
        else {
            return Err(CoreError::Unauthenticated(
                "the session is not valid: sign in again".into(),
            ));
        };
        if session.expires_at <= now {
            return Err(CoreError::Unauthenticated(
                "the session has expired: sign in again".into(),
            ));
        }
        let Some(account) = storage::account_by_id(self.db.pool(), &session.account_id).await?
        else {
            return Err(CoreError::Unauthenticated(
                "the session's account no longer exists".into(),
            ));
        };
        let mut member = match &session.active_org_id {
            Some(org) => storage::member_by_account(self.db.pool(), org, &account.id)
                .await?
                .filter(|m| m.status == "active"),
            None => None,
        };
        let mut org_id = session.active_org_id.clone().unwrap_or_default();
        if member.is_none() {
            let orgs = storage::orgs_of_account(self.db.pool(), &account.id).await?;
            let Some(other) = orgs.into_iter().next() else {
                return Err(CoreError::Unauthenticated(
                    "you are no longer an active member of any organization".into(),
                ));
            };
            member = storage::member_by_account(self.db.pool(), &other.id, &account.id).await?;
            storage::set_session_org(self.db.pool(), &session.id, &other.id).await?;
            org_id = other.id;
        }
        let Some(member) = member else {
            return Err(CoreError::Unauthenticated("membership not found".into()));
        };
        if now - session.last_seen_at >= TOUCH_INTERVAL_MS
            && let Err(e) = storage::touch_session(
                self.db.pool(),
                &session.id,
                now,
                now + self.config.session_ttl_ms,
                TOUCH_INTERVAL_MS,
            )
            .await
        {
            tracing::warn!(error = %e, "could not extend the session");
        }
        let org = storage::org_by_id(self.db.pool(), &org_id)
            .await?
            .ok_or_else(|| {
                CoreError::Unauthenticated("the organization no longer exists".into())
            })?;
        Ok(Principal {
            account_id: account.id,
            email: account.email,
            display_name: account.display_name,
            org_id,
            org_slug: org.slug,
            org_name: org.name,
            membership_id: member.id,
            role_name: Some(member.role_name),
            permissions: parse_permissions(&member.role_permissions)?,
            credential: Credential::Session {
                session_id: session.id,
                csrf_token: session.csrf_token,
            },
            mcp_policy: None,
            access_version: None,
        })
    }

    /// Builds the principal the CLI acts as: the named account in the named org.
    pub async fn cli_principal(&self, email: &str, org_slug: &str) -> Result<Principal, CoreError> {
        let email = normalize_email("email", email)?;
        let org = storage::org_by_slug(self.db.pool(), org_slug)
            .await?
            .ok_or(CoreError::NotFound("organization"))?;
        let member = storage::member_by_email(self.db.pool(), &org.id, &email)
            .await?
            .filter(|m| m.status == "active")
            .ok_or_else(|| {
                CoreError::Forbidden(format!("{email} is not an active member of '{org_slug}'"))
            })?;
        Ok(Principal {
            account_id: member.account_id,
            email: member.email,
            display_name: member.display_name,
            org_slug: org.slug.clone(),
            org_name: org.name.clone(),
            org_id: org.id,
            membership_id: member.id,
            role_name: Some(member.role_name),
            permissions: parse_permissions(&member.role_permissions)?,
            credential: Credential::Cli,
            mcp_policy: None,
            access_version: None,
        })
    }

    /// Switches a session's active organization.
    pub async fn switch_org(&self, ctx: Ctx<'_>, org_slug: &str) -> Result<(), CoreError> {
        let Credential::Session { session_id, .. } = &ctx.principal.credential else {
            return Err(CoreError::Forbidden(
                "only a signed-in session can switch organization: a token belongs to one organization".into(),
            ));
        };
        let org = storage::org_by_slug(self.db.pool(), org_slug).await?;
        let member = match &org {
            Some(o) => storage::member_by_account(self.db.pool(), &o.id, &ctx.principal.account_id)
                .await?
                .filter(|m| m.status == "active"),
            None => None,
        };
        let (Some(org), Some(_)) = (org, member) else {
            return Err(CoreError::NotFound("organization"));
        };
        // Audited in the organization being left.
        self.write(
            ctx,
            AuditEntry::new(&ops::SWITCH_ORG, Some(&org.id), json!({"org": org.slug})),
            async |conn, _| {
                storage::set_session_org(&mut *conn, session_id, &org.id).await?;
                Ok(())
            },
        )
        .await
    }

    /// Changes the caller's password and ends their other sessions.
    pub async fn change_password(
        &self,
        ctx: Ctx<'_>,
        current: &str,
        new: &str,
    ) -> Result<(), CoreError> {
        validate_password("new_password", new)?;
        let account = storage::account_by_id(self.db.pool(), &ctx.principal.account_id)
            .await?
            .ok_or(CoreError::NotFound("account"))?;
        if !verify_password(current.to_owned(), account.password_hash.clone()).await? {
            return Err(CoreError::invalid("current_password", "is wrong"));
        }
        let hash = hash_password(new.to_owned()).await?;
        let keep = match &ctx.principal.credential {
            Credential::Session { session_id, .. } => session_id.clone(),
            _ => String::new(),
        };
        self.write(
            ctx,
            AuditEntry::new(&ops::PASSWORD_CHANGE, Some(&account.id), json!({})),
            async |conn, _| {
                storage::set_password(&mut *conn, &account.id, &hash, ctx.meta.now_ms).await?;
                storage::delete_other_sessions(&mut *conn, &account.id, &keep).await?;
                Ok(())
            },
        )
        .await
    }

    /// The caller: account, org, role, credential kind and scopes.
    pub async fn me(&self, ctx: Ctx<'_>) -> Result<MeView, CoreError> {
        let p = ctx.principal;
        let org = storage::org_by_id(self.db.pool(), &p.org_id)
            .await?
            .ok_or(CoreError::NotFound("organization"))?;
        let seats = storage::seats_taken(self.db.pool(), &p.org_id, ctx.meta.now_ms).await?;
        let orgs = match p.credential {
            Credential::Session { .. } | Credential::Cli => self.list_my_orgs(ctx).await?,
            Credential::Token { .. } => Vec::new(),
        };
        let (credential, csrf) = match &p.credential {
            Credential::Session { csrf_token, .. } => {
                ("session".to_owned(), Some(csrf_token.clone()))
            }
            Credential::Token { kind, .. } => (kind.as_str().to_owned(), None),
            Credential::Cli => ("cli".to_owned(), None),
        };
        Ok(MeView {
            account: AccountView {
                id: p.account_id.clone(),
                email: p.email.clone(),
                display_name: p.display_name.clone(),
            },
            org: OrgView::new(org, seats),
            membership_id: p.membership_id.clone(),
            role: p.role_name.clone(),
            permissions: p.permissions.names(),
            credential,
            token_id: p.token_id().map(str::to_owned),
            scopes: p
                .scopes()
                .map(|s| s.iter().map(|x| x.as_str().to_owned()).collect()),
            csrf_token: csrf,
            orgs,
        })
    }
}

pub(crate) fn parse_permissions(json_text: &str) -> Result<PermissionSet, CoreError> {
    let names: Vec<String> = serde_json::from_str(json_text).map_err(|e| {
        CoreError::Internal(format!("stored role permissions are not a JSON list: {e}"))
    })?;
    PermissionSet::parse(names.iter().map(String::as_str)).map_err(CoreError::Internal)
}

/// The surface of a request the CLI makes.
pub fn cli_meta() -> RequestMeta {
    RequestMeta::new(Surface::Cli, crate::now_ms())
}
