//! Members, invitations and teams, with the organization's rules: seat
//! limit, allowed email domains, nobody grants above their own, the last
//! owner stays, pending invitees join teams only once they accept.

use serde::Deserialize;
use serde_json::json;
use switchboard_domain::{
    MembershipStatus, check_can_change_member, check_can_grant, check_email_domain,
    check_not_last_owner, check_seat_available, check_team_assignment, is_owner_equivalent,
    normalize_email, validate_name, validate_password,
};
use switchboard_storage::{
    self as storage, AccountRow, Conn, Db, InvitationRow, MembershipRow, RoleRow, TeamRow,
};
use utoipa::ToSchema;

use crate::access::ops;
use crate::accounts::parse_permissions;
use crate::audit::{AuditEntry, DirectEvent};
use crate::orgs::validate_description;
use crate::password::{hash_password, verify_password};
use crate::secret::{hash_secret, looks_like_secret, new_secret};
use crate::views::{CreatedInvitation, InvitationView, MemberView, Page, TeamView, split_page};
use crate::{Core, CoreError, Ctx, PageRequest, RequestMeta};

const MAX_TEAMS_PER_INVITATION: usize = 50;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    /// A role name (`admin`) or id.
    pub role: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    pub email: String,
    /// A role name or id; defaults to `member`.
    #[serde(default)]
    pub role: Option<String>,
    /// Teams the invitee joins on acceptance.
    #[serde(default)]
    pub team_ids: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    /// The invitation token from the invitation link.
    pub token: String,
    /// A new account's password, or the existing account's password to prove it is yours.
    pub password: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddTeamMember {
    /// The membership id (from the member list).
    pub membership_id: String,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct AcceptedInvitation {
    pub org_id: String,
    pub org_slug: String,
    pub membership_id: String,
    pub account_id: String,
}

async fn resolve_role(conn: &mut Conn, org_id: &str, role: &str) -> Result<RoleRow, CoreError> {
    if let Some(r) = storage::role_by_name(&mut *conn, org_id, role).await? {
        return Ok(r);
    }
    storage::role_by_id(&mut *conn, org_id, role)
        .await?
        .ok_or_else(|| {
            CoreError::invalid(
                "role",
                format!("no role named '{role}' in this organization"),
            )
        })
}

impl Core {
    async fn member_view(
        &self,
        conn: &mut Conn,
        m: storage::MemberView,
    ) -> Result<MemberView, CoreError> {
        let teams = storage::teams_of_member(&mut *conn, &m.id).await?;
        Ok(MemberView::new(m, teams))
    }

    pub async fn list_members(
        &self,
        ctx: Ctx<'_>,
        page: PageRequest,
    ) -> Result<Page<MemberView>, CoreError> {
        self.authorize(ctx, &ops::MEMBER_LIST, None).await?;
        let p = self.page(&page)?;
        let mut conn = self
            .db
            .pool()
            .acquire()
            .await
            .map_err(storage::StorageError::from)?;
        let rows = storage::list_members(&mut *conn, &ctx.principal.org_id, &p).await?;
        let (rows, more) = split_page(rows, p.limit);
        let mut items = Vec::new();
        for m in rows {
            items.push(self.member_view(&mut conn, m).await?);
        }
        Ok(Page::new(items, more, |v| v.id.clone()))
    }

    pub async fn get_member(&self, ctx: Ctx<'_>, id: &str) -> Result<MemberView, CoreError> {
        self.authorize(ctx, &ops::MEMBER_GET, Some(id)).await?;
        let mut conn = self
            .db
            .pool()
            .acquire()
            .await
            .map_err(storage::StorageError::from)?;
        let m = storage::member_by_id(&mut *conn, &ctx.principal.org_id, id)
            .await?
            .ok_or(CoreError::NotFound("member"))?;
        self.member_view(&mut conn, m).await
    }

    pub async fn change_member_role(
        &self,
        ctx: Ctx<'_>,
        id: &str,
        input: ChangeRole,
    ) -> Result<MemberView, CoreError> {
        let p = ctx.principal;
        let now = ctx.meta.now_ms;
        self.write(
            ctx,
            AuditEntry::new(
                &ops::MEMBER_CHANGE_ROLE,
                Some(id),
                json!({"role": input.role}),
            ),
            async |conn, _| {
                let target = storage::member_by_id(&mut *conn, &p.org_id, id)
                    .await?
                    .ok_or(CoreError::NotFound("member"))?;
                let role = resolve_role(conn, &p.org_id, &input.role).await?;
                let current = parse_permissions(&target.role_permissions)?;
                let new = parse_permissions(&role.permissions)?;
                check_can_change_member(
                    &p.permissions,
                    &target.email,
                    &target.role_name,
                    &current,
                )?;
                check_can_grant(&p.permissions, &role.name, &new)?;
                if target.status == "active"
                    && is_owner_equivalent(&current)
                    && !is_owner_equivalent(&new)
                {
                    let owners = storage::count_owners(&mut *conn, &p.org_id).await?;
                    check_not_last_owner(true, owners - 1, "demote")?;
                }
                storage::set_member_role(&mut *conn, &p.org_id, id, &role.id, now).await?;
                let updated = storage::member_by_id(&mut *conn, &p.org_id, id)
                    .await?
                    .ok_or(CoreError::NotFound("member"))?;
                self.member_view(conn, updated).await
            },
        )
        .await
    }

    /// Removes a member: their membership, team places and task assignments
    /// go, and every token they hold in this org is revoked at once.
    pub async fn remove_member(&self, ctx: Ctx<'_>, id: &str) -> Result<(), CoreError> {
        let p = ctx.principal;
        let now = ctx.meta.now_ms;
        self.write(
            ctx,
            AuditEntry::new(&ops::MEMBER_REMOVE, Some(id), json!({})),
            async |conn, entry| {
                let target = storage::member_by_id(&mut *conn, &p.org_id, id)
                    .await?
                    .ok_or(CoreError::NotFound("member"))?;
                entry.args = json!({"email": target.email});
                let current = parse_permissions(&target.role_permissions)?;
                check_can_change_member(
                    &p.permissions,
                    &target.email,
                    &target.role_name,
                    &current,
                )?;
                if target.status == "active" && is_owner_equivalent(&current) {
                    let owners = storage::count_owners(&mut *conn, &p.org_id).await?;
                    check_not_last_owner(true, owners - 1, "remove")?;
                }
                storage::delete_member(&mut *conn, &p.org_id, id).await?;
                storage::revoke_tokens_of_member(&mut *conn, &p.org_id, &target.account_id, now)
                    .await?;
                storage::revoke_oauth_grants(
                    &mut *conn,
                    storage::GrantFilter::MemberInOrg {
                        org_id: &p.org_id,
                        account_id: &target.account_id,
                    },
                    now,
                )
                .await?;
                Ok(())
            },
        )
        .await
    }

    pub async fn create_invitation(
        &self,
        ctx: Ctx<'_>,
        input: CreateInvitation,
    ) -> Result<CreatedInvitation, CoreError> {
        let p = ctx.principal;
        let now = ctx.meta.now_ms;
        let id = storage::new_id();
        let args = json!({"email": input.email, "role": input.role, "team_ids": input.team_ids});
        let token = new_secret();
        let row = self
            .write(ctx, AuditEntry::new(&ops::INVITATION_CREATE, Some(&id), args), async |conn, _| {
                let email = normalize_email("email", &input.email)?;
                let org = storage::org_by_id(&mut *conn, &p.org_id)
                    .await?
                    .ok_or(CoreError::NotFound("organization"))?;
                let allowed: Vec<String> = serde_json::from_str(&org.allowed_domains).unwrap_or_default();
                check_email_domain(&email, &allowed)?;
                let role = resolve_role(conn, &p.org_id, input.role.as_deref().unwrap_or("member")).await?;
                check_can_grant(&p.permissions, &role.name, &parse_permissions(&role.permissions)?)?;
                if input.team_ids.len() > MAX_TEAMS_PER_INVITATION {
                    return Err(CoreError::invalid("team_ids", format!("at most {MAX_TEAMS_PER_INVITATION} teams")));
                }
                for t in &input.team_ids {
                    if storage::team_by_id(&mut *conn, &p.org_id, t).await?.is_none() {
                        return Err(CoreError::invalid("team_ids", format!("no team with id '{t}' in this organization")));
                    }
                }
                if let Some(existing) = storage::member_by_email(&mut *conn, &p.org_id, &email).await? {
                    if existing.status == "active" {
                        return Err(CoreError::conflict("already_member", format!("{email} is already a member of this organization")));
                    }
                    if storage::pending_invitation_for(&mut *conn, &p.org_id, &email, now).await?.is_some() {
                        return Err(CoreError::conflict(
                            "already_invited",
                            format!("{email} already has a pending invitation: revoke it to send a new one"),
                        ));
                    }
                    // A stale (expired or revoked) invitation left an invited membership: reuse it below.
                    storage::delete_member(&mut *conn, &p.org_id, &existing.id).await?;
                }
                let seats = storage::seats_taken(&mut *conn, &p.org_id, now).await?;
                check_seat_available(org.seat_limit, seats)?;
                let account_id = match storage::account_by_email(&mut *conn, &email).await? {
                    Some(a) => a.id,
                    None => {
                        let a = AccountRow {
                            id: storage::new_id(),
                            display_name: email.split('@').next().unwrap_or(&email).to_owned(),
                            email: email.clone(),
                            password_hash: None,
                            created_at: now,
                            updated_at: now,
                        };
                        storage::insert_account(&mut *conn, &a).await?;
                        a.id
                    }
                };
                let membership_id = storage::new_id();
                storage::insert_membership(
                    &mut *conn,
                    &MembershipRow {
                        id: membership_id.clone(),
                        org_id: p.org_id.clone(),
                        account_id,
                        role_id: role.id.clone(),
                        status: MembershipStatus::Invited.as_str().into(),
                        created_at: now,
                        updated_at: now,
                    },
                )
                .await?;
                let row = InvitationRow {
                    id: id.clone(),
                    org_id: p.org_id.clone(),
                    membership_id: Some(membership_id),
                    email,
                    role_id: Some(role.id),
                    team_ids: json!(input.team_ids).to_string(),
                    token_hash: hash_secret(&token),
                    invited_by: Some(p.account_id.clone()),
                    created_at: now,
                    expires_at: now + self.config.invitation_ttl_ms,
                    accepted_at: None,
                    revoked_at: None,
                };
                storage::insert_invitation(&mut *conn, &row).await?;
                Ok(row)
            })
            .await?;
        Ok(CreatedInvitation {
            invitation: InvitationView::new(row, now),
            accept_url: format!(
                "{}/invite/{token}",
                self.config.public_url.trim_end_matches('/')
            ),
            invitation_token: token,
        })
    }

    pub async fn list_invitations(
        &self,
        ctx: Ctx<'_>,
        page: PageRequest,
    ) -> Result<Page<InvitationView>, CoreError> {
        self.authorize(ctx, &ops::INVITATION_LIST, None).await?;
        let p = self.page(&page)?;
        let rows = storage::list_invitations(self.db.pool(), &ctx.principal.org_id, &p).await?;
        let now = ctx.meta.now_ms;
        Ok(Page::from_rows(
            rows,
            p.limit,
            |r| r.id.clone(),
            |r| InvitationView::new(r, now),
        ))
    }

    pub async fn revoke_invitation(&self, ctx: Ctx<'_>, id: &str) -> Result<(), CoreError> {
        let p = ctx.principal;
        let now = ctx.meta.now_ms;
        self.write(
            ctx,
            AuditEntry::new(&ops::INVITATION_REVOKE, Some(id), json!({})),
            async |conn, _| {
                let inv = storage::invitation_by_id(&mut *conn, &p.org_id, id)
                    .await?
                    .ok_or(CoreError::NotFound("invitation"))?;
                if !storage::mark_invitation_revoked(&mut *conn, &p.org_id, id, now).await? {
                    return Err(CoreError::conflict(
                        "invitation_closed",
                        "this invitation was already accepted or revoked",
                    ));
                }
                if let Some(m) = &inv.membership_id
                    && let Some(member) = storage::member_by_id(&mut *conn, &p.org_id, m).await?
                    && member.status == "invited"
                {
                    storage::delete_member(&mut *conn, &p.org_id, m).await?;
                }
                Ok(())
            },
        )
        .await
    }

    /// Accepts an invitation with its token. A new account sets its password
    /// here; an existing account proves itself with its password.
    pub async fn accept_invitation(
        &self,
        input: AcceptInvitation,
        meta: &RequestMeta,
    ) -> Result<AcceptedInvitation, CoreError> {
        let now = meta.now_ms;
        let gone = || {
            CoreError::NotFound(
                "invitation (the link may have expired, been revoked or used already)",
            )
        };
        if !looks_like_secret(&input.token) {
            return Err(gone());
        }
        let inv = storage::invitation_by_token_hash(self.db.pool(), &hash_secret(&input.token))
            .await?
            .ok_or_else(gone)?;
        if inv.accepted_at.is_some() || inv.revoked_at.is_some() || inv.expires_at <= now {
            return Err(gone());
        }
        let account = storage::account_by_email(self.db.pool(), &inv.email)
            .await?
            .ok_or_else(gone)?;
        let new_hash = match &account.password_hash {
            Some(_) => {
                // Accepting as an existing account is signing in as it: the
                // same throttle (per email and address, per email, per
                // address), so an inviter cannot guess the password here.
                let attempt = self.reserve_sign_in(&inv.email, meta).await?;
                if !verify_password(input.password.clone(), account.password_hash.clone()).await? {
                    tracing::warn!(email = %inv.email, "failed sign-in while accepting an invitation");
                    return Err(CoreError::Unauthenticated(
                        "the password is wrong: if you already have an account, accept with its password".into(),
                    ));
                }
                self.release_sign_in(attempt).await;
                None
            }
            None => {
                validate_password("password", &input.password)?;
                Some(hash_password(input.password.clone()).await?)
            }
        };
        let display_name = input
            .display_name
            .as_deref()
            .map(|n| validate_name("display_name", n, 200))
            .transpose()?;
        let mut tx = self.db.begin_write().await?;
        let org = storage::org_by_id(&mut *tx, &inv.org_id)
            .await?
            .ok_or_else(gone)?;
        let allowed: Vec<String> = serde_json::from_str(&org.allowed_domains).unwrap_or_default();
        check_email_domain(&inv.email, &allowed)?;
        if !storage::mark_invitation_accepted(&mut *tx, &inv.id, now).await? {
            return Err(gone());
        }
        let membership_id = inv.membership_id.clone().ok_or_else(gone)?;
        if !storage::activate_member(&mut *tx, &membership_id, now).await? {
            return Err(gone());
        }
        if let Some(h) = &new_hash {
            storage::set_password(&mut *tx, &account.id, h, now).await?;
        }
        if let Some(n) = &display_name {
            storage::set_display_name(&mut *tx, &account.id, n, now).await?;
        }
        let team_ids: Vec<String> = serde_json::from_str(&inv.team_ids).unwrap_or_default();
        for t in &team_ids {
            // A team deleted since the invitation is skipped.
            if storage::team_by_id(&mut *tx, &inv.org_id, t)
                .await?
                .is_some()
            {
                storage::add_team_member(&mut *tx, t, &membership_id, now).await?;
            }
        }
        DirectEvent {
            org_id: &inv.org_id,
            actor_id: Some(&account.id),
            actor: &account.email,
            action: "invitation.accept",
            target: Some(&inv.id),
            args: json!({"team_ids": team_ids}),
        }
        .insert(&mut tx, meta)
        .await?;
        Db::commit(tx).await?;
        Ok(AcceptedInvitation {
            org_id: org.id,
            org_slug: org.slug,
            membership_id,
            account_id: account.id,
        })
    }

    pub async fn list_teams(
        &self,
        ctx: Ctx<'_>,
        page: PageRequest,
    ) -> Result<Page<TeamView>, CoreError> {
        self.authorize(ctx, &ops::TEAM_LIST, None).await?;
        let p = self.page(&page)?;
        let rows = storage::list_teams(self.db.pool(), &ctx.principal.org_id, &p).await?;
        Ok(Page::from_rows(
            rows,
            p.limit,
            |r| r.id.clone(),
            TeamView::from,
        ))
    }

    pub async fn create_team(
        &self,
        ctx: Ctx<'_>,
        input: CreateTeam,
    ) -> Result<TeamView, CoreError> {
        let p = ctx.principal;
        let id = storage::new_id();
        let now = ctx.meta.now_ms;
        self.write(
            ctx,
            AuditEntry::new(&ops::TEAM_CREATE, Some(&id), json!({"name": input.name})),
            async |conn, _| {
                let row = TeamRow {
                    id: id.clone(),
                    org_id: p.org_id.clone(),
                    name: validate_name("name", &input.name, 100)?,
                    description: validate_description(&input.description)?,
                    created_at: now,
                };
                storage::insert_team(&mut *conn, &row).await.map_err(|e| {
                    if e.is_unique_violation() {
                        CoreError::conflict(
                            "team_name_taken",
                            format!("a team named '{}' already exists", row.name),
                        )
                    } else {
                        e.into()
                    }
                })?;
                Ok(TeamView::from(row))
            },
        )
        .await
    }

    pub async fn delete_team(&self, ctx: Ctx<'_>, id: &str) -> Result<(), CoreError> {
        let p = ctx.principal;
        self.write(
            ctx,
            AuditEntry::new(&ops::TEAM_DELETE, Some(id), json!({})),
            async |conn, _| {
                if !storage::delete_team(&mut *conn, &p.org_id, id).await? {
                    return Err(CoreError::NotFound("team"));
                }
                Ok(())
            },
        )
        .await
    }

    pub async fn team_members(
        &self,
        ctx: Ctx<'_>,
        team_id: &str,
    ) -> Result<Vec<MemberView>, CoreError> {
        self.authorize(ctx, &ops::TEAM_MEMBERS, Some(team_id))
            .await?;
        let mut conn = self
            .db
            .pool()
            .acquire()
            .await
            .map_err(storage::StorageError::from)?;
        storage::team_by_id(&mut *conn, &ctx.principal.org_id, team_id)
            .await?
            .ok_or(CoreError::NotFound("team"))?;
        let rows = storage::team_members(&mut *conn, &ctx.principal.org_id, team_id).await?;
        let mut out = Vec::new();
        for m in rows {
            out.push(self.member_view(&mut conn, m).await?);
        }
        Ok(out)
    }

    pub async fn add_team_member(
        &self,
        ctx: Ctx<'_>,
        team_id: &str,
        input: AddTeamMember,
    ) -> Result<(), CoreError> {
        let p = ctx.principal;
        let now = ctx.meta.now_ms;
        let args = json!({"membership_id": input.membership_id});
        self.write(
            ctx,
            AuditEntry::new(&ops::TEAM_ADD_MEMBER, Some(team_id), args),
            async |conn, _| {
                let team = storage::team_by_id(&mut *conn, &p.org_id, team_id)
                    .await?
                    .ok_or(CoreError::NotFound("team"))?;
                let member = storage::member_by_id(&mut *conn, &p.org_id, &input.membership_id)
                    .await?
                    .ok_or(CoreError::NotFound("member"))?;
                let status = MembershipStatus::parse(&member.status).ok_or_else(|| {
                    CoreError::Internal(format!("unknown membership status {}", member.status))
                })?;
                check_team_assignment(status, &member.email)?;
                if !storage::add_team_member(&mut *conn, &team.id, &member.id, now).await? {
                    return Err(CoreError::conflict(
                        "already_in_team",
                        format!("{} is already in the team '{}'", member.email, team.name),
                    ));
                }
                Ok(())
            },
        )
        .await
    }

    pub async fn remove_team_member(
        &self,
        ctx: Ctx<'_>,
        team_id: &str,
        membership_id: &str,
    ) -> Result<(), CoreError> {
        let p = ctx.principal;
        let args = json!({"membership_id": membership_id});
        self.write(
            ctx,
            AuditEntry::new(&ops::TEAM_REMOVE_MEMBER, Some(team_id), args),
            async |conn, _| {
                storage::team_by_id(&mut *conn, &p.org_id, team_id)
                    .await?
                    .ok_or(CoreError::NotFound("team"))?;
                if !storage::remove_team_member(&mut *conn, team_id, membership_id).await? {
                    return Err(CoreError::NotFound("team member"));
                }
                Ok(())
            },
        )
        .await
    }
}
