//! Capabilities and call outcomes in MCP's wire types (rmcp's model).

use rmcp::model::{CallToolResult, ContentBlock, Tool, ToolAnnotations};
use switchboard_capabilities::{CallOutcome, Capability};

/// A capability as an MCP tool.
pub fn tool(cap: &Capability) -> Tool {
    tool_as(cap, &cap.name)
}

/// A capability as an MCP tool named `name` (a virtual server shows an
/// upstream tool under its upstream name).
pub fn tool_as(cap: &Capability, name: &str) -> Tool {
    let mut t = Tool::new(
        name.to_owned(),
        cap.description.clone(),
        cap.input_schema.clone(),
    )
    .with_title(cap.title.clone())
    .with_annotations(
        ToolAnnotations::new()
            .read_only(cap.hints.read_only)
            .destructive(cap.hints.destructive)
            .idempotent(cap.hints.idempotent)
            .open_world(cap.hints.open_world),
    );
    if let Some(out) = &cap.output_schema {
        t = t.with_raw_output_schema(out.clone());
    }
    t
}

/// A finished call as a tool result: refusals and failures are results
/// with `isError: true` and a sentence the agent can relay; only an unknown
/// tool (-32602) and our own failures (-32603) are protocol errors.
pub fn tool_result(outcome: CallOutcome) -> Result<CallToolResult, rmcp::ErrorData> {
    match outcome {
        CallOutcome::Done(v) => Ok(CallToolResult::structured(v)),
        // It came from rmcp's own encoding of the upstream's answer.
        CallOutcome::Relayed(v) => serde_json::from_value(complete(v)).map_err(|e| {
            tracing::error!(error = %e, "an upstream tool result did not decode");
            rmcp::ErrorData::internal_error("the upstream's result could not be passed on", None)
        }),
        CallOutcome::Refused(m)
        | CallOutcome::MissingScope { message: m, .. }
        | CallOutcome::InvalidArguments(m)
        | CallOutcome::Failed(m) => Ok(CallToolResult::error(vec![ContentBlock::text(m)])),
        CallOutcome::UnknownTool(m) => Err(rmcp::ErrorData::invalid_params(m, None)),
        CallOutcome::UpstreamError {
            code,
            message,
            data,
        } => Err(rmcp::ErrorData::new(
            rmcp::model::ErrorCode(code),
            message,
            data,
        )),
        CallOutcome::Internal => Err(rmcp::ErrorData::internal_error(
            "the server failed to run this tool; the error is in its log",
            None,
        )),
    }
}

/// An upstream's final result as a 2026-07-28 result: an upstream of the
/// earlier era sends no `resultType`, which that era's clients require
/// (`complete`); earlier clients ignore it.
pub fn complete(mut v: serde_json::Value) -> serde_json::Value {
    if let serde_json::Value::Object(m) = &mut v
        && !m.contains_key("resultType")
    {
        m.insert(
            "resultType".into(),
            serde_json::Value::String("complete".into()),
        );
    }
    v
}
