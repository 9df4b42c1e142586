//! Gateway connections: what an org's admins publish (an upstream MCP
//! server over Streamable HTTP, or an allow-listed stdio command), its
//! shared credentials (sealed at rest, write-only through every
//! interface), and who may use it (grants to the org, a team, a member).
//!
//! Upstream clients, the catalog and virtual servers build on this model
//! (`switchboard-gateway`); per-member credentials are refused until their
//! issue lands.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_domain::{Permission, validate_name, validate_slug};
pub use switchboard_storage::ConnectionRow;
use switchboard_storage::{self as storage, Conn, ConnectionGrantRow, ConnectionSecretRow};
use switchboard_vault::Keyring;

use crate::access::ops;
use crate::integrations::{ConfigError, Integration, Publisher};

use crate::audit::AuditEntry;
use crate::views::rfc3339;
use crate::{Core, CoreError, Ctx};

const MAX_SECRETS: usize = 32;
/// The catalog key of a connection's shared (or absent) credential.
pub const SHARED: &str = "shared";
const MAX_HEADER_VALUE: usize = 8 * 1024;
const MAX_ENV_VALUE: usize = 32 * 1024;
const MAX_ARGS: usize = 64;
const MAX_ARG_LEN: usize = 1000;
const MAX_TOOL_LIST: usize = 500;
const MAX_TOOL_NAME: usize = 128;
/// Headers the gateway sets itself or that would break the transport.
const RESERVED_HEADERS: [&str; 12] = [
    "host",
    "content-length",
    "content-type",
    "connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "switchboard-hop",
];

/// How a tool of the upstream is treated here.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolOverride {
    /// Upstream annotations are untrusted hints: a tool is a write unless
    /// an admin marks it read-only here.
    #[serde(default)]
    pub read_only: bool,
    /// Replaces the upstream's description.
    #[serde(default)]
    pub description: Option<String>,
}

/// A new connection.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnection {
    /// `[a-z0-9-]`, unique in the org; tools appear as `{slug}/{tool}`.
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `streamable_http` or `stdio`.
    pub transport: String,
    /// The upstream's URL (streamable_http).
    #[serde(default)]
    pub url: Option<String>,
    /// A command on the operator's allow-list (stdio).
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// `none` (default) or `shared`.
    #[serde(default)]
    pub credential_mode: Option<String>,
    /// `sandbox` or `production`.
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub tool_allow: Option<Vec<String>>,
    #[serde(default)]
    pub tool_deny: Option<Vec<String>>,
    #[serde(default)]
    pub tool_overrides: Option<BTreeMap<String, ToolOverride>>,
    /// Shared header values (streamable_http), sealed at rest, never returned.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Shared environment values (stdio), sealed at rest, never returned.
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
}

/// Changes to a connection; absent fields stay. In `headers` and `env`, a
/// `null` value removes that entry.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConnection {
    pub name: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub command: Option<String>,
    pub args: Option<Vec<String>>,
    pub credential_mode: Option<String>,
    pub environment: Option<String>,
    pub tool_allow: Option<Vec<String>>,
    pub tool_deny: Option<Vec<String>>,
    pub tool_overrides: Option<BTreeMap<String, ToolOverride>>,
    pub enabled: Option<bool>,
    #[schema(value_type = Option<BTreeMap<String, Option<String>>>)]
    pub headers: Option<BTreeMap<String, Option<String>>>,
    #[schema(value_type = Option<BTreeMap<String, Option<String>>>)]
    pub env: Option<BTreeMap<String, Option<String>>>,
}

/// A connection as shown: secret NAMES only, never values.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConnectionView {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub transport: String,
    pub url: Option<String>,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub credential_mode: String,
    pub environment: Option<String>,
    pub tool_allow: Option<Vec<String>>,
    pub tool_deny: Option<Vec<String>>,
    pub tool_overrides: BTreeMap<String, ToolOverride>,
    pub enabled: bool,
    /// Names of the shared headers set (their values are write-only).
    pub secret_headers: Vec<String>,
    /// Names of the shared environment variables set.
    pub secret_env: Vec<String>,
    pub grants: Vec<GrantView>,
    /// `unknown` (never contacted), `connected`, `degraded` or `disconnected`.
    pub health: String,
    /// Why the last contact with the upstream failed, if it did.
    pub last_error: Option<String>,
    /// The median latency of the last requests to the upstream, in ms, as
    /// a replica last recorded it (every few seconds while there is traffic).
    pub latency_ms: Option<i64>,
    /// When the health was last checked: a request, a probe or a catalog
    /// refresh.
    pub health_checked_at: Option<String>,
    /// When the tool list was last fetched.
    pub catalog_refreshed_at: Option<String>,
    /// How many upstream tools the catalog holds.
    pub tool_count: usize,
    /// Fetched tools that are not offered, and why: a name or input schema
    /// no client could use, or (for a member of a saved virtual server) a
    /// `{slug}_{tool}` name over 128 characters. Part of the health.
    pub hidden_tools: Vec<HiddenTool>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GrantView {
    pub id: String,
    /// `org`, `team` or `member`.
    pub kind: String,
    /// The team id or membership id (the org id for `org`).
    pub grantee_id: String,
}

/// A new grant.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGrant {
    /// `org`, `team` or `member`.
    pub kind: String,
    /// The team id (`team`) or membership id (`member`); absent for `org`.
    #[serde(default)]
    pub id: Option<String>,
}

/// Which connections to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionScope {
    /// Those the caller may use (granted to them, enabled).
    Usable,
    /// Those the caller administers (every one in the org; connections.publish).
    Manageable,
}

/// The fetched tools that are not offered: those the gateway found unusable
/// when it fetched them, and, for a member of a saved virtual server, those
/// whose prefixed name would be over 128 characters (refused when the
/// server is saved; one that appears later through an upstream change is
/// left out of the server's list).
fn hidden_tools(
    slug: &str,
    tools: &[storage::ConnectionToolRow],
    in_saved_servers: bool,
) -> Vec<HiddenTool> {
    tools
        .iter()
        .filter_map(|t| {
            let reason = t.problem.clone().or_else(|| {
                let (full, length) = crate::virtual_servers::prefixed_too_long(slug, &t.name)
                    .filter(|_| in_saved_servers)?;
                Some(format!(
                    "left out of saved virtual servers: '{full}' would be {length} characters, over {MAX_TOOL_NAME}"
                ))
            })?;
            Some(HiddenTool {
                name: t.name.clone(),
                reason,
            })
        })
        .collect()
}

fn json_list(v: &Option<String>) -> Option<Vec<String>> {
    v.as_deref().and_then(|s| serde_json::from_str(s).ok())
}

/// What the last contact with the upstream left.
#[derive(Default)]
struct Health {
    state: Option<storage::ConnectionHealthRow>,
    tool_count: usize,
    hidden: Vec<HiddenTool>,
}

fn view(
    r: &ConnectionRow,
    secrets: &[ConnectionSecretRow],
    grants: &[ConnectionGrantRow],
    health: Health,
) -> ConnectionView {
    let (state, last_error, refreshed, latency_ms, checked) = match health.state {
        Some(h) => (
            h.health,
            h.last_error,
            h.catalog_refreshed_at,
            h.health_latency_ms,
            h.health_checked_at,
        ),
        None => ("unknown".to_owned(), None, None, None, None),
    };
    let names = |kind: &str| {
        secrets
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.name.clone())
            .collect()
    };
    ConnectionView {
        id: r.id.clone(),
        slug: r.slug.clone(),
        name: r.name.clone(),
        description: r.description.clone(),
        transport: r.transport.clone(),
        url: r.url.clone(),
        command: r.command.clone(),
        args: serde_json::from_str(&r.args).unwrap_or_default(),
        credential_mode: r.credential_mode.clone(),
        environment: r.environment.clone(),
        tool_allow: json_list(&r.tool_allow),
        tool_deny: json_list(&r.tool_deny),
        tool_overrides: serde_json::from_str(&r.tool_overrides).unwrap_or_default(),
        enabled: r.enabled != 0,
        secret_headers: names("header"),
        secret_env: names("env"),
        grants: grants
            .iter()
            .map(|g| GrantView {
                id: g.id.clone(),
                kind: g.grantee_kind.clone(),
                grantee_id: g.grantee_id.clone(),
            })
            .collect(),
        health: state,
        last_error,
        latency_ms,
        health_checked_at: checked.map(rfc3339),
        catalog_refreshed_at: refreshed.map(rfc3339),
        tool_count: health.tool_count,
        hidden_tools: health.hidden,
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
    }
}

/// What a new connection's audit event records: names of credentials,
/// never their values.
fn create_audit_args(input: &CreateConnection, integration: Option<&str>) -> serde_json::Value {
    let credential_names: Vec<String> = input
        .headers
        .iter()
        .flatten()
        .map(|(k, _)| format!("header:{k}"))
        .chain(input.env.iter().flatten().map(|(k, _)| format!("env:{k}")))
        .collect();
    json!({"slug": input.slug, "transport": input.transport, "url": input.url,
           "command": input.command, "args": input.args, "integration": integration,
           "credential_names": credential_names})
}

fn check_url(url: &str) -> Result<(), CoreError> {
    let u = url::Url::parse(url)
        .map_err(|e| CoreError::invalid("url", format!("'{url}' is not an absolute URL ({e})")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(CoreError::invalid("url", "must be an http or https URL"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(CoreError::invalid(
            "url",
            "must not carry credentials: put them in a shared header instead (sealed at rest)",
        ));
    }
    if u.host().is_none() || u.fragment().is_some() {
        return Err(CoreError::invalid("url", "needs a host and no fragment"));
    }
    Ok(())
}

fn check_tool_list(field: &str, list: &[String]) -> Result<(), CoreError> {
    if list.len() > MAX_TOOL_LIST {
        return Err(CoreError::invalid(
            field,
            format!("at most {MAX_TOOL_LIST} tool names"),
        ));
    }
    if let Some(bad) = list
        .iter()
        .find(|t| t.is_empty() || t.len() > MAX_TOOL_NAME || t.chars().any(char::is_control))
    {
        return Err(CoreError::invalid(
            field,
            format!("'{bad}' is not a tool name (1 to {MAX_TOOL_NAME} printable characters)"),
        ));
    }
    Ok(())
}

fn check_header(name: &str, value: &str) -> Result<(), CoreError> {
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(CoreError::invalid(
            "headers",
            format!("'{name}' is not a valid HTTP header name"),
        ));
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(CoreError::invalid(
            "headers",
            format!("'{name}' is set by the gateway itself and cannot be configured"),
        ));
    }
    if value.len() > MAX_HEADER_VALUE || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(CoreError::invalid(
            "headers",
            format!(
                "the value of '{name}' must be at most {MAX_HEADER_VALUE} bytes with no line breaks"
            ),
        ));
    }
    Ok(())
}

fn check_env(name: &str, value: &str) -> Result<(), CoreError> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(CoreError::invalid(
            "env",
            format!("'{name}' is not an environment variable name ([A-Z_][A-Z0-9_]*)"),
        ));
    }
    if name.starts_with("SWITCHBOARD_") || name.starts_with("LD_") || name == "PATH" {
        return Err(CoreError::invalid(
            "env",
            format!(
                "'{name}' cannot be set for an upstream (SWITCHBOARD_*, LD_* and PATH are the server's own)"
            ),
        ));
    }
    if value.len() > MAX_ENV_VALUE || value.contains('\0') {
        return Err(CoreError::invalid(
            "env",
            format!("the value of '{name}' must be at most {MAX_ENV_VALUE} bytes with no NUL"),
        ));
    }
    Ok(())
}

/// Who is publishing, for the catalog's rules: the CLI on the server is the
/// instance operator; everyone else is an org admin.
fn publisher(p: &crate::Principal) -> Publisher {
    match p.credential {
        crate::Credential::Cli => Publisher::Operator,
        _ => Publisher::OrgAdmin,
    }
}

/// A catalog refusal as the core reports it: setting what an entry does not
/// allow is a refusal (403, audited); a malformed value is a bad field.
fn config_refusal(e: ConfigError) -> CoreError {
    match e {
        ConfigError::OperatorOnly { .. } | ConfigError::Undeclared { .. } => {
            CoreError::Forbidden(e.to_string())
        }
        ConfigError::Unknown { .. } => CoreError::Forbidden(e.to_string()),
        other => CoreError::invalid("config", other.to_string()),
    }
}

/// A new connection built from a catalog entry.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishIntegration {
    /// The catalog entry's id (built in, the operator's, or the org's own).
    pub integration: String,
    /// Defaults to the entry's id.
    #[serde(default)]
    pub slug: Option<String>,
    /// Defaults to the entry's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The entry's settings, checked against its schema: only the settings
    /// it declares, never a path on the host unless the operator publishes.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: serde_json::Map<String, serde_json::Value>,
}

/// The shape every connection must have after a change.
struct Shape<'a> {
    transport: &'a str,
    url: Option<&'a str>,
    command: Option<&'a str>,
    args: &'a [String],
    credential_mode: &'a str,
    environment: Option<&'a str>,
}

impl Core {
    /// Attaches the keyring that seals connection secrets.
    pub fn with_vault(mut self, keyring: Keyring) -> Self {
        self.vault = Some(Arc::new(keyring));
        self
    }

    fn vault(&self) -> Result<&Keyring, CoreError> {
        self.vault.as_deref().ok_or_else(|| {
            CoreError::Internal("no secret keyring is configured on this server".into())
        })
    }

    fn check_shape(&self, s: &Shape<'_>) -> Result<(), CoreError> {
        match s.transport {
            "streamable_http" => {
                let Some(url) = s.url else {
                    return Err(CoreError::invalid(
                        "url",
                        "a streamable_http connection needs the upstream's URL",
                    ));
                };
                check_url(url)?;
                if s.command.is_some() || !s.args.is_empty() {
                    return Err(CoreError::invalid(
                        "command",
                        "a streamable_http connection takes no command or args",
                    ));
                }
            }
            "stdio" => {
                if s.command.is_none() {
                    return Err(CoreError::invalid(
                        "command",
                        "a stdio connection needs the command line of a catalog entry",
                    ));
                }
                if s.url.is_some() {
                    return Err(CoreError::invalid("url", "a stdio connection takes no URL"));
                }
                if s.args.len() > MAX_ARGS
                    || s.args
                        .iter()
                        .any(|a| a.len() > MAX_ARG_LEN || a.contains('\0'))
                {
                    return Err(CoreError::invalid(
                        "args",
                        format!(
                            "at most {MAX_ARGS} arguments of at most {MAX_ARG_LEN} bytes, no NUL"
                        ),
                    ));
                }
            }
            other => {
                return Err(CoreError::invalid(
                    "transport",
                    format!("'{other}' is not a transport: use streamable_http or stdio"),
                ));
            }
        }
        match s.credential_mode {
            "none" | "shared" => {}
            "per_member" => {
                return Err(CoreError::invalid(
                    "credential_mode",
                    "per_member credentials are not available yet: use none or shared",
                ));
            }
            other => {
                return Err(CoreError::invalid(
                    "credential_mode",
                    format!("'{other}' is not a credential mode: use none or shared"),
                ));
            }
        }
        if let Some(e) = s.environment
            && !matches!(e, "sandbox" | "production")
        {
            return Err(CoreError::invalid(
                "environment",
                "must be sandbox or production",
            ));
        }
        Ok(())
    }

    /// Seals and stores one secret value (kind `header` or `env`).
    async fn put_secret(
        &self,
        conn: &mut Conn,
        connection_id: &str,
        kind: &str,
        name: &str,
        value: &str,
        now: i64,
    ) -> Result<(), CoreError> {
        let id = storage::connection_secret_id(&mut *conn, connection_id, kind, name)
            .await?
            .unwrap_or_else(storage::new_id);
        let sealed = self
            .vault()?
            .seal(&format!("connection.{kind}"), &id, value.as_bytes())
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        storage::upsert_connection_secret(
            &mut *conn,
            &ConnectionSecretRow {
                id,
                connection_id: connection_id.to_owned(),
                kind: kind.to_owned(),
                name: name.to_owned(),
                key_id: sealed.key_id,
                sealed: sealed.blob,
                created_at: now,
                updated_at: now,
            },
        )
        .await?;
        Ok(())
    }

    /// Publishes a connection (connections.publish). A stdio connection
    /// must be exactly the command line of a catalog entry, with only the
    /// environment variables that entry declares (publishing from the
    /// catalog, [`Core::publish_integration`], is the usual way).
    pub async fn create_connection(
        &self,
        ctx: Ctx<'_>,
        input: CreateConnection,
    ) -> Result<ConnectionView, CoreError> {
        let entry = AuditEntry::new(
            &ops::CONNECTION_CREATE,
            None,
            create_audit_args(&input, None),
        );
        self.write(ctx, entry, async |conn, entry| {
            let integration = match (input.transport.as_str(), &input.command) {
                ("stdio", Some(command)) => {
                    let args = input.args.clone().unwrap_or_default();
                    let Some(found) = self.config.catalog.by_command_line(command, &args) else {
                        return Err(CoreError::Forbidden(format!(
                            "'{command}' with these arguments is not the command line of an integration of this server's catalog: publish stdio servers from the catalog (POST /api/v1/connections/from-integration); other commands are defined by the server's operator (gateway.operator_catalog)"
                        )));
                    };
                    Some(found.clone())
                }
                _ => None,
            };
            self.insert_connection(conn, ctx, &input, integration.as_ref(), entry)
                .await
        })
        .await
    }

    /// Publishes a connection from a catalog entry (connections.publish):
    /// the settings are checked against the entry's schema (only the
    /// settings it declares; a path on the host only for the operator),
    /// then become the connection's URL or command line and its sealed
    /// headers or environment. Every refusal is audited.
    pub async fn publish_integration(
        &self,
        ctx: Ctx<'_>,
        input: PublishIntegration,
    ) -> Result<ConnectionView, CoreError> {
        let p = ctx.principal;
        let audit = AuditEntry::new(
            &ops::CONNECTION_CREATE,
            None,
            json!({"integration": input.integration, "slug": input.slug,
                   "settings": input.config.keys().collect::<Vec<_>>()}),
        );
        self.write(ctx, audit, async |conn, audit| {
            let (integration, custom) = match self.config.catalog.find(&input.integration) {
                Some(e) => (e.clone(), false),
                None => {
                    let stored = storage::custom_integrations(&mut *conn, &p.org_id).await?;
                    let found = stored
                        .iter()
                        .find(|(id, _)| *id == input.integration)
                        .and_then(|(_, d)| serde_json::from_str::<serde_json::Value>(d).ok())
                        .and_then(|v| crate::integrations::parse_custom(&v).ok());
                    match found {
                        Some(e) => (e, true),
                        None => {
                            return Err(CoreError::invalid(
                                "integration",
                                format!(
                                    "there is no catalog entry '{}': GET /api/v1/integrations lists them",
                                    input.integration
                                ),
                            ));
                        }
                    }
                }
            };
            if custom
                && integration.transport == crate::integrations::Transport::Stdio
                && !self.config.allow_custom_packages
            {
                return Err(CoreError::Forbidden(format!(
                    "the integration '{}' is this organization's own npm package, and this server's operator has not allowed org-defined packages to run on its host (gateway.allow_custom_packages): use an entry of the catalog, or ask the operator",
                    integration.id
                )));
            }
            let resolved =
                crate::integrations::resolve(&integration, &input.config, publisher(p))
                    .map_err(config_refusal)?;
            let shared = !resolved.headers.is_empty() || !resolved.env.is_empty();
            let create = CreateConnection {
                slug: input.slug.clone().unwrap_or_else(|| integration.id.clone()),
                name: input.name.clone().unwrap_or_else(|| integration.name.clone()),
                description: Some(integration.description.clone()),
                transport: resolved.transport.as_str().to_owned(),
                url: resolved.url.clone(),
                command: resolved.command.clone(),
                args: (!resolved.args.is_empty()).then(|| resolved.args.clone()),
                credential_mode: Some(if shared { "shared" } else { "none" }.to_owned()),
                environment: None,
                tool_allow: None,
                tool_deny: None,
                tool_overrides: None,
                headers: (!resolved.headers.is_empty()).then(|| resolved.headers.clone()),
                env: (!resolved.env.is_empty()).then(|| resolved.env.clone()),
            };
            audit.args = create_audit_args(&create, Some(&integration.id));
            let bound = (integration.transport == crate::integrations::Transport::Stdio)
                .then_some(&integration);
            self.insert_connection(conn, ctx, &create, bound, audit).await
        })
        .await
    }

    /// Validates and stores a new connection inside the caller's write
    /// transaction. `integration` is the catalog entry a stdio connection
    /// runs: its command line was matched by the caller, and every
    /// environment variable must be one it declares.
    async fn insert_connection(
        &self,
        conn: &mut Conn,
        ctx: Ctx<'_>,
        input: &CreateConnection,
        integration: Option<&Integration>,
        entry: &mut AuditEntry,
    ) -> Result<ConnectionView, CoreError> {
        let p = ctx.principal;
        let now = ctx.meta.now_ms;
        validate_slug("slug", &input.slug)?;
        let name = validate_name("name", &input.name, 100)?;
        let description = input.description.clone().unwrap_or_default();
        if description.len() > 2000 {
            return Err(CoreError::invalid("description", "at most 2000 characters"));
        }
        let args = input.args.clone().unwrap_or_default();
        let mode = input.credential_mode.as_deref().unwrap_or("none");
        self.check_shape(&Shape {
            transport: &input.transport,
            url: input.url.as_deref(),
            command: input.command.as_deref(),
            args: &args,
            credential_mode: mode,
            environment: input.environment.as_deref(),
        })?;
        let headers = input.headers.clone().unwrap_or_default();
        let env = input.env.clone().unwrap_or_default();
        self.check_secrets(
            &input.transport,
            mode,
            headers.iter().map(|(k, v)| (k.as_str(), Some(v.as_str()))),
            env.iter().map(|(k, v)| (k.as_str(), Some(v.as_str()))),
            headers.len() + env.len(),
        )?;
        if let Some(integration) = integration {
            for name in env.keys() {
                integration
                    .check_env(name, publisher(p))
                    .map_err(config_refusal)?;
            }
        }
        for list in [
            ("tool_allow", &input.tool_allow),
            ("tool_deny", &input.tool_deny),
        ] {
            if let Some(l) = list.1 {
                check_tool_list(list.0, l)?;
            }
        }
        if storage::connection_in_org(&mut *conn, &p.org_id, &input.slug)
            .await?
            .is_some()
        {
            return Err(CoreError::conflict(
                "connection_slug_taken",
                format!(
                    "a connection with the slug '{}' already exists in this organization: choose another slug",
                    input.slug
                ),
            ));
        }
        let row = ConnectionRow {
            id: storage::new_id(),
            org_id: p.org_id.clone(),
            slug: input.slug.clone(),
            name,
            description,
            transport: input.transport.clone(),
            url: input.url.clone(),
            command: input.command.clone(),
            args: json!(args).to_string(),
            credential_mode: mode.to_owned(),
            environment: input.environment.clone(),
            tool_allow: input.tool_allow.as_ref().map(|l| json!(l).to_string()),
            tool_deny: input.tool_deny.as_ref().map(|l| json!(l).to_string()),
            tool_overrides: json!(input.tool_overrides.clone().unwrap_or_default()).to_string(),
            enabled: 1,
            created_by: Some(p.account_id.clone()),
            created_at: now,
            updated_at: now,
            catalog_refreshed_at: None,
            integration_id: integration.map(|i| i.id.clone()),
        };
        storage::insert_connection(&mut *conn, &row).await?;
        for (k, v) in &headers {
            self.put_secret(conn, &row.id, "header", k, v, now).await?;
        }
        for (k, v) in &env {
            self.put_secret(conn, &row.id, "env", k, v, now).await?;
        }
        entry.target = Some(row.id.clone());
        let secrets = storage::connection_secrets(&mut *conn, &row.id).await?;
        Ok(view(&row, &secrets, &[], Health::default()))
    }

    fn check_secrets<'a>(
        &self,
        transport: &str,
        mode: &str,
        headers: impl Iterator<Item = (&'a str, Option<&'a str>)>,
        env: impl Iterator<Item = (&'a str, Option<&'a str>)>,
        count: usize,
    ) -> Result<(), CoreError> {
        let headers: Vec<_> = headers.collect();
        let env: Vec<_> = env.collect();
        if count > MAX_SECRETS {
            return Err(CoreError::invalid(
                "headers",
                format!("at most {MAX_SECRETS} shared headers and environment values"),
            ));
        }
        let setting = headers.iter().chain(env.iter()).any(|(_, v)| v.is_some());
        if setting && mode != "shared" {
            return Err(CoreError::invalid(
                "credential_mode",
                "shared headers or environment values need credential_mode 'shared'",
            ));
        }
        if !headers.is_empty() && transport != "streamable_http" {
            return Err(CoreError::invalid(
                "headers",
                "headers apply to streamable_http connections; a stdio server gets env",
            ));
        }
        if !env.is_empty() && transport != "stdio" {
            return Err(CoreError::invalid(
                "env",
                "env applies to stdio connections; an HTTP server gets headers",
            ));
        }
        for (k, v) in &headers {
            check_header(k, v.unwrap_or(""))?;
        }
        for (k, v) in &env {
            check_env(k, v.unwrap_or(""))?;
        }
        Ok(())
    }

    async fn load_view(
        &self,
        conn: &mut Conn,
        row: &ConnectionRow,
    ) -> Result<ConnectionView, CoreError> {
        let secrets = storage::connection_secrets(&mut *conn, &row.id).await?;
        let grants = storage::connection_grants(&mut *conn, &row.id).await?;
        let tools = storage::connection_tools(&mut *conn, &row.id, SHARED).await?;
        let in_saved_servers = storage::connection_in_saved_servers(&mut *conn, &row.id).await?;
        let health = Health {
            state: storage::connection_health(&mut *conn, &row.id).await?,
            tool_count: tools.len(),
            hidden: hidden_tools(&row.slug, &tools, in_saved_servers),
        };
        Ok(view(row, &secrets, &grants, health))
    }

    /// Changes a connection (connections.publish).
    pub async fn update_connection(
        &self,
        ctx: Ctx<'_>,
        id: &str,
        input: UpdateConnection,
    ) -> Result<ConnectionView, CoreError> {
        let p = ctx.principal;
        let now = ctx.meta.now_ms;
        let names: Vec<String> = input
            .headers
            .iter()
            .flatten()
            .map(|(k, _)| format!("header:{k}"))
            .chain(input.env.iter().flatten().map(|(k, _)| format!("env:{k}")))
            .collect();
        let entry = AuditEntry::new(
            &ops::CONNECTION_UPDATE,
            Some(id),
            json!({"credential_names": names, "enabled": input.enabled}),
        );
        self.write(ctx, entry, async |conn, _| {
            let mut row = storage::connection_in_org(&mut *conn, &p.org_id, id)
                .await?
                .ok_or(CoreError::NotFound("connection"))?;
            if let Some(n) = &input.name {
                row.name = validate_name("name", n, 100)?;
            }
            if let Some(d) = &input.description {
                if d.len() > 2000 {
                    return Err(CoreError::invalid("description", "at most 2000 characters"));
                }
                row.description = d.clone();
            }
            if let Some(u) = &input.url {
                row.url = Some(u.clone());
            }
            let command_line_changed = input.command.as_ref().is_some_and(|c| row.command.as_ref() != Some(c))
                || input.args.as_ref().is_some_and(|a| {
                    serde_json::from_str::<Vec<String>>(&row.args).ok().as_ref() != Some(a)
                });
            if let Some(c) = &input.command {
                row.command = Some(c.clone());
            }
            if let Some(a) = &input.args {
                row.args = json!(a).to_string();
            }
            if let Some(m) = &input.credential_mode {
                row.credential_mode = m.clone();
            }
            if let Some(e) = &input.environment {
                row.environment = Some(e.clone());
            }
            if let Some(l) = &input.tool_allow {
                check_tool_list("tool_allow", l)?;
                row.tool_allow = Some(json!(l).to_string());
            }
            if let Some(l) = &input.tool_deny {
                check_tool_list("tool_deny", l)?;
                row.tool_deny = Some(json!(l).to_string());
            }
            if let Some(o) = &input.tool_overrides {
                row.tool_overrides = json!(o).to_string();
            }
            if let Some(e) = input.enabled {
                row.enabled = i64::from(e);
            }
            let args: Vec<String> = serde_json::from_str(&row.args).unwrap_or_default();
            self.check_shape(&Shape {
                transport: &row.transport,
                url: row.url.as_deref(),
                command: row.command.as_deref(),
                args: &args,
                credential_mode: &row.credential_mode,
                environment: row.environment.as_deref(),
            })?;
            let headers = input.headers.clone().unwrap_or_default();
            let env = input.env.clone().unwrap_or_default();
            if row.transport == "stdio" {
                let integration = self.bound_integration(conn, &row).await?;
                if command_line_changed {
                    // The command line is the entry's: only the operator may
                    // change the values of its settings (host paths).
                    if publisher(p) != Publisher::Operator {
                        return Err(CoreError::Forbidden(
                            "a stdio connection's command line comes from its catalog entry: publish it again from the catalog to change it".into(),
                        ));
                    }
                    integration
                        .check_launch(row.command.as_deref().unwrap_or_default(), &args, [])
                        .map_err(CoreError::Forbidden)?;
                }
                for name in env.keys() {
                    integration
                        .check_env(name, publisher(p))
                        .map_err(config_refusal)?;
                }
            }
            let existing = storage::connection_secrets(&mut *conn, &row.id).await?;
            let after: BTreeSet<String> = existing
                .iter()
                .map(|s| format!("{}:{}", s.kind, s.name))
                .chain(
                    headers
                        .iter()
                        .filter(|(_, v)| v.is_some())
                        .map(|(k, _)| format!("header:{k}")),
                )
                .chain(
                    env.iter()
                        .filter(|(_, v)| v.is_some())
                        .map(|(k, _)| format!("env:{k}")),
                )
                .collect();
            self.check_secrets(
                &row.transport,
                &row.credential_mode,
                headers.iter().map(|(k, v)| (k.as_str(), v.as_deref())),
                env.iter().map(|(k, v)| (k.as_str(), v.as_deref())),
                after.len(),
            )?;
            if row.credential_mode == "none"
                && !existing.is_empty()
                && headers.is_empty()
                && env.is_empty()
            {
                // Switching to `none` drops the shared credentials.
                for s in &existing {
                    storage::delete_connection_secret(&mut *conn, &row.id, &s.kind, &s.name)
                        .await?;
                }
            }
            row.updated_at = now;
            storage::update_connection(&mut *conn, &row).await?;
            for (kind, map) in [("header", &headers), ("env", &env)] {
                for (k, v) in map {
                    match v {
                        Some(v) => self.put_secret(conn, &row.id, kind, k, v, now).await?,
                        None => {
                            storage::delete_connection_secret(&mut *conn, &row.id, kind, k).await?;
                        }
                    }
                }
            }
            self.load_view(conn, &row).await
        })
        .await
    }

    /// Removes a connection with its secrets and grants (connections.publish).
    pub async fn delete_connection(&self, ctx: Ctx<'_>, id: &str) -> Result<(), CoreError> {
        let p = ctx.principal;
        self.write(
            ctx,
            AuditEntry::new(&ops::CONNECTION_DELETE, Some(id), json!({})),
            async |conn, entry| {
                let row = storage::connection_in_org(&mut *conn, &p.org_id, id)
                    .await?
                    .ok_or(CoreError::NotFound("connection"))?;
                entry.args = json!({"slug": row.slug});
                storage::delete_connection(&mut *conn, &p.org_id, &row.id).await?;
                Ok(())
            },
        )
        .await
    }

    /// One connection: anyone who may use it, or an admin.
    pub async fn get_connection(
        &self,
        ctx: Ctx<'_>,
        id: &str,
    ) -> Result<ConnectionView, CoreError> {
        let p = ctx.principal;
        let pool = self.db.pool();
        let row = storage::connection_in_org(pool, &p.org_id, id)
            .await?
            .ok_or(CoreError::NotFound("connection"))?;
        if !self.allows(ctx, &ops::CONNECTION_LIST_MANAGEABLE) {
            self.authorize(ctx, &ops::CONNECTION_GET, Some(id)).await?;
            let usable = storage::usable_connections(pool, &p.org_id, &p.membership_id).await?;
            if !usable.iter().any(|c| c.id == row.id) {
                // Existence does not leak to those without a grant.
                return Err(CoreError::NotFound("connection"));
            }
        }
        let mut conn = pool.acquire().await.map_err(storage::StorageError::from)?;
        self.load_view(&mut conn, &row).await
    }

    /// The connections the caller may use, or administers.
    pub async fn list_connections(
        &self,
        ctx: Ctx<'_>,
        scope: ConnectionScope,
    ) -> Result<Vec<ConnectionView>, CoreError> {
        let p = ctx.principal;
        let pool = self.db.pool();
        let rows = match scope {
            ConnectionScope::Usable => {
                self.authorize(ctx, &ops::CONNECTION_LIST_USABLE, None)
                    .await?;
                storage::usable_connections(pool, &p.org_id, &p.membership_id).await?
            }
            ConnectionScope::Manageable => {
                self.authorize(ctx, &ops::CONNECTION_LIST_MANAGEABLE, None)
                    .await?;
                storage::list_connections(pool, &p.org_id).await?
            }
        };
        let mut conn = pool.acquire().await.map_err(storage::StorageError::from)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.load_view(&mut conn, r).await?);
        }
        Ok(out)
    }

    /// Grants a connection to the org, a team or a member (connections.publish).
    pub async fn grant_connection(
        &self,
        ctx: Ctx<'_>,
        id: &str,
        input: CreateGrant,
    ) -> Result<ConnectionView, CoreError> {
        let p = ctx.principal;
        let now = ctx.meta.now_ms;
        self.write(
            ctx,
            AuditEntry::new(
                &ops::CONNECTION_GRANT,
                Some(id),
                json!({"kind": input.kind, "grantee": input.id}),
            ),
            async |conn, _| {
                let row = storage::connection_in_org(&mut *conn, &p.org_id, id)
                    .await?
                    .ok_or(CoreError::NotFound("connection"))?;
                let grantee = match (input.kind.as_str(), &input.id) {
                    ("org", None) => p.org_id.clone(),
                    ("org", Some(_)) => {
                        return Err(CoreError::invalid("id", "an org grant takes no id"));
                    }
                    ("team", Some(t)) => {
                        storage::team_by_id(&mut *conn, &p.org_id, t)
                            .await?
                            .ok_or_else(|| {
                                CoreError::invalid(
                                    "id",
                                    format!("no team '{t}' in this organization"),
                                )
                            })?;
                        t.clone()
                    }
                    ("member", Some(m)) => {
                        storage::member_by_id(&mut *conn, &p.org_id, m)
                            .await?
                            .ok_or_else(|| {
                                CoreError::invalid(
                                    "id",
                                    format!("no member '{m}' in this organization"),
                                )
                            })?;
                        m.clone()
                    }
                    ("team" | "member", None) => {
                        return Err(CoreError::invalid(
                            "id",
                            "a team or member grant needs the team's or membership's id",
                        ));
                    }
                    (other, _) => {
                        return Err(CoreError::invalid(
                            "kind",
                            format!("'{other}' is not a grant kind: use org, team or member"),
                        ));
                    }
                };
                storage::insert_connection_grant(
                    &mut *conn,
                    &ConnectionGrantRow {
                        id: storage::new_id(),
                        org_id: p.org_id.clone(),
                        connection_id: row.id.clone(),
                        grantee_kind: input.kind.clone(),
                        grantee_id: grantee,
                        created_at: now,
                    },
                )
                .await?;
                self.load_view(conn, &row).await
            },
        )
        .await
    }

    /// Removes a grant (connections.publish).
    pub async fn revoke_connection_grant(
        &self,
        ctx: Ctx<'_>,
        id: &str,
        grant_id: &str,
    ) -> Result<ConnectionView, CoreError> {
        let p = ctx.principal;
        self.write(
            ctx,
            AuditEntry::new(
                &ops::CONNECTION_UNGRANT,
                Some(id),
                json!({"grant": grant_id}),
            ),
            async |conn, _| {
                let row = storage::connection_in_org(&mut *conn, &p.org_id, id)
                    .await?
                    .ok_or(CoreError::NotFound("connection"))?;
                if !storage::delete_connection_grant(&mut *conn, &p.org_id, &row.id, grant_id)
                    .await?
                {
                    return Err(CoreError::NotFound("grant"));
                }
                self.load_view(conn, &row).await
            },
        )
        .await
    }

    /// The opened shared credentials of a connection, for the gateway's
    /// upstream client only (never a surface): `(kind, name, value)`.
    pub async fn connection_credentials(
        &self,
        connection_id: &str,
    ) -> Result<Vec<(String, String, zeroize::Zeroizing<String>)>, CoreError> {
        let vault = self.vault()?;
        let mut out = Vec::new();
        for s in storage::connection_secrets(self.db.pool(), connection_id).await? {
            let plain = vault
                .open(
                    &format!("connection.{}", s.kind),
                    &s.id,
                    &switchboard_vault::Sealed {
                        key_id: s.key_id.clone(),
                        blob: s.sealed.clone(),
                    },
                )
                .map_err(|e| {
                    CoreError::Internal(format!(
                        "secret {} of connection {connection_id}: {e}",
                        s.name
                    ))
                })?;
            let text = String::from_utf8(plain.to_vec())
                .map_err(|_| CoreError::Internal("a sealed secret is not UTF-8".into()))?;
            out.push((s.kind, s.name, zeroize::Zeroizing::new(text)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_env_rules() {
        assert!(check_header("Authorization", "Bearer x").is_ok());
        assert!(check_header("X-Api-Key", "k").is_ok());
        assert!(check_header("Host", "x").is_err());
        assert!(check_header("Mcp-Session-Id", "x").is_err());
        assert!(check_header("Bad Header", "x").is_err());
        assert!(check_header("X-A", "a\r\nInjected: 1").is_err());
        assert!(check_env("GITHUB_TOKEN", "x").is_ok());
        assert!(check_env("SWITCHBOARD_SECRET_KEY", "x").is_err());
        assert!(check_env("LD_PRELOAD", "x").is_err());
        assert!(check_env("lower", "x").is_err());
        assert!(check_env("1ABC", "x").is_err());
        assert!(check_url("https://api.example.com/mcp").is_ok());
        assert!(check_url("https://u:p@api.example.com/mcp").is_err());
        assert!(check_url("ftp://api.example.com/").is_err());
    }
}

/// What a re-sealing pass did.
#[derive(Debug, Clone, Serialize)]
pub struct ResealReport {
    pub primary_key: String,
    pub resealed: u64,
    /// Values still sealed under older keys (0 when the rotation is done).
    pub remaining: u64,
}

/// Whether every sealed value opens with the keyring.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub opened: u64,
    /// `(secret id, error)` of those that do not open.
    pub failed: Vec<(String, String)>,
    /// Key id → how many values it seals.
    pub key_usage: BTreeMap<String, i64>,
}

impl Core {
    /// Re-seals up to `limit` values still sealed under older keys with the
    /// primary key, each in its own conditional update: a crash loses
    /// nothing, and running it again continues where it stopped.
    pub async fn reseal_secrets(&self, limit: u64) -> Result<ResealReport, CoreError> {
        let vault = self.vault()?;
        let primary = vault.primary().id().to_owned();
        let pool = self.db.pool();
        let mut resealed = 0u64;
        while resealed < limit {
            let batch = (limit - resealed).min(100) as i64;
            let rows = storage::secrets_not_under_key(pool, &primary, batch).await?;
            if rows.is_empty() {
                break;
            }
            for s in rows {
                let purpose = format!("connection.{}", s.kind);
                let old = switchboard_vault::Sealed {
                    key_id: s.key_id.clone(),
                    blob: s.sealed.clone(),
                };
                let Some(new) = vault
                    .reseal(&purpose, &s.id, &old)
                    .map_err(|e| CoreError::Internal(format!("secret {}: {e}", s.id)))?
                else {
                    continue;
                };
                if storage::reseal_connection_secret(
                    pool,
                    &s.id,
                    &s.key_id,
                    &new.key_id,
                    &new.blob,
                    crate::now_ms(),
                )
                .await?
                {
                    resealed += 1;
                }
            }
        }
        let remaining = storage::secret_key_usage(pool)
            .await?
            .into_iter()
            .filter(|(k, _)| *k != primary)
            .map(|(_, n)| n as u64)
            .sum();
        Ok(ResealReport {
            primary_key: primary,
            resealed,
            remaining,
        })
    }

    /// Opens every sealed value (and forgets it at once) to prove the
    /// keyring can: for operators after a key change.
    pub async fn verify_secrets(&self) -> Result<VerifyReport, CoreError> {
        let vault = self.vault()?;
        let pool = self.db.pool();
        let mut opened = 0u64;
        let mut failed = Vec::new();
        let mut after = String::new();
        loop {
            let rows = storage::secrets_after(pool, &after, 200).await?;
            let Some(last) = rows.last() else { break };
            after = last.id.clone();
            for s in rows {
                let sealed = switchboard_vault::Sealed {
                    key_id: s.key_id.clone(),
                    blob: s.sealed.clone(),
                };
                match vault.open(&format!("connection.{}", s.kind), &s.id, &sealed) {
                    Ok(_) => opened += 1,
                    Err(e) => failed.push((s.id.clone(), e.to_string())),
                }
            }
        }
        Ok(VerifyReport {
            opened,
            failed,
            key_usage: storage::secret_key_usage(pool).await?.into_iter().collect(),
        })
    }

    /// The ids of keys that still seal something.
    pub async fn keys_in_use(&self) -> Result<Vec<String>, CoreError> {
        Ok(storage::secret_key_usage(self.db.pool())
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }
}

/// One upstream tool as the gateway fetched it.
#[derive(Debug, Clone)]
pub struct CatalogTool {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub input_schema: serde_json::Value,
    pub output_schema: Option<serde_json::Value>,
    pub annotations: Option<serde_json::Value>,
    /// Why the tool cannot be offered (checked by the gateway when it is
    /// fetched); `None` when it can.
    pub problem: Option<String>,
}

/// A list an upstream may offer besides its tools, cached whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Resources,
    ResourceTemplates,
    Prompts,
}

impl Listing {
    pub const ALL: [Listing; 3] = [
        Listing::Resources,
        Listing::ResourceTemplates,
        Listing::Prompts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Listing::Resources => "resources",
            Listing::ResourceTemplates => "resource_templates",
            Listing::Prompts => "prompts",
        }
    }
}

/// Most items kept of one list (an upstream could page forever).
pub const MAX_LISTED: usize = 10_000;

/// Everything a catalog refresh fetched from an upstream.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tools: Vec<CatalogTool>,
    /// The lists the upstream offers, each with its items as the upstream
    /// sent them; a list it does not offer is absent.
    pub listings: Vec<(Listing, Vec<serde_json::Value>)>,
}

impl Catalog {
    fn summary(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("tools".into(), json!(self.tools.len()));
        for (kind, items) in &self.listings {
            m.insert(kind.as_str().into(), json!(items.len()));
        }
        serde_json::Value::Object(m)
    }
}

/// A fetched tool that is not offered, and why (in a connection's health).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HiddenTool {
    pub name: String,
    pub reason: String,
}

/// Where the gateway must connect, and with what (never shown to anyone).
#[derive(Debug, Clone)]
pub struct UpstreamTarget {
    pub id: String,
    pub org_id: String,
    /// The connection's `updated_at`: a change to it (URL, command,
    /// secrets) means a live upstream session is out of date.
    pub version: i64,
    pub slug: String,
    pub transport: String,
    pub url: Option<String>,
    pub command: Option<String>,
    pub args: Vec<String>,
}

/// Upstream tool names are at most this long and this many are kept.
const MAX_CATALOG: usize = 1000;

impl Core {
    /// The connection whose process an admin looks at.
    pub async fn connection_process_target(
        &self,
        ctx: Ctx<'_>,
        id: &str,
    ) -> Result<UpstreamTarget, CoreError> {
        self.authorize(ctx, &ops::CONNECTION_PROCESS, Some(id))
            .await?;
        let row = storage::connection_in_org(self.db.pool(), &ctx.principal.org_id, id)
            .await?
            .ok_or(CoreError::NotFound("connection"))?;
        Ok(target(row))
    }

    /// The upstream a connection points at, for an admin refreshing its
    /// catalog (connections.publish).
    pub async fn connection_for_refresh(
        &self,
        ctx: Ctx<'_>,
        id: &str,
    ) -> Result<UpstreamTarget, CoreError> {
        let p = ctx.principal;
        self.authorize(ctx, &ops::CONNECTION_REFRESH, Some(id))
            .await?;
        let row = storage::connection_in_org(self.db.pool(), &p.org_id, id)
            .await?
            .ok_or(CoreError::NotFound("connection"))?;
        Ok(target(row))
    }

    /// Stores what a catalog refresh found: the tools and the other lists
    /// (replacing the cached ones) and the health, or the failure and
    /// `disconnected` (the cached catalog stays). Audited.
    pub async fn store_catalog(
        &self,
        ctx: Ctx<'_>,
        id: &str,
        fetched: Result<Catalog, String>,
    ) -> Result<ConnectionView, CoreError> {
        let p = ctx.principal;
        let now = ctx.meta.now_ms;
        let args = match &fetched {
            Ok(c) => c.summary(),
            Err(e) => json!({"error": e}),
        };
        self.write(
            ctx,
            AuditEntry::new(&ops::CONNECTION_REFRESH, Some(id), args),
            async |conn, _| {
                let row = storage::connection_in_org(&mut *conn, &p.org_id, id)
                    .await?
                    .ok_or(CoreError::NotFound("connection"))?;
                write_catalog(conn, &row.id, &fetched, now).await?;
                self.load_view(conn, &row).await
            },
        )
        .await
    }

    /// The cached tool names of a connection (for admins and tests).
    pub async fn catalog_tool_names(
        &self,
        ctx: Ctx<'_>,
        id: &str,
    ) -> Result<Vec<String>, CoreError> {
        let view = self.get_connection(ctx, id).await?;
        Ok(storage::connection_tools(self.db.pool(), &view.id, SHARED)
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect())
    }
}

fn target(row: ConnectionRow) -> UpstreamTarget {
    UpstreamTarget {
        args: serde_json::from_str(&row.args).unwrap_or_default(),
        id: row.id,
        org_id: row.org_id,
        version: row.updated_at,
        slug: row.slug,
        transport: row.transport,
        url: row.url,
        command: row.command,
    }
}

fn catalog_tool(t: storage::ConnectionToolRow) -> CatalogTool {
    let parse = |s: &str| serde_json::from_str(s).ok();
    CatalogTool {
        input_schema: parse(&t.input_schema).unwrap_or_else(|| json!({"type": "object"})),
        output_schema: t.output_schema.as_deref().and_then(parse),
        annotations: t.annotations.as_deref().and_then(parse),
        name: t.name,
        title: t.title,
        description: t.description,
        problem: t.problem,
    }
}

/// The gateway's own work on connections: no caller, no audit event (a
/// person's use is audited by the call that needed it; an admin's refresh by
/// [`Core::store_catalog`]).
impl Core {
    /// The enabled connections granted to the caller: to the org, one of
    /// their teams, or them. The caller's use is checked and audited by the
    /// call path, so this records nothing.
    pub async fn granted_connection_rows(
        &self,
        p: &crate::Principal,
    ) -> Result<Vec<ConnectionRow>, CoreError> {
        Ok(storage::usable_connections(self.db.pool(), &p.org_id, &p.membership_id).await?)
    }

    /// The cached catalog of a connection's shared credential, by name.
    pub async fn connection_catalog(&self, id: &str) -> Result<Vec<CatalogTool>, CoreError> {
        Ok(storage::connection_tools(self.db.pool(), id, SHARED)
            .await?
            .into_iter()
            .map(catalog_tool)
            .collect())
    }

    /// Where connection `id` points, if it exists.
    pub async fn upstream_target(&self, id: &str) -> Result<Option<UpstreamTarget>, CoreError> {
        Ok(storage::connection_by_id(self.db.pool(), id)
            .await?
            .map(target))
    }

    /// Replaces the catalog after an automatic refresh (scheduled, or the
    /// upstream said its list changed), or records why it failed.
    pub async fn store_catalog_automatic(
        &self,
        id: &str,
        fetched: Result<Catalog, String>,
        now: i64,
    ) -> Result<(), CoreError> {
        let mut tx = self.db.begin_write().await?;
        write_catalog(&mut tx, id, &fetched, now).await?;
        crate::Db::commit(tx).await?;
        Ok(())
    }

    /// One of a connection's cached lists, as the upstream sent its items;
    /// `None` when the upstream does not offer it (or was never reached).
    pub async fn connection_listing(
        &self,
        id: &str,
        kind: Listing,
    ) -> Result<Option<Vec<serde_json::Value>>, CoreError> {
        let Some(text) =
            storage::connection_listing(self.db.pool(), id, SHARED, kind.as_str()).await?
        else {
            return Ok(None);
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            CoreError::Internal(format!("a cached {} list is not JSON: {e}", kind.as_str()))
        })
    }

    /// Records the median latency of a connection's last requests (the
    /// gateway's health book, every few seconds while there is traffic).
    pub async fn record_connection_latency(
        &self,
        id: &str,
        latency_ms: i64,
        checked_at: i64,
    ) -> Result<(), CoreError> {
        Ok(storage::record_connection_latency(self.db.pool(), id, latency_ms, checked_at).await?)
    }

    /// Records a connection's health as the gateway sees it.
    pub async fn set_connection_health(
        &self,
        id: &str,
        health: &str,
        last_error: Option<&str>,
    ) -> Result<(), CoreError> {
        Ok(storage::set_connection_health_only(self.db.pool(), id, health, last_error).await?)
    }

    /// Claims up to `limit` connections whose catalog is older than
    /// `max_age_ms` for a refresh by this replica (another replica that
    /// claimed one first keeps it).
    pub async fn claim_stale_catalogs(
        &self,
        max_age_ms: i64,
        limit: i64,
        now: i64,
    ) -> Result<Vec<String>, CoreError> {
        let pool = self.db.pool();
        let mut won = Vec::new();
        for id in storage::connections_due_for_refresh(pool, now - max_age_ms, limit).await? {
            let seen = storage::connection_by_id(pool, &id)
                .await?
                .and_then(|r| r.catalog_refreshed_at);
            if seen.is_some_and(|t| t >= now - max_age_ms) {
                continue;
            }
            if storage::claim_catalog_refresh(pool, &id, seen, now).await? {
                won.push(id);
            }
        }
        Ok(won)
    }
}

/// Replaces the cached catalog with what a refresh fetched and records
/// the health; a failed refresh keeps the catalog and records why.
async fn write_catalog(
    conn: &mut Conn,
    id: &str,
    fetched: &Result<Catalog, String>,
    now: i64,
) -> Result<(), CoreError> {
    let catalog = match fetched {
        Ok(c) => c,
        Err(e) => {
            storage::set_connection_health(&mut *conn, id, "disconnected", Some(e), None, now)
                .await?;
            return Ok(());
        }
    };
    let rows: Vec<storage::ConnectionToolRow> = catalog
        .tools
        .iter()
        .take(MAX_CATALOG)
        .map(|t| tool_row(id, t, now))
        .collect();
    storage::replace_connection_tools(conn, id, SHARED, &rows).await?;
    for kind in Listing::ALL {
        let items = match catalog.listings.iter().find(|(k, _)| *k == kind) {
            Some((_, items)) => Some(
                serde_json::to_string(items.get(..MAX_LISTED).unwrap_or(items))
                    .map_err(|e| CoreError::Internal(format!("encoding a list: {e}")))?,
            ),
            None => None,
        };
        storage::replace_connection_listing(conn, id, SHARED, kind.as_str(), items.as_deref(), now)
            .await?;
    }
    storage::set_connection_health(&mut *conn, id, "connected", None, Some(now), now).await?;
    Ok(())
}

fn tool_row(id: &str, t: &CatalogTool, now: i64) -> storage::ConnectionToolRow {
    storage::ConnectionToolRow {
        connection_id: id.to_owned(),
        credential_key: SHARED.to_owned(),
        name: t.name.clone(),
        title: t.title.clone(),
        description: t.description.clone(),
        input_schema: t.input_schema.to_string(),
        output_schema: t.output_schema.as_ref().map(|v| v.to_string()),
        annotations: t.annotations.as_ref().map(|v| v.to_string()),
        fetched_at: now,
        problem: t.problem.clone(),
    }
}

/// The health of an org's connections, for `/api/v1/status`.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ConnectionsHealth {
    pub total: usize,
    pub connected: usize,
    pub degraded: usize,
    pub disconnected: usize,
    /// Never contacted yet.
    pub unknown: usize,
    /// The connections that are not `connected`, or that hide some of
    /// their upstream's tools, with why (for those who publish
    /// connections; empty for others).
    pub attention: Vec<ConnectionHealthItem>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConnectionHealthItem {
    pub slug: String,
    pub health: String,
    pub last_error: Option<String>,
    /// How many fetched tools are not offered (the connection's
    /// `hidden_tools` says which and why).
    pub hidden_tools: usize,
}

impl Core {
    /// The caller's org's connections by health.
    pub async fn connections_health(
        &self,
        p: &crate::Principal,
    ) -> Result<ConnectionsHealth, CoreError> {
        let rows = storage::connection_healths(self.db.pool(), &p.org_id).await?;
        let admin = p.permissions.contains(Permission::ConnectionsPublish);
        let mut out = ConnectionsHealth {
            total: rows.len(),
            ..Default::default()
        };
        let hidden: BTreeMap<String, i64> = if admin {
            storage::hidden_tool_counts(self.db.pool(), &p.org_id)
                .await?
                .into_iter()
                .collect()
        } else {
            BTreeMap::new()
        };
        for (slug, health, last_error) in rows {
            match health.as_str() {
                "connected" => out.connected += 1,
                "degraded" => out.degraded += 1,
                "disconnected" => out.disconnected += 1,
                _ => out.unknown += 1,
            }
            let hidden_tools = hidden.get(&slug).copied().unwrap_or(0) as usize;
            if admin && (health != "connected" || hidden_tools > 0) {
                out.attention.push(ConnectionHealthItem {
                    slug,
                    health,
                    last_error,
                    hidden_tools,
                });
            }
        }
        Ok(out)
    }
}

/// The purpose sealed into a relayed `requestState`.
const REQUEST_STATE: &str = "mrtr.request-state";

impl Core {
    /// Wraps an upstream's `requestState` in our own sealed envelope bound
    /// to `binding` (the caller, the connection and the request), so a
    /// client sees only an opaque value it can neither read nor reuse
    /// elsewhere.
    pub fn seal_request_state(&self, binding: &str, upstream: &str) -> Result<String, CoreError> {
        let sealed = self
            .vault()?
            .seal(REQUEST_STATE, binding, upstream.as_bytes())
            .map_err(|e| CoreError::Internal(format!("sealing a request state: {e}")))?;
        Ok(format!("{}.{}", sealed.key_id, sealed.blob))
    }

    /// Opens a `requestState` this server sealed for `binding`. Anything
    /// else (changed, or issued to another caller, connection or request)
    /// is refused.
    pub fn open_request_state(&self, binding: &str, ours: &str) -> Result<String, CoreError> {
        let refused = || {
            CoreError::invalid(
                "requestState",
                "this requestState was not issued to you for this request (or was changed): send the request again without inputResponses and requestState",
            )
        };
        let (key_id, blob) = ours.split_once('.').ok_or_else(refused)?;
        let plain = self
            .vault()?
            .open(
                REQUEST_STATE,
                binding,
                &switchboard_vault::Sealed {
                    key_id: key_id.to_owned(),
                    blob: blob.to_owned(),
                },
            )
            .map_err(|_| refused())?;
        String::from_utf8(plain.to_vec()).map_err(|_| refused())
    }
}

/// The catalog entry behind a stdio connection, and the check made before
/// every start of its child.
impl Core {
    /// The catalog entry a stdio connection runs, and whether it is the
    /// org's own: its recorded integration (built in, the operator's, or the
    /// org's), or, for a connection saved before connections recorded it,
    /// an entry whose exact command line it has with only variables an org
    /// admin may set.
    async fn bound_integration_of(
        &self,
        conn: &mut Conn,
        row: &ConnectionRow,
    ) -> Result<(Integration, bool), CoreError> {
        let unbound = || {
            CoreError::Forbidden(format!(
                "the stdio connection '{}' is not bound to an integration of this server's catalog (it was saved before stdio connections were, or its entry is gone): publish it again from the catalog",
                row.slug
            ))
        };
        let Some(id) = &row.integration_id else {
            let args: Vec<String> = serde_json::from_str(&row.args).unwrap_or_default();
            let env: Vec<String> = storage::connection_secrets(&mut *conn, &row.id)
                .await?
                .into_iter()
                .filter(|s| s.kind == "env")
                .map(|s| s.name)
                .collect();
            let command = row.command.as_deref().unwrap_or_default();
            let found = self
                .config
                .catalog
                .by_command_line(command, &args)
                .filter(|e| {
                    env.iter()
                        .all(|n| e.check_env(n, Publisher::OrgAdmin).is_ok())
                })
                .ok_or_else(unbound)?;
            return Ok((found.clone(), false));
        };
        if let Some(e) = self.config.catalog.find(id) {
            return Ok((e.clone(), false));
        }
        let stored = storage::custom_integrations(&mut *conn, &row.org_id).await?;
        stored
            .iter()
            .find(|(sid, _)| sid == id)
            .and_then(|(_, d)| serde_json::from_str::<serde_json::Value>(d).ok())
            .and_then(|v| crate::integrations::parse_custom(&v).ok())
            .map(|e| (e, true))
            .ok_or_else(unbound)
    }

    async fn bound_integration(
        &self,
        conn: &mut Conn,
        row: &ConnectionRow,
    ) -> Result<Integration, CoreError> {
        Ok(self.bound_integration_of(conn, row).await?.0)
    }

    /// Whether connection `id`'s child may start now with these environment
    /// variables: its catalog entry still allows its command line and every
    /// variable (an org's own package only while the operator allows them).
    /// The pool asks before every start, so a rule that tightened applies to
    /// connections stored before it.
    pub async fn check_stdio_launch(
        &self,
        id: &str,
        env: &[&str],
    ) -> Result<Vec<crate::integrations::HostPath>, String> {
        let result: Result<_, CoreError> = async {
            let row = storage::connection_by_id(self.db.pool(), id)
                .await?
                .ok_or(CoreError::NotFound("connection"))?;
            let mut conn = self
                .db
                .pool()
                .acquire()
                .await
                .map_err(storage::StorageError::from)?;
            let (integration, custom) = self.bound_integration_of(&mut conn, &row).await?;
            if custom && !self.config.allow_custom_packages {
                return Err(CoreError::Forbidden(format!(
                    "the integration '{}' is this organization's own npm package, and this server's operator no longer allows org-defined packages (gateway.allow_custom_packages)",
                    integration.id
                )));
            }
            let args: Vec<String> = serde_json::from_str(&row.args).unwrap_or_default();
            integration
                .check_launch(
                    row.command.as_deref().unwrap_or_default(),
                    &args,
                    env.iter().copied(),
                )
                .map_err(CoreError::Forbidden)
        }
        .await;
        result.map_err(|e| e.to_string())
    }
}

/// An org's own integrations, added to the shipped catalog by its admins.
impl Core {
    /// The org's custom integration definitions (JSON), for anyone who may
    /// use connections.
    pub async fn custom_integrations(
        &self,
        ctx: Ctx<'_>,
    ) -> Result<Vec<serde_json::Value>, CoreError> {
        let p = ctx.principal;
        self.authorize(ctx, &ops::INTEGRATION_LIST, None).await?;
        Ok(storage::custom_integrations(self.db.pool(), &p.org_id)
            .await?
            .into_iter()
            .filter_map(|(_, d)| serde_json::from_str(&d).ok())
            .collect())
    }

    /// Stores a custom integration (connections.publish). The caller has
    /// checked the definition ([`crate::integrations::parse_custom`]).
    pub async fn add_custom_integration(
        &self,
        ctx: Ctx<'_>,
        integration_id: &str,
        definition: &serde_json::Value,
    ) -> Result<(), CoreError> {
        let p = ctx.principal;
        let now = ctx.meta.now_ms;
        self.write(
            ctx,
            AuditEntry::new(&ops::INTEGRATION_ADD, Some(integration_id), json!({})),
            async |conn, _| {
                if self.config.catalog.find(integration_id).is_some() {
                    return Err(CoreError::conflict(
                        "integration_exists",
                        format!("'{integration_id}' is an integration of this server's catalog: choose another id"),
                    ));
                }
                if !storage::insert_custom_integration(
                    &mut *conn,
                    &storage::new_id(),
                    &p.org_id,
                    integration_id,
                    &definition.to_string(),
                    &p.account_id,
                    now,
                )
                .await?
                {
                    return Err(CoreError::Conflict {
                        code: "integration_exists",
                        message: format!("this organization already has an integration '{integration_id}': delete it first, or choose another id"),
                    });
                }
                Ok(())
            },
        )
        .await
    }

    /// Removes a custom integration (connections.publish); refused while a
    /// connection runs it (a stdio child starts only from its entry).
    pub async fn delete_custom_integration(
        &self,
        ctx: Ctx<'_>,
        integration_id: &str,
    ) -> Result<(), CoreError> {
        let p = ctx.principal;
        self.write(
            ctx,
            AuditEntry::new(&ops::INTEGRATION_DELETE, Some(integration_id), json!({})),
            async |conn, _| {
                let users =
                    storage::connections_of_integration(&mut *conn, &p.org_id, integration_id)
                        .await?;
                if !users.is_empty() {
                    return Err(CoreError::conflict(
                        "integration_in_use",
                        format!(
                            "the connections {} run this integration: delete them first",
                            users.join(", ")
                        ),
                    ));
                }
                if !storage::delete_custom_integration(&mut *conn, &p.org_id, integration_id)
                    .await?
                {
                    return Err(CoreError::NotFound("integration"));
                }
                Ok(())
            },
        )
        .await
    }
}
