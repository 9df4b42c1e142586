//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::ApiState;
use crate::routes::*;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard REST API",
        description = "Organizations, members, teams, roles, tokens, work items and the audit log. \
Authenticate with `Authorization: Bearer <token>` (personal or org token) or a session cookie from \
`POST /api/v1/auth/sign-in`; with a cookie, state-changing requests need `X-CSRF-Token`. \
Errors are `{\"error\": {\"code\", \"message\", \"details\"}}`: 400 malformed input, 401 no valid \
credential, 403 not allowed (or `insufficient_scope`), 404 not found in your organization, 409 a rule \
or conflict refused the change, 413 body too large, 422 a field is invalid, 429 too many attempts."
    ),
    modifiers(&Security),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "auth", description = "Sign-in sessions"),
        (name = "org", description = "The caller's organization"),
        (name = "members", description = "Members, invitations and teams"),
        (name = "roles", description = "Roles and permissions"),
        (name = "tokens", description = "Personal and org tokens"),
        (name = "oauth", description = "Apps connected over OAuth"),
        (name = "connections", description = "Gateway connections to upstream MCP servers"),
        (name = "work", description = "Projects, requirements, tasks, comments, commit entries"),
        (name = "audit", description = "The audit log"),
        (name = "system", description = "Status"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("switchboard_session"))),
        );
    }
}

/// Every `/api/v1` route, with the document describing them.
pub(crate) fn api_router() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/api/v1", v1_routes())
}

fn v1_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(auth::sign_in))
        .routes(routes!(auth::sign_out))
        .routes(routes!(auth::change_password))
        .routes(routes!(auth::switch_org))
        .routes(routes!(auth::me))
        .routes(routes!(system::status))
        .routes(routes!(org::get_org, org::update_org))
        .routes(routes!(org::list_orgs, org::create_org))
        .routes(routes!(members::list_members))
        .routes(routes!(
            members::get_member,
            members::change_role,
            members::remove_member
        ))
        .routes(routes!(
            members::list_invitations,
            members::create_invitation
        ))
        .routes(routes!(members::revoke_invitation))
        .routes(routes!(members::accept_invitation))
        .routes(routes!(members::list_teams, members::create_team))
        .routes(routes!(members::delete_team))
        .routes(routes!(members::team_members, members::add_team_member))
        .routes(routes!(members::remove_team_member))
        .routes(routes!(roles::list_roles, roles::create_role))
        .routes(routes!(roles::update_role, roles::delete_role))
        .routes(routes!(roles::sync_roles))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(
            connections::list_connections,
            connections::create_connection
        ))
        .routes(routes!(
            connections::get_connection,
            connections::update_connection,
            connections::delete_connection
        ))
        .routes(routes!(connections::grant_connection))
        .routes(routes!(connections::revoke_grant))
        .routes(routes!(
            connections::list_virtual_servers,
            connections::create_virtual_server
        ))
        .routes(routes!(connections::delete_virtual_server))
        .routes(routes!(oauth::list_connected_apps))
        .routes(routes!(oauth::revoke_connected_app))
        .routes(routes!(oauth::disconnect_client))
        .routes(routes!(work::list_projects, work::create_project))
        .routes(routes!(work::get_project, work::update_project))
        .routes(routes!(work::list_requirements, work::create_requirement))
        .routes(routes!(work::get_requirement, work::update_requirement))
        .routes(routes!(work::list_tasks, work::create_task))
        .routes(routes!(work::get_task, work::update_task))
        .routes(routes!(work::link_requirement, work::unlink_requirement))
        .routes(routes!(work::list_comments, work::add_comment))
        .routes(routes!(work::list_commits, work::create_commit))
        .routes(routes!(audit::list_audit_events))
}
