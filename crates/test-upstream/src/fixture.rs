//! The fixture's MCP surface, by hand on rmcp's `ServerHandler`: the tools,
//! resources, prompts and completions the conformance scenarios describe,
//! and the gateway's test tools. Results are written as the JSON the
//! scenarios show, then decoded into rmcp's types.

// Logging and sampling are deprecated in 2026-07-28, still part of 2025-11-25.
#![allow(deprecated)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult,
    GetPromptRequestParams, GetPromptResponse, GetPromptResult, Implementation, InitializeResult,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

/// A 1×1 red PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A WAV header with no samples (8 kHz, mono, 16-bit).
const WAV: &str = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA=";

/// State shared by every session of one process.
#[derive(Default)]
pub struct Shared {
    subscriptions: Mutex<BTreeSet<String>>,
    /// Tools added with `add_tool`.
    added: Mutex<Vec<String>>,
}

#[derive(Clone)]
pub struct Fixture {
    shared: Arc<Shared>,
    stdio: bool,
}

fn decode<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ErrorData> {
    serde_json::from_value(v).map_err(|e| ErrorData::internal_error(e.to_string(), None))
}

/// A final result: 2026-07-28 requires `resultType`; earlier eras ignore it.
fn result<T: serde::de::DeserializeOwned>(mut v: Value) -> Result<T, ErrorData> {
    if let Value::Object(m) = &mut v {
        m.entry("resultType").or_insert_with(|| json!("complete"));
    }
    decode(v)
}

fn text(t: &str) -> Value {
    json!({"content": [{"type": "text", "text": t}]})
}

fn tool(name: &str, description: &str, schema: Value) -> Tool {
    let Value::Object(schema) = schema else {
        unreachable!("tool schemas are objects")
    };
    Tool::new(name.to_owned(), description.to_owned(), Arc::new(schema))
}

fn no_args() -> Value {
    json!({"type": "object", "properties": {}})
}

fn string_arg(name: &str, description: &str) -> Value {
    json!({"type": "object", "properties": {name: {"type": "string", "description": description}}, "required": [name]})
}

impl Fixture {
    pub fn new(shared: Arc<Shared>, stdio: bool) -> Self {
        Fixture { shared, stdio }
    }

    fn tools(&self) -> Vec<Tool> {
        let mut tools = vec![
            tool("test_simple_text", "Returns a simple text", no_args()),
            tool("test_image_content", "Returns an image", no_args()),
            tool("test_audio_content", "Returns audio", no_args()),
            tool(
                "test_embedded_resource",
                "Returns an embedded resource",
                no_args(),
            ),
            tool(
                "test_multiple_content_types",
                "Returns text, an image and a resource",
                no_args(),
            ),
            tool(
                "test_tool_with_logging",
                "Sends three log messages while it runs",
                no_args(),
            ),
            tool("test_error_handling", "Always fails", no_args()),
            tool(
                "test_tool_with_progress",
                "Reports progress while it runs",
                no_args(),
            ),
            tool(
                "test_sampling",
                "Asks the client's model",
                string_arg("prompt", "The prompt to send"),
            ),
            tool(
                "test_elicitation",
                "Asks the user",
                string_arg("message", "The message to show"),
            ),
            tool(
                "test_elicitation_sep1034_defaults",
                "Asks with defaults for every primitive type",
                no_args(),
            ),
            tool(
                "test_elicitation_sep1330_enums",
                "Asks with every enum variant",
                no_args(),
            ),
            tool(
                "json_schema_2020_12_tool",
                "Tool with JSON Schema 2020-12 features",
                json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "type": "object",
                    "$defs": {"address": {"$anchor": "addressDef", "type": "object",
                        "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
                    "properties": {
                        "name": {"type": "string"},
                        "address": {"$ref": "#/$defs/address"},
                        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                        "phone": {"type": "string"},
                        "email": {"type": "string"}
                    },
                    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
                    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
                    "then": {"required": ["phone"]},
                    "else": {"required": ["email"]},
                    "additionalProperties": false
                }),
            ),
            // The gateway's own test tools.
            tool(
                "echo",
                "Returns its text",
                string_arg("text", "What to return"),
            ),
            tool(
                "hang",
                "Sleeps for `seconds` (default an hour) unless cancelled",
                json!({"type": "object", "properties": {"seconds": {"type": "number"}}}),
            ),
            tool("crash", "Exits the process at once (code 3)", no_args()),
            tool(
                "big_output",
                "Returns one text of `bytes` characters",
                json!({"type": "object", "properties": {"bytes": {"type": "integer", "minimum": 0}}, "required": ["bytes"]}),
            ),
            tool(
                "garbage",
                "stdio only: writes a line of non-JSON to stdout, then answers",
                no_args(),
            ),
            tool(
                "env",
                "The value of an environment variable, or null",
                string_arg("name", "The variable"),
            ),
            tool("pid", "This process's id", no_args()),
            tool(
                "add_tool",
                "Adds a tool named `name` and says the list changed",
                string_arg("name", "The new tool's name"),
            ),
        ];
        if let Ok(added) = self.shared.added.lock() {
            for name in added.iter() {
                tools.push(tool(name, "Added at run time", no_args()));
            }
        }
        tools
    }

    async fn call(
        &self,
        name: &str,
        args: &serde_json::Map<String, Value>,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<Value, ErrorData> {
        let arg = |k: &str| {
            args.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Ok(match name {
            "test_simple_text" => text("This is a simple text response for testing."),
            "test_image_content" => json!({"content": [{"type": "image", "data": PNG, "mimeType": "image/png"}]}),
            "test_audio_content" => json!({"content": [{"type": "audio", "data": WAV, "mimeType": "audio/wav"}]}),
            "test_embedded_resource" => json!({"content": [{"type": "resource", "resource": {
                "uri": "test://embedded-resource", "mimeType": "text/plain",
                "text": "This is an embedded resource content."}}]}),
            "test_multiple_content_types" => json!({"content": [
                {"type": "text", "text": "Multiple content types test:"},
                {"type": "image", "data": PNG, "mimeType": "image/png"},
                {"type": "resource", "resource": {"uri": "test://mixed-content-resource",
                    "mimeType": "application/json", "text": "{\"test\":\"data\",\"value\":123}"}}
            ]}),
            "test_tool_with_logging" => {
                for (i, message) in ["Tool execution started", "Tool processing data", "Tool execution completed"]
                    .into_iter()
                    .enumerate()
                {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    let _ = ctx
                        .peer
                        .notify_logging_message(decode(json!({"level": "info", "data": message}))?)
                        .await;
                }
                text("Tool with logging executed successfully")
            }
            "test_error_handling" => json!({"isError": true, "content": [{"type": "text",
                "text": "This tool intentionally returns an error for testing"}]}),
            "test_tool_with_progress" => {
                let token = ctx.meta.get_progress_token();
                for (i, progress) in [0, 50, 100].into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    if let Some(t) = &token {
                        let _ = ctx
                            .peer
                            .notify_progress(decode(json!({"progressToken": t, "progress": progress, "total": 100}))?)
                            .await;
                    }
                }
                text("Tool with progress executed successfully")
            }
            "test_sampling" => {
                let params = decode(json!({"messages": [{"role": "user", "content": {"type": "text", "text": arg("prompt")}}], "maxTokens": 100}))?;
                match ctx.peer.create_message(params).await {
                    Ok(r) => {
                        let v = serde_json::to_value(&r).unwrap_or_default();
                        let answer = v["content"]["text"]
                            .as_str()
                            .or_else(|| v["content"][0]["text"].as_str())
                            .unwrap_or_default()
                            .to_owned();
                        text(&format!("LLM response: {answer}"))
                    }
                    Err(e) => json!({"isError": true, "content": [{"type": "text", "text": format!("sampling failed: {e}")}]}),
                }
            }
            "test_elicitation" => {
                self.elicit(ctx, json!({"message": arg("message"), "requestedSchema": {"type": "object", "properties": {
                    "username": {"type": "string", "description": "User's response"},
                    "email": {"type": "string", "description": "User's email address"}},
                    "required": ["username", "email"]}}), "User response")
                    .await?
            }
            "test_elicitation_sep1034_defaults" => {
                self.elicit(ctx, json!({"message": "Please review and update the form fields with defaults", "requestedSchema": {"type": "object", "properties": {
                    "name": {"type": "string", "description": "User name", "default": "John Doe"},
                    "age": {"type": "integer", "description": "User age", "default": 30},
                    "score": {"type": "number", "description": "User score", "default": 95.5},
                    "status": {"type": "string", "description": "User status", "enum": ["active", "inactive", "pending"], "default": "active"},
                    "verified": {"type": "boolean", "description": "Verification status", "default": true}}}}), "Elicitation completed")
                    .await?
            }
            "test_elicitation_sep1330_enums" => {
                self.elicit(ctx, json!({"message": "Please select options from the enum fields", "requestedSchema": {"type": "object", "properties": {
                    "untitledSingle": {"type": "string", "description": "Select one option", "enum": ["option1", "option2", "option3"]},
                    "titledSingle": {"type": "string", "description": "Select one option with titles", "oneOf": [
                        {"const": "value1", "title": "First Option"}, {"const": "value2", "title": "Second Option"}, {"const": "value3", "title": "Third Option"}]},
                    "legacyEnum": {"type": "string", "description": "Select one option (legacy)", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
                    "untitledMulti": {"type": "array", "description": "Select multiple options", "minItems": 1, "maxItems": 3, "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                    "titledMulti": {"type": "array", "description": "Select multiple options with titles", "minItems": 1, "maxItems": 3, "items": {"anyOf": [
                        {"const": "value1", "title": "First Choice"}, {"const": "value2", "title": "Second Choice"}, {"const": "value3", "title": "Third Choice"}]}}}}}), "Elicitation completed")
                    .await?
            }
            "json_schema_2020_12_tool" => text("received"),
            "echo" => {
                let t = arg("text");
                json!({"content": [{"type": "text", "text": t}], "structuredContent": {"text": t}})
            }
            "hang" => {
                let secs = args.get("seconds").and_then(Value::as_f64).unwrap_or(3600.0);
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs_f64(secs.max(0.0))) => text("woke up"),
                    () = ctx.ct.cancelled() => text("cancelled"),
                }
            }
            "crash" => std::process::exit(3),
            "big_output" => {
                let n = args.get("bytes").and_then(Value::as_u64).unwrap_or(0) as usize;
                text(&"x".repeat(n.min(256 * 1024 * 1024)))
            }
            "garbage" => {
                if !self.stdio {
                    return Ok(json!({"isError": true, "content": [{"type": "text", "text": "garbage works over stdio only"}]}));
                }
                // Straight to the process's stdout, between two messages.
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(b"this is not JSON-RPC {{{\n");
                let _ = out.flush();
                text("wrote garbage")
            }
            "env" => {
                let v = std::env::var(arg("name")).ok();
                json!({"content": [{"type": "text", "text": v.clone().unwrap_or_default()}], "structuredContent": {"value": v}})
            }
            "pid" => json!({"content": [{"type": "text", "text": std::process::id().to_string()}], "structuredContent": {"pid": std::process::id()}}),
            "add_tool" => {
                let n = arg("name");
                if let Ok(mut added) = self.shared.added.lock()
                    && !added.contains(&n)
                {
                    added.push(n.clone());
                }
                let _ = ctx.peer.notify_tool_list_changed().await;
                text(&format!("added {n}"))
            }
            other => {
                let added = self.shared.added.lock().map(|a| a.iter().any(|n| n == other)).unwrap_or(false);
                if added {
                    text(&format!("{other} ran"))
                } else {
                    return Err(ErrorData::invalid_params(format!("unknown tool '{other}'"), None));
                }
            }
        })
    }

    async fn elicit(
        &self,
        ctx: &RequestContext<RoleServer>,
        params: Value,
        label: &str,
    ) -> Result<Value, ErrorData> {
        let request: rmcp::model::ServerRequest =
            decode(json!({"method": "elicitation/create", "params": params}))?;
        match ctx.peer.send_request(request).await {
            Ok(r) => {
                let v = serde_json::to_value(&r).unwrap_or_default();
                let action = v["action"].as_str().unwrap_or("unknown").to_owned();
                Ok(text(&format!(
                    "{label}: action={action}, content={}",
                    v["content"]
                )))
            }
            Err(e) => Ok(
                json!({"isError": true, "content": [{"type": "text", "text": format!("elicitation failed: {e}")}]}),
            ),
        }
    }
}

impl ServerHandler for Fixture {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        let mut info = InitializeResult::new(capabilities);
        info.server_info =
            Implementation::new("switchboard-test-upstream", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.clone().unwrap_or_default();
        let v = self.call(&request.name, &args, &context).await?;
        let r: CallToolResult = result(v)?;
        Ok(r.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        result(json!({"resources": [
            {"uri": "test://static-text", "name": "static-text", "description": "A static text resource", "mimeType": "text/plain"},
            {"uri": "test://static-binary", "name": "static-binary", "description": "A static binary resource (a PNG)", "mimeType": "image/png"},
            {"uri": "test://watched-resource", "name": "watched-resource", "description": "A resource to subscribe to", "mimeType": "text/plain"}
        ]}))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        result(json!({"resourceTemplates": [
            {"uriTemplate": "test://template/{id}/data", "name": "template", "description": "Data for an id", "mimeType": "application/json"}
        ]}))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri.as_str();
        let v = match uri {
            "test://static-text" => json!({"contents": [{"uri": uri, "mimeType": "text/plain",
                "text": "This is the content of the static text resource."}]}),
            "test://static-binary" => {
                json!({"contents": [{"uri": uri, "mimeType": "image/png", "blob": PNG}]})
            }
            "test://watched-resource" => {
                json!({"contents": [{"uri": uri, "mimeType": "text/plain", "text": "watched"}]})
            }
            _ => match uri
                .strip_prefix("test://template/")
                .and_then(|r| r.strip_suffix("/data"))
                .filter(|id| !id.is_empty() && !id.contains('/'))
            {
                Some(id) => json!({"contents": [{"uri": uri, "mimeType": "application/json",
                    "text": json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")}).to_string()}]}),
                None => {
                    return Err(ErrorData::invalid_params(
                        "Resource not found",
                        Some(json!({"uri": uri})),
                    ));
                }
            },
        };
        let r: ReadResourceResult = result(v)?;
        Ok(r.into())
    }

    async fn subscribe(
        &self,
        request: rmcp::model::SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Ok(mut s) = self.shared.subscriptions.lock() {
            s.insert(request.uri.to_string());
        }
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: rmcp::model::UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Ok(mut s) = self.shared.subscriptions.lock() {
            s.remove(request.uri.as_str());
        }
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        result(json!({"prompts": [
            {"name": "test_simple_prompt", "description": "A prompt with no arguments"},
            {"name": "test_prompt_with_arguments", "description": "A prompt with two arguments", "arguments": [
                {"name": "arg1", "description": "First test argument", "required": true},
                {"name": "arg2", "description": "Second test argument", "required": true}]},
            {"name": "test_prompt_with_embedded_resource", "description": "A prompt that embeds a resource", "arguments": [
                {"name": "resourceUri", "description": "URI of the resource to embed", "required": true}]},
            {"name": "test_prompt_with_image", "description": "A prompt with an image"}
        ]}))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let args = request.arguments.clone().unwrap_or_default();
        let arg = |k: &str| {
            args.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let v = match request.name.as_str() {
            "test_simple_prompt" => {
                json!({"messages": [{"role": "user", "content": {"type": "text", "text": "This is a simple prompt for testing."}}]})
            }
            "test_prompt_with_arguments" => {
                json!({"messages": [{"role": "user", "content": {"type": "text",
                "text": format!("Prompt with arguments: arg1='{}', arg2='{}'", arg("arg1"), arg("arg2"))}}]})
            }
            "test_prompt_with_embedded_resource" => json!({"messages": [
                {"role": "user", "content": {"type": "resource", "resource": {"uri": arg("resourceUri"), "mimeType": "text/plain", "text": "Embedded resource content for testing."}}},
                {"role": "user", "content": {"type": "text", "text": "Please process the embedded resource above."}}]}),
            "test_prompt_with_image" => json!({"messages": [
                {"role": "user", "content": {"type": "image", "data": PNG, "mimeType": "image/png"}},
                {"role": "user", "content": {"type": "text", "text": "Please analyze the image above."}}]}),
            other => {
                return Err(ErrorData::invalid_params(
                    format!("unknown prompt '{other}'"),
                    None,
                ));
            }
        };
        let r: GetPromptResult = result(v)?;
        Ok(r.into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let v = serde_json::to_value(&request).unwrap_or_default();
        let typed = v["argument"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let values: Vec<&str> = ["paris", "park", "party", "test", "testing"]
            .into_iter()
            .filter(|c| c.starts_with(&typed))
            .collect();
        result(json!({"completion": {"values": values, "total": values.len(), "hasMore": false}}))
    }

    async fn set_level(
        &self,
        _request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }
}
