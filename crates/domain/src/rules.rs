//! Organization rules. Each check returns a [`RuleViolation`] whose message
//! states the rule and what to do about it.

use std::fmt;

use crate::{Permission, PermissionSet};

/// A refusal by a domain rule: a stable machine code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RuleViolation {
    pub code: &'static str,
    pub message: String,
}

impl RuleViolation {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        RuleViolation {
            code,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipStatus {
    Active,
    Invited,
}

impl MembershipStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MembershipStatus::Active => "active",
            MembershipStatus::Invited => "invited",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(MembershipStatus::Active),
            "invited" => Some(MembershipStatus::Invited),
            _ => None,
        }
    }
}

impl fmt::Display for MembershipStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Seats are taken by active members and by pending invitations: an
/// invitation reserves its seat so accepting it can never overrun the limit.
pub fn check_seat_available(
    seat_limit: Option<i64>,
    seats_taken: i64,
) -> Result<(), RuleViolation> {
    match seat_limit {
        Some(limit) if seats_taken >= limit => Err(RuleViolation::new(
            "seat_limit_reached",
            format!(
                "seat limit of {limit} reached: active members and pending invitations each take a seat ({seats_taken} taken); remove a member, revoke a pending invitation, or raise the limit"
            ),
        )),
        _ => Ok(()),
    }
}

/// An empty allow-list admits every domain.
pub fn check_email_domain(email: &str, allowed_domains: &[String]) -> Result<(), RuleViolation> {
    if allowed_domains.is_empty() {
        return Ok(());
    }
    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    if allowed_domains
        .iter()
        .any(|d| d.eq_ignore_ascii_case(domain))
    {
        return Ok(());
    }
    Err(RuleViolation::new(
        "email_domain_not_allowed",
        format!(
            "the email domain '{domain}' is not allowed in this organization (allowed: {}); an admin can add it to the allowed email domains",
            allowed_domains.join(", ")
        ),
    ))
}

pub fn check_team_assignment(status: MembershipStatus, email: &str) -> Result<(), RuleViolation> {
    match status {
        MembershipStatus::Active => Ok(()),
        MembershipStatus::Invited => Err(RuleViolation::new(
            "membership_pending",
            format!(
                "{email} has not accepted their invitation yet, so they cannot be added to a team; add them once they have joined, or name the team in the invitation so they join it on acceptance"
            ),
        )),
    }
}

/// Nobody grants a role or permission above their own.
pub fn check_can_grant(
    actor: &PermissionSet,
    role_name: &str,
    granted: &PermissionSet,
) -> Result<(), RuleViolation> {
    let above = granted.missing_from(actor);
    if above.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = above.iter().map(|p| p.as_str()).collect();
    Err(RuleViolation::new(
        "role_above_own",
        format!(
            "you cannot grant the role '{role_name}': it includes permissions you do not have ({}); nobody grants a role above their own",
            names.join(", ")
        ),
    ))
}

/// Changing or removing someone requires holding at least their permissions
/// (so admins cannot remove or demote owners).
pub fn check_can_change_member(
    actor: &PermissionSet,
    target_email: &str,
    target_role: &str,
    target: &PermissionSet,
) -> Result<(), RuleViolation> {
    let above = target.missing_from(actor);
    if above.is_empty() {
        return Ok(());
    }
    Err(RuleViolation::new(
        "member_above_own",
        format!(
            "you cannot change {target_email}: their role '{target_role}' has permissions you do not have ({}); ask an owner",
            above
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

/// An organization keeps at least one active owner.
pub fn check_not_last_owner(
    target_is_owner: bool,
    owners_remaining_after: i64,
    action: &str,
) -> Result<(), RuleViolation> {
    if target_is_owner && owners_remaining_after < 1 {
        return Err(RuleViolation::new(
            "last_owner",
            format!(
                "cannot {action} the last owner of the organization: make another member an owner first"
            ),
        ));
    }
    Ok(())
}

/// Permissions whose holders count as owners for the last-owner rule.
pub fn is_owner_equivalent(perms: &PermissionSet) -> bool {
    perms.contains(Permission::McpManage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BuiltinRole;

    #[test]
    fn seat_limit_states_the_rule() {
        assert!(check_seat_available(Some(10), 9).is_ok());
        assert!(check_seat_available(None, 10_000).is_ok());
        let err = check_seat_available(Some(10), 10).unwrap_err();
        assert_eq!(err.code, "seat_limit_reached");
        assert!(
            err.message.starts_with("seat limit of 10 reached"),
            "{}",
            err.message
        );
        assert!(err.message.contains("raise the limit"));
    }

    #[test]
    fn domain_allow_list() {
        let allowed = vec!["example.com".to_owned()];
        assert!(check_email_domain("a@example.com", &allowed).is_ok());
        assert!(check_email_domain("a@EXAMPLE.com", &allowed).is_ok());
        assert!(check_email_domain("a@anything.org", &[]).is_ok());
        let err = check_email_domain("a@evil.com", &allowed).unwrap_err();
        assert!(
            err.message.contains("'evil.com' is not allowed"),
            "{}",
            err.message
        );
        assert!(err.message.contains("an admin can add it"));
    }

    #[test]
    fn pending_invitee_cannot_join_a_team() {
        assert!(check_team_assignment(MembershipStatus::Active, "a@x.io").is_ok());
        let err = check_team_assignment(MembershipStatus::Invited, "a@x.io").unwrap_err();
        assert!(
            err.message
                .contains("a@x.io has not accepted their invitation yet")
        );
    }

    #[test]
    fn nobody_grants_above_their_own() {
        let admin = BuiltinRole::Admin.permissions();
        assert!(check_can_grant(&admin, "member", &BuiltinRole::Member.permissions()).is_ok());
        assert!(check_can_grant(&admin, "admin", &admin).is_ok());
        let err = check_can_grant(&admin, "owner", &BuiltinRole::Owner.permissions()).unwrap_err();
        assert!(err.message.contains("mcp.manage"), "{}", err.message);
        let owner = BuiltinRole::Owner.permissions();
        assert!(check_can_change_member(&admin, "o@x.io", "owner", &owner).is_err());
        assert!(check_can_change_member(&owner, "a@x.io", "admin", &admin).is_ok());
    }

    #[test]
    fn last_owner_is_kept() {
        assert!(check_not_last_owner(true, 1, "remove").is_ok());
        assert!(check_not_last_owner(false, 0, "remove").is_ok());
        let err = check_not_last_owner(true, 0, "demote").unwrap_err();
        assert!(err.message.contains("cannot demote the last owner"));
    }
}
