//! Operator commands: they open the same database a server uses and call
//! the same core use cases, audited with surface `cli`.

use std::io::BufRead;

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use switchboard_core::accounts::{BootstrapInput, cli_meta};
use switchboard_core::tokens::CreateToken;
use switchboard_core::{Core, CoreConfig, Ctx};
use switchboard_storage::{Db, DbOptions};

use crate::settings::Settings;

/// Opens (creating the SQLite data directory if needed) and migrates the database.
pub async fn open_db(settings: &Settings) -> Result<Db> {
    let resolved = settings.resolve()?;
    if settings.is_default_sqlite() {
        create_data_dir(settings.data_dir())?;
    }
    let opts = DbOptions {
        max_connections: settings.database.max_connections,
        busy_timeout: std::time::Duration::from_millis(settings.database.busy_timeout_ms),
        ..DbOptions::default()
    };
    let db = Db::connect(&resolved.database_url, &opts)
        .await
        .with_context(|| {
            format!(
                "opening the database {}",
                switchboard_storage::redact_url(&resolved.database_url)
            )
        })?;
    db.migrate().await.context("applying migrations")?;
    Ok(db)
}

fn create_data_dir(dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The directory will hold the database and key material: owner only.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting permissions of {}", dir.display()))?;
    }
    Ok(())
}

pub fn core_config(settings: &Settings, public_url: &str) -> Result<CoreConfig> {
    let resolved = settings.resolve()?;
    let a = &settings.auth;
    Ok(CoreConfig {
        session_ttl_ms: (a.session_ttl_hours * 3600 * 1000) as i64,
        invitation_ttl_ms: (a.invitation_ttl_hours * 3600 * 1000) as i64,
        setup_token_ttl_ms: (a.setup_link_ttl_minutes * 60 * 1000) as i64,
        sign_in_max_failures: i64::from(a.sign_in_max_failures),
        sign_in_window_ms: (a.sign_in_window_minutes * 60 * 1000) as i64,
        sign_in_max_per_email: i64::from(a.sign_in_max_failures_per_email),
        sign_in_max_per_address: i64::from(a.sign_in_max_failures_per_address),
        max_page_size: settings.api.max_page_size,
        default_page_size: settings.api.default_page_size,
        public_url: public_url.trim_end_matches('/').to_owned(),
        oauth: switchboard_core::oauth::OAuthConfig {
            access_token_ttl_ms: (settings.oauth.access_token_ttl_secs * 1000) as i64,
            refresh_token_ttl_ms: (settings.oauth.refresh_token_ttl_days * 24 * 3600 * 1000) as i64,
            code_ttl_ms: (settings.oauth.code_ttl_secs * 1000) as i64,
            registrations_per_hour: i64::from(settings.oauth.registrations_per_hour),
            ..Default::default()
        },
        catalog: switchboard_core::integrations::Catalog::new(resolved.operator_catalog),
        allow_custom_packages: settings.gateway.allow_custom_packages,
        org_creation: resolved.org_creation,
        mcp_max_sessions_per_token: settings.mcp.max_sessions_per_token,
        mcp_max_sessions: settings.mcp.max_sessions,
    })
}

/// The keyring that seals connection secrets: `SWITCHBOARD_SECRET_KEY`
/// (one key, or several separated by commas, the last sealing), or on
/// SQLite a key file created in the data directory. Replicas on PostgreSQL
/// must share keys, so there the variable is required.
pub fn keyring(settings: &Settings) -> Result<switchboard_vault::Keyring> {
    if let Ok(v) = std::env::var("SWITCHBOARD_SECRET_KEY")
        && !v.trim().is_empty()
    {
        return Ok(switchboard_vault::Keyring::from_env_value(&v)?);
    }
    if !settings.is_default_sqlite() {
        anyhow::bail!(
            "SWITCHBOARD_SECRET_KEY is not set: with PostgreSQL every replica must seal and open connection secrets with the same key; generate one with `openssl rand -hex 32` and give it to every replica"
        );
    }
    std::fs::create_dir_all(settings.data_dir())
        .with_context(|| format!("creating {}", settings.data_dir().display()))?;
    Ok(switchboard_vault::Keyring::load_or_create_file(
        settings.data_dir(),
    )?)
}

async fn open_core(settings: &Settings) -> Result<Core> {
    let db = open_db(settings).await?;
    let public = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.listen));
    Ok(Core::new(db, core_config(settings, &public)?))
}

pub async fn migrate(settings: Settings) -> Result<()> {
    let db = open_db(&settings).await?;
    println!("migrations applied ({})", db.backend().as_str());
    db.close().await;
    Ok(())
}

pub fn check_config(settings: Settings) -> Result<()> {
    settings.resolve()?;
    print!("{}", settings.to_masked_toml()?);
    eprintln!("configuration is valid");
    Ok(())
}

fn read_password() -> Result<String> {
    if let Ok(p) = std::env::var("SWITCHBOARD_BOOTSTRAP_PASSWORD")
        && !p.is_empty()
    {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let p = line.trim_end_matches(['\r', '\n']).to_owned();
    if p.is_empty() {
        bail!("no password: set SWITCHBOARD_BOOTSTRAP_PASSWORD or pass it on stdin");
    }
    Ok(p)
}

pub async fn bootstrap(
    settings: Settings,
    email: String,
    org_slug: String,
    org_name: String,
    display_name: Option<String>,
) -> Result<()> {
    let password = read_password()?;
    let core = open_core(&settings).await?;
    let out = core
        .bootstrap(
            BootstrapInput {
                email,
                display_name,
                password,
                org_slug,
                org_name,
            },
            &cli_meta(),
        )
        .await?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    core.db().close().await;
    Ok(())
}

pub struct TokenRequest {
    pub email: String,
    pub org: String,
    pub name: String,
    pub kind: String,
    pub scopes: Vec<String>,
    pub expires_in: Option<String>,
    pub environment: Option<String>,
}

pub async fn token_create(settings: Settings, req: TokenRequest, json: bool) -> Result<()> {
    let expires_in_seconds = match &req.expires_in {
        Some(s) => Some(
            humantime::parse_duration(s)
                .with_context(|| {
                    format!("--expires-in: '{s}' is not a duration such as 30d or 12h")
                })?
                .as_secs() as i64,
        ),
        None => None,
    };
    let core = open_core(&settings).await?;
    let principal = core.cli_principal(&req.email, &req.org).await?;
    let meta = cli_meta();
    let created = core
        .create_token(
            Ctx {
                principal: &principal,
                meta: &meta,
            },
            CreateToken {
                name: req.name,
                kind: req.kind,
                scopes: req.scopes,
                expires_in_seconds,
                environment: req.environment,
            },
        )
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&created)?);
    } else {
        println!("{}", created.token);
        eprintln!(
            "created {} token '{}' (id {}, prefix {}); it is shown only this once",
            created.info.kind, created.info.name, created.info.id, created.info.prefix
        );
    }
    core.db().close().await;
    Ok(())
}

pub async fn token_list(settings: Settings, email: String, org: String, json: bool) -> Result<()> {
    let core = open_core(&settings).await?;
    let principal = core.cli_principal(&email, &org).await?;
    let meta = cli_meta();
    let tokens = core
        .list_tokens(Ctx {
            principal: &principal,
            meta: &meta,
        })
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&tokens)?);
    } else {
        println!(
            "{:<36}  {:<8}  {:<8}  {:<20}  {:<8}  SCOPES",
            "ID", "KIND", "PREFIX", "NAME", "STATE"
        );
        for t in tokens {
            let state = if t.revoked { "revoked" } else { "active" };
            println!(
                "{:<36}  {:<8}  {:<8}  {:<20}  {:<8}  {}",
                t.id,
                t.kind,
                t.prefix,
                t.name,
                state,
                t.scopes.join(",")
            );
        }
    }
    core.db().close().await;
    Ok(())
}

pub async fn token_revoke(settings: Settings, id: String) -> Result<()> {
    let core = open_core(&settings).await?;
    let t = core.operator_revoke_token(&id, &cli_meta()).await?;
    println!("revoked token {} ('{}')", t.id, t.name);
    core.db().close().await;
    Ok(())
}

pub async fn oauth_client_register(
    settings: Settings,
    name: String,
    redirect_uris: Vec<String>,
    confidential: bool,
    json: bool,
) -> Result<()> {
    use switchboard_core::oauth::{ClientKind, NewClient};
    let core = open_core(&settings).await?;
    let input = NewClient {
        client_name: Some(name),
        redirect_uris,
        // The operator decides: public clients authenticate with PKCE alone.
        token_endpoint_auth_method: Some(
            if confidential {
                "client_secret_basic"
            } else {
                "none"
            }
            .into(),
        ),
        ..Default::default()
    };
    let reg = core
        .register_oauth_client(input, ClientKind::Registered, &cli_meta())
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.description))?;
    if json {
        let mut v = serde_json::to_value(&reg.client)?;
        if let (Some(secret), Some(m)) = (&reg.client_secret, v.as_object_mut()) {
            m.insert("client_secret".into(), serde_json::json!(secret));
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("client_id: {}", reg.client.client_id);
        if let Some(secret) = &reg.client_secret {
            println!("client_secret: {secret}");
            println!("(the secret is shown only now: store it in the client)");
        }
    }
    core.db().close().await;
    Ok(())
}

pub async fn oauth_client_list(settings: Settings, json: bool) -> Result<()> {
    let core = open_core(&settings).await?;
    let clients = core.list_oauth_clients().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&clients)?);
    } else {
        println!(
            "{:<40}  {:<18}  {:<8}  {:<24}  REDIRECT URIS",
            "CLIENT ID", "KIND", "STATE", "NAME"
        );
        for c in clients {
            let state = if c.revoked { "revoked" } else { "active" };
            println!(
                "{:<40}  {:<18}  {:<8}  {:<24}  {}",
                c.client_id,
                format!("{:?}", c.kind).to_lowercase(),
                state,
                c.client_name,
                c.redirect_uris.join(" ")
            );
        }
    }
    core.db().close().await;
    Ok(())
}

pub async fn oauth_client_revoke(settings: Settings, client_id: String) -> Result<()> {
    let core = open_core(&settings).await?;
    let n = core.revoke_oauth_client(&client_id, &cli_meta()).await?;
    println!("revoked client {client_id} ({n} member grants ended)");
    core.db().close().await;
    Ok(())
}

fn env_managed_keys() -> bool {
    std::env::var("SWITCHBOARD_SECRET_KEY").is_ok_and(|v| !v.trim().is_empty())
}

/// `secrets rotate-key`: seal every connection secret under a new key.
/// With the key file, a new key is added first (unless a rotation is
/// already under way: then it continues); with `SWITCHBOARD_SECRET_KEY`,
/// the operator appends the new key to the variable and this re-seals
/// under it. Each value is re-sealed on its own, so an interrupted run
/// loses nothing and the next run continues. Keys nothing uses any more
/// are dropped from the key file at the end.
pub async fn secrets_rotate_key(settings: Settings, limit: Option<u64>) -> Result<()> {
    let mut ring = keyring(&settings)?;
    let core = open_core(&settings).await?.with_vault(ring.clone());
    let before = core.reseal_secrets(0).await?;
    if !env_managed_keys() && before.remaining == 0 {
        let id = ring.add_key_to_file(settings.data_dir())?.id().to_owned();
        println!("added key {id} to the key file; it seals from now on");
    }
    let core = open_core(&settings).await?.with_vault(ring.clone());
    let report = core.reseal_secrets(limit.unwrap_or(u64::MAX)).await?;
    println!(
        "re-sealed {} secret value(s) under key {}; {} still under older keys",
        report.resealed, report.primary_key, report.remaining
    );
    if report.remaining > 0 {
        println!("run `switchboard secrets rotate-key` again to continue");
    } else {
        // A running server keeps sealing with the key it loaded at start:
        // old keys go only once every server has restarted (prune-keys).
        println!(
            "done: restart every server so it seals with key {}, then run `switchboard secrets rotate-key` once more (it re-seals anything sealed meanwhile) and `switchboard secrets prune-keys`",
            report.primary_key
        );
    }
    core.db().close().await;
    Ok(())
}

/// `secrets prune-keys`: drops keys no sealed value uses (key file only).
pub async fn secrets_prune_keys(settings: Settings) -> Result<()> {
    let mut ring = keyring(&settings)?;
    let core = open_core(&settings).await?.with_vault(ring.clone());
    let pending = core.reseal_secrets(0).await?;
    if pending.remaining > 0 {
        bail!(
            "{} value(s) are still sealed under older keys: run `switchboard secrets rotate-key` first",
            pending.remaining
        );
    }
    let used = core.keys_in_use().await?;
    if env_managed_keys() {
        let unused: Vec<String> = ring
            .key_ids()
            .into_iter()
            .filter(|k| *k != ring.primary().id() && !used.contains(k))
            .collect();
        println!(
            "keys come from SWITCHBOARD_SECRET_KEY: remove {} from it on every replica",
            if unused.is_empty() {
                "nothing".to_owned()
            } else {
                unused.join(", ")
            }
        );
    } else {
        let dropped = ring.retain_in_file(settings.data_dir(), &used)?;
        if dropped.is_empty() {
            println!("every key in the key file is in use");
        } else {
            println!(
                "dropped unused key(s) {} from the key file",
                dropped.join(", ")
            );
        }
    }
    core.db().close().await;
    Ok(())
}

/// `secrets verify`: opens every sealed value with the current keys.
pub async fn secrets_verify(settings: Settings, json: bool) -> Result<()> {
    let ring = keyring(&settings)?;
    let core = open_core(&settings).await?.with_vault(ring.clone());
    let report = core.verify_secrets().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} secret value(s) open; {} do not",
            report.opened,
            report.failed.len()
        );
        for (k, n) in &report.key_usage {
            let primary = if *k == ring.primary().id() {
                " (primary)"
            } else {
                ""
            };
            println!("  key {k}{primary}: {n} value(s)");
        }
        for (id, e) in &report.failed {
            println!("  secret {id}: {e}");
        }
    }
    core.db().close().await;
    if report.failed.is_empty() {
        Ok(())
    } else {
        bail!("{} secret value(s) cannot be opened", report.failed.len())
    }
}

/// A `switchboard connection …` command (see main.rs for the flags).
#[derive(Debug)]
pub enum ConnectionAction {
    FromIntegration {
        who: (String, String),
        integration: String,
        slug: Option<String>,
        name: Option<String>,
        config: Option<String>,
        config_from_stdin: bool,
        json: bool,
    },
    Create {
        who: (String, String),
        slug: String,
        name: String,
        transport: String,
        url: Option<String>,
        command: Option<String>,
        args: Vec<String>,
        secrets_from_stdin: bool,
        json: bool,
    },
    List {
        who: (String, String),
        json: bool,
    },
    Grant {
        who: (String, String),
        connection: String,
        to: String,
    },
    Delete {
        who: (String, String),
        connection: String,
    },
}

/// Shared values from stdin: `header:NAME=VALUE` / `env:NAME=VALUE` lines.
fn read_secret_lines() -> Result<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    use std::io::BufRead;
    let mut headers = BTreeMap::new();
    let mut env = BTreeMap::new();
    for (i, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.context("reading stdin")?;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let (kind, rest) = line.split_once(':').ok_or_else(|| {
            anyhow::anyhow!(
                "stdin line {}: expected header:NAME=VALUE or env:NAME=VALUE",
                i + 1
            )
        })?;
        let (name, value) = rest.split_once('=').ok_or_else(|| {
            anyhow::anyhow!("stdin line {}: expected NAME=VALUE after '{kind}:'", i + 1)
        })?;
        match kind {
            "header" => headers.insert(name.to_owned(), value.to_owned()),
            "env" => env.insert(name.to_owned(), value.to_owned()),
            other => bail!("stdin line {}: '{other}' is not header or env", i + 1),
        };
    }
    Ok((headers, env))
}

pub async fn connection(settings: Settings, action: ConnectionAction) -> Result<()> {
    use switchboard_core::connections::{ConnectionScope, CreateConnection, CreateGrant};
    let core = open_core(&settings).await?.with_vault(keyring(&settings)?);
    let meta = cli_meta();
    let who = match &action {
        ConnectionAction::Create { who, .. }
        | ConnectionAction::FromIntegration { who, .. }
        | ConnectionAction::List { who, .. }
        | ConnectionAction::Grant { who, .. }
        | ConnectionAction::Delete { who, .. } => who.clone(),
    };
    let principal = core.cli_principal(&who.0, &who.1).await?;
    let ctx = Ctx {
        principal: &principal,
        meta: &meta,
    };
    match action {
        ConnectionAction::FromIntegration {
            integration,
            slug,
            name,
            config,
            config_from_stdin,
            json,
            ..
        } => {
            let parse = |text: &str,
                         from: &str|
             -> Result<serde_json::Map<String, serde_json::Value>> {
                match serde_json::from_str(text) {
                    Ok(serde_json::Value::Object(m)) => Ok(m),
                    _ => anyhow::bail!(
                        "{from} must be a JSON object of the entry's settings, such as {{\"directories\": [\"/srv/files\"]}}"
                    ),
                }
            };
            let mut settings_map = match &config {
                Some(text) => parse(text, "--settings")?,
                None => serde_json::Map::new(),
            };
            if config_from_stdin {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                    .context("reading settings from stdin")?;
                settings_map.extend(parse(&text, "stdin")?);
            }
            let v = core
                .publish_integration(
                    ctx,
                    switchboard_core::connections::PublishIntegration {
                        integration,
                        slug,
                        name,
                        config: settings_map,
                    },
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("created connection {} ({})", v.slug, v.id);
            }
        }
        ConnectionAction::Create {
            slug,
            name,
            transport,
            url,
            command,
            args,
            secrets_from_stdin,
            json,
            ..
        } => {
            let (headers, env) = if secrets_from_stdin {
                read_secret_lines()?
            } else {
                Default::default()
            };
            let shared = !headers.is_empty() || !env.is_empty();
            let v = core
                .create_connection(
                    ctx,
                    CreateConnection {
                        slug,
                        name,
                        description: None,
                        transport,
                        url,
                        command,
                        args: Some(args),
                        credential_mode: Some(if shared { "shared" } else { "none" }.into()),
                        environment: None,
                        tool_allow: None,
                        tool_deny: None,
                        tool_overrides: None,
                        headers: Some(headers),
                        env: Some(env),
                    },
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("created connection {} ({})", v.slug, v.id);
            }
        }
        ConnectionAction::List { json, .. } => {
            let list = core
                .list_connections(ctx, ConnectionScope::Manageable)
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<24}  {:<16}  {:<13}  {:<8}  TARGET",
                    "SLUG", "TRANSPORT", "HEALTH", "GRANTS"
                );
                for c in list {
                    let target = c.url.clone().or(c.command.clone()).unwrap_or_default();
                    println!(
                        "{:<24}  {:<16}  {:<13}  {:<8}  {}",
                        c.slug,
                        c.transport,
                        c.health,
                        c.grants.len(),
                        target
                    );
                }
            }
        }
        ConnectionAction::Grant { connection, to, .. } => {
            let (kind, id) = match to.split_once(':') {
                Some((k, id)) => (k.to_owned(), Some(id.to_owned())),
                None => (to.clone(), None),
            };
            let v = core
                .grant_connection(ctx, &connection, CreateGrant { kind, id })
                .await?;
            println!("{} now has {} grant(s)", v.slug, v.grants.len());
        }
        ConnectionAction::Delete { connection, .. } => {
            core.delete_connection(ctx, &connection).await?;
            println!("deleted connection {connection}");
        }
    }
    core.db().close().await;
    Ok(())
}
