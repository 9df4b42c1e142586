//! Writing and reading the audit log. Every state change writes its event
//! in the same transaction as the change ([`Core::write`]); refusals are
//! written on their own, since the change they refused never happened.

use serde_json::{Map, Value};
use switchboard_storage::{self as storage, AuditRow, Conn, Db};

use crate::access::ops;
use crate::access::{Facts, Operation, decide};
use crate::views::{AuditEventView, Page};
use crate::{Core, CoreError, Ctx, RequestMeta};

/// The surface a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Api,
    Web,
    Cli,
    Mcp,
    Rpc,
    /// The OAuth authorization server's endpoints and pages.
    OAuth,
}

impl Surface {
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Api => "api",
            Surface::Web => "web",
            Surface::Cli => "cli",
            Surface::Mcp => "mcp",
            Surface::Rpc => "rpc",
            Surface::OAuth => "oauth",
        }
    }
}

/// The MCP (or JSON-RPC) request being served: the method, the tool and its
/// arguments, as the audit event records them.
#[derive(Debug, Clone)]
pub struct CallInfo {
    pub method: String,
    pub tool: Option<String>,
    pub arguments: Value,
}

/// How a request ended, as recorded in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Refused: authorization, policy or a domain rule.
    Denied,
    /// Failed: bad arguments, nothing found, an internal failure.
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }
}

/// What a change records about itself: the declared operation (its id is
/// the audit action), its target and an argument summary.
#[derive(Debug, Clone)]
pub(crate) struct AuditEntry {
    pub op: &'static Operation,
    pub target: Option<String>,
    pub args: Value,
}

impl AuditEntry {
    pub fn new(op: &'static Operation, target: Option<&str>, args: Value) -> Self {
        AuditEntry {
            op,
            target: target.map(str::to_owned),
            args,
        }
    }

    /// The event of a request that changed nothing (no operation of its
    /// own: an MCP request is recorded under its method or tool).
    fn request(target: Option<&str>) -> Self {
        AuditEntry::new(&REQUEST, target, Value::Object(Map::new()))
    }
}

/// Stands for "no use case": the row's action then comes from the MCP call.
static REQUEST: Operation = Operation {
    id: "",
    ..crate::access::ops::WHOAMI
};

/// Keys whose values are never recorded.
const SECRET_KEYS: [&str; 8] = [
    "password",
    "secret",
    "token",
    "authorization",
    "api_key",
    "apikey",
    "cookie",
    "credential",
];
/// Longer strings are cut: the audit log records what was done, not the payload.
const MAX_STRING: usize = 64;

/// The argument summary stored in an audit event: secret-looking values
/// masked, long strings cut, nesting kept.
pub fn summarize_args(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let lower = k.to_ascii_lowercase();
                if SECRET_KEYS.iter().any(|s| lower.contains(s)) {
                    out.insert(k.clone(), Value::String("****".into()));
                } else {
                    out.insert(k.clone(), summarize_args(v));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(summarize_args).collect()),
        Value::String(s) if s.chars().count() > MAX_STRING => {
            let cut: String = s.chars().take(MAX_STRING).collect();
            Value::String(format!("{cut}… ({} chars)", s.chars().count()))
        }
        other => other.clone(),
    }
}

/// `text` cut to `max` characters for an audit row or an error message,
/// saying how long it was: a name from outside may be megabytes long.
pub fn cut_for_display(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => std::borrow::Cow::Borrowed(text),
        Some((end, _)) => std::borrow::Cow::Owned(format!(
            "{}… ({} characters)",
            &text[..end],
            text.chars().count()
        )),
    }
}

/// How long an action or target (a tool name from outside) may be in a row.
const MAX_ACTION: usize = 200;

/// An event recorded where there is no principal yet or any more: sign-in,
/// bootstrap, accepting an invitation, the operator's CLI.
pub(crate) struct DirectEvent<'a> {
    pub org_id: &'a str,
    pub actor_id: Option<&'a str>,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub args: Value,
}

/// Inserts a change's event in the change's own transaction: the one place
/// (with [`Core::write`], which uses it) an event is written with a change.
pub(crate) async fn record_in(conn: &mut Conn, row: &AuditRow) -> Result<(), CoreError> {
    storage::insert_audit(&mut *conn, row).await?;
    Ok(())
}

impl DirectEvent<'_> {
    /// Records this event in the change's transaction.
    pub(crate) async fn insert(self, conn: &mut Conn, meta: &RequestMeta) -> Result<(), CoreError> {
        record_in(conn, &self.row(meta)).await
    }

    pub(crate) fn row(&self, meta: &RequestMeta) -> AuditRow {
        AuditRow {
            id: storage::new_id(),
            org_id: Some(self.org_id.to_owned()),
            at: meta.now_ms,
            actor_id: self.actor_id.map(str::to_owned),
            actor: self.actor.to_owned(),
            surface: meta.surface.as_str().to_owned(),
            action: self.action.to_owned(),
            target: self.target.map(str::to_owned),
            args: summarize_args(&self.args).to_string(),
            outcome: "ok".to_owned(),
            request_id: meta.request_id.clone(),
            client_ip: meta.client_ip.clone(),
            ..Default::default()
        }
    }
}

fn row(
    ctx: &Ctx<'_>,
    entry: &AuditEntry,
    outcome: &str,
    latency_ms: i64,
    message: Option<&str>,
) -> AuditRow {
    let p = ctx.principal;
    // An MCP request is recorded under its tool (or method) with the tool's
    // own arguments; the use case it ran is kept as `operation`.
    let (action, method, mut args) = match &ctx.meta.call {
        Some(call) => {
            let mut args = match summarize_args(&call.arguments) {
                Value::Object(m) => m,
                Value::Null => Map::new(),
                other => Map::from_iter([("arguments".to_owned(), other)]),
            };
            if !entry.op.id.is_empty() {
                args.insert("operation".into(), Value::String(entry.op.id.to_owned()));
            }
            let action = call.tool.as_deref().unwrap_or(&call.method);
            (
                cut_for_display(action, MAX_ACTION).into_owned(),
                Some(cut_for_display(&call.method, MAX_ACTION).into_owned()),
                Value::Object(args),
            )
        }
        None => (entry.op.id.to_owned(), None, summarize_args(&entry.args)),
    };
    if let (Some(msg), Value::Object(m)) = (message, &mut args) {
        let key = if outcome == "denied" {
            "refusal"
        } else {
            "error"
        };
        m.insert(key.into(), Value::String(msg.to_owned()));
    }
    AuditRow {
        id: storage::new_id(),
        org_id: Some(p.org_id.clone()),
        at: ctx.meta.now_ms,
        actor_id: Some(p.account_id.clone()),
        actor: p.email.clone(),
        token_id: p.token_id().map(str::to_owned),
        token_kind: p.token_kind().map(|k| k.as_str().to_owned()),
        client: None,
        surface: ctx.meta.surface.as_str().to_owned(),
        action,
        target: entry
            .target
            .as_deref()
            .map(|t| cut_for_display(t, MAX_ACTION).into_owned()),
        args: args.to_string(),
        outcome: outcome.to_owned(),
        latency_ms: Some(latency_ms),
        environment: p.environment().map(|e| e.as_str().to_owned()),
        request_id: ctx.meta.request_id.clone(),
        client_ip: ctx.meta.client_ip.clone(),
        method,
    }
}

fn elapsed_ms(meta: &RequestMeta) -> i64 {
    meta.started.elapsed().as_millis() as i64
}

impl Core {
    /// Runs a change in one write transaction and records its audit event in
    /// that same transaction, so a change is never without its event (and a
    /// crash loses both or neither). The entry's operation is authorized
    /// first, before the transaction (a refused write never takes the
    /// write lock). A refusal is recorded as `denied`.
    pub(crate) async fn write<T>(
        &self,
        ctx: Ctx<'_>,
        mut entry: AuditEntry,
        change: impl AsyncFnOnce(&mut Conn, &mut AuditEntry) -> Result<T, CoreError>,
    ) -> Result<T, CoreError> {
        if let Err(e) = self.access_decision(ctx, entry.op).into_result() {
            self.record_refusal(ctx, &entry, &e).await;
            return Err(e);
        }
        let mut tx = self.db.begin_write().await?;
        match change(&mut tx, &mut entry).await {
            Ok(value) => {
                let r = row(&ctx, &entry, "ok", elapsed_ms(ctx.meta), None);
                record_in(&mut tx, &r).await?;
                Db::commit(tx).await?;
                ctx.meta.mark_audited();
                Ok(value)
            }
            Err(e) => {
                drop(tx);
                if e.is_refusal() {
                    self.record_refusal(ctx, &entry, &e).await;
                }
                Err(e)
            }
        }
    }

    /// The access decision for the request's principal and surface (see
    /// [`crate::access`]); records nothing.
    pub(crate) fn access_decision(&self, ctx: Ctx<'_>, op: &Operation) -> crate::access::Decision {
        decide(
            ctx.principal,
            op,
            &Facts::of(ctx.principal, ctx.meta.surface),
        )
    }

    /// Whether the request may perform `op` (records nothing: for choosing
    /// what to show, say). Surfaces ask this; they never decide.
    pub fn allows(&self, ctx: Ctx<'_>, op: &Operation) -> bool {
        self.access_decision(ctx, op).is_allowed()
    }

    /// Authorizes `op` for a surface that has no use case of its own to
    /// call (a refusal is audited).
    pub async fn require_operation(
        &self,
        ctx: Ctx<'_>,
        op: &'static Operation,
        target: Option<&str>,
    ) -> Result<(), CoreError> {
        self.authorize(ctx, op, target).await
    }

    /// Authorizes a read (or any operation without its own transaction),
    /// recording a refusal.
    pub(crate) async fn authorize(
        &self,
        ctx: Ctx<'_>,
        op: &'static Operation,
        target: Option<&str>,
    ) -> Result<(), CoreError> {
        self.refuse_audited(ctx, op, target, self.access_decision(ctx, op).into_result())
            .await
    }

    /// Records `outcome` if it is a refusal of `op`, and passes it on.
    pub(crate) async fn refuse_audited(
        &self,
        ctx: Ctx<'_>,
        op: &'static Operation,
        target: Option<&str>,
        outcome: Result<(), CoreError>,
    ) -> Result<(), CoreError> {
        if let Err(e) = outcome {
            let entry = AuditEntry::new(op, target, Value::Object(Map::new()));
            self.record_refusal(ctx, &entry, &e).await;
            return Err(e);
        }
        Ok(())
    }

    /// Records a refusal (group-committed: nothing changed, so it needs no
    /// transaction of its own). A failure to record is logged, and the
    /// refusal still stands.
    async fn record_refusal(&self, ctx: Ctx<'_>, entry: &AuditEntry, e: &CoreError) {
        let r = row(
            &ctx,
            entry,
            "denied",
            elapsed_ms(ctx.meta),
            Some(&e.to_string()),
        );
        match self.audit_queue.record(r).await {
            Ok(()) => ctx.meta.mark_audited(),
            Err(err) => {
                tracing::error!(error = %err, action = entry.op.id, "could not record a refusal in the audit log")
            }
        }
    }

    /// Records the one audit event of a request that changed nothing: a
    /// read, a list, a refusal or a failure. Events are group-committed: the
    /// caller waits until its event is durable, but many requests share one
    /// transaction. Does nothing when the request's event was already written
    /// (by its change's transaction, or as a refusal inside the use case).
    pub async fn record_request(
        &self,
        ctx: Ctx<'_>,
        target: Option<&str>,
        outcome: Outcome,
        message: Option<&str>,
    ) -> Result<(), CoreError> {
        if ctx.meta.is_audited() {
            return Ok(());
        }
        let entry = AuditEntry::request(target);
        let r = row(
            &ctx,
            &entry,
            outcome.as_str(),
            elapsed_ms(ctx.meta),
            message,
        );
        self.audit_queue.record(r).await?;
        ctx.meta.mark_audited();
        Ok(())
    }

    /// The org's audit events, newest first.
    pub async fn list_audit_events(
        &self,
        ctx: Ctx<'_>,
        q: AuditQuery,
    ) -> Result<Page<AuditEventView>, CoreError> {
        self.authorize(ctx, &ops::AUDIT_LIST, None).await?;
        let limit = i64::from(q.limit.unwrap_or(self.config.default_page_size));
        if limit < 1 || limit > i64::from(self.config.max_page_size) {
            return Err(CoreError::invalid(
                "limit",
                format!("must be between 1 and {}", self.config.max_page_size),
            ));
        }
        if let (Some(s), Some(u)) = (q.since, q.until)
            && s >= u
        {
            return Err(CoreError::invalid("since", "must be before 'until'"));
        }
        let filter = storage::AuditFilter {
            actor_id: q.actor_id,
            action: q.action,
            target: q.target,
            since: q.since,
            until: q.until,
            before: q.cursor,
            limit: limit + 1,
        };
        let rows = storage::list_audit(self.db.pool(), &ctx.principal.org_id, &filter).await?;
        Ok(Page::from_rows(
            rows,
            limit + 1,
            |r| r.id.clone(),
            AuditEventView::from,
        ))
    }
}

/// Filters for [`Core::list_audit_events`].
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_masked_and_long_strings_cut() {
        let v = json!({
            "email": "a@x.io",
            "password": "hunter2hunter2",
            "nested": {"api_key": "k", "Authorization": "Bearer x"},
            "body": "x".repeat(100),
            "list": [{"token": "t"}]
        });
        let s = summarize_args(&v);
        assert_eq!(s["email"], "a@x.io");
        assert_eq!(s["password"], "****");
        assert_eq!(s["nested"]["api_key"], "****");
        assert_eq!(s["nested"]["Authorization"], "****");
        assert_eq!(s["list"][0]["token"], "****");
        let body = s["body"].as_str().unwrap_or_default();
        assert!(body.ends_with("(100 chars)") && body.len() < 80, "{body}");
    }
}
