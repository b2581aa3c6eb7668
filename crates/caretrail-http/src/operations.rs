//! Long operations started over HTTP and followed by polling: a rebuild of the dashboards' read
//! models (`POST /api/v1/operations/rebuild`, administrators) and an export of the audit log
//! (`POST /api/v1/operations/export`, auditors and administrators). Each answers `202 Accepted`
//! at once with a `Location` to poll (`GET /api/v1/operations/{id}`: state, `done` out of
//! `total` events, the result or an error code); a finished export is downloaded from
//! `GET /api/v1/operations/{id}/file`.
//!
//! One operation of each kind runs at a time per server; starting a second answers 409
//! `operation_in_progress` with the running one's `Location`. Operations live in memory only:
//! a finished one is kept for an hour, and only the 16 most recent, then dropped with its file.
//! An export is written to an anonymous temporary file (`tempfile::tempfile`), which the
//! operating system deletes when the last handle closes, so no export outlives the operation or
//! the process, even one that is killed. Who may start an operation kind may read it, and no
//! one else; failures reach the client as a stable code, their causes only the log.

use std::fs::File;
use std::future::Future;
use std::io::BufWriter;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{OwnedRwLockWriteGuard, RwLock};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::Path;
use crate::openapi::Json;

/// How long a finished operation (and its file) is kept.
pub const KEEP_FOR: Duration = Duration::from_secs(3600);
/// How many finished operations are kept at most (the most recent ones).
pub const KEEP_LAST: usize = 16;
/// Bytes read from an export file per chunk of a download.
const CHUNK: usize = 256 * 1024;

/// What an operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    /// Rebuild the dashboards' read models into a new generation, then switch to it.
    Rebuild,
    /// Export the audit log and its signed checkpoints as JSON lines.
    Export,
}

impl OperationKind {
    /// The roles that may start an operation of this kind, and so read it.
    pub fn roles(self) -> &'static [Role] {
        match self {
            OperationKind::Rebuild => &[Role::Admin],
            OperationKind::Export => &[Role::Admin, Role::Auditor],
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            OperationKind::Rebuild => "rebuild",
            OperationKind::Export => "export",
        }
    }
}

/// Where an operation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    /// Still working: poll again.
    Running,
    /// Finished; `result` holds what it produced.
    Succeeded,
    /// Ended in failure; `error` says why.
    Failed,
}

/// Why an operation failed: a stable code and an English sentence, never the cause itself
/// (that is logged with the operation id).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct OperationError {
    /// `rebuild_failed`, `export_failed` or `operation_aborted`.
    pub code: String,
    /// An English sentence for people; the cause itself is only in the server's log.
    pub detail: String,
}

/// The answer of `GET /api/v1/operations/{id}` (and of the `202` that starts one).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct OperationStatus {
    /// The operation's id, as in the `Location` of the answer that started it.
    pub operation_id: Uuid,
    /// What the operation does.
    pub kind: OperationKind,
    /// Where it stands.
    pub state: OperationState,
    /// Events done so far: applied to the new generation (rebuild) or written (export).
    pub done: u64,
    /// Events to do: the head of the log (0 while not yet known).
    pub total: u64,
    /// When it started (UTC).
    pub started_at: DateTime<Utc>,
    /// When it succeeded or failed; null while running.
    pub finished_at: Option<DateTime<Utc>>,
    /// On success. A rebuild: the projector's report (`generation`, `previous_generation`,
    /// `events`, `seconds`, `events_per_second`). An export: `events`, `checkpoints`, `bytes`,
    /// `file_name` and `download` (the URL of the file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// On failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<OperationError>,
}

/// A finished export's file: anonymous, so it disappears with its last handle.
struct ExportFile {
    file: File,
    len: u64,
    name: String,
}

/// How an operation ended.
enum Outcome {
    Succeeded {
        result: Value,
        file: Option<Arc<ExportFile>>,
    },
    Failed(OperationError),
}

struct Finished {
    at: DateTime<Utc>,
    /// For expiry: a monotonic clock, untouched by changes of the wall clock.
    instant: Instant,
    /// The final `done` and `total`, which late progress reports cannot change.
    done: u64,
    total: u64,
    outcome: Outcome,
}

/// One operation, shared by the task doing it and the handlers reporting on it.
pub struct Operation {
    id: Uuid,
    kind: OperationKind,
    started_at: DateTime<Utc>,
    done: AtomicU64,
    total: AtomicU64,
    end: Mutex<Option<Finished>>,
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operation")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("running", &self.running())
            .finish_non_exhaustive()
    }
}

impl Operation {
    /// Records progress; `done` never goes backwards.
    fn progress(&self, done: u64, total: u64) {
        self.done.fetch_max(done, Relaxed);
        self.total
            .store(total.max(self.done.load(Relaxed)), Relaxed);
    }

    fn running(&self) -> bool {
        self.end.lock().unwrap_or_else(|e| e.into_inner()).is_none()
    }

    fn status(&self) -> OperationStatus {
        let end = self.end.lock().unwrap_or_else(|e| e.into_inner());
        let (state, done, total, finished_at, result, error) = match &*end {
            None => (
                OperationState::Running,
                self.done.load(Relaxed),
                self.total.load(Relaxed),
                None,
                None,
                None,
            ),
            Some(f) => match &f.outcome {
                Outcome::Succeeded { result, .. } => (
                    OperationState::Succeeded,
                    f.done,
                    f.total,
                    Some(f.at),
                    Some(result.clone()),
                    None,
                ),
                Outcome::Failed(e) => (
                    OperationState::Failed,
                    f.done,
                    f.total,
                    Some(f.at),
                    None,
                    Some(e.clone()),
                ),
            },
        };
        OperationStatus {
            operation_id: self.id,
            kind: self.kind,
            state,
            done,
            total,
            started_at: self.started_at,
            finished_at,
            result,
            error,
        }
    }

    fn location(&self) -> String {
        format!("/api/v1/operations/{}", self.id)
    }
}

/// What a finished piece of work hands back.
struct Done {
    result: Value,
    file: Option<ExportFile>,
    /// The final `done` (= `total`).
    events: u64,
}

/// The server's operations: running ones and recently finished ones.
pub struct Operations {
    ops: Mutex<Vec<Arc<Operation>>>,
    keep_for: Duration,
    keep_last: usize,
    /// Held for writing by [`Operations::hold_starts`]; every operation takes it for reading
    /// before it begins its work.
    gate: Arc<RwLock<()>>,
}

impl Default for Operations {
    fn default() -> Self {
        Self::new(KEEP_FOR, KEEP_LAST)
    }
}

/// Returned by [`Operations::hold_starts`]; operations proceed when it is dropped.
pub struct StartHold {
    _guard: OwnedRwLockWriteGuard<()>,
}

impl Operations {
    /// Keeps finished operations for `keep_for`, and at most the last `keep_last` of them.
    pub fn new(keep_for: Duration, keep_last: usize) -> Self {
        Self {
            ops: Mutex::new(Vec::new()),
            keep_for,
            keep_last,
            gate: Arc::new(RwLock::new(())),
        }
    }

    /// For tests: operations started while the returned guard lives are registered and
    /// reported as running, but wait before doing any work, so a test can observe a running
    /// operation without racing it.
    pub async fn hold_starts(&self) -> StartHold {
        StartHold {
            _guard: self.gate.clone().write_owned().await,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Operation>>> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new running operation of `kind`, or answers the one already running.
    fn begin(&self, kind: OperationKind) -> Result<Arc<Operation>, Arc<Operation>> {
        let mut ops = self.lock();
        self.prune_locked(&mut ops, Instant::now());
        if let Some(running) = ops.iter().find(|o| o.kind == kind && o.running()) {
            return Err(running.clone());
        }
        let op = Arc::new(Operation {
            id: Uuid::now_v7(),
            kind,
            started_at: Utc::now(),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            end: Mutex::new(None),
        });
        ops.push(op.clone());
        Ok(op)
    }

    /// The operation with this id, if it is still kept.
    fn get(&self, id: Uuid) -> Option<Arc<Operation>> {
        let mut ops = self.lock();
        self.prune_locked(&mut ops, Instant::now());
        ops.iter().find(|o| o.id == id).cloned()
    }

    /// Drops finished operations older than `keep_for` at `now`, then all but the last
    /// `keep_last` finished ones. Running operations are never dropped.
    fn prune(&self, now: Instant) {
        let mut ops = self.lock();
        self.prune_locked(&mut ops, now);
    }

    fn prune_locked(&self, ops: &mut Vec<Arc<Operation>>, now: Instant) {
        let finished_at = |o: &Operation| {
            o.end
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map(|f| f.instant)
        };
        ops.retain(|o| finished_at(o).is_none_or(|at| now.duration_since(at) < self.keep_for));
        let mut finished: Vec<(Instant, Uuid)> = ops
            .iter()
            .filter_map(|o| finished_at(o).map(|at| (at, o.id)))
            .collect();
        if finished.len() > self.keep_last {
            finished.sort();
            let drop: Vec<Uuid> = finished[..finished.len() - self.keep_last]
                .iter()
                .map(|(_, id)| *id)
                .collect();
            ops.retain(|o| !drop.contains(&o.id));
        }
    }

    /// Records how `op` ended and schedules its expiry.
    fn finish(self: &Arc<Self>, op: &Operation, outcome: Result<Done, OperationError>) {
        let now = Instant::now();
        let (done, total, outcome) = match outcome {
            Ok(d) => (
                d.events,
                d.events,
                Outcome::Succeeded {
                    result: d.result,
                    file: d.file.map(Arc::new),
                },
            ),
            Err(e) => (
                op.done.load(Relaxed),
                op.total.load(Relaxed),
                Outcome::Failed(e),
            ),
        };
        *op.end.lock().unwrap_or_else(|e| e.into_inner()) = Some(Finished {
            at: Utc::now(),
            instant: now,
            done,
            total,
            outcome,
        });
        self.prune(now);
        let ops: Weak<Self> = Arc::downgrade(self);
        let keep_for = self.keep_for;
        tokio::spawn(async move {
            tokio::time::sleep(keep_for).await;
            if let Some(ops) = ops.upgrade() {
                ops.prune(Instant::now());
            }
        });
    }

    /// Runs `work` for `op` in a task of its own and records its outcome; a panic in the work
    /// fails the operation rather than leaving it running for ever.
    fn run(
        self: &Arc<Self>,
        op: Arc<Operation>,
        work: impl Future<Output = Result<Done, OperationError>> + Send + 'static,
    ) {
        let ops = self.clone();
        let gate = self.gate.clone();
        tokio::spawn(async move {
            drop(gate.read().await);
            let outcome = match tokio::spawn(work).await {
                Ok(outcome) => outcome,
                Err(e) => {
                    tracing::error!(operation_id = %op.id, kind = op.kind.as_str(), error = %e,
                        "operation task ended abnormally");
                    Err(OperationError {
                        code: "operation_aborted".into(),
                        detail: "the operation stopped abnormally; the cause has been logged"
                            .into(),
                    })
                }
            };
            match &outcome {
                Ok(d) => tracing::info!(operation_id = %op.id, kind = op.kind.as_str(),
                    events = d.events, "operation succeeded"),
                Err(e) => tracing::warn!(operation_id = %op.id, kind = op.kind.as_str(),
                    code = %e.code, "operation failed"),
            }
            ops.finish(&op, outcome);
        });
    }
}

fn in_progress(running: &Operation) -> Response {
    let mut res = ApiError::new(
        StatusCode::CONFLICT,
        "operation_in_progress",
        format!(
            "a {} operation is already running; follow it at {}",
            running.kind.as_str(),
            running.location()
        ),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&running.location()) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

fn accepted(op: &Operation) -> Response {
    let mut res = (StatusCode::ACCEPTED, Json(op.status())).into_response();
    if let Ok(v) = HeaderValue::from_str(&op.location()) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// `POST /api/v1/operations/rebuild`: rebuilds the dashboards in the background.
pub async fn start_rebuild(State(state): State<AppState>, p: Principal) -> ApiResult<Response> {
    p.require(OperationKind::Rebuild.roles(), "rebuild the read models")?;
    let projector = state
        .read
        .as_ref()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "read_side_unavailable",
                "dashboards are not enabled on this server",
            )
        })?
        .projector
        .clone();
    let op = match state.operations.begin(OperationKind::Rebuild) {
        Ok(op) => op,
        Err(running) => return Ok(in_progress(&running)),
    };
    tracing::info!(operation_id = %op.id, kind = "rebuild", token_id = %p.token_id,
        "operation started");
    let id = op.id;
    state.operations.run(op.clone(), async move {
        match projector.rebuild().await {
            Ok(report) => {
                // The new generation's checkpoint is where the rebuild ended.
                let events = match projector.lag().await {
                    Ok(lag) => lag.checkpoint,
                    Err(_) => report.events,
                };
                Ok(Done {
                    result: serde_json::to_value(&report).unwrap_or(Value::Null),
                    file: None,
                    events,
                })
            }
            Err(e) => {
                tracing::error!(operation_id = %id, error = %e, "rebuild failed");
                Err(OperationError {
                    code: "rebuild_failed".into(),
                    detail: "the rebuild failed on the server; the cause has been logged".into(),
                })
            }
        }
    });
    Ok(accepted(&op))
}

/// `POST /api/v1/operations/export`: exports the audit log to a temporary file in the
/// background.
pub async fn start_export(State(state): State<AppState>, p: Principal) -> ApiResult<Response> {
    p.require(OperationKind::Export.roles(), "export the audit log")?;
    let auditor = crate::audit::auditor(&state)?.clone();
    let head = state.app.store().head().await?.position;
    let op = match state.operations.begin(OperationKind::Export) {
        Ok(op) => op,
        Err(running) => return Ok(in_progress(&running)),
    };
    op.progress(0, head);
    tracing::info!(operation_id = %op.id, kind = "export", token_id = %p.token_id,
        "operation started");
    let worker = op.clone();
    let mut shutdown = state.shutdown.clone();
    let runtime = tokio::runtime::Handle::current();
    state.operations.run(op.clone(), async move {
        let id = worker.id;
        // The export writes to its file synchronously, so it runs on a blocking thread that
        // drives the export's database reads on the server's runtime.
        let written = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let file = tempfile::tempfile().map_err(|e| format!("temporary file: {e}"))?;
            let mut out = BufWriter::new(file);
            let mut progress = |done, total| worker.progress(done, total);
            let stopping = async move {
                // A dropped sender means no shutdown will ever be announced.
                if shutdown.wait_for(|s| *s).await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            let summary = runtime
                .block_on(async {
                    tokio::select! {
                        r = caretrail_audit::export(&auditor, &mut out, &mut progress) => Some(r),
                        () = stopping => None,
                    }
                })
                .ok_or("the server is shutting down")?
                .map_err(|e| e.to_string())?;
            let file = out
                .into_inner()
                .map_err(|e| format!("temporary file: {}", e.error()))?;
            let len = file
                .metadata()
                .map_err(|e| format!("temporary file: {e}"))?
                .len();
            Ok((file, len, summary))
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        match written {
            Ok((file, len, summary)) => {
                let name = format!("caretrail-export-{}.jsonl", summary.events);
                Ok(Done {
                    result: json!({
                        "events": summary.events,
                        "checkpoints": summary.checkpoints,
                        "bytes": len,
                        "file_name": name,
                        "download": format!("/api/v1/operations/{id}/file"),
                    }),
                    file: Some(ExportFile { file, len, name }),
                    events: summary.events,
                })
            }
            Err(cause) => {
                tracing::error!(operation_id = %id, error = %cause, "export failed");
                Err(OperationError {
                    code: "export_failed".into(),
                    detail: "the export failed on the server; the cause has been logged".into(),
                })
            }
        }
    });
    Ok(accepted(&op))
}

/// The operation `id` names, if `p` may read it: 403 for roles that may read no operation,
/// 404 for ids that are unknown (or expired), 403 for a kind the role may not start.
fn visible(state: &AppState, p: &Principal, id: &str) -> ApiResult<Arc<Operation>> {
    p.require(&[Role::Admin, Role::Auditor], "read operations")?;
    let op = Uuid::parse_str(id)
        .ok()
        .and_then(|id| state.operations.get(id))
        .ok_or_else(|| {
            ApiError::not_found("no such operation (finished ones are kept for an hour)")
        })?;
    p.require(
        op.kind.roles(),
        &format!("read {} operations", op.kind.as_str()),
    )?;
    Ok(op)
}

/// The operation a path names.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct OperationPath {
    /// The operation id, from the Location of the answer that started it.
    #[schemars(with = "Uuid")]
    pub id: String,
}

/// `GET /api/v1/operations/{id}`: an operation's state and progress, for the roles that may
/// start its kind.
pub async fn status(
    State(state): State<AppState>,
    p: Principal,
    Path(OperationPath { id }): Path<OperationPath>,
) -> ApiResult<Json<OperationStatus>> {
    let op = visible(&state, &p, &id)?;
    // A rebuild's progress is the new generation's checkpoint out of the head.
    if op.kind == OperationKind::Rebuild
        && op.running()
        && let Some(read) = &state.read
    {
        match read.projector.lag().await {
            Ok(lag) => match lag.rebuilding {
                Some((_, checkpoint)) => op.progress(checkpoint, lag.head),
                None => op.progress(0, lag.head),
            },
            Err(e) => tracing::warn!(operation_id = %op.id, error = %e, "rebuild progress unknown"),
        }
    }
    Ok(Json(op.status()))
}

/// `GET /api/v1/operations/{id}/file`: a finished export's file.
pub async fn file(
    State(state): State<AppState>,
    p: Principal,
    Path(OperationPath { id }): Path<OperationPath>,
) -> ApiResult<Response> {
    let op = visible(&state, &p, &id)?;
    if op.kind != OperationKind::Export {
        return Err(ApiError::not_found("only an export operation has a file"));
    }
    let export = {
        let end = op.end.lock().unwrap_or_else(|e| e.into_inner());
        match end.as_ref().map(|f| &f.outcome) {
            None => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "operation_in_progress",
                    "the export is still running; poll the operation until it has succeeded",
                ));
            }
            Some(Outcome::Failed(_)) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "operation_failed",
                    "the export failed and has no file",
                ));
            }
            Some(Outcome::Succeeded { file, .. }) => file
                .clone()
                .ok_or_else(|| ApiError::internal(&"a finished export without a file"))?,
        }
    };
    let len = export.len;
    let disposition = format!("attachment; filename=\"{}\"", export.name);
    let chunks = futures::stream::unfold((export, 0u64), |(export, offset)| async move {
        if offset >= export.len {
            return None;
        }
        let n = CHUNK.min((export.len - offset) as usize);
        let reader = export.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; n];
            read_exact_at(&reader.file, &mut buf, offset).map(|()| buf)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        Some(match read {
            Ok(buf) => (Ok(Bytes::from(buf)), (export, offset + n as u64)),
            Err(e) => {
                tracing::error!(error = %e, "reading an export file failed");
                let end = export.len;
                (Err(e), (export, end))
            }
        })
    });
    let mut res = Body::from_stream(chunks).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    // The whole audit log: no cache may keep a copy.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// Reads `buf.len()` bytes at `offset` without moving a shared file position, so concurrent
/// downloads of one file do not disturb each other.
#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finish_now(ops: &Arc<Operations>, op: &Operation) {
        ops.finish(
            op,
            Ok(Done {
                result: Value::Null,
                file: None,
                events: 1,
            }),
        );
    }

    #[tokio::test]
    async fn one_operation_of_a_kind_runs_at_a_time() {
        let ops = Arc::new(Operations::default());
        let rebuild = ops.begin(OperationKind::Rebuild).unwrap();
        let again = ops.begin(OperationKind::Rebuild).unwrap_err();
        assert_eq!(again.id, rebuild.id);
        // Another kind is independent.
        let export = ops.begin(OperationKind::Export).unwrap();
        finish_now(&ops, &rebuild);
        let next = ops.begin(OperationKind::Rebuild).unwrap();
        assert_ne!(next.id, rebuild.id);
        assert!(export.running());
    }

    #[tokio::test]
    async fn finished_operations_expire_after_an_hour() {
        let ops = Arc::new(Operations::default());
        let done = ops.begin(OperationKind::Export).unwrap();
        finish_now(&ops, &done);
        let running = ops.begin(OperationKind::Rebuild).unwrap();
        let later = Instant::now() + KEEP_FOR - Duration::from_secs(60);
        ops.prune(later);
        assert!(ops.get(done.id).is_some(), "kept within the hour");
        ops.prune(Instant::now() + KEEP_FOR + Duration::from_secs(1));
        assert!(ops.lock().iter().all(|o| o.id != done.id), "dropped after");
        assert!(
            ops.lock().iter().any(|o| o.id == running.id),
            "a running one is never dropped"
        );
    }

    #[tokio::test]
    async fn only_the_last_sixteen_finished_operations_are_kept() {
        let ops = Arc::new(Operations::default());
        let running = ops.begin(OperationKind::Rebuild).unwrap();
        let mut ids = Vec::new();
        for _ in 0..KEEP_LAST + 4 {
            let op = ops.begin(OperationKind::Export).unwrap();
            finish_now(&ops, &op);
            ids.push(op.id);
        }
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(ops.get(*id).is_some(), i >= 4, "operation {i}");
        }
        assert!(ops.get(running.id).is_some());
    }

    #[tokio::test]
    async fn progress_never_goes_backwards_and_the_end_is_final() {
        let ops = Arc::new(Operations::default());
        let op = ops.begin(OperationKind::Rebuild).unwrap();
        op.progress(50, 100);
        op.progress(0, 120);
        let s = op.status();
        assert_eq!(
            (s.done, s.total, s.state),
            (50, 120, OperationState::Running)
        );
        finish_now(&ops, &op);
        op.progress(999, 999);
        let s = op.status();
        assert_eq!(
            (s.done, s.total, s.state),
            (1, 1, OperationState::Succeeded)
        );
        assert!(s.finished_at.is_some());
    }
}
