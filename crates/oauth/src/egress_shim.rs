//! TEMPORARY stand-in until `switchboard-egress` lands: refuses every fetch.
#![allow(dead_code)]

use std::time::Duration;

pub struct NetworkPolicy {
    pub allowed_networks: Vec<ipnet::IpNet>,
    pub allow_loopback: bool,
}
pub struct Limits {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_response_bytes: usize,
    pub max_redirects: usize,
}
pub struct Fetched {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}
pub struct EgressClient;
impl EgressClient {
    pub fn new(_: NetworkPolicy, _: Limits) -> Result<Self, String> {
        Ok(EgressClient)
    }
    pub async fn get(&self, _: &url::Url, _: &str) -> Result<Fetched, String> {
        Err("outbound fetches are not available yet".into())
    }
}
