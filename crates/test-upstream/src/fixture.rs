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
    ServerCapabilities, ServerConfig, SubscriptionFilter, Tool,
};
use rmcp::service::{RequestContext, SubscriptionContext, SubscriptionSendError, SubscriptionSink};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

/// A 1×1 red PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A WAV header with no samples (8 kHz, mono, 16-bit).
const WAV: &str = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA=";

/// Which list changed.
#[derive(Clone, Copy)]
enum Changed {
    Tools,
    Prompts,
}

/// State shared by every session of one process.
#[derive(Default)]
pub struct Shared {
    subscriptions: Mutex<BTreeSet<String>>,
    /// Tools added with `add_tool`.
    added: Mutex<Vec<String>>,
    /// requestState handles issued, and the round each stands for. The
    /// state a client echoes is only a handle: a handle we did not issue
    /// (tampered) is refused.
    states: Mutex<std::collections::HashMap<String, String>>,
    next_state: std::sync::atomic::AtomicU64,
    /// Prompts added with `test_trigger_prompt_change`.
    added_prompts: Mutex<Vec<String>>,
    /// The open `subscriptions/listen` streams (2026-07-28).
    listeners: Mutex<Vec<SubscriptionSink>>,
    /// The 2025-11-25 sessions subscribed to a resource, by its URI.
    subscribers: Mutex<Vec<(String, rmcp::Peer<RoleServer>)>>,
}

impl Shared {
    /// Tells every open listen stream that a list changed; each stream's
    /// filter drops what it did not ask for, and closed streams go.
    async fn announce(&self, what: Changed) {
        let sinks: Vec<SubscriptionSink> =
            self.listeners.lock().map(|l| l.clone()).unwrap_or_default();
        for sink in sinks {
            let sent = match what {
                Changed::Tools => sink.notify_tool_list_changed().await,
                Changed::Prompts => sink.notify_prompt_list_changed().await,
            };
            if let Err(SubscriptionSendError::SubscriptionClosed) = sent
                && let Ok(mut l) = self.listeners.lock()
            {
                l.retain(|s| s.id() != sink.id());
            }
        }
    }

    /// Tells whoever subscribed to `uri` that it changed: the listen
    /// streams that asked for it (each stream's filter drops the others)
    /// and the 2025-11-25 sessions that subscribed to it.
    async fn resource_updated(&self, uri: &str) {
        let sinks: Vec<SubscriptionSink> =
            self.listeners.lock().map(|l| l.clone()).unwrap_or_default();
        for sink in sinks {
            let _ = sink.notify_resource_updated(uri).await;
        }
        let peers: Vec<rmcp::Peer<RoleServer>> = self
            .subscribers
            .lock()
            .map(|s| {
                s.iter()
                    .filter(|(u, _)| u == uri)
                    .map(|(_, p)| p.clone())
                    .collect()
            })
            .unwrap_or_default();
        for peer in peers {
            let _ = peer
                .notify_resource_updated(rmcp::model::ResourceUpdatedNotificationParam::new(uri))
                .await;
        }
    }

    /// A number not handed out before in this process.
    fn next_number(&self) -> u64 {
        self.next_state
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// `{prefix}_{n}`, a name not handed out before in this process.
    fn fresh_name(&self, prefix: &str) -> String {
        format!("{prefix}_{}", self.next_number())
    }

    fn issue_state(&self, round: &str) -> String {
        let handle = format!("st-{}-{}", self.next_number(), std::process::id());
        if let Ok(mut m) = self.states.lock() {
            m.insert(handle.clone(), round.to_owned());
        }
        handle
    }

    /// The round a handle stands for; `Err` when we never issued it.
    fn check_state(&self, handle: &str) -> Result<String, ErrorData> {
        self.states
            .lock()
            .ok()
            .and_then(|m| m.get(handle).cloned())
            .ok_or_else(|| {
                ErrorData::invalid_params(
                    "the requestState failed its integrity check (it was not issued by this server)",
                    Some(json!({"requestState": handle})),
                )
            })
    }
}

/// An input request: `(key, method, params)`.
type Ask = (&'static str, &'static str, Value);

fn input_required(asks: Vec<Ask>, state: Option<String>) -> Result<Value, ErrorData> {
    let mut requests = serde_json::Map::new();
    for (key, method, params) in asks {
        requests.insert(key.to_owned(), json!({"method": method, "params": params}));
    }
    let mut v = json!({"resultType": "input_required", "inputRequests": requests});
    if let Some(s) = state {
        v["requestState"] = json!(s);
    }
    Ok(v)
}

fn name_question(message: &str, field: &str) -> Value {
    json!({"message": message, "requestedSchema": {"type": "object",
        "properties": {field: {"type": "string"}}, "required": [field]}})
}

/// A response the client gave for `key`, if it is an object.
fn answer<'a>(
    responses: &'a Option<rmcp::model::InputResponses>,
    key: &str,
) -> Option<&'a serde_json::Map<String, Value>> {
    responses.as_ref()?.get(key)?.as_object()
}

/// The elicitation a tool asks for, and the label of its answer.
fn elicitation_params(name: &str, args: &serde_json::Map<String, Value>) -> (Value, &'static str) {
    match name {
        "test_elicitation_sep1034_defaults" => (
            json!({"message": "Please review and update the form fields with defaults", "requestedSchema": {"type": "object", "properties": {
                "name": {"type": "string", "description": "User name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User age", "default": 30},
                "score": {"type": "number", "description": "User score", "default": 95.5},
                "status": {"type": "string", "description": "User status", "enum": ["active", "inactive", "pending"], "default": "active"},
                "verified": {"type": "boolean", "description": "Verification status", "default": true}}}}),
            "Elicitation completed",
        ),
        "test_elicitation_sep1330_enums" => (
            json!({"message": "Please select options from the enum fields", "requestedSchema": {"type": "object", "properties": {
                "untitledSingle": {"type": "string", "description": "Select one option", "enum": ["option1", "option2", "option3"]},
                "titledSingle": {"type": "string", "description": "Select one option with titles", "oneOf": [
                    {"const": "value1", "title": "First Option"}, {"const": "value2", "title": "Second Option"}, {"const": "value3", "title": "Third Option"}]},
                "legacyEnum": {"type": "string", "description": "Select one option (legacy)", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
                "untitledMulti": {"type": "array", "description": "Select multiple options", "minItems": 1, "maxItems": 3, "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                "titledMulti": {"type": "array", "description": "Select multiple options with titles", "minItems": 1, "maxItems": 3, "items": {"anyOf": [
                    {"const": "value1", "title": "First Choice"}, {"const": "value2", "title": "Second Choice"}, {"const": "value3", "title": "Third Choice"}]}}}}}),
            "Elicitation completed",
        ),
        _ => (
            json!({"message": args.get("message").and_then(Value::as_str).unwrap_or_default(), "requestedSchema": {"type": "object", "properties": {
                "username": {"type": "string", "description": "User's response"},
                "email": {"type": "string", "description": "User's email address"}},
                "required": ["username", "email"]}}),
            "User response",
        ),
    }
}

/// Whether this request comes in the 2026-07-28 era (every such request
/// carries its protocol version in `_meta`).
fn modern(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.meta
        .protocol_version()
        .is_some_and(|v| v.as_str() >= "2026-07-28")
}

#[derive(Clone)]
pub struct Fixture {
    shared: Arc<Shared>,
    stdio: bool,
    /// Act as a 2025-11-25 server (`stdio --legacy`): `server/discover`
    /// is an unknown method, so a client falls back to `initialize`.
    legacy_only: bool,
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
        Fixture {
            shared,
            stdio,
            legacy_only: false,
        }
    }

    /// A fixture that acts as a 2025-11-25 server.
    pub fn legacy_only(mut self) -> Self {
        self.legacy_only = true;
        self
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
            // Input-required results (2026-07-28).
            tool(
                "test_input_required_result_elicitation",
                "Asks for a name, then greets",
                no_args(),
            ),
            tool(
                "test_input_required_result_sampling",
                "Asks the client's model a question",
                no_args(),
            ),
            tool(
                "test_input_required_result_list_roots",
                "Asks for the client's roots",
                no_args(),
            ),
            tool(
                "test_input_required_result_request_state",
                "Asks for a confirmation, with state",
                no_args(),
            ),
            tool(
                "test_input_required_result_multiple_inputs",
                "Asks three things at once",
                no_args(),
            ),
            tool(
                "test_input_required_result_multi_round",
                "Asks in two rounds",
                no_args(),
            ),
            tool(
                "test_input_required_result_tampered_state",
                "Refuses a requestState it did not issue",
                no_args(),
            ),
            tool(
                "test_input_required_result_capabilities",
                "Asks only what the client can answer",
                no_args(),
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
            // What a confined child may touch on the host (security tests).
            tool(
                "read_file",
                "Reads a file: its size, or the error",
                string_arg("path", "The file"),
            ),
            tool(
                "write_file",
                "Writes a small file: ok, or the error",
                string_arg("path", "The file"),
            ),
            tool(
                "signal_process",
                "Sends signal 0 to a process (kill -0): whether it was allowed",
                json!({"type": "object", "properties": {"pid": {"type": "integer", "minimum": 1}}, "required": ["pid"]}),
            ),
            // The conformance suite's diagnostic tools (server-stateless).
            tool(
                "test_missing_capability",
                "Needs the client's sampling capability: without it, -32021",
                no_args(),
            ),
            tool(
                "test_streaming_elicitation",
                "Asks the client for input (an input-required result in 2026-07-28)",
                no_args(),
            ),
            tool(
                "test_logging_tool",
                "Logs three messages, only when the request asked for a log level",
                no_args(),
            ),
            tool(
                "test_trigger_tool_change",
                "Adds a tool and says the tool list changed",
                no_args(),
            ),
            tool(
                "test_trigger_prompt_change",
                "Adds a prompt and says the prompt list changed",
                no_args(),
            ),
            tool(
                "add_tool",
                "Adds a tool named `name` and says the list changed",
                string_arg("name", "The new tool's name"),
            ),
            tool(
                "update_resource",
                "Says the resource at `uri` changed, to whoever subscribed to it",
                string_arg("uri", "The resource's URI"),
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
            "test_image_content" => {
                json!({"content": [{"type": "image", "data": PNG, "mimeType": "image/png"}]})
            }
            "test_audio_content" => {
                json!({"content": [{"type": "audio", "data": WAV, "mimeType": "audio/wav"}]})
            }
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
                for (i, message) in [
                    "Tool execution started",
                    "Tool processing data",
                    "Tool execution completed",
                ]
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
                            .notify_progress(decode(
                                json!({"progressToken": t, "progress": progress, "total": 100}),
                            )?)
                            .await;
                    }
                }
                text("Tool with progress executed successfully")
            }
            "test_sampling" => {
                let params = decode(
                    json!({"messages": [{"role": "user", "content": {"type": "text", "text": arg("prompt")}}], "maxTokens": 100}),
                )?;
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
                    Err(e) => {
                        json!({"isError": true, "content": [{"type": "text", "text": format!("sampling failed: {e}")}]})
                    }
                }
            }
            "test_elicitation"
            | "test_elicitation_sep1034_defaults"
            | "test_elicitation_sep1330_enums" => {
                let (params, label) = elicitation_params(name, args);
                self.elicit(ctx, params, label).await?
            }
            "test_streaming_elicitation" => {
                self.elicit(
                    ctx,
                    name_question("What is your name?", "name"),
                    "streaming elicitation",
                )
                .await?
            }
            "json_schema_2020_12_tool" => text("received"),
            "echo" => {
                let t = arg("text");
                json!({"content": [{"type": "text", "text": t}], "structuredContent": {"text": t}})
            }
            "hang" => {
                let secs = args
                    .get("seconds")
                    .and_then(Value::as_f64)
                    .unwrap_or(3600.0);
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
                    return Ok(
                        json!({"isError": true, "content": [{"type": "text", "text": "garbage works over stdio only"}]}),
                    );
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
            "pid" => {
                json!({"content": [{"type": "text", "text": std::process::id().to_string()}], "structuredContent": {"pid": std::process::id()}})
            }
            "read_file" => match std::fs::read(arg("path")) {
                Ok(bytes) => {
                    json!({"content": [{"type": "text", "text": format!("read {} bytes", bytes.len())}], "structuredContent": {"ok": true, "bytes": bytes.len()}})
                }
                Err(e) => {
                    json!({"content": [{"type": "text", "text": e.to_string()}], "structuredContent": {"ok": false, "error": e.to_string()}})
                }
            },
            "write_file" => match std::fs::write(arg("path"), b"written by a stdio child") {
                Ok(()) => {
                    json!({"content": [{"type": "text", "text": "written"}], "structuredContent": {"ok": true}})
                }
                Err(e) => {
                    json!({"content": [{"type": "text", "text": e.to_string()}], "structuredContent": {"ok": false, "error": e.to_string()}})
                }
            },
            "signal_process" => {
                let pid = args.get("pid").and_then(Value::as_u64).unwrap_or(0);
                let out = std::process::Command::new("kill")
                    .args(["-0", &pid.to_string()])
                    .output();
                let (ok, detail) = match out {
                    Ok(o) => (
                        o.status.success(),
                        String::from_utf8_lossy(&o.stderr).trim().to_owned(),
                    ),
                    Err(e) => (false, e.to_string()),
                };
                json!({"content": [{"type": "text", "text": detail}], "structuredContent": {"ok": ok, "error": detail}})
            }
            "add_tool" => {
                let n = arg("name");
                self.add_tool(&n, ctx).await;
                text(&format!("added {n}"))
            }
            "update_resource" => {
                let uri = arg("uri");
                self.shared.resource_updated(&uri).await;
                text(&format!("updated {uri}"))
            }
            "test_trigger_tool_change" => {
                let n = self.shared.fresh_name("dynamic_tool");
                self.add_tool(&n, ctx).await;
                text(&format!("added {n}"))
            }
            "test_trigger_prompt_change" => {
                let n = self.shared.fresh_name("dynamic_prompt");
                if let Ok(mut added) = self.shared.added_prompts.lock() {
                    added.push(n.clone());
                }
                if !modern(ctx) {
                    let _ = ctx.peer.notify_prompt_list_changed().await;
                }
                self.shared.announce(Changed::Prompts).await;
                text(&format!("added {n}"))
            }
            "test_missing_capability" => {
                let sampling = ctx
                    .client_capabilities()
                    .is_some_and(|c| c.sampling.is_some());
                if !sampling {
                    return Err(ErrorData::missing_required_client_capability(decode(
                        json!({"sampling": {}}),
                    )?));
                }
                text("the client declared sampling")
            }
            "test_logging_tool" => {
                // A 2026-07-28 request gets log messages only when it asked
                // for a level; a 2025-11-25 session always (setLevel filters).
                if !modern(ctx) || ctx.meta.log_level().is_some() {
                    for message in ["first", "second", "third"] {
                        let _ = ctx
                            .peer
                            .notify_logging_message(decode(
                                json!({"level": "info", "data": message}),
                            )?)
                            .await;
                    }
                }
                text("logged")
            }
            other => {
                let added = self
                    .shared
                    .added
                    .lock()
                    .map(|a| a.iter().any(|n| n == other))
                    .unwrap_or(false);
                if added {
                    text(&format!("{other} ran"))
                } else {
                    return Err(ErrorData::invalid_params(
                        format!("unknown tool '{other}'"),
                        None,
                    ));
                }
            }
        })
    }

    /// Adds a tool (once) and says the list changed: on the session's own
    /// stream in 2025-11-25, on the listen streams in 2026-07-28.
    async fn add_tool(&self, name: &str, ctx: &RequestContext<RoleServer>) {
        if let Ok(mut added) = self.shared.added.lock()
            && !added.iter().any(|n| n == name)
        {
            added.push(name.to_owned());
        }
        if !modern(ctx) {
            let _ = ctx.peer.notify_tool_list_changed().await;
        }
        self.shared.announce(Changed::Tools).await;
    }

    /// The input-required tools, and (for a 2026-07-28 request) the tools
    /// that would otherwise send a server-to-client request. `None`: not
    /// one of them.
    fn input_required_tool(
        &self,
        request: &CallToolRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<Option<Value>, ErrorData> {
        let r = &request.input_responses;
        let state = request.request_state.as_deref();
        let greet = |key: &str, field: &str| {
            answer(r, key)
                .and_then(|a| a.get("content"))
                .and_then(|c| c.get(field))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let sampled = |key: &str| {
            answer(r, key).and_then(|a| {
                a.get("content")
                    .and_then(|c| {
                        c.get("text")
                            .or_else(|| c.get(0).and_then(|x| x.get("text")))
                    })
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
        };
        let confirm = || {
            json!({"message": "Please confirm", "requestedSchema": {"type": "object",
                "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}})
        };
        let v = match request.name.as_ref() {
            // The streaming one asks the same way in 2026-07-28; in
            // 2025-11-25 it sends a real elicitation request (`call`).
            "test_input_required_result_elicitation" | "test_streaming_elicitation"
                if request.name != "test_streaming_elicitation" || modern(ctx) =>
            {
                match greet("user_name", "name") {
                    Some(name) => text(&format!("Hello, {name}!")),
                    None => input_required(
                        vec![(
                            "user_name",
                            "elicitation/create",
                            name_question("What is your name?", "name"),
                        )],
                        None,
                    )?,
                }
            }
            "test_input_required_result_sampling" => match sampled("capital_question") {
                Some(answer) => text(&format!("The model said: {answer}")),
                None => input_required(
                    vec![(
                        "capital_question",
                        "sampling/createMessage",
                        json!({"messages": [{"role": "user", "content": {"type": "text", "text": "What is the capital of France?"}}], "maxTokens": 100}),
                    )],
                    None,
                )?,
            },
            "test_input_required_result_list_roots" => {
                match answer(r, "client_roots")
                    .and_then(|a| a.get("roots"))
                    .and_then(Value::as_array)
                {
                    Some(roots) => {
                        let uris: Vec<&str> = roots
                            .iter()
                            .filter_map(|x| x.get("uri").and_then(Value::as_str))
                            .collect();
                        text(&format!("Roots: {}", uris.join(", ")))
                    }
                    None => input_required(vec![("client_roots", "roots/list", json!({}))], None)?,
                }
            }
            "test_input_required_result_request_state"
            | "test_input_required_result_tampered_state" => {
                if let Some(s) = state {
                    self.shared.check_state(s)?;
                }
                match (state, answer(r, "confirm")) {
                    (Some(_), Some(_)) => text("Confirmed: state-ok"),
                    _ => input_required(
                        vec![("confirm", "elicitation/create", confirm())],
                        Some(self.shared.issue_state("confirm")),
                    )?,
                }
            }
            "test_input_required_result_multiple_inputs" => {
                if let Some(s) = state {
                    self.shared.check_state(s)?;
                }
                let all = ["user_name", "greeting", "client_roots"]
                    .iter()
                    .all(|k| answer(r, k).is_some());
                if all && state.is_some() {
                    text(&format!(
                        "Got all three: name {}",
                        greet("user_name", "name").unwrap_or_default()
                    ))
                } else {
                    input_required(
                        vec![
                            (
                                "user_name",
                                "elicitation/create",
                                name_question("What is your name?", "name"),
                            ),
                            (
                                "greeting",
                                "sampling/createMessage",
                                json!({"messages": [{"role": "user", "content": {"type": "text", "text": "Generate a greeting"}}], "maxTokens": 50}),
                            ),
                            ("client_roots", "roots/list", json!({})),
                        ],
                        Some(self.shared.issue_state("multiple")),
                    )?
                }
            }
            "test_input_required_result_multi_round" => {
                let round = match state {
                    Some(s) => self.shared.check_state(s)?,
                    None => String::new(),
                };
                match (
                    round.as_str(),
                    greet("step1", "name"),
                    greet("step2", "color"),
                ) {
                    ("step2", _, Some(color)) => {
                        text(&format!("All steps done: favorite color {color}"))
                    }
                    ("step1", Some(_), _) | ("step2", _, None) => input_required(
                        vec![(
                            "step2",
                            "elicitation/create",
                            name_question("Step 2: What is your favorite color?", "color"),
                        )],
                        Some(self.shared.issue_state("step2")),
                    )?,
                    _ => input_required(
                        vec![(
                            "step1",
                            "elicitation/create",
                            name_question("Step 1: What is your name?", "name"),
                        )],
                        Some(self.shared.issue_state("step1")),
                    )?,
                }
            }
            "test_input_required_result_capabilities" => {
                let meta = serde_json::to_value(&ctx.meta).unwrap_or_default();
                let declared = &meta["io.modelcontextprotocol/clientCapabilities"];
                if r.is_some() {
                    text("Thanks")
                } else {
                    let mut asks: Vec<Ask> = Vec::new();
                    if declared.get("sampling").is_some() {
                        asks.push((
                            "question",
                            "sampling/createMessage",
                            json!({"messages": [{"role": "user", "content": {"type": "text", "text": "Say hello"}}], "maxTokens": 20}),
                        ));
                    }
                    if declared.get("elicitation").is_some() {
                        asks.push((
                            "user_name",
                            "elicitation/create",
                            name_question("What is your name?", "name"),
                        ));
                    }
                    if asks.is_empty() {
                        text("The client can answer nothing, so nothing was asked")
                    } else {
                        input_required(asks, None)?
                    }
                }
            }
            // 2026-07-28 forbids server-to-client requests: the same
            // question comes back as an input request instead.
            "test_elicitation"
            | "test_elicitation_sep1034_defaults"
            | "test_elicitation_sep1330_enums"
                if modern(ctx) =>
            {
                let (params, label) = elicitation_params(
                    &request.name,
                    &request.arguments.clone().unwrap_or_default(),
                );
                match answer(r, "elicitation") {
                    Some(a) => {
                        let action = a.get("action").and_then(Value::as_str).unwrap_or("unknown");
                        let content = a.get("content").cloned().unwrap_or(Value::Null);
                        text(&format!("{label}: action={action}, content={content}"))
                    }
                    None => {
                        input_required(vec![("elicitation", "elicitation/create", params)], None)?
                    }
                }
            }
            "test_sampling" if modern(ctx) => match sampled("sampling") {
                Some(answer) => text(&format!("LLM response: {answer}")),
                None => {
                    let prompt = request
                        .arguments
                        .as_ref()
                        .and_then(|a| a.get("prompt"))
                        .cloned()
                        .unwrap_or(json!(""));
                    input_required(
                        vec![(
                            "sampling",
                            "sampling/createMessage",
                            json!({"messages": [{"role": "user", "content": {"type": "text", "text": prompt}}], "maxTokens": 100}),
                        )],
                        None,
                    )?
                }
            },
            _ => return Ok(None),
        };
        Ok(Some(v))
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
    /// A 2025-11-25 server does not know `server/discover` at all.
    async fn discover(
        &self,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::DiscoverResult, ErrorData> {
        if self.legacy_only {
            return Err(ErrorData::new(
                rmcp::model::ErrorCode::METHOD_NOT_FOUND,
                "Method not found: server/discover",
                None,
            ));
        }
        Ok(rmcp::model::DiscoverResult::from_server_info(
            self.supported_protocol_versions().into_owned(),
            self.get_info(),
        ))
    }

    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_prompts_list_changed()
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
        let v = match self.input_required_tool(&request, &context)? {
            Some(v) => v,
            None => self.call(&request.name, &args, &context).await?,
        };
        if v["resultType"] == "input_required" {
            let r: rmcp::model::InputRequiredResult = decode(v)?;
            return Ok(r.into());
        }
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
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Ok(mut s) = self.shared.subscriptions.lock() {
            s.insert(request.uri.to_string());
        }
        if let Ok(mut s) = self.shared.subscribers.lock() {
            s.push((request.uri.to_string(), context.peer));
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
        if let Ok(mut s) = self.shared.subscribers.lock() {
            s.retain(|(uri, _)| uri != request.uri.as_str());
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
            {"name": "test_prompt_with_image", "description": "A prompt with an image"},
            {"name": "test_input_required_result_prompt", "description": "A prompt that asks for context first"}
        ]}))
        .map(|mut r: ListPromptsResult| {
            if let Ok(added) = self.shared.added_prompts.lock() {
                for name in added.iter() {
                    if let Ok(p) = decode(json!({"name": name, "description": "Added at run time"})) {
                        r.prompts.push(p);
                    }
                }
            }
            r
        })
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
            "test_input_required_result_prompt" => {
                match answer(&request.input_responses, "user_context")
                    .and_then(|a| a.get("content"))
                    .and_then(|c| c.get("context"))
                    .and_then(Value::as_str)
                {
                    Some(context) => {
                        json!({"messages": [{"role": "user", "content": {"type": "text",
                        "text": format!("Use this context: {context}")}}]})
                    }
                    None => {
                        let v = input_required(
                            vec![(
                                "user_context",
                                "elicitation/create",
                                name_question("What context should the prompt use?", "context"),
                            )],
                            None,
                        )?;
                        let r: rmcp::model::InputRequiredResult = decode(v)?;
                        return Ok(r.into());
                    }
                }
            }
            other
                if self
                    .shared
                    .added_prompts
                    .lock()
                    .is_ok_and(|a| a.iter().any(|n| n == other)) =>
            {
                json!({"messages": [{"role": "user", "content": {"type": "text", "text": format!("{other}, added at run time")}}]})
            }
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

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let sink = context.sink().clone();
        if let Ok(mut l) = self.shared.listeners.lock() {
            l.push(sink.clone());
        }
        context.cancelled().await;
        if let Ok(mut l) = self.shared.listeners.lock() {
            l.retain(|s| s.id() != sink.id());
        }
        Ok(())
    }

    async fn set_level(
        &self,
        _request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }
}
