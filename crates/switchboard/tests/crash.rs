//! Durability: kill -9 the server during a burst of API writes. After a
//! restart, every acknowledged write is there with its audit event, no
//! change exists without its event, and the database opens cleanly.
// Test code states its expectations: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const WRITERS: usize = 8;
const MAX_WRITES_PER_WRITER: usize = 500;

both_backends!(
    acknowledged_writes_survive_kill_9,
    |db: TestDb| async move {
        db.bootstrap("ada@example.com", "acme");
        let token = db.token("ada@example.com", "acme", "personal", ALL_SCOPES);
        let mut server = Server::start(&db);
        let acked: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let api = Api::with_token(&server, &token);
            let acked = acked.clone();
            writers.push(tokio::spawn(async move {
                for i in 0..MAX_WRITES_PER_WRITER {
                    let r = api
                        .http
                        .post(format!("{}/api/v1/projects", api.base))
                        .bearer_auth(api.token.clone().unwrap_or_default())
                        .json(&json!({"name": format!("w{w}-{i}")}))
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await;
                    let Ok(r) = r else { break };
                    if r.status().as_u16() != 201 {
                        break;
                    }
                    let Ok(v) = r.json::<serde_json::Value>().await else {
                        break;
                    };
                    if let Some(id) = v["id"].as_str()
                        && let Ok(mut a) = acked.lock()
                    {
                        a.push(id.to_owned());
                    }
                }
            }));
        }
        // Let the burst run, then kill the server without warning mid-burst.
        let deadline = Instant::now() + Duration::from_secs(20);
        while acked.lock().map(|a| a.len()).unwrap_or(0) < 60 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server.child.kill().expect("SIGKILL");
        let _ = server.child.wait();
        for w in writers {
            let _ = w.await;
        }
        let acked = acked.lock().map(|a| a.clone()).unwrap_or_default();
        assert!(
            acked.len() >= 60,
            "the burst acknowledged only {} writes",
            acked.len()
        );

        // The server restarts on the same database.
        let again = Server::start(&db);
        let api = Api::with_token(&again, &token);
        assert_eq!(api.get("/api/v1/me").await.status, 200);
        let id_list = acked
            .iter()
            .map(|i| format!("'{i}'"))
            .collect::<Vec<_>>()
            .join(",");
        let present = db
            .scalar_i64(&format!(
                "SELECT COUNT(*) FROM projects WHERE id IN ({id_list})"
            ))
            .await;
        assert_eq!(present as usize, acked.len(), "acknowledged projects lost");
        let audited = db
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'project.create' AND outcome = 'ok' AND target IN ({id_list})"
        ))
        .await;
        assert_eq!(
            audited as usize,
            acked.len(),
            "acknowledged projects without their audit event"
        );
        let orphans = db
        .scalar_i64(
            "SELECT COUNT(*) FROM projects p WHERE NOT EXISTS
               (SELECT 1 FROM audit_events a WHERE a.target = p.id AND a.action = 'project.create')",
        )
        .await;
        assert_eq!(orphans, 0, "a change without its audit event");
        if db.backend == Backend::Sqlite {
            sqlx::any::install_default_drivers();
            use sqlx::Connection;
            let mut c = sqlx::AnyConnection::connect(&db.inspect_url())
                .await
                .expect("connect");
            let check: String = sqlx::query_scalar("PRAGMA integrity_check")
                .fetch_one(&mut c)
                .await
                .expect("check");
            assert_eq!(check, "ok");
        }
        eprintln!(
            "{:?}: {} acknowledged writes survived kill -9",
            db.backend,
            acked.len()
        );
    }
);
