//! Talking to an upstream MCP server as a client (rmcp), through the
//! egress guard, with the connection's shared headers and nothing else.

use std::collections::HashMap;
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use switchboard_core::connections::{CatalogTool, UpstreamTarget};
use switchboard_egress::EgressClient;

pub use switchboard_core::HOP_HEADER;

/// How long connecting and listing may take in all.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{0}")]
    Egress(#[from] switchboard_egress::EgressError),
    #[error("the upstream URL is missing or invalid: {0}")]
    BadTarget(String),
    #[error("stdio upstreams are not supported yet")]
    StdioNotYet,
    #[error("a shared header is not a valid HTTP header: {0}")]
    BadHeader(String),
    #[error("could not connect to the upstream MCP server: {0}")]
    Connect(String),
    #[error("the upstream MCP server failed to list its tools: {0}")]
    List(String),
    #[error("the upstream did not answer within {} s", .0.as_secs())]
    Timeout(Duration),
}

/// Connects, lists every tool (all pages), disconnects. `creds` are the
/// connection's opened shared values `(kind, name, value)`; headers are
/// marked sensitive so no layer logs them.
pub async fn list_tools(
    egress: &EgressClient,
    hub_id: &str,
    target: &UpstreamTarget,
    creds: &[(String, String, impl AsRef<str>)],
) -> Result<Vec<CatalogTool>, UpstreamError> {
    if target.transport != "streamable_http" {
        return Err(UpstreamError::StdioNotYet);
    }
    let url_text = target
        .url
        .as_deref()
        .ok_or_else(|| UpstreamError::BadTarget("no URL".into()))?;
    let url = url::Url::parse(url_text).map_err(|e| UpstreamError::BadTarget(e.to_string()))?;
    egress.check_url(&url)?;
    let mut headers = HashMap::new();
    headers.insert(
        http::HeaderName::from_static(HOP_HEADER),
        http::HeaderValue::from_str(hub_id)
            .map_err(|_| UpstreamError::BadHeader(HOP_HEADER.into()))?,
    );
    for (kind, name, value) in creds {
        if kind != "header" {
            continue;
        }
        let n = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| UpstreamError::BadHeader(name.clone()))?;
        let mut v = http::HeaderValue::from_str(value.as_ref())
            .map_err(|_| UpstreamError::BadHeader(name.clone()))?;
        v.set_sensitive(true);
        headers.insert(n, v);
    }
    let config =
        StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(headers);
    let transport = StreamableHttpClientTransport::with_client(egress.http_client(), config);
    let work = async {
        let client = ().serve(transport).await.map_err(|e| UpstreamError::Connect(e.to_string()))?;
        let listed = client.list_all_tools().await;
        let _ = client.cancel().await;
        let tools = listed.map_err(|e| UpstreamError::List(e.to_string()))?;
        Ok(tools
            .into_iter()
            .map(|t| CatalogTool {
                name: t.name.to_string(),
                title: t.title.clone(),
                description: t.description.as_deref().unwrap_or_default().to_owned(),
                input_schema: serde_json::Value::Object((*t.input_schema).clone()),
                output_schema: t
                    .output_schema
                    .as_ref()
                    .map(|s| serde_json::Value::Object((**s).clone())),
                annotations: t
                    .annotations
                    .as_ref()
                    .and_then(|a| serde_json::to_value(a).ok()),
            })
            .collect())
    };
    tokio::time::timeout(LIST_TIMEOUT, work)
        .await
        .map_err(|_| UpstreamError::Timeout(LIST_TIMEOUT))?
}
