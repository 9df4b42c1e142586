//! The `/mcp` server handler on rmcp: one instance per legacy session or per
//! stateless request, with no state of its own. The caller (principal and
//! request metadata) comes from the HTTP request's extensions, put there by
//! [`crate::guard`]; every request is one audit event.

use axum::http::request::Parts;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, DiscoverResult, Implementation,
    InitializeRequestParams, InitializeResult, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::SessionRestoreMarker;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};
use switchboard_capabilities::Capabilities;
use switchboard_core::{CallInfo, Ctx, Outcome, Principal, RequestMeta};

use crate::wire;

/// How long clients may reuse a tool list. Lists are per caller (private);
/// a stale list is harmless because every call is authorized again.
const LIST_TTL_MS: u64 = 30_000;

/// The HTTP request behind an MCP request (put there by rmcp).
pub(crate) fn request_parts(ctx: &RequestContext<RoleServer>) -> Result<&Parts, ErrorData> {
    ctx.extensions.get::<Parts>().ok_or_else(|| {
        ErrorData::internal_error(
            "the request reached the handler without its HTTP parts",
            None,
        )
    })
}

/// The caller of an MCP request (from the guard), with the request's
/// metadata naming `method`, the tool and its arguments for the audit.
pub(crate) fn request_caller(
    ctx: &RequestContext<RoleServer>,
    method: &str,
    tool: Option<&str>,
    arguments: Value,
) -> Result<(Principal, RequestMeta), ErrorData> {
    let parts = request_parts(ctx)?;
    let principal = parts
        .extensions
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| {
            ErrorData::internal_error("the request reached the handler unauthenticated", None)
        })?;
    let mut meta = parts
        .extensions
        .get::<RequestMeta>()
        .cloned()
        .ok_or_else(|| {
            ErrorData::internal_error("the request reached the handler without metadata", None)
        })?;
    meta.call = Some(CallInfo {
        method: method.to_owned(),
        tool: tool.map(str::to_owned),
        arguments,
    });
    Ok((principal, meta))
}

/// Records an MCP request that is not a tool call (the call path records
/// those) as one audit event.
pub(crate) async fn record_request(
    caps: &Capabilities,
    principal: &Principal,
    meta: &RequestMeta,
    method: &str,
    outcome: Outcome,
    message: Option<&str>,
) -> Result<(), ErrorData> {
    let c = Ctx { principal, meta };
    caps.core()
        .record_request(c, None, outcome, message)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, method, "could not audit an MCP request");
            ErrorData::internal_error("the server could not record this request", None)
        })
}

/// Keeps a legacy session's log level with the session (in the database),
/// so every replica honours it. A failure is logged; the request stands.
#[allow(deprecated)] // logging levels are part of 2025-11-25
pub(crate) async fn store_session_log_level(
    caps: &Capabilities,
    ctx: &RequestContext<RoleServer>,
    level: rmcp::model::LoggingLevel,
) {
    let level = serde_json::to_value(level)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned));
    if let (Some(level), Some(parts)) = (level, ctx.extensions.get::<Parts>())
        && let Some(id) = parts
            .headers
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        && let Err(e) = caps.core().set_mcp_session_log_level(id, &level).await
    {
        tracing::warn!(error = %e, "could not store the session's log level");
    }
}

#[derive(Clone)]
pub struct OrgHandler {
    caps: Capabilities,
}

impl OrgHandler {
    pub fn new(caps: Capabilities) -> Self {
        OrgHandler { caps }
    }

    /// The caller of this request, with the request's metadata naming `method`.
    fn caller(
        &self,
        ctx: &RequestContext<RoleServer>,
        method: &str,
        tool: Option<&str>,
        arguments: Value,
    ) -> Result<(Principal, RequestMeta), ErrorData> {
        request_caller(ctx, method, tool, arguments)
    }

    /// Records a request that is not a tool call (lists, ping, initialize…).
    async fn audit(
        &self,
        ctx: &RequestContext<RoleServer>,
        method: &str,
        outcome: Outcome,
        message: Option<&str>,
    ) -> Result<(), ErrorData> {
        let (principal, meta) = self.caller(ctx, method, None, Value::Null)?;
        self.record(&principal, &meta, method, outcome, message)
            .await
    }

    /// [`Self::audit`] for a caller already resolved.
    async fn record(
        &self,
        principal: &Principal,
        meta: &RequestMeta,
        method: &str,
        outcome: Outcome,
        message: Option<&str>,
    ) -> Result<(), ErrorData> {
        record_request(&self.caps, principal, meta, method, outcome, message).await
    }

    fn is_2026(ctx: &RequestContext<RoleServer>) -> bool {
        ctx.protocol_version()
            .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
    }
}

impl ServerHandler for OrgHandler {
    #[allow(deprecated)] // logging is still part of 2025-11-25, which most clients speak
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_prompts()
            .enable_resources()
            .enable_tools()
            .build();
        let mut info = InitializeResult::new(capabilities);
        info.server_info =
            Implementation::new("switchboard", env!("CARGO_PKG_VERSION")).with_title("Switchboard");
        info.instructions = Some(
            "Switchboard: your organization's own tools (members, teams, projects, tasks, requirements). You act as the person (or org token) you authenticated as; every call is authorized and audited. Call `whoami` to see who that is."
                .into(),
        );
        info
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        context.peer.set_peer_info(request.clone());
        let result = self.negotiate_initialize(&request);
        // A replay (another replica rebuilding the session) is not a request.
        if context.extensions.get::<SessionRestoreMarker>().is_none() {
            let outcome = if result.is_ok() {
                Outcome::Ok
            } else {
                Outcome::Error
            };
            self.audit(&context, "initialize", outcome, None).await?;
        }
        result
    }

    async fn ping(&self, context: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        self.audit(&context, "ping", Outcome::Ok, None).await
    }

    async fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, ErrorData> {
        self.audit(&context, "server/discover", Outcome::Ok, None)
            .await?;
        Ok(DiscoverResult::from_server_info(
            self.supported_protocol_versions().into_owned(),
            self.get_info(),
        ))
    }

    #[allow(deprecated)] // logging/setLevel is gone from 2026-07-28, still part of 2025-11-25
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if Self::is_2026(&context) {
            return Err(ErrorData::method_not_found::<
                rmcp::model::SetLevelRequestMethod,
            >());
        }
        self.audit(&context, "logging/setLevel", Outcome::Ok, None)
            .await?;
        // Kept with the session so another replica honours it too.
        store_session_log_level(&self.caps, &context, request.level).await;
        Ok(())
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let method = "tools/list";
        let (principal, meta) = self.caller(&context, method, None, Value::Null)?;
        let cursor = request.as_ref().and_then(|r| r.cursor.as_deref());
        let page = match self.caps.list(&principal, cursor) {
            Ok(p) => p,
            Err(m) => {
                self.record(&principal, &meta, method, Outcome::Error, Some(&m))
                    .await?;
                return Err(ErrorData::invalid_params(
                    m,
                    Some(json!({"cursor": cursor})),
                ));
            }
        };
        self.record(&principal, &meta, method, Outcome::Ok, None)
            .await?;
        let mut result =
            ListToolsResult::with_all_items(page.items.iter().map(|c| wire::tool(c)).collect())
                .with_ttl_ms(LIST_TTL_MS)
                .with_cache_scope(CacheScope::Private);
        result.next_cursor = page.next_cursor;
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.clone();
        let (principal, meta) = self.caller(
            &context,
            "tools/call",
            Some(&request.name),
            Value::Object(args.clone().unwrap_or_default()),
        )?;
        let ctx = Ctx {
            principal: &principal,
            meta: &meta,
        };
        let outcome = self.caps.call(ctx, &request.name, args).await;
        wire::tool_result(outcome).map(Into::into)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.audit(&context, "prompts/list", Outcome::Ok, None)
            .await?;
        Ok(ListPromptsResult::with_all_items(Vec::new())
            .with_ttl_ms(LIST_TTL_MS)
            .with_cache_scope(CacheScope::Private))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.audit(&context, "resources/list", Outcome::Ok, None)
            .await?;
        Ok(ListResourcesResult::with_all_items(Vec::new())
            .with_ttl_ms(LIST_TTL_MS)
            .with_cache_scope(CacheScope::Private))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.audit(&context, "resources/templates/list", Outcome::Ok, None)
            .await?;
        Ok(ListResourceTemplatesResult::with_all_items(Vec::new())
            .with_ttl_ms(LIST_TTL_MS)
            .with_cache_scope(CacheScope::Private))
    }

    async fn read_resource(
        &self,
        request: rmcp::model::ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ReadResourceResponse, ErrorData> {
        let message = format!("there is no resource at '{}'", request.uri);
        self.audit(&context, "resources/read", Outcome::Error, Some(&message))
            .await?;
        Err(ErrorData::resource_not_found(
            message,
            Some(json!({"uri": request.uri})),
        ))
    }

    /// No tool declares `x-mcp-header` parameters, so rmcp needs no schema
    /// for `Mcp-Param-*` checks (it still checks `Mcp-Name`).
    fn get_tool(&self, _name: &str) -> Option<rmcp::model::Tool> {
        None
    }
}
