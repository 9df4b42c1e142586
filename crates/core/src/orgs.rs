//! The organization's settings (name, seat limit, allowed email domains,
//! feature flags, MCP policy) and its roles.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard_domain::{
    BuiltinRole, PermissionSet, RuleViolation, check_can_grant, normalize_domain, validate_name,
};
use switchboard_storage::{self as storage, RoleRow};
use utoipa::ToSchema;

use crate::access::ops;
use crate::accounts::parse_permissions;
use crate::audit::AuditEntry;
use crate::views::{OrgView, RoleView};
use crate::{Core, CoreError, Ctx};

/// Distinguishes an absent field from an explicit `null`.
pub(crate) fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

const MAX_DOMAINS: usize = 100;
const MAX_FLAGS: usize = 64;

/// Changes to an organization; absent fields are left as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrg {
    pub name: Option<String>,
    /// A number of seats, or `null` for no limit. Owners only.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub seat_limit: Option<Option<i64>>,
    /// Replaces the list; an empty list admits every domain.
    pub allowed_email_domains: Option<Vec<String>>,
    /// Merged into the flags; a `null` value removes a flag. Owners only.
    pub feature_flags: Option<Map<String, Value>>,
    /// Owners only, and never through a bearer token.
    pub mcp_policy: Option<UpdateMcpPolicy>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMcpPolicy {
    pub mcp_enabled: Option<bool>,
    pub allow_production: Option<bool>,
    pub allow_write: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub permissions: Vec<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRole {
    pub name: Option<String>,
    pub description: Option<String>,
    pub permissions: Option<Vec<String>>,
}

fn bool_i64(b: bool) -> i64 {
    i64::from(b)
}

impl Core {
    pub async fn get_org(&self, ctx: Ctx<'_>) -> Result<OrgView, CoreError> {
        self.authorize(ctx, &ops::ORG_GET, None).await?;
        let org = storage::org_by_id(self.db.pool(), &ctx.principal.org_id)
            .await?
            .ok_or(CoreError::NotFound("organization"))?;
        let seats = storage::seats_taken(self.db.pool(), &org.id, ctx.meta.now_ms).await?;
        Ok(OrgView::new(org, seats))
    }

    pub async fn update_org(&self, ctx: Ctx<'_>, input: UpdateOrg) -> Result<OrgView, CoreError> {
        let p = ctx.principal;
        let org_id = p.org_id.clone();
        let args = json!({
            "name": input.name,
            "seat_limit": input.seat_limit,
            "allowed_email_domains": input.allowed_email_domains,
            "feature_flags": input.feature_flags,
            "mcp_policy": input.mcp_policy.as_ref().map(|m| json!({
                "mcp_enabled": m.mcp_enabled, "allow_production": m.allow_production, "allow_write": m.allow_write
            })),
        });
        let now = ctx.meta.now_ms;
        // The seat limit, flags and MCP policy are one operation, the name
        // and domains another; a change of both needs both.
        let policy = input.seat_limit.is_some()
            || input.feature_flags.is_some()
            || input.mcp_policy.is_some();
        let settings = input.name.is_some() || input.allowed_email_domains.is_some();
        let op = if policy {
            &ops::ORG_UPDATE_POLICY
        } else {
            &ops::ORG_UPDATE
        };
        if policy && settings {
            self.authorize(ctx, &ops::ORG_UPDATE, Some(&org_id)).await?;
        }
        let (org, seats) = self
            .write(ctx, AuditEntry::new(op, Some(&org_id), args), async |conn, _| {
                let mut org = storage::org_by_id(&mut *conn, &org_id)
                    .await?
                    .ok_or(CoreError::NotFound("organization"))?;
                if let Some(name) = &input.name {
                    org.name = validate_name("name", name, 200)?;
                }
                let seats = storage::seats_taken(&mut *conn, &org_id, now).await?;
                if let Some(limit) = input.seat_limit {
                    if let Some(n) = limit {
                        if !(1..=1_000_000).contains(&n) {
                            return Err(CoreError::invalid("seat_limit", "must be between 1 and 1000000, or null for no limit"));
                        }
                        if n < seats {
                            return Err(CoreError::Rule(RuleViolation::new(
                                "seat_limit_below_usage",
                                format!("a seat limit of {n} is below the {seats} seats already taken by members and pending invitations: remove members or revoke invitations first"),
                            )));
                        }
                    }
                    org.seat_limit = limit;
                }
                if let Some(domains) = &input.allowed_email_domains {
                    if domains.len() > MAX_DOMAINS {
                        return Err(CoreError::invalid("allowed_email_domains", format!("at most {MAX_DOMAINS} domains")));
                    }
                    let mut norm = Vec::new();
                    for d in domains {
                        let d = normalize_domain("allowed_email_domains", d)?;
                        if !norm.contains(&d) {
                            norm.push(d);
                        }
                    }
                    org.allowed_domains = json!(norm).to_string();
                }
                if let Some(flags) = &input.feature_flags {
                    let mut current: Map<String, Value> = serde_json::from_str(&org.feature_flags).unwrap_or_default();
                    for (k, v) in flags {
                        let valid_name = !k.is_empty() && k.len() <= 64 && k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                        if !valid_name {
                            return Err(CoreError::invalid("feature_flags", format!("flag name '{k}' must be 1 to 64 characters from a-z, 0-9 and '_'")));
                        }
                        match v {
                            Value::Null => {
                                current.remove(k);
                            }
                            Value::Bool(_) => {
                                current.insert(k.clone(), v.clone());
                            }
                            _ => return Err(CoreError::invalid("feature_flags", format!("flag '{k}' must be true, false or null"))),
                        }
                    }
                    if current.len() > MAX_FLAGS {
                        return Err(CoreError::invalid("feature_flags", format!("at most {MAX_FLAGS} flags")));
                    }
                    org.feature_flags = Value::Object(current).to_string();
                }
                if let Some(policy) = &input.mcp_policy {
                    if let Some(b) = policy.mcp_enabled {
                        org.mcp_enabled = bool_i64(b);
                    }
                    if let Some(b) = policy.allow_production {
                        org.allow_production = bool_i64(b);
                    }
                    if let Some(b) = policy.allow_write {
                        org.allow_write = bool_i64(b);
                    }
                }
                org.updated_at = now;
                storage::update_org(&mut *conn, &org).await?;
                Ok((org, seats))
            })
            .await?;
        Ok(OrgView::new(org, seats))
    }

    pub async fn list_roles(&self, ctx: Ctx<'_>) -> Result<Vec<RoleView>, CoreError> {
        self.authorize(ctx, &ops::ROLE_LIST, None).await?;
        Ok(storage::roles_of_org(self.db.pool(), &ctx.principal.org_id)
            .await?
            .into_iter()
            .map(RoleView::from)
            .collect())
    }

    pub async fn create_role(
        &self,
        ctx: Ctx<'_>,
        input: CreateRole,
    ) -> Result<RoleView, CoreError> {
        let p = ctx.principal;
        let id = storage::new_id();
        let args = json!({"name": input.name, "permissions": input.permissions});
        let now = ctx.meta.now_ms;
        self.write(
            ctx,
            AuditEntry::new(&ops::ROLE_CREATE, Some(&id), args),
            async |conn, _| {
                let name = validate_role_name(&input.name)?;
                let perms = PermissionSet::parse(input.permissions.iter().map(String::as_str))
                    .map_err(|m| CoreError::invalid("permissions", m))?;
                check_can_grant(&p.permissions, &name, &perms)?;
                let row = RoleRow {
                    id: id.clone(),
                    org_id: p.org_id.clone(),
                    name,
                    description: validate_description(&input.description)?,
                    builtin: 0,
                    permissions: json!(perms.names()).to_string(),
                    created_at: now,
                    updated_at: now,
                };
                storage::insert_role(&mut *conn, &row).await.map_err(|e| {
                    if e.is_unique_violation() {
                        CoreError::conflict(
                            "role_name_taken",
                            format!("a role named '{}' already exists", row.name),
                        )
                    } else {
                        e.into()
                    }
                })?;
                Ok(RoleView::from(row))
            },
        )
        .await
    }

    pub async fn update_role(
        &self,
        ctx: Ctx<'_>,
        role_id: &str,
        input: UpdateRole,
    ) -> Result<RoleView, CoreError> {
        let p = ctx.principal;
        let args = json!({"name": input.name, "permissions": input.permissions});
        let now = ctx.meta.now_ms;
        self.write(ctx, AuditEntry::new(&ops::ROLE_UPDATE, Some(role_id), args), async |conn, _| {
            let mut role = storage::role_by_id(&mut *conn, &p.org_id, role_id)
                .await?
                .ok_or(CoreError::NotFound("role"))?;
            if role.builtin != 0 {
                return Err(CoreError::Rule(RuleViolation::new(
                    "builtin_role",
                    format!("the built-in role '{}' cannot be changed: create a custom role instead", role.name),
                )));
            }
            let current = parse_permissions(&role.permissions)?;
            check_can_grant(&p.permissions, &role.name, &current)?;
            if let Some(name) = &input.name {
                role.name = validate_role_name(name)?;
            }
            if let Some(d) = &input.description {
                role.description = validate_description(d)?;
            }
            if let Some(perms) = &input.permissions {
                let perms = PermissionSet::parse(perms.iter().map(String::as_str))
                    .map_err(|m| CoreError::invalid("permissions", m))?;
                check_can_grant(&p.permissions, &role.name, &perms)?;
                role.permissions = json!(perms.names()).to_string();
            }
            role.updated_at = now;
            storage::update_role(&mut *conn, &role).await.map_err(|e| {
                if e.is_unique_violation() {
                    CoreError::conflict("role_name_taken", format!("a role named '{}' already exists", role.name))
                } else {
                    e.into()
                }
            })?;
            Ok(RoleView::from(role))
        })
        .await
    }

    pub async fn delete_role(&self, ctx: Ctx<'_>, role_id: &str) -> Result<(), CoreError> {
        let p = ctx.principal;
        self.write(ctx, AuditEntry::new(&ops::ROLE_DELETE, Some(role_id), json!({})), async |conn, _| {
            let role = storage::role_by_id(&mut *conn, &p.org_id, role_id)
                .await?
                .ok_or(CoreError::NotFound("role"))?;
            if role.builtin != 0 {
                return Err(CoreError::Rule(RuleViolation::new(
                    "builtin_role",
                    format!("the built-in role '{}' cannot be deleted", role.name),
                )));
            }
            check_can_grant(&p.permissions, &role.name, &parse_permissions(&role.permissions)?)?;
            let used = storage::role_usage(&mut *conn, &p.org_id, role_id).await?;
            if used > 0 {
                return Err(CoreError::Rule(RuleViolation::new(
                    "role_in_use",
                    format!("the role '{}' is held by {used} members or pending invitations: give them another role first", role.name),
                )));
            }
            storage::delete_role(&mut *conn, &p.org_id, role_id).await?;
            Ok(())
        })
        .await
    }

    /// Re-applies the built-in permission sets to this org's built-in roles
    /// (after an upgrade adds a permission, say). Missing built-ins are created.
    pub async fn sync_roles(&self, ctx: Ctx<'_>) -> Result<Vec<RoleView>, CoreError> {
        let p = ctx.principal;
        let now = ctx.meta.now_ms;
        self.write(
            ctx,
            AuditEntry::new(&ops::ROLES_SYNC, None, json!({})),
            async |conn, entry| {
                let mut changed = Vec::new();
                for builtin in BuiltinRole::ALL {
                    let perms = json!(builtin.permissions().names()).to_string();
                    match storage::role_by_name(&mut *conn, &p.org_id, builtin.as_str()).await? {
                        Some(mut r) if r.builtin != 0 => {
                            if r.permissions != perms {
                                r.permissions = perms;
                                r.updated_at = now;
                                storage::update_role(&mut *conn, &r).await?;
                                changed.push(builtin.as_str());
                            }
                        }
                        Some(_) => {
                            return Err(CoreError::conflict(
                                "role_name_taken",
                                format!(
                                    "a custom role is named '{}': rename it, then sync again",
                                    builtin.as_str()
                                ),
                            ));
                        }
                        None => {
                            storage::insert_role(
                                &mut *conn,
                                &RoleRow {
                                    id: storage::new_id(),
                                    org_id: p.org_id.clone(),
                                    name: builtin.as_str().into(),
                                    description: format!("Built-in {} role", builtin.as_str()),
                                    builtin: 1,
                                    permissions: perms,
                                    created_at: now,
                                    updated_at: now,
                                },
                            )
                            .await?;
                            changed.push(builtin.as_str());
                        }
                    }
                }
                entry.args = json!({"changed": changed});
                Ok(storage::roles_of_org(&mut *conn, &p.org_id)
                    .await?
                    .into_iter()
                    .map(RoleView::from)
                    .collect())
            },
        )
        .await
    }
}

fn validate_role_name(name: &str) -> Result<String, CoreError> {
    let n = validate_name("name", name, 64)?;
    if BuiltinRole::from_name(&n).is_some() {
        return Err(CoreError::invalid(
            "name",
            format!("'{n}' is a built-in role name: choose another"),
        ));
    }
    Ok(n)
}

pub(crate) fn validate_description(d: &str) -> Result<String, CoreError> {
    let d = d.trim();
    if d.chars().count() > 2000 {
        return Err(CoreError::invalid(
            "description",
            "must be at most 2000 characters",
        ));
    }
    Ok(d.to_owned())
}
