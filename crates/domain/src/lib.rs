//! The domain rules of Switchboard: permissions, roles, token scopes, task
//! workflow, and the organization rules (seat limit, allowed email domains,
//! who may grant what).
//!
//! Architecture Invariant: this crate is pure. It does no I/O, knows no
//! database, no HTTP and no clock; callers pass the current time in. Every
//! refusal is a [`RuleViolation`] whose message states the rule in words an
//! admin (or an agent relaying it) can act on.

mod permission;
mod policy;
mod rules;
mod scope;
mod validate;
mod work;

pub use permission::{BuiltinRole, Permission, PermissionSet};
pub use policy::McpPolicy;
pub use rules::{
    MembershipStatus, RuleViolation, check_can_change_member, check_can_grant, check_email_domain,
    check_not_last_owner, check_seat_available, check_team_assignment, is_owner_equivalent,
};
pub use scope::{Environment, Scope, TokenKind, parse_scopes};
pub use validate::{
    FieldError, normalize_domain, normalize_email, validate_name, validate_password, validate_slug,
};
pub use work::{Priority, TaskStatus};
