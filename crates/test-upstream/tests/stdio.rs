//! The test upstream over stdio, spoken to in plain JSON lines: it
//! initializes, answers `echo` with its text and `pid` with its own id.
//! (Building this test also builds the binary the gateway's suites use.)
// Test code states its expectations: it may expect, panic and index.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn it_answers_over_stdio() {
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_switchboard-test-upstream"))
            .arg("stdio")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the test upstream"),
    );
    let pid = child.0.id();
    let mut stdin = child.0.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.0.stdout.take().expect("stdout"));
    let mut ask = |msg: Value| -> Option<Value> {
        writeln!(stdin, "{msg}").expect("write");
        stdin.flush().expect("flush");
        msg.get("id")?;
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read");
        Some(serde_json::from_str(&line).expect("a JSON-RPC answer"))
    };
    let init = ask(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}}),
    )
    .expect("initialize answered");
    assert_eq!(
        init["result"]["serverInfo"]["name"],
        "switchboard-test-upstream"
    );
    ask(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let echo = ask(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "over stdio"}}}))
    .expect("echo answered");
    assert_eq!(echo["result"]["content"][0]["text"], "over stdio");
    assert_eq!(echo["result"]["structuredContent"]["text"], "over stdio");
    let me = ask(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "pid", "arguments": {}}}))
    .expect("pid answered");
    assert_eq!(me["result"]["structuredContent"]["pid"], pid);
}
