//! The read side's cache of serialized answers: one answer per route, query and reader class
//! for one state (generation and checkpoint) of the live tables, computed by one request while
//! others for the same key wait.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::Uri;
use chrono::NaiveDate;
use serde::Serialize;

use super::{ReadSide, projection_error, read_side};
use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::openapi::JsonBytes;

impl ReadSide {
    /// Answers an aggregate dashboard from the cache when the live tables have not moved
    /// since it was computed (same generation and checkpoint), and computes it otherwise.
    ///
    /// Why: an aggregate over the whole log costs milliseconds at a million events, and a
    /// hundred administrators refreshing the same overview would queue behind each other on a
    /// small machine; between two applied batches the answer cannot change. The key is the
    /// route, the raw query and the business date "today" resolves to, so every parameter
    /// (region, `as_of`, replays) keys its own answer. Views without personal data and
    /// identical for every role allowed to read them use it directly; the lists and files
    /// through [`answer_as`], whose key adds the reader's role and the erasure count.
    pub(super) async fn answer<T, F, Fut>(&self, key: String, compute: F) -> ApiResult<JsonBytes<T>>
    where
        T: Serialize,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ApiResult<T>>,
    {
        let version = self
            .projector
            .live_version()
            .await
            .map_err(projection_error)?;
        // One computation per key and table state: requests arriving while it runs wait for
        // its answer instead of all running the same query (after each applied batch every
        // open dashboard asks again at once).
        let cell = self.answers.cell(version, key);
        let bytes = cell
            .get_or_try_init(|| async {
                let value = compute().await?;
                let body = serde_json::to_vec(&value).map_err(|e| ApiError::internal(&e))?;
                Ok::<_, ApiError>(self.answers.keep(body))
            })
            .await?;
        Ok(JsonBytes::new(bytes.clone()))
    }
}

/// Answers for one state of the live tables; a newer state empties it.
#[derive(Default)]
pub(super) struct AnswerCache {
    inner: std::sync::Mutex<Answers>,
    /// The size of the keys and answers kept since the cache last started over (an answer for
    /// an older state counts too, until the next start).
    bytes: std::sync::atomic::AtomicUsize,
}

/// The table state the answers are for, and each key's answer (filled by the first request).
type Answers = (
    Option<(i64, u64)>,
    HashMap<String, Arc<tokio::sync::OnceCell<Bytes>>>,
);

/// Distinct answers kept per table state (regions × dates × views × pages); beyond it the
/// cache starts over rather than grow.
const CACHED_ANSWERS: usize = 1024;

/// Bytes of keys and answers kept per table state: pages of up to 500 rows and model worker
/// files are far larger than the aggregates, so the count alone would not bound the memory a
/// client paging through everything could make the cache hold; and a key holds the raw query
/// string, which may be as long as the request line the server accepts (about 64 KiB).
const CACHED_BYTES: usize = 64 << 20;

impl AnswerCache {
    /// The cell holding `key`'s answer at `version`. A request for an older state than the
    /// cache's (it read the version just before a batch was applied) gets a cell of its own
    /// that nobody keeps.
    fn cell(&self, version: (i64, u64), key: String) -> Arc<tokio::sync::OnceCell<Bytes>> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let roomy = inner.1.len() < CACHED_ANSWERS
            && self.bytes.load(std::sync::atomic::Ordering::Relaxed) < CACHED_BYTES;
        match inner.0 {
            Some(v) if v > version => return Arc::default(),
            Some(v) if v == version && roomy => {}
            Some(v) if v == version && inner.1.contains_key(&key) => {}
            _ => {
                inner.0 = Some(version);
                inner.1.clear();
                self.bytes.store(0, std::sync::atomic::Ordering::Relaxed);
            }
        }
        if let Some(cell) = inner.1.get(&key) {
            return cell.clone();
        }
        // A key is held as long as its answer, and a query string can be as long as a page.
        self.bytes
            .fetch_add(key.len(), std::sync::atomic::Ordering::Relaxed);
        inner.1.entry(key).or_default().clone()
    }

    /// Counts an answer's body towards the byte bound and returns it as kept.
    fn keep(&self, body: Vec<u8>) -> Bytes {
        self.bytes
            .fetch_add(body.len(), std::sync::atomic::Ordering::Relaxed);
        Bytes::from(body)
    }
}

/// The cache key of a request: its route, raw query and resolved "today".
pub(super) fn answer_key(uri: &Uri, today: NaiveDate) -> String {
    format!("{}?{}|{today}", uri.path(), uri.query().unwrap_or(""))
}

/// Answers a list or a model worker's file: from the read side's answer cache when every
/// reader of `principal`'s role sees the same answer (administrators all see names, auditors
/// none), computed afresh otherwise (a director, whose answer depends on their own pairing as
/// the command side knows it now; a search by name).
///
/// Why: an answer computed per request (a read transaction, the query, decoding and opening
/// names, serializing; milliseconds at a million events, see BENCHMARKS.md) cannot keep a
/// hundred readers on two cores within a p99 of 25 ms, since the wait in the queue alone is
/// readers ÷ throughput; between two applied batches the answer cannot change. The key adds to the overview's the
/// role and the key ring's erasure count (`KeyRing::erasures`), so a name opened before an
/// erasure made through this process is never served after it.
pub(super) async fn answer_as<T, F, Fut>(
    state: &AppState,
    principal: &Principal,
    uri: &Uri,
    today: NaiveDate,
    search: bool,
    compute: F,
) -> ApiResult<JsonBytes<T>>
where
    T: Serialize,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ApiResult<T>>,
{
    let read = read_side(state)?;
    if search || !matches!(principal.role, Role::Admin | Role::Auditor) {
        let value = compute().await?;
        return serde_json::to_vec(&value)
            .map(|b| JsonBytes::new(Bytes::from(b)))
            .map_err(|e| ApiError::internal(&e));
    }
    let key = format!(
        "{}|{}|{}",
        answer_key(uri, today),
        principal.role.as_str(),
        state.app.keys().erasures()
    );
    read.answer(key, compute).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the cache holds: every kept key and every answer computed into it.
    fn held(cache: &AnswerCache) -> usize {
        let inner = cache.inner.lock().unwrap();
        inner
            .1
            .iter()
            .map(|(k, cell)| k.len() + cell.get().map_or(0, Bytes::len))
            .sum()
    }

    #[test]
    fn attack_long_query_strings_count_towards_the_byte_bound() {
        // An administrator's client asks for distinct pages with request lines near the
        // longest the server accepts (hyper refuses a URI from 64 KiB); each answer is as
        // large. Uncounted keys let the cache hold twice its bound.
        let cache = AnswerCache::default();
        let size = 60 * 1024;
        for page in 0..CACHED_ANSWERS {
            let mut key = format!("/api/v1/visits?cursor={page}&pad=");
            key.push_str(&"x".repeat(size - key.len()));
            let cell = cache.cell((1, 7), key);
            cell.set(cache.keep(vec![b' '; size])).unwrap();
        }
        let bound = CACHED_BYTES + 2 * size;
        assert!(
            held(&cache) <= bound,
            "the cache holds {} bytes, beyond its bound of {bound}",
            held(&cache)
        );
    }
}
