//! Roster imports from CSV and XLSX (`/api/v1/imports`), for administrators.
//!
//! An import happens in two steps. `POST /api/v1/imports?kind=…` with the file as the body
//! reads it (`read`), matches its header to the roster's columns and turns every row into the
//! body of its command (`roster`), and checks each row the way the command would be checked:
//! the domain's parser, duplicates within the file, resident ID numbers already registered,
//! and the domain's own decision against the current state (unknown director, model worker
//! already paired, …), without writing anything. It answers a preview: every row's result,
//! with messages in Chinese and English, and an `id`. `POST /api/v1/imports/{id}/commit` then
//! runs one command per valid row through the command path of `/api/v1/commands/{name}`
//! (`commands::run`: parse, authorise, `Idempotency-Key`, execute) with a key derived from
//! the file's SHA-256 and the row number, so the same file imported again (or a commit
//! repeated) replays the stored results and writes nothing. Before the rows run, the commit
//! binds all their keys in one transaction (`idempotency::claim_many`) and makes the data keys
//! of the people they register in another (`KeyRing::prepare`, with the subjects the preview's
//! decision named), so a row's only durable write is its append, which the store commits
//! together with the other rows in flight. The ids of the records a roster
//! leaves blank are derived from the same hash and row, so they are stable too. A row the
//! domain refuses at commit time is reported with the domain's code and message; the other
//! rows still commit.
//!
//! Duplicate resident ID numbers are found without keeping any number in plaintext beyond the
//! request: each preview draws a random 256-bit key that lives only in its memory, and every
//! number (the file's, and those of registered model workers, unsealed under each person's own
//! key for the comparison and dropped at once) is reduced to an HMAC-SHA256 tag under it; only
//! tags are compared. A person whose data was erased has no key any more, so their number
//! cannot be unsealed and is never matched again; nothing derived from it is stored anywhere.
//!
//! Previews are kept in memory only (never on disk): at most [`KEEP_LAST`], each for at most
//! [`KEEP_FOR`]; a new preview beyond that pushes out the oldest. The rows' command bodies
//! (which hold personal data in plaintext until the command seals it) are dropped as soon as a
//! commit has run every row without a failure a retry could fix; what stays is the outcome,
//! which holds row numbers, ids and codes, never a personal value.

mod check;
pub mod read;
pub mod roster;
pub mod template;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use caretrail_domain::{
    Actor, Command, CommandParseError, Context, Personal, States, StreamName, decide,
    streams_to_load,
};
use futures::StreamExt;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};
use crate::openapi::Json;
use check::{Checked, check};
use read::{Declared, Format, ReadError};
use roster::{Kind, Problem};

/// How long a preview can be committed after it was made. Long enough to read a preview of
/// a large roster and fix nothing; a corrected file is a new preview anyway.
pub const KEEP_FOR: Duration = Duration::from_secs(30 * 60);

/// Most previews kept at once. Each holds at most [`read::MAX_ROWS`] rows' command bodies
/// (about 1 KB each), so the previews hold at most about 80 MB.
pub const KEEP_LAST: usize = 8;

/// Rows committed at once. The store commits concurrent appends in one transaction (group
/// commit), so rows in flight together share a disk flush.
pub const COMMIT_CONCURRENCY: usize = 32;

/// The longest the claim of a file's idempotency keys may take (one transaction of at most
/// [`read::MAX_ROWS`] small rows): longer means the database cannot serve.
const CLAIMS_DEADLINE: Duration = Duration::from_secs(30);

/// Rows checked at once in a preview (each reads the states its command is decided on).
const CHECK_CONCURRENCY: usize = 16;

type HmacSha256 = hmac::Hmac<Sha256>;

/// What a preview keeps.
struct Preview {
    id: Uuid,
    actor: Uuid,
    made: Instant,
    /// What the preview answered, kept to answer a commit with row results in the same order.
    kind: Kind,
    file_sha256: [u8; 32],
    /// The rows to run, until a commit has run them all.
    pending: Mutex<Option<Vec<PendingRow>>>,
    /// Rows the preview found invalid (reported as skipped by a commit).
    invalid: Vec<u32>,
    /// The outcome of a commit that ran every row, answered to a later commit.
    committed: tokio::sync::Mutex<Option<CommitReport>>,
}

struct PendingRow {
    row: u32,
    body: Value,
    /// The people whose personal data the row's command seals (from the preview's decision):
    /// their data keys are made together before the rows run.
    subjects: Vec<Uuid>,
}

/// The previews of this server.
#[derive(Default)]
pub struct Imports {
    previews: Mutex<VecDeque<Arc<Preview>>>,
}

impl Imports {
    fn insert(&self, preview: Arc<Preview>) {
        let mut previews = self.previews.lock().unwrap_or_else(|e| e.into_inner());
        previews.retain(|p| p.made.elapsed() < KEEP_FOR);
        while previews.len() >= KEEP_LAST {
            previews.pop_front();
        }
        previews.push_back(preview);
    }

    fn get(&self, id: Uuid, actor: Uuid) -> Option<Arc<Preview>> {
        let mut previews = self.previews.lock().unwrap_or_else(|e| e.into_inner());
        previews.retain(|p| p.made.elapsed() < KEEP_FOR);
        previews
            .iter()
            .find(|p| p.id == id && p.actor == actor)
            .cloned()
    }

    /// How many previews are kept now.
    pub fn len(&self) -> usize {
        self.previews
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Whether no preview is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `?kind=` of an upload.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ImportQuery {
    /// Which roster the file is.
    pub kind: Kind,
}

/// A template's file name in the path.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct TemplatePath {
    /// `model-workers.xlsx`, `directors.csv`, `pairings.xlsx`, …
    pub file: String,
}

/// A preview in the path.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct PreviewPath {
    /// The preview's id, from its answer.
    pub id: Uuid,
}

/// How a row fared in a preview.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    /// It will be committed.
    Valid,
    /// It will not: `problems` says why.
    Invalid,
    /// This file's row was committed before; a commit replays it and writes nothing.
    AlreadyImported,
}

/// One row of a preview. Holds no cell content.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RowReport {
    /// The row's number as the spreadsheet shows it (1 is the header).
    pub row: u32,
    /// Its result.
    pub status: RowStatus,
    /// The id of the record the row creates (the model worker, director or pairing), when it
    /// could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_id: Option<Uuid>,
    /// What is wrong with it (empty unless invalid).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

/// The answer to an upload: every row's result and the preview's id.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PreviewReport {
    /// Commit with `POST /api/v1/imports/{id}/commit`.
    pub id: Uuid,
    /// The roster.
    pub kind: Kind,
    /// `xlsx` or `csv`: how the file was read.
    pub format: String,
    /// SHA-256 of the file, hex: the idempotency keys of its rows derive from it.
    pub file_sha256: String,
    /// The command each row runs.
    pub command: String,
    /// Data rows read.
    pub total: usize,
    /// Rows that will be committed.
    pub valid: usize,
    /// Rows that will not.
    pub invalid: usize,
    /// Rows committed by an earlier import of this file (a commit replays them).
    pub already_imported: usize,
    /// Until when the preview can be committed.
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// Every data row, in file order.
    pub rows: Vec<RowReport>,
}

/// How a row fared in a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Its command ran and wrote its events.
    Written,
    /// Its command had run before (the same file imported or committed again): nothing was
    /// written.
    Replayed,
    /// The domain (or the command path) refused it; `code` says why.
    Rejected,
    /// It could not run now (the store was unavailable); committing again retries it.
    Failed,
    /// The preview found it invalid; it was not run.
    Skipped,
}

/// One row of a commit.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RowOutcome {
    /// The row's number as the spreadsheet shows it.
    pub row: u32,
    /// What happened.
    pub outcome: Outcome,
    /// The command's id (derived from the file, the row and the administrator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_id: Option<Uuid>,
    /// The stream the command wrote first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    /// The refusal's stable code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The refusal, in English.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The refusal, in Chinese.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_zh: Option<String>,
}

/// The answer to a commit.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CommitReport {
    /// The preview committed.
    pub id: Uuid,
    /// The roster.
    pub kind: Kind,
    /// Rows whose command wrote events now.
    pub written: usize,
    /// Rows whose command had run before.
    pub replayed: usize,
    /// Rows refused.
    pub rejected: usize,
    /// Rows that could not run now (commit again to retry them).
    pub failed: usize,
    /// Rows the preview found invalid.
    pub skipped: usize,
    /// Every data row, in file order.
    pub rows: Vec<RowOutcome>,
}

fn admin_only(p: &Principal, what: &str) -> ApiResult<()> {
    if p.role == Role::Admin {
        Ok(())
    } else {
        Err(p.deny(what))
    }
}

fn problem_zh(
    status: StatusCode,
    code: &'static str,
    en: impl Into<String>,
    zh: String,
) -> ApiError {
    let mut e = ApiError::new(status, code, en);
    e.detail_zh = Some(zh);
    e
}

fn read_error(e: &ReadError) -> ApiError {
    let status = match e {
        ReadError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ReadError::Bomb => StatusCode::PAYLOAD_TOO_LARGE,
        ReadError::Empty | ReadError::BadWorkbook(_) | ReadError::BadCsv(_) => {
            StatusCode::BAD_REQUEST
        }
        ReadError::TypeMismatch(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ReadError::NoRosterSheet | ReadError::TooManyRows | ReadError::TooManyColumns => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    problem_zh(status, e.code(), e.to_string(), e.message_zh())
}

/// What the `Content-Type` says the body is; a type that is neither is refused.
fn declared(headers: &HeaderMap) -> ApiResult<Declared> {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let Some(value) = values.next() else {
        return Ok(Declared::Unknown);
    };
    let unsupported = || {
        problem_zh(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as application/vnd.openxmlformats-officedocument.spreadsheetml.sheet, text/csv (UTF-8) or application/octet-stream",
            "请以 XLSX、UTF-8 编码的 CSV 或 application/octet-stream 上传文件".to_owned(),
        )
    };
    if values.next().is_some() {
        return Err(unsupported());
    }
    let media: mime::Mime = value
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(unsupported)?;
    let charset_ok = media
        .get_param(mime::CHARSET)
        .is_none_or(|c| c == mime::UTF_8);
    match (media.type_().as_str(), media.subtype().as_str()) {
        ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet") => {
            Ok(Declared::Xlsx)
        }
        ("text", "csv") if charset_ok => Ok(Declared::Csv),
        ("application", "octet-stream") => Ok(Declared::Unknown),
        _ => Err(unsupported()),
    }
}

/// A stable id for what row `row` of the file creates (when the roster leaves it blank).
fn derived_id(file: &[u8; 32], kind: Kind, row: u32, key: &str) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"caretrail.import.id.v1\0")
        .chain_update(file)
        .chain_update(kind.slug().as_bytes())
        .chain_update(row.to_be_bytes())
        .chain_update(key.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The `Idempotency-Key` of row `row` of the file.
fn idempotency_key(file: &[u8; 32], kind: Kind, row: u32) -> String {
    format!("import:{}:{}:{row}", hex::encode(file), kind.slug())
}

/// `GET /api/v1/imports/templates/{file}`: a roster's template, `.xlsx` or `.csv`.
pub async fn template(
    principal: Principal,
    Path(TemplatePath { file }): Path<TemplatePath>,
) -> ApiResult<Response> {
    admin_only(&principal, "download import templates")?;
    let not_found = || {
        ApiError::not_found(
            "no such template: model-workers, directors or pairings, as .xlsx or .csv",
        )
    };
    let (slug, ext) = file.rsplit_once('.').ok_or_else(not_found)?;
    let kind = Kind::from_slug(slug).ok_or_else(not_found)?;
    let (bytes, content_type) = match ext {
        "xlsx" => (
            template::xlsx(kind).map_err(|e| ApiError::internal(&e))?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        "csv" => (template::csv(kind), "text/csv; charset=utf-8"),
        _ => return Err(not_found()),
    };
    let disposition = format!("attachment; filename=\"caretrail-{slug}.{ext}\"");
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok((StatusCode::OK, headers, bytes).into_response())
}

/// `POST /api/v1/imports?kind=…`: reads and checks a roster file, writes nothing, answers the
/// preview.
#[tracing::instrument(name = "imports.preview", skip_all)]
pub async fn preview(
    State(state): State<AppState>,
    principal: Principal,
    Query(ImportQuery { kind }): Query<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<PreviewReport>> {
    admin_only(&principal, "import rosters")?;
    let declared = declared(&headers)?;
    // The body is read up to the limit and no further (with or without a Content-Length), so
    // an upload just over it is answered once its first 8 MiB arrived.
    let body = axum::body::to_bytes(body, read::MAX_UPLOAD_BYTES)
        .await
        .map_err(|e| {
            let limit = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if limit {
                read_error(&ReadError::TooLarge)
            } else {
                ApiError::bad_request("unreadable_body", "the request body could not be read")
            }
        })?;
    let file_sha256: [u8; 32] = Sha256::digest(&body).into();
    // Parsing is CPU work on untrusted input: off the async workers.
    let (format, grid) = tokio::task::spawn_blocking(move || read::read(&body, declared))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| read_error(&e))?;
    let header = roster::header(kind, &grid).map_err(|e| {
        problem_zh(
            StatusCode::UNPROCESSABLE_ENTITY,
            "import_wrong_columns",
            e.message,
            e.message_zh,
        )
    })?;
    let data = grid.rows.get(header.rows..).unwrap_or_default();
    if data.is_empty() {
        return Err(problem_zh(
            StatusCode::UNPROCESSABLE_ENTITY,
            "import_no_rows",
            "the file has a header but no data rows",
            "文件只有表头，没有数据行".to_owned(),
        ));
    }
    if data.len() > read::MAX_ROWS {
        return Err(read_error(&ReadError::TooManyRows));
    }
    let actor = principal.actor_id();
    let mut parsed = Vec::with_capacity(data.len());
    for (row, cells) in data {
        let row = *row;
        let result = roster::row(kind, &header, cells, |key| {
            derived_id(&file_sha256, kind, row, key)
        });
        parsed.push((row, result));
    }
    let checked = check(&state, actor, kind, &file_sha256, parsed).await?;
    let id = Uuid::new_v4();
    let mut pending = Vec::new();
    let mut invalid = Vec::new();
    let mut rows = Vec::with_capacity(checked.len());
    for Checked {
        report,
        body,
        subjects,
    } in checked
    {
        match (report.status, body) {
            (RowStatus::Invalid, _) | (_, None) => invalid.push(report.row),
            (_, Some(body)) => pending.push(PendingRow {
                row: report.row,
                body,
                subjects,
            }),
        }
        rows.push(report);
    }
    let count = |s: RowStatus| rows.iter().filter(|r| r.status == s).count();
    let report = PreviewReport {
        id,
        kind,
        format: match format {
            Format::Xlsx => "xlsx",
            Format::Csv => "csv",
        }
        .to_owned(),
        file_sha256: hex::encode(file_sha256),
        command: kind.command().to_owned(),
        total: rows.len(),
        valid: count(RowStatus::Valid),
        invalid: count(RowStatus::Invalid),
        already_imported: count(RowStatus::AlreadyImported),
        expires_at: chrono::Utc::now()
            + chrono::TimeDelta::from_std(KEEP_FOR).unwrap_or(chrono::TimeDelta::zero()),
        rows,
    };
    tracing::info!(
        preview = %id,
        kind = kind.slug(),
        total = report.total,
        valid = report.valid,
        invalid = report.invalid,
        already_imported = report.already_imported,
        "roster previewed"
    );
    state.imports.insert(Arc::new(Preview {
        id,
        actor,
        made: Instant::now(),
        kind,
        file_sha256,
        pending: Mutex::new(Some(pending)),
        invalid,
        committed: tokio::sync::Mutex::new(None),
    }));
    Ok(Json(report))
}

/// `POST /api/v1/imports/{id}/commit`: runs the preview's valid rows, one command each.
#[tracing::instrument(name = "imports.commit", skip_all)]
pub async fn commit(
    State(state): State<AppState>,
    principal: Principal,
    Path(PreviewPath { id }): Path<PreviewPath>,
) -> ApiResult<Json<CommitReport>> {
    admin_only(&principal, "import rosters")?;
    let preview = state
        .imports
        .get(id, principal.actor_id())
        .ok_or_else(|| {
            let mut e = ApiError::not_found(
                "no such preview: previews are kept for 30 minutes, the last 8, for the administrator who made them",
            );
            e.detail_zh = Some("找不到该预览：预览仅保留 30 分钟、最近 8 个，且仅限上传者提交".to_owned());
            e
        })?;
    // One commit of a preview at a time; a later one answers what the first did.
    let mut committed = preview.committed.lock().await;
    if let Some(report) = committed.as_ref() {
        return Ok(Json(report.clone()));
    }
    let (rows, subjects): (Vec<(u32, Value)>, Vec<Uuid>) = preview
        .pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|rows| {
            (
                rows.iter().map(|r| (r.row, r.body.clone())).collect(),
                rows.iter()
                    .flat_map(|r| r.subjects.iter().copied())
                    .collect(),
            )
        })
        .unwrap_or_default();
    let name = preview.kind.command();
    // One durable write each for the rows' data keys and for their idempotency keys, rather
    // than two per row outside the appends' group commit (which held commits to a few hundred
    // rows a second).
    state
        .app
        .keys()
        .prepare(&subjects)
        .await
        .map_err(|e| ApiError::unavailable_or_internal(e.is_unavailable(), &e))?;
    let keyed: Vec<(Uuid, [u8; 32])> = rows
        .iter()
        .map(|(row, body)| {
            let key = idempotency_key(&preview.file_sha256, preview.kind, *row);
            (
                crate::commands::command_id_for(principal.actor_id(), &key),
                crate::idempotency::fingerprint(name, body),
            )
        })
        .collect();
    let claims = tokio::time::timeout(
        CLAIMS_DEADLINE,
        crate::idempotency::claim_many(state.tokens.tables().as_ref(), &keyed),
    )
    .await
    .map_err(|_| ApiError::unavailable(&"the rows' Idempotency-Key claims did not finish in time"))?
    .map_err(|e| ApiError::unavailable(&e))?;
    let state = &state;
    let principal = &principal;
    let preview_ref = &preview;
    let mut outcomes: Vec<RowOutcome> = futures::stream::iter(
        rows.into_iter()
            .zip(claims)
            .map(|((row, body), claim)| async move {
                let mut headers = HeaderMap::new();
                let key = idempotency_key(&preview_ref.file_sha256, preview_ref.kind, row);
                let command_id = crate::commands::command_id_for(principal.actor_id(), &key);
                if let Ok(v) = HeaderValue::from_str(&key) {
                    headers.insert("idempotency-key", v);
                }
                let mut out = RowOutcome {
                    row,
                    outcome: Outcome::Written,
                    command_id: Some(command_id),
                    stream_id: None,
                    code: None,
                    message: None,
                    message_zh: None,
                };
                let ran = if claim == crate::idempotency::Claim::Other {
                    Err(crate::commands::key_reused())
                } else {
                    crate::commands::run_claimed(state, principal, name, body, &headers, true).await
                };
                match ran {
                    Ok((replayed, accepted)) => {
                        out.outcome = if replayed {
                            Outcome::Replayed
                        } else {
                            Outcome::Written
                        };
                        out.stream_id = accepted.stream_id;
                    }
                    Err(e) => {
                        out.outcome = if e.status.is_server_error() {
                            Outcome::Failed
                        } else {
                            Outcome::Rejected
                        };
                        out.code = Some(e.code.to_owned());
                        out.message = e.detail;
                        out.message_zh = e.detail_zh;
                    }
                }
                out
            })
            .collect::<Vec<_>>(),
    )
    .buffered(COMMIT_CONCURRENCY)
    .collect()
    .await;
    outcomes.extend(preview.invalid.iter().map(|&row| RowOutcome {
        row,
        outcome: Outcome::Skipped,
        command_id: None,
        stream_id: None,
        code: None,
        message: None,
        message_zh: None,
    }));
    outcomes.sort_by_key(|o| o.row);
    let count = |o: Outcome| outcomes.iter().filter(|r| r.outcome == o).count();
    let report = CommitReport {
        id,
        kind: preview.kind,
        written: count(Outcome::Written),
        replayed: count(Outcome::Replayed),
        rejected: count(Outcome::Rejected),
        failed: count(Outcome::Failed),
        skipped: count(Outcome::Skipped),
        rows: outcomes,
    };
    tracing::info!(
        preview = %id,
        written = report.written,
        replayed = report.replayed,
        rejected = report.rejected,
        failed = report.failed,
        skipped = report.skipped,
        "roster committed"
    );
    if report.failed == 0 {
        // Every row ran: the plaintext bodies are not needed any more.
        preview
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        *committed = Some(report.clone());
    }
    Ok(Json(report))
}

/// The import routes with their documentation, nested under `/api/v1` by `api_routes`.
pub fn routes() -> aide::axum::ApiRouter<AppState> {
    use crate::openapi::{Describe, response};
    use aide::axum::routing::{get_with, post_with};
    use serde_json::json;

    aide::axum::ApiRouter::new()
        .api_route(
            "/imports/templates/{file}",
            get_with(template, |op| {
                op.describe(
                    "importTemplate",
                    "imports",
                    "A roster's import template (administrators): model-workers, directors or pairings, as .xlsx (Chinese headers, English field names, a notes sheet) or .csv",
                )
                .answer(
                    200,
                    response(json!({
                        "description": "the template as an attachment",
                        "headers": { "Content-Disposition": {
                            "description": "attachment; filename=\"caretrail-<kind>.<xlsx|csv>\"",
                            "schema": { "type": "string" } } },
                        "content": {
                            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": { "schema": { "type": "string", "format": "binary" } },
                            "text/csv": { "schema": { "type": "string" } }
                        }
                    })),
                )
                .problem(403, "only administrators import (forbidden)")
                .problem(404, "no such template (not_found)")
            }),
        )
        .api_route(
            "/imports",
            post_with(preview, |op| {
                op.with(upload_body).describe(
                    "importPreview",
                    "imports",
                    "Read and check a roster file without writing anything (administrators): every row's result, and the preview's id to commit",
                )
                .problem(400, "the file is empty, a truncated or corrupt workbook, or not UTF-8 CSV (import_empty, import_bad_workbook, import_bad_csv, unreadable_body)")
                .problem(403, "only administrators import (forbidden)")
                .problem(413, "the file is larger than 8 MiB, or the workbook inflates past 64 MiB (import_too_large, import_workbook_too_large)")
                .problem(415, "the Content-Type is not XLSX, CSV or octet-stream, or says one and the file is the other (unsupported_media_type, import_type_mismatch)")
                .problem(422, "the header does not fit the roster, no data rows, more than 10,000 rows or 64 columns, no sheet named 名册 (import_wrong_columns, import_no_rows, import_too_many_rows, import_too_many_columns, import_sheet_missing)")
            }),
        )
        .api_route(
            "/imports/{id}/commit",
            post_with(commit, |op| {
                op.describe(
                    "importCommit",
                    "imports",
                    "Run one command per valid row of a preview, each with an idempotency key derived from the file and the row (administrators): committing the same file again writes nothing",
                )
                .problem(403, "only administrators import (forbidden)")
                .problem(404, "no such preview: expired, pushed out, or another administrator's (not_found)")
            }),
        )
}

/// Documents the upload's body: the file's bytes in one of the accepted media types.
fn upload_body(
    mut op: aide::transform::TransformOperation<'_>,
) -> aide::transform::TransformOperation<'_> {
    use serde_json::json;
    op.inner_mut().request_body = serde_json::from_value(json!({
                    "required": true,
                    "description": "the roster file: XLSX (recognised by its zip signature) or CSV in UTF-8, with or without a byte-order mark; at most 8 MiB and 10,000 data rows",
                    "content": {
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": { "schema": { "type": "string", "format": "binary" } },
                        "text/csv": { "schema": { "type": "string" } },
                        "application/octet-stream": { "schema": { "type": "string", "format": "binary" } }
                    }
                }))
.ok();
    op
}
