//! Concurrency: many writers at once (API and CLI processes on the same
//! database) all succeed; single-use things have exactly one winner.
// Test code states its expectations: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;
use serde_json::json;

const WRITERS: usize = 16;
const WRITES_EACH: usize = 20;
const CLI_WRITERS: usize = 4;

both_backends!(
    concurrent_writers_never_fail_with_busy,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let token = db.token("ada@example.com", "acme", "personal", ALL_SCOPES);
        let server = Server::start(&db);
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let api = Api::with_token(&server, &token);
            tasks.push(tokio::spawn(async move {
                let mut statuses = Vec::new();
                for i in 0..WRITES_EACH {
                    let r = api
                        .post("/api/v1/projects", json!({"name": format!("w{w}-{i}")}))
                        .await;
                    statuses.push(r.status);
                }
                statuses
            }));
        }
        // Operator commands write to the same database at the same time.
        let args = db.db_args();
        let cli = std::thread::spawn(move || {
            (0..CLI_WRITERS)
                .map(|i| {
                    std::process::Command::new(BIN)
                        .args([
                            "token",
                            "create",
                            "--email",
                            "ada@example.com",
                            "--org",
                            "acme",
                            "--name",
                            &format!("cli-{i}"),
                            "--scopes",
                            "read:org",
                        ])
                        .args(&args)
                        .output()
                        .map(|o| o.status.success())
                        .unwrap_or(false)
                })
                .collect::<Vec<bool>>()
        });
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.extend(t.await.expect("writer"));
        }
        let cli_ok = cli.join().expect("cli thread");
        assert!(
            statuses.iter().all(|s| *s == 201),
            "non-201 answers: {:?}",
            statuses.iter().filter(|s| **s != 201).collect::<Vec<_>>()
        );
        assert!(cli_ok.iter().all(|ok| *ok), "{cli_ok:?}");
        assert_eq!(
            db.scalar_i64("SELECT COUNT(*) FROM projects").await,
            (WRITERS * WRITES_EACH) as i64
        );
        assert_eq!(
            db.scalar_i64("SELECT COUNT(*) FROM audit_events WHERE action = 'project.create'")
                .await,
            (WRITERS * WRITES_EACH) as i64
        );
    }
);

both_backends!(
    an_invitation_accepted_twice_at_once_has_one_winner,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let a = Server::start(&db);
        let b = Server::start(&db);
        let owner = Api::with_token(
            &a,
            &db.token("ada@example.com", "acme", "personal", ALL_SCOPES),
        );
        for round in 0..3 {
            let inv = owner
                .post(
                    "/api/v1/invitations",
                    json!({"email": format!("racer{round}@example.com")}),
                )
                .await;
            let token = inv.body["invitation_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let body = json!({"token": token, "password": PASSWORD});
            let (api_a, api_b) = (Api::new(&a), Api::new(&b));
            let (ra, rb) = tokio::join!(
                api_a.post("/api/v1/invitations/accept", body.clone()),
                api_b.post("/api/v1/invitations/accept", body.clone())
            );
            let mut st = [ra.status, rb.status];
            st.sort();
            assert_eq!(
                st,
                [200, 404],
                "round {round}: {:?} / {:?}",
                ra.body,
                rb.body
            );
        }
        assert_eq!(
            db.scalar_i64("SELECT COUNT(*) FROM audit_events WHERE action = 'invitation.accept'")
                .await,
            3
        );
    }
);
