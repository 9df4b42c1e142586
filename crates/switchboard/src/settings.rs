//! Settings: defaults, then an optional TOML file, then `SWITCHBOARD_*`
//! environment variables (nested keys with `__`), then command-line flags.
//! First read and validated as a whole ([`Settings`]), then resolved into
//! the typed values the server uses ([`Resolved`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Top-level keys; environment variables outside these (such as
/// `SWITCHBOARD_BOOTSTRAP_PASSWORD`) are not settings and are ignored here.
const TOP_LEVEL_KEYS: [&str; 13] = [
    "listen",
    "data_dir",
    "database_url",
    "public_url",
    "server",
    "database",
    "auth",
    "api",
    "mcp",
    "oauth",
    "gateway",
    "instance",
    "log",
];
/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: [&str; 6] = [
    "gateway.stdio_inherit_env",
    "server.trusted_proxies",
    "server.allowed_hosts",
    "gateway.allowed_networks",
    "oauth.client_metadata_allowed_networks",
    "gateway.allowed_commands",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on.
    pub listen: String,
    /// Where the SQLite database (and later key files) live.
    pub data_dir: PathBuf,
    /// `postgres://…` for PostgreSQL; empty means SQLite in the data directory.
    pub database_url: Option<String>,
    /// The URL clients use to reach this server; defaults to `http://<listen>`.
    pub public_url: Option<String>,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub api: ApiSettings,
    pub mcp: McpSettings,
    pub oauth: OAuthSettings,
    pub gateway: GatewaySettings,
    pub instance: InstanceSettings,
    pub log: LogSettings,
    /// The TOML file these were read from (not a setting).
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
}

/// Settings of the instance as a whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstanceSettings {
    /// Who may create organizations: `operators` (the account made at first
    /// setup, and the CLI) or `anyone` signed in.
    pub org_creation: String,
}

impl Default for InstanceSettings {
    fn default() -> Self {
        InstanceSettings {
            org_creation: "operators".into(),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            public_url: None,
            server: ServerSettings::default(),
            database: DatabaseSettings::default(),
            auth: AuthSettings::default(),
            api: ApiSettings::default(),
            mcp: McpSettings::default(),
            oauth: OAuthSettings::default(),
            gateway: GatewaySettings::default(),
            instance: InstanceSettings::default(),
            log: LogSettings::default(),
            config_file: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Peers (IPs or CIDRs) whose `X-Forwarded-For` header is believed.
    pub trusted_proxies: Vec<String>,
    /// Extra host names accepted besides the public URL's (used by the MCP endpoint).
    pub allowed_hosts: Vec<String>,
    pub max_body_bytes: usize,
    pub request_timeout_secs: u64,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace_secs: u64,
    /// Serve Prometheus metrics at `/metrics` (counts and latencies only:
    /// no secret, no argument). Put it behind your proxy's access rules.
    pub metrics: bool,
    /// Open connections at most; beyond it new ones wait in the listen
    /// backlog (and the first wait is logged).
    pub max_connections: usize,
    /// A connection must send a request's headers within this long, and an
    /// idle keep-alive connection is closed after it.
    pub header_timeout_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            trusted_proxies: Vec::new(),
            allowed_hosts: Vec::new(),
            max_body_bytes: 256 * 1024,
            request_timeout_secs: 30,
            shutdown_grace_secs: 10,
            metrics: true,
            max_connections: 4096,
            header_timeout_secs: 20,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    pub max_connections: u32,
    pub busy_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            max_connections: 16,
            busy_timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    pub session_ttl_hours: u64,
    pub invitation_ttl_hours: u64,
    pub setup_link_ttl_minutes: u64,
    /// Sign-in attempts per (email, client address) within
    /// `sign_in_window_minutes` (a success does not count).
    pub sign_in_max_failures: u32,
    /// Looser limits per email (from every address) and per client address
    /// (for every email), so a stranger cannot lock a person out from
    /// everywhere and password spraying is slowed.
    pub sign_in_max_failures_per_email: u32,
    pub sign_in_max_failures_per_address: u32,
    pub sign_in_window_minutes: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            session_ttl_hours: 7 * 24,
            invitation_ttl_hours: 7 * 24,
            setup_link_ttl_minutes: 60,
            sign_in_max_failures: 5,
            sign_in_max_failures_per_email: 50,
            sign_in_max_failures_per_address: 50,
            sign_in_window_minutes: 15,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    pub default_page_size: u32,
    pub max_page_size: u32,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            default_page_size: 50,
            max_page_size: 200,
        }
    }
}

/// Settings of the MCP endpoint (served from the MCP endpoint issue on).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpSettings {
    /// Accept `?token=` on `/mcp/rpc`. Discouraged: URLs end up in logs.
    pub allow_query_token: bool,
    /// Page size of `tools/list` and of list tools called without `limit`.
    pub page_size: u32,
    /// Largest MCP request body (a JSON-RPC batch on `/mcp/rpc` included).
    pub max_body_bytes: usize,
    /// Open 2025-11-25 sessions per token (its oldest idle one makes room
    /// for a new one) and on the whole instance.
    pub max_sessions_per_token: u32,
    pub max_sessions: u32,
}

impl Default for McpSettings {
    fn default() -> Self {
        McpSettings {
            allow_query_token: false,
            page_size: 50,
            max_body_bytes: 1024 * 1024,
            max_sessions_per_token: 64,
            max_sessions: 10_000,
        }
    }
}

/// Settings of the OAuth authorization server MCP clients sign in through.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuthSettings {
    /// Lifetime of an access token.
    pub access_token_ttl_secs: u64,
    /// Lifetime of a refresh token (each use rotates it).
    pub refresh_token_ttl_days: u64,
    /// Lifetime of an authorization code.
    pub code_ttl_secs: u64,
    /// Dynamic client registrations accepted per client IP per hour.
    pub registrations_per_hour: u32,
    /// CIDRs of private networks a client metadata document may be fetched
    /// from (by default only public addresses are).
    pub client_metadata_allowed_networks: Vec<String>,
    /// Let metadata documents be fetched from loopback addresses, and over
    /// plain http there. For tests and local development only.
    pub client_metadata_allow_loopback: bool,
    /// Largest client metadata document, and how long its fetch may take.
    pub client_metadata_max_bytes: usize,
    pub client_metadata_timeout_ms: u64,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        OAuthSettings {
            access_token_ttl_secs: 3600,
            refresh_token_ttl_days: 30,
            code_ttl_secs: 60,
            registrations_per_hour: 30,
            client_metadata_allowed_networks: Vec::new(),
            client_metadata_allow_loopback: false,
            client_metadata_max_bytes: 64 * 1024,
            client_metadata_timeout_ms: 5000,
        }
    }
}

/// Settings of the gateway to upstream MCP servers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// Let connections reach loopback addresses (tests; a hub calling a local server).
    pub allow_loopback_upstreams: bool,
    /// CIDRs of private networks upstreams may be in.
    pub allowed_networks: Vec<String>,
    /// Removed: an allow-listed command took any arguments. Declare each
    /// command line in `operator_catalog` instead (refused when set).
    pub allowed_commands: Vec<String>,
    /// A JSON file of the operator's own catalog entries (the built-in
    /// shape): the only way org admins can run a command the binary does not
    /// ship, each with the settings they may give.
    pub operator_catalog: Option<PathBuf>,
    /// Let org admins add their own npm packages as custom stdio
    /// integrations (run confined like every child). Off by default.
    pub allow_custom_packages: bool,
    /// Start stdio children as root when the server runs as root and
    /// `stdio_user` is unset. Off: such children are refused.
    pub stdio_allow_root: bool,
    /// `landlock` (default): children may not read the data directory, the
    /// key or the configuration, may write only their own directories, and
    /// cannot signal or trace other processes; a kernel without Landlock
    /// refuses to start them. `off`: no file-system confinement.
    pub stdio_confinement: String,
    /// Resource limits of each child: address space, processes (of the
    /// child's user; applied with a dedicated `stdio_user`), open files and
    /// the largest file it may write.
    pub stdio_max_memory_mb: u64,
    pub stdio_max_processes: u64,
    pub stdio_max_open_files: u64,
    pub stdio_max_file_mb: u64,
    /// One request to an upstream may take this long.
    pub call_timeout_secs: u64,
    /// Connecting to an upstream (or starting its child) may take this long.
    pub connect_timeout_secs: u64,
    /// The largest upstream answer passed on, in bytes.
    pub max_response_bytes: usize,
    /// A stdio child unused this long is stopped (started again on demand).
    pub stdio_idle_secs: u64,
    /// Run stdio children as this user (a name, or `uid:gid`); needs the
    /// server to run as root. Unset: they run as the server's own user.
    pub stdio_user: Option<String>,
    /// Variables of the server's environment a child inherits; everything
    /// else is cleared (`SWITCHBOARD_*` never passes; `HOME` and `TMPDIR`
    /// are always the child's own private directory).
    pub stdio_inherit_env: Vec<String>,
    /// A catalog older than this is refreshed in the background.
    pub catalog_refresh_secs: u64,
    /// Health: how many recent requests are judged.
    pub health_window: usize,
    /// Health: degraded at or above this percentage of failures.
    pub health_degraded_error_percent: u32,
    /// Health: degraded when the median latency is above this.
    pub health_degraded_p50_ms: u64,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            allow_loopback_upstreams: false,
            allowed_networks: Vec::new(),
            allowed_commands: Vec::new(),
            operator_catalog: None,
            allow_custom_packages: false,
            stdio_allow_root: false,
            stdio_confinement: "landlock".into(),
            stdio_max_memory_mb: 4096,
            stdio_max_processes: 256,
            stdio_max_open_files: 1024,
            stdio_max_file_mb: 1024,
            call_timeout_secs: 60,
            connect_timeout_secs: 30,
            max_response_bytes: 4 * 1024 * 1024,
            stdio_idle_secs: 300,
            stdio_user: None,
            stdio_inherit_env: ["PATH", "LANG", "TZ"].map(String::from).to_vec(),
            catalog_refresh_secs: 900,
            health_window: 20,
            health_degraded_error_percent: 10,
            health_degraded_p50_ms: 2000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// A tracing filter such as `info` or `info,switchboard_core=debug`; `RUST_LOG` overrides it.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// Values given on the command line; they win over everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
}

impl Settings {
    /// Reads defaults, the TOML file, the environment and the flags, in rising priority.
    pub fn load(o: &Overrides) -> Result<Settings> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(o, &env)
    }

    pub fn load_from(o: &Overrides, env: &[(String, String)]) -> Result<Settings> {
        let mut b = config::Config::builder();
        if let Some(path) = &o.config_file {
            if !path.exists() {
                bail!("the configuration file {} does not exist", path.display());
            }
            b = b.add_source(config::File::from(path.as_path()).format(config::FileFormat::Toml));
        }
        let mut env_map = config::Map::new();
        for (k, v) in env {
            let Some(rest) = k.strip_prefix("SWITCHBOARD_") else {
                continue;
            };
            let lower = rest.to_ascii_lowercase();
            let top = lower.split("__").next().unwrap_or_default();
            if TOP_LEVEL_KEYS.contains(&top) {
                env_map.insert(k.clone(), v.clone());
            }
        }
        let mut env_source = config::Environment::with_prefix("SWITCHBOARD")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .source(Some(env_map));
        for key in LIST_KEYS {
            env_source = env_source.with_list_parse_key(key);
        }
        b = b.add_source(env_source);
        b = b
            .set_override_option("listen", o.listen.clone())?
            .set_override_option(
                "data_dir",
                o.data_dir.as_ref().map(|p| p.display().to_string()),
            )?
            .set_override_option("database_url", o.database_url.clone())?
            .set_override_option("public_url", o.public_url.clone())?;
        let cfg = b.build().context("reading the configuration")?;
        let mut settings = cfg
            .try_deserialize::<Settings>()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        settings.config_file = o.config_file.clone();
        Ok(settings)
    }

    /// Checks every value and turns it into its typed form.
    pub fn resolve(&self) -> Result<Resolved> {
        let listen: SocketAddr = self.listen.parse().with_context(|| {
            format!(
                "listen: '{}' is not an address such as 127.0.0.1:8080",
                self.listen
            )
        })?;
        let database_url = match self.database_url.as_deref().filter(|u| !u.is_empty()) {
            Some(u) => {
                switchboard_storage::Backend::from_url(u).context("database_url")?;
                u.to_owned()
            }
            None => switchboard_storage::Db::sqlite_url_for_dir(&self.data_dir),
        };
        let public_url = match &self.public_url {
            Some(u) => {
                let url = url::Url::parse(u)
                    .with_context(|| format!("public_url: '{u}' is not a URL"))?;
                if url.scheme() != "http" && url.scheme() != "https" {
                    bail!("public_url: '{u}' must start with http:// or https://");
                }
                if url.host().is_none() || url.query().is_some() || url.fragment().is_some() {
                    bail!("public_url: '{u}' must be a base URL like https://hub.example.com");
                }
                Some(url)
            }
            None => None,
        };
        let trusted_proxies = parse_nets("server.trusted_proxies", &self.server.trusted_proxies)?;
        let allowed_networks =
            parse_nets("gateway.allowed_networks", &self.gateway.allowed_networks)?;
        if self.api.default_page_size == 0 || self.api.default_page_size > self.api.max_page_size {
            bail!(
                "api.default_page_size must be between 1 and api.max_page_size ({})",
                self.api.max_page_size
            );
        }
        if self.mcp.page_size == 0 || self.mcp.page_size > self.api.max_page_size {
            bail!(
                "mcp.page_size must be between 1 and api.max_page_size ({})",
                self.api.max_page_size
            );
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.mcp.max_body_bytes) {
            bail!("mcp.max_body_bytes must be between 1024 and 67108864");
        }
        if self.mcp.max_sessions_per_token == 0
            || self.mcp.max_sessions < self.mcp.max_sessions_per_token
        {
            bail!(
                "mcp.max_sessions_per_token must be at least 1, and mcp.max_sessions at least as large"
            );
        }
        if self.server.max_body_bytes < 1024 {
            bail!("server.max_body_bytes must be at least 1024");
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            bail!(
                "log.format must be 'text' or 'json', not '{}'",
                self.log.format
            );
        }
        if self.auth.sign_in_max_failures == 0
            || self.auth.sign_in_max_failures_per_email < self.auth.sign_in_max_failures
            || self.auth.sign_in_max_failures_per_address < self.auth.sign_in_max_failures
        {
            bail!(
                "auth.sign_in_max_failures must be at least 1, and the per-email and per-address limits at least as large"
            );
        }
        if self.server.max_connections < 16 {
            bail!("server.max_connections must be at least 16");
        }
        if !(1..=600).contains(&self.server.header_timeout_secs) {
            bail!("server.header_timeout_secs must be between 1 and 600");
        }
        let org_creation = match self.instance.org_creation.as_str() {
            "operators" => switchboard_core::OrgCreation::Operators,
            "anyone" => switchboard_core::OrgCreation::Anyone,
            other => bail!("instance.org_creation must be 'operators' or 'anyone', not '{other}'"),
        };
        let g = &self.gateway;
        if !g.allowed_commands.is_empty() {
            bail!(
                "gateway.allowed_commands was removed: an allowed command took any arguments an org admin gave. Declare each command line (with the variables org admins may set) as an entry of gateway.operator_catalog; see docs/security.md"
            );
        }
        if !matches!(g.stdio_confinement.as_str(), "landlock" | "off") {
            bail!(
                "gateway.stdio_confinement must be 'landlock' or 'off', not '{}'",
                g.stdio_confinement
            );
        }
        if g.stdio_max_memory_mb < 64
            || g.stdio_max_processes < 8
            || g.stdio_max_open_files < 64
            || g.stdio_max_file_mb < 1
        {
            bail!(
                "gateway.stdio_max_*: at least 64 MB of memory, 8 processes, 64 open files and 1 MB per file"
            );
        }
        let operator_catalog = match &g.operator_catalog {
            None => Vec::new(),
            Some(path) => {
                let raw = std::fs::read_to_string(path).with_context(|| {
                    format!("gateway.operator_catalog: reading {}", path.display())
                })?;
                switchboard_core::integrations::parse_operator_catalog(&raw).map_err(|e| {
                    anyhow::anyhow!("gateway.operator_catalog ({}): {e}", path.display())
                })?
            }
        };
        let o = &self.oauth;
        if !(10..=24 * 3600).contains(&o.access_token_ttl_secs) {
            bail!("oauth.access_token_ttl_secs must be between 10 and 86400");
        }
        if !(1..=365).contains(&o.refresh_token_ttl_days) {
            bail!("oauth.refresh_token_ttl_days must be between 1 and 365");
        }
        if !(10..=600).contains(&o.code_ttl_secs) {
            bail!("oauth.code_ttl_secs must be between 10 and 600");
        }
        if !(1024..=1024 * 1024).contains(&o.client_metadata_max_bytes) {
            bail!("oauth.client_metadata_max_bytes must be between 1024 and 1048576");
        }
        if !(100..=30_000).contains(&o.client_metadata_timeout_ms) {
            bail!("oauth.client_metadata_timeout_ms must be between 100 and 30000");
        }
        let client_metadata_networks = parse_nets(
            "oauth.client_metadata_allowed_networks",
            &o.client_metadata_allowed_networks,
        )?;
        Ok(Resolved {
            org_creation,
            operator_catalog,
            client_metadata_networks,
            listen,
            database_url,
            public_url,
            trusted_proxies,
            allowed_networks,
            request_timeout: Duration::from_secs(self.server.request_timeout_secs.max(1)),
            shutdown_grace: Duration::from_secs(self.server.shutdown_grace_secs),
        })
    }

    /// The effective settings as TOML, with secrets masked.
    pub fn to_masked_toml(&self) -> Result<String> {
        let mut shown = self.clone();
        shown.database_url = self
            .database_url
            .as_deref()
            .map(switchboard_storage::redact_url);
        Ok(toml::to_string_pretty(&shown)?)
    }

    pub fn is_default_sqlite(&self) -> bool {
        self.database_url.as_deref().is_none_or(str::is_empty)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

fn parse_nets(key: &str, values: &[String]) -> Result<Vec<IpNet>> {
    values
        .iter()
        .map(|v| {
            let v = v.trim();
            v.parse::<IpNet>()
                .or_else(|_| v.parse::<std::net::IpAddr>().map(IpNet::from))
                .with_context(|| {
                    format!("{key}: '{v}' is not an IP address or CIDR such as 10.0.0.0/8")
                })
        })
        .collect()
}

/// Typed settings, checked.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub org_creation: switchboard_core::OrgCreation,
    /// The operator's catalog entries, parsed and checked.
    pub operator_catalog: Vec<switchboard_core::integrations::Integration>,
    pub listen: SocketAddr,
    pub database_url: String,
    pub public_url: Option<url::Url>,
    pub trusted_proxies: Vec<IpNet>,
    /// Private networks upstreams may be in.
    pub allowed_networks: Vec<IpNet>,
    /// Private networks client metadata documents may be fetched from.
    pub client_metadata_networks: Vec<IpNet>,
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:1000\"\npublic_url = \"https://file.example\"\n[gateway]\nallow_loopback_upstreams = false\n[log]\nlevel = \"debug\"\n").unwrap();
        let o = Overrides {
            config_file: Some(file),
            listen: Some("127.0.0.1:3000".into()),
            ..Default::default()
        };
        let s = Settings::load_from(
            &o,
            &env(&[
                ("SWITCHBOARD_LISTEN", "127.0.0.1:2000"),
                ("SWITCHBOARD_PUBLIC_URL", "https://env.example"),
                ("SWITCHBOARD_GATEWAY__ALLOW_LOOPBACK_UPSTREAMS", "true"),
                (
                    "SWITCHBOARD_SERVER__TRUSTED_PROXIES",
                    "10.0.0.1,192.168.0.0/16",
                ),
                ("SWITCHBOARD_BOOTSTRAP_PASSWORD", "not a setting"),
            ]),
        )
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:3000");
        assert_eq!(s.public_url.as_deref(), Some("https://env.example"));
        assert!(s.gateway.allow_loopback_upstreams);
        assert_eq!(s.log.level, "debug");
        assert_eq!(s.server.trusted_proxies, vec!["10.0.0.1", "192.168.0.0/16"]);
        let r = s.resolve().unwrap();
        assert_eq!(r.trusted_proxies.len(), 2);
        assert!(r.database_url.starts_with("sqlite://"));
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(&file, "lissen = \"x\"\n").unwrap();
        let o = Overrides {
            config_file: Some(file),
            ..Default::default()
        };
        let err = Settings::load_from(&o, &[]).unwrap_err().to_string();
        assert!(err.contains("lissen"), "{err}");

        let o = Overrides {
            listen: Some("nowhere".into()),
            ..Default::default()
        };
        let err = Settings::load_from(&o, &[])
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen"), "{err}");

        let o = Overrides {
            database_url: Some("mysql://x".into()),
            ..Default::default()
        };
        let err = format!(
            "{:#}",
            Settings::load_from(&o, &[]).unwrap().resolve().unwrap_err()
        );
        assert!(
            err.contains("database_url") && err.contains("mysql"),
            "{err}"
        );
    }

    #[test]
    fn masked_output_hides_the_database_password() {
        let o = Overrides {
            database_url: Some("postgres://u:hunter2@db/x".into()),
            ..Default::default()
        };
        let s = Settings::load_from(&o, &[]).unwrap();
        let out = s.to_masked_toml().unwrap();
        assert!(!out.contains("hunter2"), "{out}");
        assert!(out.contains("postgres://u:****@db/x"), "{out}");
    }
}
