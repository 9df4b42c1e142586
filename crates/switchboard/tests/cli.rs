//! The CLI as an operator uses it, on both backends.
// Test code states its expectations: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;
use serde_json::Value;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

both_backends!(
    bootstrap_prints_ids_and_takes_the_password_from_stdin,
    |db: TestDb| async move {
        let out = db.cli_with(
            &[
                "admin",
                "bootstrap",
                "--email",
                "ada@example.com",
                "--org-slug",
                "acme",
                "--org-name",
                "Acme",
            ],
            &[],
            Some(&format!("{PASSWORD}\n")),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let v: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
        assert!(v["account_id"].is_string() && v["org_id"].is_string());
        assert_eq!(v["org_slug"], "acme");
        // The same slug again is refused with the reason; nothing changes.
        let out = db.cli_with(
            &[
                "admin",
                "bootstrap",
                "--email",
                "bob@example.com",
                "--org-slug",
                "acme",
                "--org-name",
                "Again",
            ],
            &[("SWITCHBOARD_BOOTSTRAP_PASSWORD", PASSWORD)],
            None,
        );
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("slug 'acme' already exists"),
            "{}",
            stderr(&out)
        );
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM accounts").await, 1);
        // A bad slug names the field.
        let out = db.cli_with(
            &[
                "admin",
                "bootstrap",
                "--email",
                "c@example.com",
                "--org-slug",
                "Bad_Slug",
                "--org-name",
                "X",
            ],
            &[("SWITCHBOARD_BOOTSTRAP_PASSWORD", PASSWORD)],
            None,
        );
        assert!(
            stderr(&out).contains("org_slug: 'Bad_Slug' is not a valid slug"),
            "{}",
            stderr(&out)
        );
        // No password at all.
        let out = db.cli_with(
            &[
                "admin",
                "bootstrap",
                "--email",
                "c@example.com",
                "--org-slug",
                "c-org",
                "--org-name",
                "X",
            ],
            &[],
            None,
        );
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("SWITCHBOARD_BOOTSTRAP_PASSWORD"),
            "{}",
            stderr(&out)
        );
    }
);

both_backends!(token_create_list_and_revoke, |db: TestDb| async move {
    db.bootstrap("ada@example.com", "acme");
    let out = db.cli(&[
        "token",
        "create",
        "--email",
        "ada@example.com",
        "--org",
        "acme",
        "--name",
        "laptop",
        "--scopes",
        "read:tasks,write:tasks",
        "--expires-in",
        "30d",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_owned();
    assert_eq!(token.len(), 64);
    assert!(stderr(&out).contains("shown only this once"));

    let out = db.cli(&[
        "token",
        "list",
        "--email",
        "ada@example.com",
        "--org",
        "acme",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let t = &list[0];
    for key in ["id", "name", "prefix", "scopes", "expires_at", "revoked"] {
        assert!(t.get(key).is_some(), "missing {key} in {t}");
    }
    assert_eq!(t["name"], "laptop");
    assert_eq!(t["prefix"], &token[..8]);
    assert_eq!(
        t["scopes"],
        serde_json::json!(["read:tasks", "write:tasks"])
    );
    assert_eq!(t["revoked"], false);
    assert!(t["expires_at"].as_str().is_some_and(|s| s.ends_with('Z')));
    assert!(
        !stdout(&out).contains(&token),
        "the list never shows the token"
    );

    let id = t["id"].as_str().unwrap_or_default();
    let out = db.cli(&["token", "revoke", id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = db.cli(&[
        "token",
        "list",
        "--email",
        "ada@example.com",
        "--org",
        "acme",
        "--json",
    ]);
    let list: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(list[0]["revoked"], true);
    let out = db.cli(&["token", "revoke", id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already revoked"));

    for (args, expect) in [
        (
            vec!["--scopes", "read:tasks,admin:all"],
            "unknown scope 'admin:all'",
        ),
        (
            vec!["--scopes", "read:tasks", "--expires-in", "soon"],
            "--expires-in: 'soon'",
        ),
        (
            vec!["--scopes", "read:tasks", "--kind", "robot"],
            "unknown token kind 'robot'",
        ),
    ] {
        let mut a = vec![
            "token",
            "create",
            "--email",
            "ada@example.com",
            "--org",
            "acme",
            "--name",
            "x",
        ];
        a.extend(args);
        let out = db.cli(&a);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(expect), "{}", stderr(&out));
    }
    let out = db.cli(&[
        "token",
        "create",
        "--email",
        "nobody@example.com",
        "--org",
        "acme",
        "--name",
        "x",
        "--scopes",
        "read:org",
    ]);
    assert!(
        stderr(&out).contains("not an active member of 'acme'"),
        "{}",
        stderr(&out)
    );
    // Every CLI change is audited with surface cli.
    assert_eq!(
        db.scalar_i64(
            "SELECT COUNT(*) FROM audit_events WHERE surface = 'cli' AND action = 'token.revoke'"
        )
        .await,
        1
    );
});

both_backends!(migrate_is_idempotent, |db: TestDb| async move {
    for _ in 0..2 {
        let out = db.cli(&["migrate"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("migrations applied"));
    }
    assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM organizations").await, 0);
});

#[test]
fn check_config_layers_sources_and_masks_secrets() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("switchboard.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:9000\"\n[log]\nlevel = \"debug\"\n[gateway]\nallow_loopback_upstreams = false\n").expect("write");
    let out = std::process::Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&file)
        .args(["--database-url", "postgres://sb:hunter2@db.internal/sb"])
        .env("SWITCHBOARD_LOG__LEVEL", "warn")
        .env("SWITCHBOARD_GATEWAY__ALLOW_LOOPBACK_UPSTREAMS", "true")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let s = stdout(&out);
    assert!(s.contains("listen = \"127.0.0.1:9000\""), "{s}");
    assert!(s.contains("level = \"warn\""), "env beats file: {s}");
    assert!(s.contains("allow_loopback_upstreams = true"), "{s}");
    assert!(s.contains("postgres://sb:****@db.internal/sb"), "{s}");
    assert!(!s.contains("hunter2") && !stderr(&out).contains("hunter2"));

    std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nlisten_port = 3\n").expect("write");
    let out = std::process::Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("listen_port"), "{}", stderr(&out));
    let out = std::process::Command::new(BIN)
        .args(["check-config"])
        .env("SWITCHBOARD_PUBLIC_URL", "ftp://x")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("public_url"), "{}", stderr(&out));
}
