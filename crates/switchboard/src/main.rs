//! `switchboard`: the one binary. A thin layer of glue: it parses the
//! command line, loads settings, opens the database, and either serves
//! every surface or runs one operator command against the same database.

mod commands;
mod listener;
mod sandbox;
mod serve;
mod settings;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::settings::{Overrides, Settings};

// Every request allocates and frees many small buffers across threads
// (JSON, headers, futures); glibc's malloc spent about a sixth of the
// gateway's CPU on them under load. mimalloc is built from its vendored C
// source (no download).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "switchboard",
    version,
    about = "Connect your organization's AI agents to its data and tools, under its rules."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Accepted by every command, so operator commands reach the same database as a running server.
#[derive(Args, Debug, Clone)]
struct GlobalArgs {
    /// TOML settings file.
    #[arg(long, global = true, env = "SWITCHBOARD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (the SQLite database lives here).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// `postgres://…` to use PostgreSQL instead of SQLite in the data directory.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the settings and print the effective values (secrets masked).
    CheckConfig,
    /// Operator commands.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Create, list and revoke personal and org tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Register, list and revoke OAuth clients (MCP apps that sign members in).
    #[command(subcommand, name = "oauth-client")]
    OAuthClient(OAuthClientCommand),
    /// The keys that seal connection secrets.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Publish, list, grant and delete gateway connections (as an org admin).
    #[command(subcommand)]
    Connection(ConnectionCommand),
}

#[derive(Subcommand, Debug)]
enum ConnectionCommand {
    /// Publish a connection. Shared values come from stdin, one
    /// `header:NAME=VALUE` or `env:NAME=VALUE` per line (never on the
    /// command line, where other users of the machine could see them).
    Create {
        /// The admin acting (needs connections.publish).
        #[arg(long)]
        email: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        /// `streamable_http` or `stdio`.
        #[arg(long)]
        transport: String,
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        command: Option<String>,
        /// An argument of the stdio command (repeat for several).
        #[arg(long = "arg")]
        args: Vec<String>,
        /// Read shared header/env values from stdin (credential mode `shared`).
        #[arg(long)]
        secrets_from_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    /// Publish a connection from a catalog entry, as the instance operator:
    /// the only way to give a setting that is a path on this host (the
    /// directories of `filesystem`, the file of `memory`). Non-secret
    /// settings come from `--settings` (a JSON object); secret ones from
    /// stdin with `--settings-from-stdin` (a JSON object, merged).
    FromIntegration {
        /// The admin acting (needs connections.publish).
        #[arg(long)]
        email: String,
        #[arg(long)]
        org: String,
        /// The catalog entry's id.
        #[arg(long)]
        integration: String,
        #[arg(long)]
        slug: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// The entry's settings as a JSON object.
        #[arg(long, value_name = "JSON")]
        settings: Option<String>,
        /// Read more settings (secrets) as a JSON object from stdin.
        #[arg(long)]
        settings_from_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the org's connections.
    List {
        #[arg(long)]
        email: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
    },
    /// Grant a connection to the org (`--to org`), a team (`--to team:ID`)
    /// or a member (`--to member:MEMBERSHIP_ID`).
    Grant {
        #[arg(long)]
        email: String,
        #[arg(long)]
        org: String,
        /// The connection's id or slug.
        connection: String,
        #[arg(long)]
        to: String,
    },
    /// Delete a connection with its secrets and grants.
    Delete {
        #[arg(long)]
        email: String,
        #[arg(long)]
        org: String,
        connection: String,
    },
}

#[derive(Subcommand, Debug)]
enum SecretsCommand {
    /// Seal every connection secret under a new key (resumable: run it
    /// again after an interruption).
    RotateKey {
        /// Re-seal at most this many values in this run.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Drop keys no sealed value uses (after every server restarted).
    PruneKeys,
    /// Check that every sealed value opens with the current keys.
    Verify {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum OAuthClientCommand {
    /// Pre-register a client and print its id (and, for a confidential
    /// client, its secret: shown this once).
    Register {
        /// The name members see on the consent page.
        #[arg(long)]
        name: String,
        /// A redirect URI (repeat for several). http://127.0.0.1/PATH
        /// matches any port, for native apps.
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// Issue a client secret (client_secret_basic); otherwise the
        /// client is public and must use PKCE alone.
        #[arg(long)]
        confidential: bool,
        #[arg(long)]
        json: bool,
    },
    /// List every registered client.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a client: it can no longer authorize, and every token it holds ends now.
    Revoke { client_id: String },
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long)]
    listen: Option<String>,
    /// The URL clients use to reach this server.
    #[arg(long)]
    public_url: Option<String>,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Create an owner account and a new organization. The password comes
    /// from SWITCHBOARD_BOOTSTRAP_PASSWORD or the first line of stdin.
    Bootstrap {
        #[arg(long)]
        email: String,
        #[arg(long)]
        org_slug: String,
        #[arg(long)]
        org_name: String,
        #[arg(long)]
        display_name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create a token for a member and print it once.
    Create {
        /// The member the token belongs to (personal) or who creates it (org).
        #[arg(long)]
        email: String,
        /// Organization slug.
        #[arg(long)]
        org: String,
        #[arg(long)]
        name: String,
        /// `personal` or `org`.
        #[arg(long, default_value = "personal")]
        kind: String,
        /// Comma-separated scopes, e.g. read:tasks,write:tasks.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Lifetime such as 30d or 12h; none means no expiry.
        #[arg(long)]
        expires_in: Option<String>,
        /// Restrict to `sandbox` or `production`.
        #[arg(long)]
        environment: Option<String>,
        /// Print the token and its details as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List a member's tokens (and the org's, for owners).
    List {
        #[arg(long)]
        email: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id.
    Revoke { id: String },
}

fn main() -> ExitCode {
    // The launcher of stdio children: nothing else (no settings, no
    // runtime, no threads) may run before it confines itself.
    if std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new("sandbox-exec")) {
        return sandbox::main(std::env::args_os().skip(1));
    }
    // Outbound TLS (reqwest, rustls) uses ring; nothing may build a client
    // before a provider is installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let listen_public = match &cli.command {
        Command::Serve(a) => (a.listen.clone(), a.public_url.clone()),
        _ => (None, None),
    };
    let overrides = Overrides {
        config_file: cli.global.config.clone(),
        listen: listen_public.0,
        data_dir: cli.global.data_dir.clone(),
        database_url: cli.global.database_url.clone(),
        public_url: listen_public.1,
    };
    let result = Settings::load(&overrides).and_then(|settings| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let result = runtime.block_on(run(cli.command, settings));
        // A task still alive at this point (an MCP session's worker, the
        // audit writer, a connection's destructor) must not keep the
        // process from exiting: shutdown stays bounded.
        runtime.shutdown_timeout(std::time::Duration::from_secs(2));
        result
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve(_) => serve::serve(settings).await,
        Command::Migrate => commands::migrate(settings).await,
        Command::CheckConfig => commands::check_config(settings),
        Command::Admin(AdminCommand::Bootstrap {
            email,
            org_slug,
            org_name,
            display_name,
        }) => commands::bootstrap(settings, email, org_slug, org_name, display_name).await,
        Command::Token(TokenCommand::Create {
            email,
            org,
            name,
            kind,
            scopes,
            expires_in,
            environment,
            json,
        }) => {
            let req = commands::TokenRequest {
                email,
                org,
                name,
                kind,
                scopes,
                expires_in,
                environment,
            };
            commands::token_create(settings, req, json).await
        }
        Command::Token(TokenCommand::List { email, org, json }) => {
            commands::token_list(settings, email, org, json).await
        }
        Command::Token(TokenCommand::Revoke { id }) => commands::token_revoke(settings, id).await,
        Command::OAuthClient(OAuthClientCommand::Register {
            name,
            redirect_uris,
            confidential,
            json,
        }) => {
            commands::oauth_client_register(settings, name, redirect_uris, confidential, json).await
        }
        Command::Connection(c) => commands::connection(settings, c.into()).await,
        Command::Secrets(SecretsCommand::RotateKey { limit }) => {
            commands::secrets_rotate_key(settings, limit).await
        }
        Command::Secrets(SecretsCommand::PruneKeys) => commands::secrets_prune_keys(settings).await,
        Command::Secrets(SecretsCommand::Verify { json }) => {
            commands::secrets_verify(settings, json).await
        }
        Command::OAuthClient(OAuthClientCommand::List { json }) => {
            commands::oauth_client_list(settings, json).await
        }
        Command::OAuthClient(OAuthClientCommand::Revoke { client_id }) => {
            commands::oauth_client_revoke(settings, client_id).await
        }
    }
}

impl From<ConnectionCommand> for commands::ConnectionAction {
    fn from(c: ConnectionCommand) -> Self {
        match c {
            ConnectionCommand::Create {
                email,
                org,
                slug,
                name,
                transport,
                url,
                command,
                args,
                secrets_from_stdin,
                json,
            } => commands::ConnectionAction::Create {
                who: (email, org),
                slug,
                name,
                transport,
                url,
                command,
                args,
                secrets_from_stdin,
                json,
            },
            ConnectionCommand::FromIntegration {
                email,
                org,
                integration,
                slug,
                name,
                settings,
                settings_from_stdin,
                json,
            } => commands::ConnectionAction::FromIntegration {
                who: (email, org),
                integration,
                slug,
                name,
                config: settings,
                config_from_stdin: settings_from_stdin,
                json,
            },
            ConnectionCommand::List { email, org, json } => commands::ConnectionAction::List {
                who: (email, org),
                json,
            },
            ConnectionCommand::Grant {
                email,
                org,
                connection,
                to,
            } => commands::ConnectionAction::Grant {
                who: (email, org),
                connection,
                to,
            },
            ConnectionCommand::Delete {
                email,
                org,
                connection,
            } => commands::ConnectionAction::Delete {
                who: (email, org),
                connection,
            },
        }
    }
}
