//! The integration catalog shipped in the binary: curated MCP servers (pinned
//! npm packages run over stdio, or vendors' hosted endpoints), the settings an
//! admin supplies for each, and [`resolve`], which turns those settings into
//! what a connection needs (command and arguments or URL, headers, env).
//!
//! An entry's `config` is a JSON Schema (draft 2020-12, a flat object with
//! `additionalProperties: false`). Each property says where its value goes
//! with the keyword `x-switchboard-target`:
//!
//! - `env:NAME`: an environment variable of a stdio server;
//! - `header:Name`: an HTTP header sent to a streamable HTTP server;
//! - `arg`: appended to a stdio server's command line (one argument per
//!   value, or per item of an array of strings). Never for a `secret`:
//!   command lines are visible to every process on the host.
//!
//! `x-switchboard-format` (for example `Bearer {value}`) shapes the value and
//! `secret: true` marks a credential (sealed at rest by the caller).
//! `x-switchboard-host-path: true` marks a setting whose value is a path on
//! the server's host (a directory to serve, a file to write): only an
//! instance operator may set it, never an org admin.
//!
//! Three origins: the entries shipped in the binary ([`builtin`]), the
//! operator's own entries ([`parse_operator_catalog`], from
//! `gateway.operator_catalog`: the only way to run a command the binary does
//! not ship), and an org's custom entries ([`parse_custom`]). An entry is an
//! allow-list: an org admin sets only the settings it declares, values are
//! data (an argument value never starts with `-`), and the command line is
//! the entry's own. Error messages name settings, never their values.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The schema keyword that says where a setting goes.
pub const TARGET_KEYWORD: &str = "x-switchboard-target";
/// The schema keyword that shapes a setting's value; `{value}` is replaced.
pub const FORMAT_KEYWORD: &str = "x-switchboard-format";
/// The schema keyword (boolean) that marks a setting as a credential.
pub const SECRET_KEYWORD: &str = "secret";
/// The schema keyword (boolean) that marks a setting as a path on the
/// server's host: operator-only.
pub const HOST_PATH_KEYWORD: &str = "x-switchboard-host-path";
/// The only `$schema` an entry's config may declare.
pub const SCHEMA_DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

const VALUE_PLACEHOLDER: &str = "{value}";
const MAX_PROPERTIES: usize = 64;
const MAX_DESCRIPTION: usize = 2000;
const MAX_NAME: usize = 100;
const MAX_NOTES: usize = 4000;
const MAX_URL: usize = 2048;
const MAX_PACKAGE: usize = 214;
const MAX_VERSION: usize = 64;
const MAX_COMMAND: usize = 100;
const MAX_FORMAT: usize = 200;
/// A custom entry, serialized, is at most this many bytes.
const MAX_CUSTOM_BYTES: usize = 64 * 1024;
// The limits below match what a connection accepts (switchboard-core).
const MAX_ARGS: usize = 64;
const MAX_ARG_LEN: usize = 1000;
const MAX_HEADER_VALUE: usize = 8 * 1024;
const MAX_ENV_VALUE: usize = 32 * 1024;
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

/// How the gateway reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// A child process speaking MCP on its standard input and output.
    Stdio,
    /// A remote server over MCP Streamable HTTP.
    StreamableHttp,
}

impl Transport {
    /// The name connections use (`stdio` or `streamable_http`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Stdio => "stdio",
            Transport::StreamableHttp => "streamable_http",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much of an entry was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verified {
    /// The npm package and version were confirmed with `npm view`.
    Registry,
    /// The remote URL is documented by the vendor; no request was made.
    VendorDocs,
    /// Neither could be confirmed; the notes say what was checked.
    Unverified,
    /// Added by an admin; nothing was checked by the catalog.
    #[default]
    Custom,
    /// Defined by this server's operator (`gateway.operator_catalog`).
    Operator,
}

/// One catalog entry, built in or custom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Integration {
    /// `[a-z0-9-]`, 2 to 63 characters: usable as a connection slug.
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    pub transport: Transport,
    /// The npm package (stdio entries run through `npx`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The exact package version, pinned in `args`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The program to start (stdio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Fixed arguments (stdio); `arg` settings are appended after them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The server's URL (streamable_http).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// JSON Schema (draft 2020-12) of the settings an admin supplies.
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    #[serde(default)]
    pub verified: Verified,
    /// The version `npm view` reported (registry entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_version: Option<String>,
    /// The server also accepts MCP OAuth: credentials may come from the
    /// OAuth connect flow instead of (or besides) `config`.
    #[serde(default)]
    pub oauth: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

/// A path on the host the operator gave a connection through a host-path
/// setting: the child may read and write there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPath {
    /// An argument that is itself the path.
    Arg(String),
    /// The environment variable whose value is the path.
    Env(String),
}

/// What a connection needs to reach an integration, built by [`resolve`].
/// Header and environment values may be credentials: `Debug` shows names only.
#[derive(Clone, PartialEq, Eq)]
pub struct ResolvedIntegration {
    pub id: String,
    pub transport: Transport,
    pub url: Option<String>,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub headers: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
}

impl fmt::Debug for ResolvedIntegration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedIntegration")
            .field("id", &self.id)
            .field("transport", &self.transport)
            .field("url", &self.url)
            .field("command", &self.command)
            .field("args", &self.args)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a config or an entry was refused. Messages name settings and fields,
/// never the values supplied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Required settings are absent: `(key, what it is)`.
    #[error(
        "the integration '{integration}' needs {}: add {} to config",
        list_missing(.missing),
        if .missing.len() == 1 { "it" } else { "them" }
    )]
    Missing {
        integration: String,
        missing: Vec<(String, Option<String>)>,
    },
    /// Settings the entry does not define.
    #[error(
        "the integration '{integration}' has no setting {}; {}",
        quote_list(.unknown),
        allowed_hint(.allowed)
    )]
    Unknown {
        integration: String,
        unknown: Vec<String>,
        allowed: Vec<String>,
    },
    #[error("the setting '{key}' of the integration '{integration}' must be {expected}")]
    WrongType {
        integration: String,
        key: String,
        expected: String,
    },
    #[error("the setting '{key}' of the integration '{integration}' is invalid: {reason}")]
    Invalid {
        integration: String,
        key: String,
        reason: String,
    },
    /// An environment variable the entry does not declare.
    #[error(
        "the integration '{integration}' does not declare the variable '{variable}': {}",
        if .declared.is_empty() { "it takes no environment variables".to_owned() } else { format!("it declares {}", quote_list(.declared)) }
    )]
    Undeclared {
        integration: String,
        variable: String,
        declared: Vec<String>,
    },
    /// A setting (or a whole entry) only an instance operator may use.
    #[error(
        "the setting '{key}' of the integration '{integration}' is a path on the server's host: only an instance operator may set it (`switchboard connection from-integration` on the server); org admins publish host-independent integrations"
    )]
    OperatorOnly { integration: String, key: String },
    /// A placeholder entry: nothing verified to start or reach.
    #[error("the integration '{integration}' has no server to connect to yet. {reason}")]
    NoServer { integration: String, reason: String },
    /// An entry (built in or custom) breaks the catalog's rules.
    #[error("invalid integration entry: '{field}' {reason}")]
    Entry { field: String, reason: String },
}

fn list_missing(missing: &[(String, Option<String>)]) -> String {
    let parts: Vec<String> = missing
        .iter()
        .map(|(key, about)| match about {
            Some(about) => format!("'{key}' ({about})"),
            None => format!("'{key}'"),
        })
        .collect();
    join_and(&parts)
}

fn quote_list(keys: &[String]) -> String {
    let parts: Vec<String> = keys.iter().map(|k| format!("'{k}'")).collect();
    join_and(&parts)
}

fn allowed_hint(allowed: &[String]) -> String {
    if allowed.is_empty() {
        "it takes no settings".to_owned()
    } else {
        format!("its settings are {}", quote_list(allowed))
    }
}

fn join_and(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn entry_error(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Entry {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The built-in catalog, parsed once from `integrations.json`.
pub fn builtin() -> &'static [Integration] {
    static CATALOG: OnceLock<Vec<Integration>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let raw = include_str!("../integrations.json");
        match serde_json::from_str::<Vec<Integration>>(raw) {
            Ok(entries) => entries
                .into_iter()
                .filter(|entry| match entry.check(Origin::Builtin) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::error!(id = %entry.id, error = %e, "built-in integration skipped");
                        false
                    }
                })
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "the built-in integration catalog does not parse");
                Vec::new()
            }
        }
    })
}

/// The built-in entry with this id.
pub fn find(id: &str) -> Option<&'static Integration> {
    builtin().iter().find(|entry| entry.id == id)
}

/// Parses the operator's own catalog (`gateway.operator_catalog`: a JSON
/// array of entries in the built-in shape). `verified` may be absent or
/// `operator`; ids must be unique and must not shadow a built-in entry.
/// This is the only way to let org admins run a command the binary does not
/// ship, and each entry still declares every setting an org admin may give.
pub fn parse_operator_catalog(raw: &str) -> Result<Vec<Integration>, ConfigError> {
    let values: Vec<Value> = serde_json::from_str(raw).map_err(|e| {
        entry_error(
            "(catalog)",
            format!("must be a JSON array of integration entries: {e}"),
        )
    })?;
    let mut entries = Vec::with_capacity(values.len());
    let mut seen = BTreeSet::new();
    for (i, value) in values.into_iter().enumerate() {
        let mut entry: Integration = serde_json::from_value(value).map_err(|e| {
            entry_error(
                format!("[{i}]"),
                format!("does not have the expected shape: {e}"),
            )
        })?;
        if entry.verified == Verified::Custom {
            entry.verified = Verified::Operator;
        }
        entry.check(Origin::Operator).map_err(|e| match e {
            ConfigError::Entry { field, reason } => entry_error(format!("[{i}].{field}"), reason),
            other => other,
        })?;
        if find(&entry.id).is_some() {
            return Err(entry_error(
                format!("[{i}].id"),
                format!(
                    "'{}' belongs to a built-in integration: choose another id",
                    entry.id
                ),
            ));
        }
        if !seen.insert(entry.id.clone()) {
            return Err(entry_error(
                format!("[{i}].id"),
                format!("'{}' appears twice", entry.id),
            ));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// The entries org admins choose from on this server: the built-in ones and
/// the operator's own. (An org's custom entries live in its database.)
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    operator: Vec<Integration>,
}

impl Catalog {
    pub fn new(operator: Vec<Integration>) -> Self {
        Catalog { operator }
    }

    /// The built-in entry, else the operator's, with this id.
    pub fn find(&self, id: &str) -> Option<&Integration> {
        find(id).or_else(|| self.operator.iter().find(|e| e.id == id))
    }

    /// Every entry: built-in first, then the operator's.
    pub fn entries(&self) -> impl Iterator<Item = &Integration> {
        builtin().iter().chain(self.operator.iter())
    }

    /// The stdio entry whose own command line is exactly `command` `args`
    /// (no settings appended), for connections given as a command line.
    pub fn by_command_line(&self, command: &str, args: &[String]) -> Option<&Integration> {
        self.entries().find(|e| {
            e.transport == Transport::Stdio
                && e.command.as_deref() == Some(command)
                && e.args == args
        })
    }
}

/// Validates an admin's custom entry (the same shape as a built-in one):
/// id rules, transport fields, a compiling schema with valid targets, and
/// bounded sizes. `verified` may be absent or `custom`.
pub fn parse_custom(json: &Value) -> Result<Integration, ConfigError> {
    let size = serde_json::to_vec(json)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_CUSTOM_BYTES {
        return Err(entry_error(
            "(entry)",
            format!("is {size} bytes; a custom integration is at most {MAX_CUSTOM_BYTES} bytes"),
        ));
    }
    if !json.is_object() {
        return Err(entry_error("(entry)", "must be a JSON object"));
    }
    let entry: Integration = serde_json::from_value(json.clone())
        .map_err(|e| entry_error("(entry)", format!("does not have the expected shape: {e}")))?;
    if entry.verified != Verified::Custom {
        return Err(entry_error(
            "verified",
            "must be absent or 'custom': only the built-in catalog records verification",
        ));
    }
    if entry.verified_version.is_some() {
        return Err(entry_error(
            "verified_version",
            "is recorded by the built-in catalog only",
        ));
    }
    if builtin().iter().any(|b| b.id == entry.id) {
        return Err(entry_error(
            "id",
            format!(
                "'{}' belongs to a built-in integration: choose another id",
                entry.id
            ),
        ));
    }
    entry.check(Origin::Custom)?;
    Ok(entry)
}

/// Checks `config` against the entry's schema and builds the connection's
/// settings: static args plus `arg` settings, and the headers and
/// environment variables named by the targets, with formats applied.
pub fn resolve(
    entry: &Integration,
    config: &Map<String, Value>,
    publisher: Publisher,
) -> Result<ResolvedIntegration, ConfigError> {
    if !entry.has_server() {
        return Err(ConfigError::NoServer {
            integration: entry.id.clone(),
            reason: if entry.notes.is_empty() {
                "the catalog has neither a package nor a URL for it".to_owned()
            } else {
                entry.notes.clone()
            },
        });
    }
    let settings = entry.settings()?;
    let id = entry.id.as_str();

    let unknown: Vec<String> = config
        .keys()
        .filter(|key| !settings.iter().any(|s| s.key == key.as_str()))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(ConfigError::Unknown {
            integration: id.to_owned(),
            unknown,
            allowed: settings.iter().map(|s| s.key.to_owned()).collect(),
        });
    }
    if publisher == Publisher::OrgAdmin {
        let required = entry.required();
        if let Some(s) = settings
            .iter()
            .find(|s| s.host_path && (config.contains_key(s.key) || required.contains(&s.key)))
        {
            return Err(ConfigError::OperatorOnly {
                integration: id.to_owned(),
                key: s.key.to_owned(),
            });
        }
    }
    let missing: Vec<(String, Option<String>)> = entry
        .required()
        .into_iter()
        .filter(|key| !config.contains_key(*key))
        .map(|key| {
            let about = settings
                .iter()
                .find(|s| s.key == key)
                .and_then(|s| s.about.map(str::to_owned));
            (key.to_owned(), about)
        })
        .collect();
    if !missing.is_empty() {
        return Err(ConfigError::Missing {
            integration: id.to_owned(),
            missing,
        });
    }

    let validator = entry.compile()?;
    let instance = Value::Object(config.clone());
    let mut first: Option<ConfigError> = None;
    for error in validator.iter_errors(&instance) {
        let key = error
            .instance_path()
            .iter()
            .next()
            .map(|segment| segment.to_string())
            .unwrap_or_default();
        let mapped = match error.kind() {
            ValidationErrorKind::Type { .. } if is_top_level(error.instance_path().as_str()) => {
                let expected = settings
                    .iter()
                    .find(|s| s.key == key)
                    .map_or("of another type", |s| s.kind.describe());
                ConfigError::WrongType {
                    integration: id.to_owned(),
                    key,
                    expected: expected.to_owned(),
                }
            }
            _ => ConfigError::Invalid {
                integration: id.to_owned(),
                key: if key.is_empty() {
                    "(config)".to_owned()
                } else {
                    key
                },
                reason: error.masked().to_string(),
            },
        };
        let is_type = matches!(mapped, ConfigError::WrongType { .. });
        if first.is_none() || is_type {
            first = Some(mapped);
        }
        if is_type {
            break;
        }
    }
    if let Some(error) = first {
        return Err(error);
    }

    let mut resolved = ResolvedIntegration {
        id: id.to_owned(),
        transport: entry.transport,
        url: entry.url.clone(),
        command: entry.command.clone(),
        args: entry.args.clone(),
        headers: BTreeMap::new(),
        env: BTreeMap::new(),
    };
    for setting in &settings {
        let Some(value) = config.get(setting.key) else {
            continue;
        };
        let values = setting.render(id, value)?;
        for v in values {
            setting.place(id, v, &mut resolved)?;
        }
    }
    if resolved.args.len() > MAX_ARGS {
        return Err(ConfigError::Invalid {
            integration: id.to_owned(),
            key: "(config)".to_owned(),
            reason: format!("the command line would have more than {MAX_ARGS} arguments"),
        });
    }
    Ok(resolved)
}

fn is_top_level(path: &str) -> bool {
    path.len() > 1 && path.starts_with('/') && !path[1..].contains('/')
}

/// Where a built-in or custom entry comes from: the rules differ slightly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Builtin,
    Operator,
    Custom,
}

/// Who publishes a connection from an entry: an org admin is held to the
/// entry's host-independent settings; the instance operator (the CLI on the
/// server) may also set host paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publisher {
    OrgAdmin,
    Operator,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Env(String),
    Header(String),
    Arg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Integer,
    Number,
    Boolean,
    StringArray,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Integer => "an integer",
            Kind::Number => "a number",
            Kind::Boolean => "true or false",
            Kind::StringArray => "an array of strings",
        }
    }
}

/// One top-level property of an entry's config schema.
#[derive(Debug)]
struct Setting<'a> {
    key: &'a str,
    about: Option<&'a str>,
    kind: Kind,
    target: Target,
    format: Option<&'a str>,
    /// The value is a path on the server's host: operator-only.
    host_path: bool,
}

impl Setting<'_> {
    /// Whether `arg` could be this `arg` setting's value, formatted: the
    /// format's fixed text around a value that does not begin with '-'.
    fn produced(&self, arg: &str) -> bool {
        if self.target != Target::Arg {
            return false;
        }
        let (before, after) = self
            .format
            .and_then(|f| f.split_once(VALUE_PLACEHOLDER))
            .unwrap_or(("", ""));
        arg.strip_prefix(before)
            .and_then(|rest| rest.strip_suffix(after))
            .is_some_and(|value| !value.is_empty() && !value.starts_with('-'))
    }

    /// The value as one or more strings, formats applied.
    fn render(&self, id: &str, value: &Value) -> Result<Vec<String>, ConfigError> {
        let scalar = |v: &Value| -> Option<String> {
            match v {
                Value::String(s) => Some(s.clone()),
                Value::Bool(b) => Some(b.to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        let raw: Vec<String> = match value {
            Value::Array(items) => items.iter().filter_map(scalar).collect(),
            other => scalar(other).into_iter().collect(),
        };
        if raw.is_empty() && !matches!(value, Value::Array(_)) {
            return Err(ConfigError::WrongType {
                integration: id.to_owned(),
                key: self.key.to_owned(),
                expected: self.kind.describe().to_owned(),
            });
        }
        // A value is data: on a command line it must not become an option.
        if self.target == Target::Arg && raw.iter().any(|v| v.starts_with('-')) {
            return Err(ConfigError::Invalid {
                integration: id.to_owned(),
                key: self.key.to_owned(),
                reason:
                    "must not begin with '-': a setting is a value, never a command-line option"
                        .to_owned(),
            });
        }
        Ok(raw
            .into_iter()
            .map(|v| match self.format {
                Some(format) => format.replace(VALUE_PLACEHOLDER, &v),
                None => v,
            })
            .collect())
    }

    fn place(
        &self,
        id: &str,
        value: String,
        out: &mut ResolvedIntegration,
    ) -> Result<(), ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            integration: id.to_owned(),
            key: self.key.to_owned(),
            reason,
        };
        match &self.target {
            Target::Env(name) => {
                if value.len() > MAX_ENV_VALUE || value.contains('\0') {
                    return Err(invalid(format!(
                        "must be at most {MAX_ENV_VALUE} bytes with no NUL character"
                    )));
                }
                out.env.insert(name.clone(), value);
            }
            Target::Header(name) => {
                if value.len() > MAX_HEADER_VALUE
                    || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
                {
                    return Err(invalid(format!(
                        "must be at most {MAX_HEADER_VALUE} bytes with no line breaks"
                    )));
                }
                out.headers.insert(name.clone(), value);
            }
            Target::Arg => {
                if value.len() > MAX_ARG_LEN || value.contains('\0') {
                    return Err(invalid(format!(
                        "must be at most {MAX_ARG_LEN} bytes with no NUL character"
                    )));
                }
                out.args.push(value);
            }
        }
        Ok(())
    }
}

impl Integration {
    /// Whether `name` may be set as an environment variable of a connection
    /// built on this entry by `publisher`: it must be the target of one of
    /// the entry's settings (an allow-list, never a deny-list), and a host
    /// path only by the operator. The error says which variables are.
    pub fn check_env(&self, name: &str, publisher: Publisher) -> Result<(), ConfigError> {
        let settings = self.settings()?;
        let setting = settings
            .iter()
            .find(|s| matches!(&s.target, Target::Env(n) if n == name));
        match setting {
            Some(s) if s.host_path && publisher == Publisher::OrgAdmin => {
                Err(ConfigError::OperatorOnly {
                    integration: self.id.clone(),
                    key: s.key.to_owned(),
                })
            }
            Some(_) => Ok(()),
            None => Err(ConfigError::Undeclared {
                integration: self.id.clone(),
                variable: name.to_owned(),
                declared: settings
                    .iter()
                    .filter_map(|s| match &s.target {
                        Target::Env(n) if !(s.host_path && publisher == Publisher::OrgAdmin) => {
                            Some(n.clone())
                        }
                        _ => None,
                    })
                    .collect(),
            }),
        }
    }

    /// Whether a child may be started as `command args` with environment
    /// variables `env`: the entry's own command line, followed only by
    /// values of its `arg` settings (never an option), and only variables
    /// its settings declare. Checked again at every start, so a connection
    /// stored before a rule tightened cannot run outside it. Returns the
    /// host paths the operator gave it (the child may use those).
    pub fn check_launch<'a>(
        &self,
        command: &str,
        args: &[String],
        env: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<HostPath>, String> {
        if self.transport != Transport::Stdio || self.command.as_deref() != Some(command) {
            return Err(format!(
                "the command is not the one of the integration '{}'",
                self.id
            ));
        }
        let Some(extra) = args.strip_prefix(self.args.as_slice()) else {
            return Err(format!(
                "the arguments do not begin with those of the integration '{}'",
                self.id
            ));
        };
        let settings = self.settings().map_err(|e| e.to_string())?;
        let mut host_paths = Vec::new();
        for arg in extra {
            let Some(setting) = settings.iter().find(|s| s.produced(arg)) else {
                return Err(format!(
                    "an argument is not the value of a setting of the integration '{}' (or it begins with '-')",
                    self.id
                ));
            };
            if setting.host_path {
                host_paths.push(HostPath::Arg(arg.clone()));
            }
        }
        for name in env {
            let Some(setting) = settings
                .iter()
                .find(|s| matches!(&s.target, Target::Env(n) if n == name))
            else {
                return Err(format!(
                    "the variable '{name}' is not declared by the integration '{}'",
                    self.id
                ));
            };
            if setting.host_path {
                host_paths.push(HostPath::Env(name.to_owned()));
            }
        }
        Ok(host_paths)
    }

    /// Whether only the operator can publish this entry (a required setting
    /// is a path on the host).
    pub fn operator_only(&self) -> bool {
        let required = self.required();
        self.settings()
            .map(|s| s.iter().any(|s| s.host_path && required.contains(&s.key)))
            .unwrap_or(false)
    }

    /// Whether the entry names something to start or reach (placeholders
    /// for unverified integrations do not).
    pub fn has_server(&self) -> bool {
        match self.transport {
            Transport::Stdio => self.command.is_some(),
            Transport::StreamableHttp => self.url.is_some(),
        }
    }

    /// The names of the settings marked `secret: true`.
    pub fn secret_keys(&self) -> Vec<&str> {
        self.properties()
            .map(|props| {
                props
                    .iter()
                    .filter(|(_, p)| p.get(SECRET_KEYWORD).and_then(Value::as_bool) == Some(true))
                    .map(|(k, _)| k.as_str())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The names of the required settings.
    pub fn required(&self) -> Vec<&str> {
        self.config
            .get("required")
            .and_then(Value::as_array)
            .map(|keys| keys.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// Checks the entry against the catalog's rules (as [`parse_custom`] does
    /// for custom entries, minus the custom-only rules).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let origin = match self.verified {
            Verified::Custom => Origin::Custom,
            Verified::Operator => Origin::Operator,
            _ => Origin::Builtin,
        };
        self.check(origin)
    }

    fn properties(&self) -> Option<&Map<String, Value>> {
        self.config.get("properties").and_then(Value::as_object)
    }

    fn compile(&self) -> Result<jsonschema::Validator, ConfigError> {
        jsonschema::draft202012::new(&Value::Object(self.config.clone()))
            .map_err(|e| entry_error("config", format!("is not a valid JSON Schema: {e}")))
    }

    fn check(&self, origin: Origin) -> Result<(), ConfigError> {
        switchboard_domain::validate_slug("id", &self.id)
            .map_err(|e| entry_error(e.field, e.message))?;
        check_text("name", &self.name, MAX_NAME)?;
        check_text("description", &self.description, MAX_DESCRIPTION)?;
        if self.notes.chars().count() > MAX_NOTES {
            return Err(entry_error(
                "notes",
                format!("must be at most {MAX_NOTES} characters"),
            ));
        }
        if let Some(homepage) = &self.homepage {
            check_url("homepage", homepage, false)?;
        }
        self.check_transport(origin)?;
        self.check_verified(origin)?;
        let settings = self.settings()?;
        for setting in &settings {
            let field = format!("config.properties.{}", setting.key);
            match (&setting.target, self.transport) {
                (Target::Header(_), Transport::Stdio) => {
                    return Err(entry_error(
                        field,
                        "targets a header, but a stdio server takes env or arg settings",
                    ));
                }
                (Target::Env(_) | Target::Arg, Transport::StreamableHttp) => {
                    return Err(entry_error(
                        field,
                        "targets env or arg, but a streamable_http server takes header settings",
                    ));
                }
                _ => {}
            }
        }
        self.compile()?;
        Ok(())
    }

    fn check_transport(&self, origin: Origin) -> Result<(), ConfigError> {
        match self.transport {
            Transport::Stdio => {
                if self.url.is_some() {
                    return Err(entry_error("url", "is for streamable_http entries only"));
                }
                let Some(command) = &self.command else {
                    if origin == Origin::Builtin && self.verified == Verified::Unverified {
                        return Ok(());
                    }
                    return Err(entry_error("command", "is required for a stdio entry"));
                };
                let command_ok = !command.is_empty()
                    && command.len() <= MAX_COMMAND
                    && command
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
                if !command_ok {
                    return Err(entry_error(
                        "command",
                        format!(
                            "must be a program name of at most {MAX_COMMAND} characters from a-z, A-Z, 0-9, '-', '_', '.', '/'"
                        ),
                    ));
                }
                if self.args.len() > MAX_ARGS {
                    return Err(entry_error(
                        "args",
                        format!("must have at most {MAX_ARGS} items"),
                    ));
                }
                if let Some(i) = self
                    .args
                    .iter()
                    .position(|a| a.len() > MAX_ARG_LEN || a.contains('\0'))
                {
                    return Err(entry_error(
                        format!("args[{i}]"),
                        format!("must be at most {MAX_ARG_LEN} bytes with no NUL character"),
                    ));
                }
                match (&self.package, &self.version) {
                    (Some(package), Some(version)) => {
                        check_package(package)?;
                        check_version(version)?;
                        let pinned = format!("{package}@{version}");
                        if !self.args.contains(&pinned) {
                            return Err(entry_error(
                                "args",
                                format!("must contain '{pinned}' so the pinned version runs"),
                            ));
                        }
                    }
                    (Some(_), None) => {
                        return Err(entry_error(
                            "version",
                            "is required with a package: pin an exact version",
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(entry_error("package", "is required with a version"));
                    }
                    (None, None) => {
                        if command == "npx" {
                            return Err(entry_error(
                                "package",
                                "is required when the command is npx (with a pinned version)",
                            ));
                        }
                    }
                }
                // An org's own entry runs a pinned npm package and nothing
                // else: any other command line is the operator's to define.
                if origin == Origin::Custom {
                    let pinned = match (&self.package, &self.version) {
                        (Some(p), Some(v)) => format!("{p}@{v}"),
                        _ => String::new(),
                    };
                    if command != "npx" || self.args != ["-y".to_owned(), pinned] {
                        return Err(entry_error(
                            "command",
                            "of a custom stdio entry must be 'npx' with args exactly ['-y', '<package>@<version>']: other command lines are defined by the server's operator (gateway.operator_catalog)",
                        ));
                    }
                }
            }
            Transport::StreamableHttp => {
                for (field, set) in [
                    ("command", self.command.is_some()),
                    ("package", self.package.is_some()),
                    ("version", self.version.is_some()),
                    ("args", !self.args.is_empty()),
                ] {
                    if set {
                        return Err(entry_error(field, "is for stdio entries only"));
                    }
                }
                match &self.url {
                    Some(url) => check_url("url", url, true)?,
                    None => {
                        if !(origin == Origin::Builtin && self.verified == Verified::Unverified) {
                            return Err(entry_error(
                                "url",
                                "is required for a streamable_http entry",
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn check_verified(&self, origin: Origin) -> Result<(), ConfigError> {
        match (origin, self.verified) {
            (Origin::Builtin, Verified::Custom) => Err(entry_error(
                "verified",
                "of a built-in entry must be registry, vendor-docs or unverified",
            )),
            (Origin::Custom, v) if v != Verified::Custom => Err(entry_error(
                "verified",
                "must be absent or 'custom': only the built-in catalog records verification",
            )),
            (Origin::Operator, v) if v != Verified::Operator => Err(entry_error(
                "verified",
                "of an operator entry must be absent or 'operator'",
            )),
            (_, Verified::Registry) => {
                if self.package.is_none() || self.version.is_none() {
                    return Err(entry_error(
                        "verified",
                        "is registry, which needs a package and a pinned version",
                    ));
                }
                if self.verified_version != self.version {
                    return Err(entry_error(
                        "verified_version",
                        "must equal version for a registry-verified entry",
                    ));
                }
                Ok(())
            }
            (_, Verified::VendorDocs) => {
                if self.url.is_none() {
                    return Err(entry_error("verified", "is vendor-docs, which needs a url"));
                }
                Ok(())
            }
            (_, Verified::Unverified) => {
                if self.notes.trim().is_empty() {
                    return Err(entry_error(
                        "notes",
                        "must say what was checked for an unverified entry",
                    ));
                }
                Ok(())
            }
            (Origin::Custom, Verified::Custom) | (Origin::Operator, Verified::Operator) => Ok(()),
            (_, Verified::Operator) | (Origin::Operator, _) => Err(entry_error(
                "verified",
                "is 'operator', which only entries of gateway.operator_catalog may say",
            )),
        }
    }

    /// Reads the config schema's top-level properties, checking the
    /// catalog's rules for each.
    fn settings(&self) -> Result<Vec<Setting<'_>>, ConfigError> {
        let c = &self.config;
        if let Some(dialect) = c.get("$schema")
            && dialect.as_str() != Some(SCHEMA_DIALECT)
        {
            return Err(entry_error(
                "config.$schema",
                format!("must be '{SCHEMA_DIALECT}' when present"),
            ));
        }
        if c.get("type").and_then(Value::as_str) != Some("object") {
            return Err(entry_error("config.type", "must be 'object'"));
        }
        if c.get("additionalProperties") != Some(&Value::Bool(false)) {
            return Err(entry_error(
                "config.additionalProperties",
                "must be false, so unknown settings are refused",
            ));
        }
        let props = match c.get("properties") {
            None => None,
            Some(Value::Object(p)) => Some(p),
            Some(_) => {
                return Err(entry_error("config.properties", "must be an object"));
            }
        };
        static EMPTY: OnceLock<Map<String, Value>> = OnceLock::new();
        let props = props.unwrap_or_else(|| EMPTY.get_or_init(Map::new));
        if props.len() > MAX_PROPERTIES {
            return Err(entry_error(
                "config.properties",
                format!("must have at most {MAX_PROPERTIES} settings"),
            ));
        }
        match c.get("required") {
            None => {}
            Some(Value::Array(keys)) => {
                let mut seen = BTreeSet::new();
                for key in keys {
                    let Some(key) = key.as_str() else {
                        return Err(entry_error("config.required", "must list setting names"));
                    };
                    if !props.contains_key(key) {
                        return Err(entry_error(
                            "config.required",
                            format!("names '{key}', which is not in config.properties"),
                        ));
                    }
                    if !seen.insert(key) {
                        return Err(entry_error(
                            "config.required",
                            format!("names '{key}' twice"),
                        ));
                    }
                }
            }
            Some(_) => return Err(entry_error("config.required", "must be an array")),
        }

        let mut settings = Vec::with_capacity(props.len());
        let mut targets: BTreeSet<String> = BTreeSet::new();
        for (key, prop) in props {
            let field = format!("config.properties.{key}");
            let key_ok = !key.is_empty()
                && key.len() <= 64
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !key_ok {
                return Err(entry_error(
                    field,
                    "is not a valid setting name: use 1 to 64 characters from a-z, 0-9 and '_'",
                ));
            }
            let Some(prop) = prop.as_object() else {
                return Err(entry_error(field, "must be an object"));
            };
            let kind = match prop.get("type").and_then(Value::as_str) {
                Some("string") => Kind::String,
                Some("integer") => Kind::Integer,
                Some("number") => Kind::Number,
                Some("boolean") => Kind::Boolean,
                Some("array") => {
                    let items = prop
                        .get("items")
                        .and_then(Value::as_object)
                        .and_then(|i| i.get("type"))
                        .and_then(Value::as_str);
                    if items != Some("string") {
                        return Err(entry_error(
                            format!("{field}.items"),
                            "must be {\"type\": \"string\"}: only arrays of strings are supported",
                        ));
                    }
                    Kind::StringArray
                }
                _ => {
                    return Err(entry_error(
                        format!("{field}.type"),
                        "must be one of string, integer, number, boolean or array (of strings)",
                    ));
                }
            };
            let Some(raw_target) = prop.get(TARGET_KEYWORD).and_then(Value::as_str) else {
                return Err(entry_error(
                    format!("{field}.{TARGET_KEYWORD}"),
                    "is required: 'env:NAME', 'header:Name' or 'arg'",
                ));
            };
            let target = parse_target(raw_target)
                .map_err(|reason| entry_error(format!("{field}.{TARGET_KEYWORD}"), reason))?;
            let target_key = match &target {
                Target::Env(name) => Some(format!("env:{name}")),
                Target::Header(name) => Some(format!("header:{}", name.to_ascii_lowercase())),
                Target::Arg => None,
            };
            if let Some(target_key) = target_key
                && !targets.insert(target_key)
            {
                return Err(entry_error(
                    format!("{field}.{TARGET_KEYWORD}"),
                    format!("'{raw_target}' is already the target of another setting"),
                ));
            }
            if kind == Kind::StringArray && target != Target::Arg {
                return Err(entry_error(
                    format!("{field}.type"),
                    "array is only allowed for 'arg' settings",
                ));
            }
            let format = match prop.get(FORMAT_KEYWORD) {
                None => None,
                Some(Value::String(f))
                    if f.matches(VALUE_PLACEHOLDER).count() == 1
                        && f.len() <= MAX_FORMAT
                        && !f.chars().any(char::is_control) =>
                {
                    Some(f.as_str())
                }
                Some(_) => {
                    return Err(entry_error(
                        format!("{field}.{FORMAT_KEYWORD}"),
                        format!(
                            "must be a string of at most {MAX_FORMAT} characters containing '{{value}}' exactly once"
                        ),
                    ));
                }
            };
            let secret = match prop.get(SECRET_KEYWORD) {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(entry_error(
                        format!("{field}.{SECRET_KEYWORD}"),
                        "must be true or false",
                    ));
                }
            };
            if secret && target == Target::Arg {
                return Err(entry_error(
                    format!("{field}.{TARGET_KEYWORD}"),
                    "is 'arg', but a secret must not go on the command line: use an env target",
                ));
            }
            let about = prop
                .get("title")
                .and_then(Value::as_str)
                .or_else(|| prop.get("description").and_then(Value::as_str));
            let host_path = match prop.get(HOST_PATH_KEYWORD) {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(entry_error(
                        format!("{field}.{HOST_PATH_KEYWORD}"),
                        "must be true or false",
                    ));
                }
            };
            if host_path && (secret || matches!(target, Target::Header(_))) {
                return Err(entry_error(
                    format!("{field}.{HOST_PATH_KEYWORD}"),
                    "marks a path on the host: only for non-secret env or arg settings",
                ));
            }
            settings.push(Setting {
                key: key.as_str(),
                about,
                kind,
                target,
                format,
                host_path,
            });
        }
        Ok(settings)
    }
}

fn parse_target(raw: &str) -> Result<Target, String> {
    if raw == "arg" {
        return Ok(Target::Arg);
    }
    if let Some(name) = raw.strip_prefix("env:") {
        let ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(format!(
                "'{name}' is not an environment variable name ([A-Z_][A-Z0-9_]*)"
            ));
        }
        if name.starts_with("SWITCHBOARD_")
            || name.starts_with("LD_")
            || name.starts_with("DYLD_")
            || name == "PATH"
            || name == "NODE_OPTIONS"
        {
            return Err(format!(
                "'{name}' cannot be set for an upstream (SWITCHBOARD_*, LD_*, DYLD_*, PATH and NODE_OPTIONS are the host's own)"
            ));
        }
        return Ok(Target::Env(name.to_owned()));
    }
    if let Some(name) = raw.strip_prefix("header:") {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            return Err(format!("'{name}' is not a valid HTTP header name"));
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "'{name}' is set by the gateway itself and cannot be configured"
            ));
        }
        return Ok(Target::Header(name.to_owned()));
    }
    Err(format!(
        "'{raw}' is not a target: use 'env:NAME', 'header:Name' or 'arg'"
    ))
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), ConfigError> {
    switchboard_domain::validate_name(field, value, max)
        .map(|_| ())
        .map_err(|e| entry_error(e.field, e.message))
}

fn check_url(field: &str, raw: &str, allow_http: bool) -> Result<(), ConfigError> {
    if raw.len() > MAX_URL {
        return Err(entry_error(
            field,
            format!("must be at most {MAX_URL} characters"),
        ));
    }
    let url = url::Url::parse(raw).map_err(|e| entry_error(field, format!("is not a URL: {e}")))?;
    let scheme_ok = url.scheme() == "https" || (allow_http && url.scheme() == "http");
    if !scheme_ok || url.host_str().is_none() {
        let schemes = if allow_http { "http or https" } else { "https" };
        return Err(entry_error(
            field,
            format!("must be an absolute {schemes} URL"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(entry_error(
            field,
            "must not carry credentials: use a header setting",
        ));
    }
    Ok(())
}

fn check_package(package: &str) -> Result<(), ConfigError> {
    let name_ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && !s.starts_with('_')
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._~".contains(c))
    };
    let ok = package.len() <= MAX_PACKAGE
        && match package.strip_prefix('@') {
            Some(scoped) => scoped
                .split_once('/')
                .is_some_and(|(scope, name)| name_ok(scope) && name_ok(name)),
            None => name_ok(package),
        };
    if ok {
        Ok(())
    } else {
        Err(entry_error(
            "package",
            "is not a valid npm package name (lowercase, optionally '@scope/name')",
        ))
    }
}

/// An exact semantic version (`1.2.3`, optionally `-pre` and `+build`), not a
/// range or a tag: what runs must be what was reviewed.
fn check_version(version: &str) -> Result<(), ConfigError> {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let numbers: Vec<&str> = core.split('.').collect();
    let ok = version.len() <= MAX_VERSION
        && numbers.len() == 3
        && numbers
            .iter()
            .all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(entry_error(
            "version",
            format!(
                "'{version}' is not an exact version (MAJOR.MINOR.PATCH): ranges and tags are refused"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn custom_http() -> Value {
        json!({
            "id": "acme-tools",
            "name": "Acme tools",
            "description": "Acme's internal MCP server.",
            "transport": "streamable_http",
            "url": "https://mcp.acme.example/mcp",
            "config": {
                "$schema": SCHEMA_DIALECT,
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "token": {
                        "type": "string",
                        "title": "Acme API token",
                        "minLength": 1,
                        "secret": true,
                        "x-switchboard-target": "header:Authorization",
                        "x-switchboard-format": "Bearer {value}"
                    },
                    "region": {
                        "type": "string",
                        "enum": ["eu", "us"],
                        "x-switchboard-target": "header:X-Acme-Region"
                    },
                    "page_size": {
                        "type": "integer",
                        "minimum": 1,
                        "x-switchboard-target": "header:X-Page-Size"
                    }
                },
                "required": ["token"]
            }
        })
    }

    #[test]
    fn builtin_catalog_parses_and_every_entry_follows_the_rules() {
        let raw: Vec<Value> =
            serde_json::from_str(include_str!("../integrations.json")).expect("valid JSON");
        let entries: Vec<Integration> =
            serde_json::from_str(include_str!("../integrations.json")).expect("entries parse");
        assert_eq!(raw.len(), entries.len());
        assert!(entries.len() >= 20, "the catalog is unexpectedly small");
        // Nothing was dropped by the loader's own checks.
        assert_eq!(builtin().len(), entries.len());

        let mut ids = BTreeSet::new();
        for entry in &entries {
            let id = entry.id.as_str();
            assert!(ids.insert(id), "duplicate id {id}");
            switchboard_domain::validate_slug("id", id).expect("id is a valid slug");
            entry
                .check(Origin::Builtin)
                .unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_ne!(entry.verified, Verified::Custom, "{id}");
            assert!(!entry.notes.is_empty(), "{id} has no notes");

            if entry.transport == Transport::Stdio && entry.has_server() {
                let package = entry.package.as_deref().expect("stdio has a package");
                let version = entry.version.as_deref().expect("stdio has a version");
                assert_eq!(entry.command.as_deref(), Some("npx"), "{id}");
                assert_eq!(entry.args.first().map(String::as_str), Some("-y"), "{id}");
                assert!(
                    entry.args.contains(&format!("{package}@{version}")),
                    "{id}: the pinned version is not in args"
                );
                check_version(version).unwrap_or_else(|e| panic!("{id}: {e}"));
                assert_eq!(entry.verified, Verified::Registry, "{id}");
                assert_eq!(entry.verified_version.as_deref(), Some(version), "{id}");
            }
            if entry.verified == Verified::VendorDocs {
                assert!(entry.url.is_some(), "{id}");
            }

            // The schema compiles as draft 2020-12 and every property has a
            // valid target.
            jsonschema::draft202012::new(&Value::Object(entry.config.clone()))
                .unwrap_or_else(|e| panic!("{id}: schema does not compile: {e}"));
            let props = entry.properties().cloned().unwrap_or_default();
            for (key, prop) in &props {
                let target = prop
                    .get(TARGET_KEYWORD)
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("{id}.{key} has no target"));
                parse_target(target).unwrap_or_else(|e| panic!("{id}.{key}: {e}"));
            }
            let secrets = entry.secret_keys();
            for key in &secrets {
                let target = props[*key][TARGET_KEYWORD].as_str().unwrap_or_default();
                assert_ne!(target, "arg", "{id}.{key}: a secret on the command line");
            }
        }
    }

    #[test]
    fn every_builtin_resolves_with_its_required_settings() {
        for entry in builtin() {
            if !entry.has_server() {
                let err =
                    resolve(entry, &Map::new(), Publisher::Operator).expect_err("placeholder");
                assert!(matches!(err, ConfigError::NoServer { .. }), "{}", entry.id);
                continue;
            }
            let settings = entry.settings().expect("settings");
            let mut config = Map::new();
            for setting in &settings {
                if !entry.required().contains(&setting.key) {
                    continue;
                }
                let value = match setting.kind {
                    Kind::String => json!("T1234"),
                    Kind::Integer | Kind::Number => json!(1),
                    Kind::Boolean => json!(true),
                    Kind::StringArray => json!(["/srv/data"]),
                };
                config.insert(setting.key.to_owned(), value);
            }
            let resolved = resolve(entry, &config, Publisher::Operator)
                .unwrap_or_else(|e| panic!("{}: {e}", entry.id));
            assert_eq!(resolved.transport, entry.transport);
        }
    }

    #[test]
    fn find_returns_builtin_entries() {
        let notion = find("notion").expect("notion is built in");
        assert_eq!(
            notion.package.as_deref(),
            Some("@notionhq/notion-mcp-server")
        );
        assert!(find("no-such-integration").is_none());
    }

    #[test]
    fn a_missing_required_key_is_named_with_what_it_is() {
        let notion = find("notion").expect("notion");
        let err = resolve(notion, &Map::new(), Publisher::Operator).expect_err("missing token");
        assert!(
            matches!(&err, ConfigError::Missing { missing, .. } if missing[0].0 == "api_token")
        );
        assert_eq!(
            err.to_string(),
            "the integration 'notion' needs 'api_token' (Notion internal integration token): add it to config"
        );
    }

    #[test]
    fn several_missing_keys_are_all_named() {
        let slack = find("slack").expect("slack");
        let err = resolve(slack, &Map::new(), Publisher::Operator).expect_err("missing");
        let msg = err.to_string();
        assert!(
            msg.contains("'bot_token'") && msg.contains("'team_id'"),
            "{msg}"
        );
        assert!(msg.ends_with("add them to config"), "{msg}");
    }

    #[test]
    fn an_unknown_key_is_named_with_the_allowed_ones() {
        let notion = find("notion").expect("notion");
        let config = obj(json!({"api_token": "ntn_x", "api_tokn": "oops"}));
        let err = resolve(notion, &config, Publisher::Operator).expect_err("unknown key");
        assert!(
            matches!(&err, ConfigError::Unknown { unknown, .. } if unknown == &vec!["api_tokn".to_owned()])
        );
        let msg = err.to_string();
        assert!(msg.contains("no setting 'api_tokn'"), "{msg}");
        assert!(msg.contains("its settings are 'api_token'"), "{msg}");
    }

    #[test]
    fn a_wrong_type_is_named_without_echoing_the_value() {
        let entry = parse_custom(&custom_http()).expect("custom entry");
        let config = obj(json!({"token": 12345, "page_size": "many"}));
        let err = resolve(&entry, &config, Publisher::Operator).expect_err("wrong type");
        match &err {
            ConfigError::WrongType { key, expected, .. } => {
                assert!(key == "token" || key == "page_size", "{key}");
                assert!(expected == "a string" || expected == "an integer");
            }
            other => panic!("expected WrongType, got {other}"),
        }
        assert!(!err.to_string().contains("12345"));

        let bool_entry = find("sequential-thinking").expect("entry");
        let err = resolve(
            bool_entry,
            &obj(json!({"disable_thought_logging": "yes"})),
            Publisher::Operator,
        )
        .expect_err("not a boolean");
        assert_eq!(
            err.to_string(),
            "the setting 'disable_thought_logging' of the integration 'sequential-thinking' must be true or false"
        );
    }

    #[test]
    fn other_schema_failures_are_named_and_masked() {
        let entry = parse_custom(&custom_http()).expect("custom entry");
        let config = obj(json!({"token": "s3cr3t-value", "region": "mars"}));
        let err = resolve(&entry, &config, Publisher::Operator).expect_err("enum");
        assert!(
            matches!(&err, ConfigError::Invalid { key, .. } if key == "region"),
            "{err}"
        );
        assert!(!err.to_string().contains("mars"), "{err}");

        let err = resolve(&entry, &obj(json!({"token": ""})), Publisher::Operator)
            .expect_err("empty token");
        assert!(
            matches!(&err, ConfigError::Invalid { key, .. } if key == "token"),
            "{err}"
        );
    }

    #[test]
    fn a_stdio_entry_resolves_to_env_and_pinned_args() {
        let sentry = find("sentry").expect("sentry");
        let config = obj(json!({"access_token": "sntrys_abc", "host": "sentry.example.com"}));
        let r = resolve(sentry, &config, Publisher::Operator).expect("resolves");
        assert_eq!(r.transport, Transport::Stdio);
        assert_eq!(r.command.as_deref(), Some("npx"));
        assert_eq!(
            r.args,
            vec!["-y".to_owned(), "@sentry/mcp-server@0.39.0".to_owned()]
        );
        assert_eq!(
            r.env.get("SENTRY_ACCESS_TOKEN").map(String::as_str),
            Some("sntrys_abc")
        );
        assert_eq!(
            r.env.get("SENTRY_HOST").map(String::as_str),
            Some("sentry.example.com")
        );
        assert!(r.headers.is_empty());
        assert!(r.url.is_none());
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("sntrys_abc"),
            "Debug leaks a secret: {shown}"
        );
    }

    #[test]
    fn a_remote_entry_resolves_to_headers_with_the_format_applied() {
        let github = find("github-remote").expect("github-remote");
        let config = obj(json!({"personal_access_token": "ghp_123"}));
        let r = resolve(github, &config, Publisher::Operator).expect("resolves");
        assert_eq!(r.transport, Transport::StreamableHttp);
        assert_eq!(r.url.as_deref(), Some("https://api.githubcopilot.com/mcp/"));
        assert_eq!(
            r.headers.get("Authorization").map(String::as_str),
            Some("Bearer ghp_123")
        );
        assert!(r.env.is_empty() && r.command.is_none() && r.args.is_empty());

        let entry = parse_custom(&custom_http()).expect("custom entry");
        let config = obj(json!({"token": "t0k", "region": "eu", "page_size": 50}));
        let r = resolve(&entry, &config, Publisher::Operator).expect("resolves");
        assert_eq!(
            r.headers.get("Authorization").map(String::as_str),
            Some("Bearer t0k")
        );
        assert_eq!(
            r.headers.get("X-Acme-Region").map(String::as_str),
            Some("eu")
        );
        assert_eq!(r.headers.get("X-Page-Size").map(String::as_str), Some("50"));
    }

    #[test]
    fn arg_settings_are_appended_with_formats_and_scalars_become_strings() {
        let fs = find("filesystem").expect("filesystem");
        let r = resolve(
            fs,
            &obj(json!({"directories": ["/srv/a", "/srv/b"]})),
            Publisher::Operator,
        )
        .expect("fs");
        assert_eq!(
            &r.args[r.args.len() - 2..],
            &["/srv/a".to_owned(), "/srv/b".to_owned()]
        );

        let supabase = find("supabase").expect("supabase");
        let config = obj(json!({"access_token": "sbp_1", "project_ref": "abcdef"}));
        let r = resolve(supabase, &config, Publisher::Operator).expect("supabase");
        assert_eq!(
            r.args.last().map(String::as_str),
            Some("--project-ref=abcdef")
        );
        assert!(r.args.contains(&"--read-only".to_owned()));
        assert_eq!(
            r.env.get("SUPABASE_ACCESS_TOKEN").map(String::as_str),
            Some("sbp_1")
        );

        let st = find("sequential-thinking").expect("entry");
        let r = resolve(
            st,
            &obj(json!({"disable_thought_logging": true})),
            Publisher::Operator,
        )
        .expect("bool");
        assert_eq!(
            r.env.get("DISABLE_THOUGHT_LOGGING").map(String::as_str),
            Some("true")
        );
    }

    #[test]
    fn header_values_with_line_breaks_are_refused() {
        let github = find("github-remote").expect("github-remote");
        let err = resolve(
            github,
            &obj(json!({"personal_access_token": "a\r\nX-Evil: 1"})),
            Publisher::Operator,
        )
        .expect_err("header injection");
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");
        assert!(!err.to_string().contains("X-Evil"));
    }

    #[test]
    fn placeholders_explain_that_there_is_no_server() {
        let loom = find("loom").expect("loom placeholder");
        assert!(!loom.has_server());
        let err = resolve(loom, &Map::new(), Publisher::Operator).expect_err("no server");
        assert!(
            err.to_string()
                .starts_with("the integration 'loom' has no server to connect to yet")
        );
    }

    #[test]
    fn custom_entries_are_validated_with_clear_errors() {
        let ok = parse_custom(&custom_http()).expect("valid custom entry");
        assert_eq!(ok.verified, Verified::Custom);
        assert_eq!(ok.secret_keys(), vec!["token"]);

        let cases: Vec<(Value, &str)> = vec![
            (json!({"id": "Bad_Id"}), "'id'"),
            (json!({"id": "notion"}), "belongs to a built-in integration"),
            (json!({"url": null}), "'url' is required"),
            (
                json!({"url": "ftp://x.example"}),
                "'url' must be an absolute http or https URL",
            ),
            (
                json!({"description": "x".repeat(2001)}),
                "'description' must be at most 2000",
            ),
            (json!({"verified": "registry"}), "'verified'"),
            (json!({"surprise": 1}), "unknown field `surprise`"),
            (
                json!({"command": "npx"}),
                "'command' is for stdio entries only",
            ),
        ];
        for (patch, expected) in cases {
            let mut entry = custom_http();
            for (k, v) in patch.as_object().expect("patch") {
                if v.is_null() {
                    entry.as_object_mut().expect("obj").remove(k);
                } else {
                    entry[k] = v.clone();
                }
            }
            let err = parse_custom(&entry).expect_err(expected);
            assert!(err.to_string().contains(expected), "{expected}: got {err}");
        }
    }

    #[test]
    fn custom_schemas_must_be_bounded_and_well_targeted() {
        let with_config = |config: Value| {
            let mut entry = custom_http();
            entry["config"] = config;
            parse_custom(&entry)
        };
        let base = |props: Value| json!({"type": "object", "additionalProperties": false, "properties": props});

        let err = with_config(json!({"type": "object", "properties": {}})).expect_err("open");
        assert!(err.to_string().contains("additionalProperties"), "{err}");

        let err = with_config(base(json!({"k": {"type": "string"}}))).expect_err("no target");
        assert!(err.to_string().contains(TARGET_KEYWORD), "{err}");

        let err = with_config(base(
            json!({"k": {"type": "string", "x-switchboard-target": "env:TOKEN"}}),
        ))
        .expect_err("env on http");
        assert!(err.to_string().contains("streamable_http"), "{err}");

        let err = with_config(base(
            json!({"k": {"type": "string", "x-switchboard-target": "header:Host"}}),
        ))
        .expect_err("reserved header");
        assert!(err.to_string().contains("set by the gateway"), "{err}");

        let err = with_config(base(json!({"k": {"type": "string", "x-switchboard-target": "header:A", "x-switchboard-format": "Bearer"}})))
            .expect_err("format without placeholder");
        assert!(err.to_string().contains("{value}"), "{err}");

        let err = with_config(base(
            json!({"k": {"type": "strin", "x-switchboard-target": "header:A"}}),
        ))
        .expect_err("bad type");
        assert!(
            err.to_string().contains("config.properties.k.type"),
            "{err}"
        );

        let mut many = Map::new();
        for i in 0..65 {
            many.insert(
                format!("k{i}"),
                json!({"type": "string", "x-switchboard-target": format!("header:X-K{i}")}),
            );
        }
        let err = with_config(base(Value::Object(many))).expect_err("too many");
        assert!(err.to_string().contains("at most 64"), "{err}");

        let err = with_config(json!({
            "type": "object", "additionalProperties": false,
            "properties": {"k": {"type": "string", "x-switchboard-target": "header:A"}},
            "required": ["nope"]
        }))
        .expect_err("required names a missing property");
        assert!(err.to_string().contains("'nope'"), "{err}");

        let err = with_config(json!({
            "type": "object", "additionalProperties": false,
            "properties": {"k": {"type": "string", "pattern": "(", "x-switchboard-target": "header:A"}}
        }))
        .expect_err("schema does not compile");
        assert!(err.to_string().contains("not a valid JSON Schema"), "{err}");
    }

    #[test]
    fn custom_stdio_entries_pin_versions_and_keep_secrets_off_the_command_line() {
        let stdio = |patch: Value| {
            let mut entry = json!({
                "id": "my-tool",
                "name": "My tool",
                "description": "A tool.",
                "transport": "stdio",
                "package": "my-mcp-server",
                "version": "1.2.3",
                "command": "npx",
                "args": ["-y", "my-mcp-server@1.2.3"],
                "config": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "api_key": {"type": "string", "secret": true, "x-switchboard-target": "env:MY_API_KEY"}
                    },
                    "required": ["api_key"]
                }
            });
            for (k, v) in patch.as_object().expect("patch") {
                entry[k] = v.clone();
            }
            parse_custom(&entry)
        };
        let entry = stdio(json!({})).expect("valid");
        let r =
            resolve(&entry, &obj(json!({"api_key": "k"})), Publisher::Operator).expect("resolves");
        assert_eq!(r.env.get("MY_API_KEY").map(String::as_str), Some("k"));

        let err = stdio(json!({"version": "latest"})).expect_err("tag");
        assert!(err.to_string().contains("not an exact version"), "{err}");
        let err = stdio(json!({"version": "^1.2.3"})).expect_err("range");
        assert!(err.to_string().contains("not an exact version"), "{err}");
        let err = stdio(json!({"args": ["-y", "my-mcp-server"]})).expect_err("unpinned");
        assert!(err.to_string().contains("my-mcp-server@1.2.3"), "{err}");
        let err = stdio(json!({"command": null, "package": null, "version": null, "args": []}))
            .expect_err("no command");
        assert!(err.to_string().contains("'command' is required"), "{err}");

        let err = stdio(json!({"config": {
            "type": "object", "additionalProperties": false,
            "properties": {"api_key": {"type": "string", "secret": true, "x-switchboard-target": "arg"}}
        }}))
        .expect_err("secret arg");
        assert!(
            err.to_string().contains("must not go on the command line"),
            "{err}"
        );

        let err = stdio(json!({"config": {
            "type": "object", "additionalProperties": false,
            "properties": {"p": {"type": "string", "x-switchboard-target": "env:LD_PRELOAD"}}
        }}))
        .expect_err("dangerous env");
        assert!(err.to_string().contains("LD_PRELOAD"), "{err}");

        let err = stdio(json!({"config": {
            "type": "object", "additionalProperties": false,
            "properties": {
                "a": {"type": "string", "x-switchboard-target": "env:SAME"},
                "b": {"type": "string", "x-switchboard-target": "env:SAME"}
            }
        }}))
        .expect_err("duplicate target");
        assert!(err.to_string().contains("already the target"), "{err}");
    }

    #[test]
    fn oversized_custom_entries_are_refused() {
        let mut entry = custom_http();
        entry["notes"] = json!("n".repeat(MAX_CUSTOM_BYTES));
        let err = parse_custom(&entry).expect_err("too big");
        assert!(err.to_string().contains("at most 65536 bytes"), "{err}");
        assert!(parse_custom(&json!([1, 2])).is_err());
    }
}
