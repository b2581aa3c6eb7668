//! Every error the API returns, as `application/problem+json` (RFC 9457) with a stable `code`
//! that clients switch on. Bodies name fields and rule codes, never personal values, SQL or
//! stack traces; the underlying cause of a server-side failure goes to the log only.

use axum::Json;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use caretrail_app::{AppError, ErrorClass};
use caretrail_store::StoreError;
use serde::Serialize;

/// A problem details document.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Problem {
    /// A URI naming the problem type (`urn:caretrail:problem:<code>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short English summary.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong here, in English.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The stable machine-readable code.
    pub code: String,
    /// The same explanation in Chinese, where the domain provides one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail_zh: Option<String>,
    /// Fields that failed validation, for 422.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One failing field.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct FieldError {
    /// A JSON pointer or field name.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// The API's error type.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable machine code clients switch on (`director_already_paired`).
    pub code: &'static str,
    /// The English explanation; never a personal value or a value the client sent.
    pub detail: Option<String>,
    /// The zh-CN explanation, for the domain's rejections.
    pub detail_zh: Option<String>,
    /// The fields at fault, for validation failures.
    pub errors: Vec<FieldError>,
    /// Headers the answer carries besides its content type (`Retry-After`, `Allow`,
    /// `WWW-Authenticate`); boxed and rare, so a `Result<_, ApiError>` stays small.
    headers: Option<Box<HeaderMap>>,
}

impl ApiError {
    /// An error answer with `status`, `code` and an English `detail`.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: Some(detail.into()),
            detail_zh: None,
            errors: Vec::new(),
            headers: None,
        }
    }

    /// Adds a header to the answer.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers
            .get_or_insert_with(Default::default)
            .insert(name, value);
        self
    }

    /// Adds `Retry-After` in whole seconds (at least 1: `0` would invite a busy loop).
    pub fn retry_after(self, wait: std::time::Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        self.with_header(header::RETRY_AFTER, HeaderValue::from(secs.max(1)))
    }

    /// `429 Too Many Requests` with the time after which a retry may succeed.
    pub fn too_many_requests(detail: impl Into<String>, wait: std::time::Duration) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail).retry_after(wait)
    }

    /// 401 for a request without a bearer token, with the challenge RFC 6750 asks for.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid bearer token is required",
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"caretrail\""),
        )
    }

    /// 401 for a bearer token that is unknown, revoked or expired (RFC 6750 `invalid_token`).
    pub fn invalid_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "the bearer token is unknown, revoked or expired",
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"caretrail\", error=\"invalid_token\""),
        )
    }

    /// 403 `forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404 `not_found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 400 with its own `code`.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 422 `validation_failed`, naming the fields at fault.
    pub fn validation(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Self {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                detail,
            )
        }
    }

    /// An internal failure: the cause is logged, the client learns only that it happened.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed on the server side");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the server failed to complete the request; it has been logged",
        )
    }

    /// The database cannot serve now (unreachable, silent, full, locked): 503 with
    /// `Retry-After`. The cause is logged as a warning, at most once per
    /// [`UNAVAILABLE_LOG_EVERY`] (with the number of answers in between): during an outage
    /// every request fails alike, and the background tasks report the outage in the health
    /// registry and the log anyway.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        log_unavailable(cause);
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the event store is unavailable; retry later",
        )
        .retry_after(std::time::Duration::from_secs(u64::from(
            STORE_RETRY_AFTER_SECS,
        )))
    }

    /// 503 when the database could not serve, 500 (a bug, corruption) otherwise.
    pub fn unavailable_or_internal(unavailable: bool, cause: &dyn std::fmt::Display) -> Self {
        if unavailable {
            Self::unavailable(cause)
        } else {
            Self::internal(cause)
        }
    }
}

/// How often a `store_unavailable` answer is logged at most.
pub const UNAVAILABLE_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

fn log_unavailable(cause: &dyn std::fmt::Display) {
    use std::sync::Mutex;
    use std::time::Instant;
    /// When the last line was written, and the answers not logged since.
    static LAST: Mutex<(Option<Instant>, u64)> = Mutex::new((None, 0));
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    match last.0 {
        Some(at) if at.elapsed() < UNAVAILABLE_LOG_EVERY => last.1 += 1,
        _ => {
            let unlogged = std::mem::take(&mut last.1);
            last.0 = Some(Instant::now());
            drop(last);
            tracing::warn!(error = %cause, unlogged_since_last = unlogged, "store unavailable");
        }
    }
}

/// Seconds a client is asked to wait after `store_unavailable`: the background tasks retry
/// within a few seconds of an outage ending, and the database's own timeouts answer within
/// about a second, so sooner retries would mostly meet the same outage.
pub const STORE_RETRY_AFTER_SECS: u32 = 2;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // One mapping for the store's failures, whether a command or a read met them.
        AppError::Store(e).into()
    }
}

/// The answer to a failed command: the status from [`AppError::class`], the code from
/// [`AppError::code`] (the one list of the codes commands answer with).
impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let code = e.code();
        let status = match e.class() {
            ErrorClass::InvalidInput => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorClass::Conflict => StatusCode::CONFLICT,
            ErrorClass::NotPermitted => StatusCode::FORBIDDEN,
            ErrorClass::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            // The cause is logged; the client learns only the code and when to retry.
            ErrorClass::Unavailable => {
                return ApiError {
                    code,
                    ..ApiError::unavailable(&e)
                };
            }
            ErrorClass::Internal => {
                return ApiError {
                    code,
                    ..ApiError::internal(&e)
                };
            }
        };
        match e {
            AppError::Rejected(r) => {
                let mut err = ApiError::new(status, code, r.to_string());
                err.detail_zh = Some(r.message_zh());
                err
            }
            e => ApiError::new(status, code, e.to_string()),
        }
    }
}

impl ApiError {
    /// The problem document and the headers of this error's answer.
    pub fn into_parts(self) -> (StatusCode, HeaderMap, Problem) {
        let status = self.status;
        let title = status.canonical_reason().unwrap_or("error").to_owned();
        let body = Problem {
            kind: format!("urn:caretrail:problem:{}", self.code),
            title,
            status: status.as_u16(),
            detail: self.detail,
            code: self.code.to_owned(),
            detail_zh: self.detail_zh,
            errors: self.errors,
        };
        (status, self.headers.map(|h| *h).unwrap_or_default(), body)
    }

    /// The answer with extension members (RFC 9457 section 3.2) added to the problem document,
    /// e.g. `/readyz`'s list of problems.
    pub fn into_response_with(
        self,
        extensions: serde_json::Map<String, serde_json::Value>,
    ) -> Response {
        let (status, headers, body) = self.into_parts();
        let mut doc = match serde_json::to_value(body) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        for (k, v) in extensions {
            // Extensions never replace a standard member.
            doc.entry(k).or_insert(v);
        }
        problem_response(status, headers, Json(doc))
    }
}

fn problem_response(status: StatusCode, headers: HeaderMap, body: impl IntoResponse) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().extend(headers);
    // Every 429 says when to come back, even one built without a wait.
    if status == StatusCode::TOO_MANY_REQUESTS && !res.headers().contains_key(header::RETRY_AFTER) {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    res
}

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, headers, body) = self.into_parts();
        problem_response(status, headers, Json(body))
    }
}

/// Shorthand for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// The problem for an error answer that was not built from an [`ApiError`] (a rejection of an
/// extractor this crate does not wrap, a route of the embedded web page), by status alone: the
/// original body is dropped unread, since it may echo the request.
fn generic(status: StatusCode) -> ApiError {
    let (code, detail) = match status {
        StatusCode::BAD_REQUEST => ("bad_request", "the request is malformed"),
        StatusCode::NOT_FOUND => ("not_found", "no such resource; see /openapi.json"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this endpoint does not take this method; see the Allow header",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("body_too_large", "the request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "this content type is not accepted here",
        ),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests; slow down"),
        s if s.is_server_error() => (
            "internal_error",
            "the server failed to complete the request; it has been logged",
        ),
        _ => ("client_error", "the request cannot be answered"),
    };
    ApiError::new(status, code, detail)
}

/// Middleware that makes every error answer problem+json: answers built from [`ApiError`]
/// pass through, any other 4xx/5xx (axum's own rejections, the web page's missing asset) is
/// replaced by the generic problem for its status, keeping the headers that tell the client
/// what to do next.
pub async fn problem_json_only(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct == PROBLEM_JSON);
    if is_problem {
        return res;
    }
    tracing::debug!(
        status = status.as_u16(),
        "a plain error answer became problem+json"
    );
    let mut err = generic(status);
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(v) = res.headers().get(&name) {
            err = err.with_header(name, v.clone());
        }
    }
    err.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hardening #6: an unreachable database answered 500 `internal_error` on reads. It is a
    /// 503 `store_unavailable` with `Retry-After`; a corrupt row is still a 500.
    #[test]
    fn an_unreachable_database_is_503_with_retry_after_and_a_corrupt_row_is_500() {
        let unavailable = [
            StoreError::Database(sqlx::Error::PoolTimedOut),
            StoreError::Database(sqlx::Error::Io(
                std::io::ErrorKind::ConnectionRefused.into(),
            )),
            StoreError::Unresponsive(std::time::Duration::from_secs(6)),
            StoreError::Closed,
        ];
        for e in unavailable {
            let res = ApiError::from(e).into_response();
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(
                res.headers()[header::RETRY_AFTER],
                STORE_RETRY_AFTER_SECS.to_string()
            );
        }
        let broken = [
            StoreError::Corrupt {
                position: 7,
                reason: "leaf hash is not 32 bytes".into(),
            },
            StoreError::Database(sqlx::Error::Decode("bad".into())),
        ];
        for e in broken {
            let res = ApiError::from(e).into_response();
            assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert!(!res.headers().contains_key(header::RETRY_AFTER));
        }
    }
}
