//! The access rules against the design's tables, cell by cell.

use std::collections::BTreeSet;

use switchboard_domain::{BuiltinRole, Environment, McpPolicy, Permission, Scope, TokenKind};

use super::*;
use crate::Principal;

fn principal(role: Option<BuiltinRole>, credential: Credential) -> Principal {
    Principal {
        account_id: "a".into(),
        email: "a@x.io".into(),
        display_name: "A".into(),
        org_id: "o".into(),
        org_slug: "o".into(),
        org_name: "O".into(),
        membership_id: "m".into(),
        role_name: role.map(|r| r.as_str().to_owned()),
        permissions: match role {
            Some(r) => r.permissions(),
            None => Principal::org_token_permissions(),
        },
        credential,
        mcp_policy: Some(McpPolicy::default()),
        access_version: None,
    }
}

fn token(kind: TokenKind, scopes: &[Scope]) -> Credential {
    Credential::Token {
        id: "t".into(),
        kind,
        scopes: scopes.iter().copied().collect(),
        environment: None,
        resource: None,
    }
}

fn session() -> Credential {
    Credential::Session {
        session_id: "s".into(),
        csrf_token: "c".into(),
    }
}

fn on(surface: Surface, p: &Principal) -> Facts<'static> {
    Facts::of(p, surface)
}

#[test]
fn the_role_is_checked_before_the_scope() {
    let viewer = principal(
        Some(BuiltinRole::Viewer),
        token(TokenKind::Personal, &[Scope::WriteTasks]),
    );
    let d = decide(&viewer, &ops::TASK_UPDATE, &on(Surface::Api, &viewer));
    assert!(
        matches!(d, Decision::Deny(Refusal { code: RefusalCode::Role, ref message }) if message.contains("'viewer'")),
        "{d:?}"
    );
    let member = principal(
        Some(BuiltinRole::Member),
        token(TokenKind::Personal, &[Scope::ReadTasks]),
    );
    assert!(decide(&member, &ops::TASK_LIST, &on(Surface::Api, &member)).is_allowed());
    let d = decide(&member, &ops::TASK_UPDATE, &on(Surface::Api, &member));
    assert!(
        matches!(d, Decision::StepUp { ref scopes, .. } if scopes == &[Scope::WriteTasks]),
        "{d:?}"
    );
}

#[test]
fn interactive_operations_refuse_bearer_tokens() {
    let owner = principal(
        Some(BuiltinRole::Owner),
        token(TokenKind::Personal, &Scope::ALL),
    );
    for op in [
        ops::TOKEN_CREATE_PERSONAL,
        ops::TOKEN_LIST,
        ops::ORG_UPDATE_POLICY,
        ops::PASSWORD_CHANGE,
    ] {
        let d = decide(&owner, &op, &on(Surface::Api, &owner));
        assert!(
            matches!(
                d,
                Decision::Deny(Refusal {
                    code: RefusalCode::Interactive,
                    ..
                })
            ),
            "{}: {d:?}",
            op.id
        );
    }
    let signed_in = principal(Some(BuiltinRole::Owner), session());
    assert!(
        decide(
            &signed_in,
            &ops::TOKEN_CREATE_PERSONAL,
            &on(Surface::Api, &signed_in)
        )
        .is_allowed()
    );
    assert!(
        decide(
            &signed_in,
            &ops::ORG_UPDATE_POLICY,
            &on(Surface::Web, &signed_in)
        )
        .is_allowed()
    );
}

#[test]
fn an_unloaded_policy_denies_on_mcp_surfaces_only() {
    let mut p = principal(
        Some(BuiltinRole::Owner),
        token(TokenKind::Personal, &Scope::ALL),
    );
    p.mcp_policy = None;
    for surface in [Surface::Mcp, Surface::Rpc] {
        let d = decide(&p, &ops::MEMBER_LIST, &on(surface, &p));
        assert!(
            matches!(
                d,
                Decision::Deny(Refusal {
                    code: RefusalCode::PolicyUnknown,
                    ..
                })
            ),
            "{d:?}"
        );
    }
    assert!(decide(&p, &ops::MEMBER_LIST, &on(Surface::Api, &p)).is_allowed());
}

#[test]
fn the_mcp_policy_governs_mcp_surfaces() {
    let mut p = principal(
        Some(BuiltinRole::Owner),
        token(TokenKind::Personal, &Scope::ALL),
    );
    p.mcp_policy = Some(McpPolicy {
        enabled: true,
        allow_production: true,
        allow_write: false,
    });
    let d = decide(&p, &ops::TEAM_CREATE, &on(Surface::Mcp, &p));
    assert!(
        matches!(
            d,
            Decision::Deny(Refusal {
                code: RefusalCode::WritesDisabled,
                ..
            })
        ),
        "{d:?}"
    );
    assert!(decide(&p, &ops::TEAM_LIST, &on(Surface::Mcp, &p)).is_allowed());
    assert!(
        decide(&p, &ops::TEAM_CREATE, &on(Surface::Api, &p)).is_allowed(),
        "REST is not MCP"
    );
    p.mcp_policy = Some(McpPolicy {
        enabled: false,
        allow_production: true,
        allow_write: true,
    });
    let d = decide(&p, &ops::WHOAMI, &on(Surface::Rpc, &p));
    assert!(
        matches!(
            d,
            Decision::Deny(Refusal {
                code: RefusalCode::McpDisabled,
                ..
            })
        ),
        "{d:?}"
    );
}

#[test]
fn production_needs_the_policy_the_role_and_a_token_that_may() {
    let prod = ops::upstream_tool(true, true, false);
    let mut owner = principal(
        Some(BuiltinRole::Owner),
        token(TokenKind::Personal, &Scope::ALL),
    );
    owner.mcp_policy = Some(McpPolicy {
        enabled: true,
        allow_production: true,
        allow_write: true,
    });
    assert!(decide(&owner, &prod, &on(Surface::Mcp, &owner)).is_allowed());
    let admin = Principal {
        role_name: Some("admin".into()),
        permissions: BuiltinRole::Admin.permissions(),
        ..owner.clone()
    };
    let d = decide(&admin, &prod, &on(Surface::Mcp, &admin));
    assert!(
        matches!(d, Decision::Deny(ref r) if r.code == RefusalCode::Production && r.message.contains("production.access")),
        "{d:?}"
    );
    let mut sandboxed = owner.clone();
    if let Credential::Token { environment, .. } = &mut sandboxed.credential {
        *environment = Some(Environment::Sandbox);
    }
    let d = decide(&sandboxed, &prod, &on(Surface::Mcp, &sandboxed));
    assert!(
        matches!(d, Decision::Deny(ref r) if r.message.contains("sandbox")),
        "{d:?}"
    );
    owner.mcp_policy = Some(McpPolicy {
        enabled: true,
        allow_production: false,
        allow_write: true,
    });
    let d = decide(&owner, &prod, &on(Surface::Mcp, &owner));
    assert!(
        matches!(d, Decision::Deny(ref r) if r.message.contains("does not allow production")),
        "{d:?}"
    );
}

#[test]
fn org_tokens_have_no_person_and_no_token_management() {
    let org = principal(None, token(TokenKind::Org, &Scope::ALL));
    let d = decide(&org, &ops::LIST_MY_TASKS, &on(Surface::Mcp, &org));
    assert!(
        matches!(
            d,
            Decision::Deny(Refusal {
                code: RefusalCode::Audience,
                ..
            })
        ),
        "{d:?}"
    );
    assert!(decide(&org, &ops::TASK_LIST, &on(Surface::Mcp, &org)).is_allowed());
    let d = decide(&org, &ops::APPS_LIST, &on(Surface::Api, &org));
    assert!(
        matches!(d, Decision::Deny(ref r) if r.message.contains("org tokens cannot")),
        "{d:?}"
    );
}

/// The design's permission table, written out again here (independently
/// of `switchboard_domain::BuiltinRole`): who holds which permission.
fn design_role_has(role: BuiltinRole, permission: Permission) -> bool {
    use Permission as P;
    let everyone = [P::OrgRead, P::TasksRead];
    let members = [P::TasksWrite, P::ConnectionsUse, P::McpCreate];
    let admins = [
        P::MembersInvite,
        P::MembersManage,
        P::TeamsManage,
        P::ConnectionsPublish,
        P::AuditRead,
    ];
    // Owners hold everything, mcp.manage and production.access included.
    match role {
        BuiltinRole::Viewer => everyone.contains(&permission),
        BuiltinRole::Member => everyone.contains(&permission) || members.contains(&permission),
        BuiltinRole::Admin => {
            everyone.contains(&permission)
                || members.contains(&permission)
                || admins.contains(&permission)
        }
        BuiltinRole::Owner => true,
    }
}

/// Every declared operation × built-in role (and org tokens) × token kind
/// × scope set × MCP policy × surface: the decision is what the design's
/// tables say, in the design's order.
#[test]
fn every_operation_is_decided_as_the_tables_say() {
    let roles = [
        Some(BuiltinRole::Owner),
        Some(BuiltinRole::Admin),
        Some(BuiltinRole::Member),
        Some(BuiltinRole::Viewer),
        None,
    ];
    let mut scope_sets: Vec<Vec<Scope>> = Scope::ALL.iter().map(|s| vec![*s]).collect();
    scope_sets.push(Scope::ALL.to_vec());
    scope_sets.push(Vec::new());
    let policies = [
        McpPolicy {
            enabled: true,
            allow_production: true,
            allow_write: true,
        },
        McpPolicy {
            enabled: true,
            allow_production: false,
            allow_write: false,
        },
        McpPolicy {
            enabled: false,
            allow_production: true,
            allow_write: true,
        },
    ];
    let mut checked = 0usize;
    let started = std::time::Instant::now();
    for op in ops::ALL
        .iter()
        .chain([&ops::upstream_tool(false, true, true)])
    {
        for role in roles {
            for kind in [
                None,
                Some(TokenKind::Personal),
                Some(TokenKind::OAuth),
                Some(TokenKind::Org),
            ] {
                // An org token has no role; a person's credential always has one.
                if (kind == Some(TokenKind::Org)) != role.is_none() {
                    continue;
                }
                for scopes in &scope_sets {
                    if kind.is_none() && !scopes.is_empty() {
                        continue;
                    }
                    for policy in policies {
                        for surface in [Surface::Api, Surface::Mcp] {
                            let credential = match kind {
                                None => session(),
                                Some(k) => token(k, scopes),
                            };
                            let mut p = principal(role, credential);
                            p.mcp_policy = Some(policy);
                            let got = decide(&p, op, &on(surface, &p));
                            let want = expected(op, role, kind, scopes, policy, surface);
                            assert_eq!(
                                std::mem::discriminant(&got),
                                std::mem::discriminant(&want),
                                "{} as {role:?} with {kind:?} {scopes:?} under {policy:?} on {surface:?}: got {got:?}, want {want:?}",
                                op.id
                            );
                            if let (Decision::Deny(g), Decision::Deny(w)) = (&got, &want) {
                                assert_eq!(g.code, w.code, "{}: {got:?}", op.id);
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    println!("{checked} decisions checked in {:?}", started.elapsed());
    assert!(checked > 10_000, "{checked}");
}

/// The expected answer, from the design's rules written out directly.
fn expected(
    op: &Operation,
    role: Option<BuiltinRole>,
    kind: Option<TokenKind>,
    scopes: &[Scope],
    policy: McpPolicy,
    surface: Surface,
) -> Decision {
    let no = |code| {
        Decision::Deny(Refusal {
            code,
            message: String::new(),
        })
    };
    let has = |p: Permission| match role {
        Some(r) => design_role_has(r, p),
        // An org token: everything but managing tokens and the MCP policy.
        None => p != Permission::McpManage,
    };
    if op.credential == CredentialRule::Interactive && kind.is_some() {
        return no(RefusalCode::Interactive);
    }
    let mcp = surface == Surface::Mcp;
    if mcp && !policy.enabled {
        return no(RefusalCode::McpDisabled);
    }
    if mcp && op.writes && !policy.allow_write {
        return no(RefusalCode::WritesDisabled);
    }
    if let Some(p) = op.permission
        && !has(p)
    {
        return no(RefusalCode::Role);
    }
    if op.production && ((mcp && !policy.allow_production) || !has(Permission::ProductionAccess)) {
        return no(RefusalCode::Production);
    }
    if op.audience == Audience::Person && kind == Some(TokenKind::Org) {
        return no(RefusalCode::Audience);
    }
    if let (Some(scope), Some(_)) = (op.scope, kind)
        && !scopes.contains(&scope)
    {
        return Decision::StepUp {
            scopes: vec![scope],
            message: String::new(),
        };
    }
    Decision::Allow
}

#[test]
fn grantable_scopes_follow_the_role() {
    let viewer: BTreeSet<Scope> = grantable_scopes(&BuiltinRole::Viewer.permissions());
    assert_eq!(
        viewer,
        [Scope::ReadOrg, Scope::ReadTasks, Scope::ReadRequirements].into()
    );
    assert_eq!(
        grantable_scopes(&BuiltinRole::Owner.permissions()).len(),
        Scope::ALL.len()
    );
}

#[test]
fn operation_ids_are_unique() {
    let mut ids: Vec<&str> = ops::ALL.iter().map(|o| o.id).collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate operation ids");
}
