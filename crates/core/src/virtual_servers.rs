//! Saved virtual servers: a named set of connections served together at
//! `/mcp/servers/{slug}`, each tool named `{connection-slug}_{tool}`
//! (connection slugs have no `_`, so the name splits at its first `_`).
//! A connection is also a virtual server of its own at its slug, with its
//! tools unprefixed; that one needs no saving.

use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_domain::{validate_name, validate_slug};
use switchboard_storage::{self as storage, VirtualServerRow};

use crate::access::ops;
use crate::audit::AuditEntry;
use crate::views::rfc3339;
use crate::{Core, CoreError, Ctx};

/// A virtual server binds at most this many connections.
const MAX_MEMBERS: usize = 20;
/// MCP tool names are at most this long.
const MAX_TOOL_NAME: usize = 128;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVirtualServer {
    /// `[a-z0-9-]`, unique among the org's virtual servers and connections.
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The slugs (or ids) of two or more connections.
    pub connections: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VirtualServerView {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    /// The slugs of its connections.
    pub connections: Vec<String>,
    pub created_at: String,
}

/// The name a saved server offers a connection's tool under, with its
/// length, when that is over the 128 characters a client is promised.
pub(crate) fn prefixed_too_long(slug: &str, tool: &str) -> Option<(String, usize)> {
    let full = format!("{slug}_{tool}");
    let length = full.chars().count();
    (length > MAX_TOOL_NAME).then_some((full, length))
}

impl Core {
    async fn virtual_server_view(
        &self,
        r: &VirtualServerRow,
    ) -> Result<VirtualServerView, CoreError> {
        Ok(VirtualServerView {
            connections: storage::virtual_server_connection_slugs(self.db.pool(), &r.id).await?,
            id: r.id.clone(),
            slug: r.slug.clone(),
            name: r.name.clone(),
            description: r.description.clone(),
            created_at: rfc3339(r.created_at),
        })
    }

    /// Saves a virtual server over several connections (connections.publish).
    /// Refused, naming the offenders, when a prefixed tool name would be over
    /// 128 characters with the catalogs as they are now.
    pub async fn create_virtual_server(
        &self,
        ctx: Ctx<'_>,
        input: CreateVirtualServer,
    ) -> Result<VirtualServerView, CoreError> {
        let p = ctx.principal;
        let now = ctx.meta.now_ms;
        let row = self
            .write(
                ctx,
                AuditEntry::new(
                    &ops::VIRTUAL_SERVER_SAVE,
                    None,
                    json!({"slug": input.slug, "connections": input.connections}),
                ),
                async |conn, entry| {
                    validate_slug("slug", &input.slug)?;
                    let name = validate_name("name", &input.name, 200)?;
                    let description = input.description.clone().unwrap_or_default();
                    if description.chars().count() > 2000 {
                        return Err(CoreError::invalid("description", "at most 2000 characters"));
                    }
                    if input.connections.len() < 2 || input.connections.len() > MAX_MEMBERS {
                        return Err(CoreError::invalid(
                            "connections",
                            format!("a saved virtual server binds 2 to {MAX_MEMBERS} connections (one connection is already a virtual server at its own slug)"),
                        ));
                    }
                    if storage::connection_in_org(&mut *conn, &p.org_id, &input.slug).await?.is_some()
                        || storage::virtual_server_in_org(&mut *conn, &p.org_id, &input.slug).await?.is_some()
                    {
                        return Err(CoreError::Conflict {
                            code: "slug_taken",
                            message: format!("'{}' is already the slug of a connection or virtual server here: choose another", input.slug),
                        });
                    }
                    let mut members = Vec::new();
                    for c in &input.connections {
                        let row = storage::connection_in_org(&mut *conn, &p.org_id, c)
                            .await?
                            .ok_or_else(|| CoreError::invalid("connections", format!("there is no connection '{c}' in this organization")))?;
                        if members.iter().any(|(id, _): &(String, String)| *id == row.id) {
                            return Err(CoreError::invalid("connections", format!("'{c}' is listed twice")));
                        }
                        members.push((row.id, row.slug));
                    }
                    let mut too_long = Vec::new();
                    for (id, slug) in &members {
                        // A tool offered nowhere (its own name or schema is
                        // unusable) gives no prefixed name either.
                        for t in storage::connection_tools(&mut *conn, id, crate::connections::SHARED).await?
                            .into_iter()
                            .filter(|t| t.problem.is_none())
                        {
                            if let Some((full, _)) = prefixed_too_long(slug, &t.name) {
                                too_long.push(full);
                            }
                        }
                    }
                    if !too_long.is_empty() {
                        return Err(CoreError::invalid(
                            "connections",
                            format!(
                                "these tool names would be longer than {MAX_TOOL_NAME} characters: {} (deny those tools on their connection, or use a shorter connection slug)",
                                too_long.join(", ")
                            ),
                        ));
                    }
                    let row = VirtualServerRow {
                        id: storage::new_id(),
                        org_id: p.org_id.clone(),
                        slug: input.slug.clone(),
                        name,
                        description,
                        created_at: now,
                        updated_at: now,
                    };
                    storage::insert_virtual_server(&mut *conn, &row).await?;
                    for (id, _) in &members {
                        storage::add_virtual_server_connection(&mut *conn, &row.id, id).await?;
                    }
                    entry.target = Some(row.id.clone());
                    Ok(row)
                },
            )
            .await?;
        self.virtual_server_view(&row).await
    }

    /// The org's saved virtual servers (anyone who may use connections).
    pub async fn list_virtual_servers(
        &self,
        ctx: Ctx<'_>,
    ) -> Result<Vec<VirtualServerView>, CoreError> {
        let p = ctx.principal;
        self.authorize(ctx, &ops::VIRTUAL_SERVER_LIST, None).await?;
        let mut out = Vec::new();
        for r in storage::list_virtual_servers(self.db.pool(), &p.org_id).await? {
            out.push(self.virtual_server_view(&r).await?);
        }
        Ok(out)
    }

    /// Removes a saved virtual server (connections.publish).
    pub async fn delete_virtual_server(&self, ctx: Ctx<'_>, id: &str) -> Result<(), CoreError> {
        let p = ctx.principal;
        self.write(
            ctx,
            AuditEntry::new(&ops::VIRTUAL_SERVER_DELETE, Some(id), json!({})),
            async |conn, _| {
                let row = storage::virtual_server_in_org(&mut *conn, &p.org_id, id)
                    .await?
                    .ok_or(CoreError::NotFound("virtual server"))?;
                storage::delete_virtual_server(&mut *conn, &p.org_id, &row.id).await?;
                Ok(())
            },
        )
        .await
    }

    /// The connection slugs of the saved virtual server `slug` in the
    /// caller's org, if there is one (the MCP surface then serves them
    /// prefixed; grants are checked per connection by the call path).
    pub async fn virtual_server_members(
        &self,
        p: &crate::Principal,
        slug: &str,
    ) -> Result<Option<Vec<String>>, CoreError> {
        let pool = self.db.pool();
        match storage::virtual_server_in_org(pool, &p.org_id, slug).await? {
            Some(r) => Ok(Some(
                storage::virtual_server_connection_slugs(pool, &r.id).await?,
            )),
            None => Ok(None),
        }
    }
}
