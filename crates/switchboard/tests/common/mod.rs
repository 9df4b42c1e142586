//! The end-to-end harness: the real `switchboard` binary on an ephemeral
//! loopback port, against a fresh SQLite data directory or a fresh
//! PostgreSQL database in the throwaway cluster `scripts/test.sh` starts.
#![allow(dead_code)]

pub mod mcp;
pub mod oauth;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test body once per backend: `both_backends!(name, |db| async move { … });`
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::common::TestDb::new($crate::common::Backend::Sqlite).await;
                ($body)(db).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = $crate::common::TestDb::new($crate::common::Backend::Postgres).await;
                ($body)(db).await;
            }
        }
    };
}

/// reqwest is built without a bundled TLS crypto provider (the product
/// uses ring, see `switchboard-egress`): install it before any client is
/// built. Every test starts with a [`TestDb`], which calls this.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// One empty database (and a scratch directory) for one test.
pub struct TestDb {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub database_url: Option<String>,
    /// The cluster's admin URL and this test's database name, to drop it afterwards.
    drop_with: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((base, name)) = self.drop_with.take() else {
            return;
        };
        // Drop may run inside the test's runtime, which must not block: use a
        // thread with its own small runtime, and never fail a test over cleanup.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::PgConnection::connect(&base).await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        install_tls_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let created = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let base = std::env::var("SWITCHBOARD_TEST_POSTGRES_URL").expect(
                    "SWITCHBOARD_TEST_POSTGRES_URL is not set: run ./scripts/test.sh, which starts a throwaway PostgreSQL cluster",
                );
                // Unique across runs on a long-lived cluster too: pids are reused.
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default();
                let name = format!(
                    "sb_{}_{}_{nanos}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst)
                );
                use sqlx::Connection;
                // Parallel test processes create databases at the same time;
                // template0 accepts no connections, and a short retry covers
                // PostgreSQL's refusal of concurrent copies of one template.
                let mut last_error = String::new();
                let mut created = false;
                for attempt in 0..20 {
                    let result = async {
                        let mut conn = sqlx::PgConnection::connect(&base).await?;
                        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                            "CREATE DATABASE {name} TEMPLATE template0"
                        )))
                        .execute(&mut conn)
                        .await?;
                        conn.close().await
                    }
                    .await;
                    match result {
                        Ok(()) => {
                            created = true;
                            break;
                        }
                        Err(e) => last_error = e.to_string(),
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50 * (attempt + 1))).await;
                }
                assert!(
                    created,
                    "could not create the test database {name}: {last_error}"
                );
                let (prefix, _) = base.rsplit_once('/').expect("URL has a database");
                Some((format!("{prefix}/{name}"), base, name))
            }
        };
        let (database_url, drop_with) = match created {
            Some((url, base, name)) => (Some(url), Some((base, name))),
            None => (None, None),
        };
        TestDb {
            backend,
            dir,
            database_url,
            drop_with,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The flags that point a command at this database.
    pub fn db_args(&self) -> Vec<String> {
        let mut a = vec![
            "--data-dir".to_owned(),
            self.data_dir().display().to_string(),
        ];
        if let Some(u) = &self.database_url {
            a.push("--database-url".into());
            a.push(u.clone());
        }
        a
    }

    /// The URL tests use to inspect the database directly.
    pub fn inspect_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!(
                "sqlite://{}",
                self.data_dir().join("switchboard.db").display()
            ),
        }
    }

    /// Runs one SQL statement against the database (to set up what the API
    /// cannot, such as a token that has already expired).
    pub async fn sql(&self, statement: &str) {
        sqlx::any::install_default_drivers();
        use sqlx::Connection;
        let mut c = sqlx::AnyConnection::connect(&self.inspect_url())
            .await
            .expect("connect");
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&mut c)
            .await
            .expect("sql");
    }

    pub async fn scalar_i64(&self, query: &str) -> i64 {
        sqlx::any::install_default_drivers();
        use sqlx::Connection;
        let mut c = sqlx::AnyConnection::connect(&self.inspect_url())
            .await
            .expect("connect");
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(query.to_owned()))
            .fetch_one(&mut c)
            .await
            .expect("scalar query")
    }

    /// Runs a CLI command on this database.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with(args, &[], None)
    }

    pub fn cli_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args).args(self.db_args());
        clean_env(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn switchboard");
        if let Some(input) = stdin {
            use std::io::Write;
            let mut s = child.stdin.take().expect("stdin");
            s.write_all(input.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("wait")
    }

    /// `admin bootstrap`: an owner and an org. Returns the JSON it printed.
    pub fn bootstrap(&self, email: &str, slug: &str) -> Value {
        let out = self.cli_with(
            &[
                "admin",
                "bootstrap",
                "--email",
                email,
                "--org-slug",
                slug,
                "--org-name",
                &format!("Org {slug}"),
            ],
            &[("SWITCHBOARD_BOOTSTRAP_PASSWORD", PASSWORD)],
            None,
        );
        assert!(
            out.status.success(),
            "bootstrap failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("bootstrap prints JSON")
    }

    /// `token create`: returns the secret.
    pub fn token(&self, email: &str, org: &str, kind: &str, scopes: &str) -> String {
        let out = self.cli(&[
            "token", "create", "--email", email, "--org", org, "--name", "test", "--kind", kind,
            "--scopes", scopes,
        ]);
        assert!(
            out.status.success(),
            "token create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_owned()
    }
}

/// Children never see the developer's own SWITCHBOARD_* settings.
fn clean_env(cmd: &mut Command) {
    for (k, _) in std::env::vars() {
        if k.starts_with("SWITCHBOARD_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "info");
}

/// The secret key every PostgreSQL test server shares (SQLite servers make
/// their own key file).
pub const TEST_SECRET_KEY: &str =
    "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

pub const ALL_SCOPES: &str =
    "read:org,write:org,read:tasks,write:tasks,write:commits,read:requirements,connections:use";

/// A running server.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub setup_url: Option<String>,
    pub log_path: PathBuf,
}

impl Server {
    pub fn start(db: &TestDb) -> Server {
        Server::start_with(db, &[], &[])
    }

    pub fn start_with(db: &TestDb, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let log_path = db.dir.path().join(format!(
            "server-{}.log",
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(db.db_args())
            .args(extra);
        clean_env(&mut cmd);
        if db.backend == Backend::Postgres {
            // Replicas on PostgreSQL must share the key that seals secrets.
            cmd.env("SWITCHBOARD_SECRET_KEY", TEST_SECRET_KEY);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
        let mut child = cmd.spawn().expect("spawn server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // The server prints the setup link (if any) before the line naming
        // its address, and that line last: read until it.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut base = None;
        let mut setup_url = None;
        while base.is_none() && Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("switchboard listening on ") {
                        base = Some(rest.trim().to_owned());
                    } else if let Some(i) = line.find("/setup/") {
                        let start = line[..i].rfind("http").expect("setup URL");
                        let end = line[i..].find(' ').map(|e| i + e).unwrap_or(line.len());
                        setup_url = Some(line[start..end].to_owned());
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => break,
            }
        }
        let Some(base) = base else {
            let _ = child.kill();
            panic!(
                "server did not start: {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        };
        Server {
            child,
            base,
            setup_url,
            log_path,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends a signal with `kill` and waits (bounded) for exit.
    pub fn signal(&mut self, sig: &str) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small JSON HTTP client with an optional bearer token or session.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// A response as tests look at it: JSON when the body is JSON, else its text.
pub async fn read_resp(resp: reqwest::Response) -> Resp {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Resp {
        status,
        headers,
        body,
    }
}

impl Resp {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    pub fn error_message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }
}

impl Api {
    pub fn new(server: &Server) -> Api {
        Api {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: server.base.clone(),
            token: None,
            cookie: None,
            csrf: None,
        }
    }

    pub fn with_token(server: &Server, token: &str) -> Api {
        let mut a = Api::new(server);
        a.token = Some(token.to_owned());
        a
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(m, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if let Some(c) = &self.csrf {
            req = req.header("x-csrf-token", c);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        read_resp(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send("POST", path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send("PATCH", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, None).await
    }

    /// Signs in through the API and keeps the session cookie and CSRF token.
    pub async fn sign_in(server: &Server, email: &str, password: &str) -> Api {
        let a = Api::new(server);
        let r = a
            .post(
                "/api/v1/auth/sign-in",
                serde_json::json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(r.status, 200, "sign-in failed: {:?}", r.body);
        let set_cookie = r.header("set-cookie");
        let cookie = set_cookie.split(';').next().expect("cookie").to_owned();
        let mut a = Api::new(server);
        a.cookie = Some(cookie);
        a.csrf = r.body["csrf_token"].as_str().map(str::to_owned);
        a
    }
}

/// Invites `email` (as `admin`), accepts with the standard password, and
/// returns the new membership id.
pub async fn add_member(admin: &Api, email: &str, role: &str) -> String {
    let r = admin
        .post(
            "/api/v1/invitations",
            serde_json::json!({"email": email, "role": role}),
        )
        .await;
    assert_eq!(r.status, 201, "invite {email}: {:?}", r.body);
    let token = r.body["invitation_token"]
        .as_str()
        .expect("invitation token")
        .to_owned();
    let anon = Api {
        token: None,
        cookie: None,
        csrf: None,
        ..admin.clone()
    };
    let r = anon
        .post(
            "/api/v1/invitations/accept",
            serde_json::json!({"token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "accept {email}: {:?}", r.body);
    r.body["membership_id"]
        .as_str()
        .expect("membership id")
        .to_owned()
}

/// The test upstream binary (`switchboard-test-upstream`), built by the
/// workspace's test build next to the switchboard binary.
pub fn test_upstream_bin() -> String {
    std::path::Path::new(BIN)
        .with_file_name("switchboard-test-upstream")
        .to_string_lossy()
        .into_owned()
}

/// Whether the tests run as root (CI does). Stdio children never run as
/// root, so a server here gets a dedicated unprivileged user for them.
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// An operator catalog entry for a stdio server the tests run: its command
/// line, a `marker` argument (tests find their children by it) and an
/// `api_key` variable (`UPSTREAM_API_KEY`), the only settings an org admin
/// may give it.
pub fn operator_entry(id: &str, command: &str, args: &[&str]) -> Value {
    serde_json::json!({
        "id": id,
        "name": format!("Test server {id}"),
        "description": "A stdio server of the test suite",
        "transport": "stdio",
        "command": command,
        "args": args,
        "config": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "marker": {"type": "string", "x-switchboard-target": "arg"},
                "api_key": {"type": "string", "secret": true, "x-switchboard-target": "env:UPSTREAM_API_KEY"}
            }
        }
    })
}

/// The settings a server needs to run the tests' stdio servers: an
/// operator catalog with `entries` (written into the test's directory) and,
/// when the tests run as root, `nobody` as the children's user.
pub fn stdio_settings(db: &TestDb, entries: &[Value]) -> Vec<(String, String)> {
    let path = db.dir.path().join(format!(
        "operator-catalog-{}.json",
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::write(&path, Value::Array(entries.to_vec()).to_string()).expect("write catalog");
    let mut env = vec![(
        "SWITCHBOARD_GATEWAY__OPERATOR_CATALOG".to_owned(),
        path.display().to_string(),
    )];
    if running_as_root() {
        env.push((
            "SWITCHBOARD_GATEWAY__STDIO_USER".to_owned(),
            "nobody".to_owned(),
        ));
    }
    env
}

/// Borrows owned settings as the pairs [`Server::start_with`] takes.
pub fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}
