//! What the tests share: the demo service with an administrator's token and a client
//! (`spawn`), requests, problem+json checks, a visit's body, and readers of Server-Sent Events.

use std::sync::Arc;
use std::time::Duration;

use caretrail_app::{App, MasterKey};
use caretrail_http::{RateLimiter, Role, TokenStore};
use caretrail_store::testing::Harness;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

/// The demo service, an administrator's token, and what the tests reach into.
pub struct TestApp {
    pub auditor: Arc<caretrail_audit::Auditor>,
    pub base: String,
    pub client: reqwest::Client,
    pub app: Arc<App>,
    pub tokens: Arc<TokenStore>,
    pub admin: String,
    pub operations: Arc<caretrail_http::operations::Operations>,
    _service: caretrail_http::testing::DemoService,
}

impl TestApp {
    pub async fn token(&self, role: Role, director: Option<Uuid>) -> String {
        self.tokens
            .create(role, director, "test")
            .await
            .expect("token")
            .1
    }

    pub async fn post(&self, token: &str, command: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/commands/{command}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// `POST /api/v1/operations/{kind}`.
    pub async fn start(&self, token: &str, kind: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/operations/{kind}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// Polls the operation at `location` until it is no longer running (30 s at most).
    pub async fn finished(&self, token: &str, location: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let res = self.get(token, location).await;
            assert_eq!(res.status(), StatusCode::OK);
            let status: Value = res.json().await.unwrap();
            if status["state"] != json!("running") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still running: {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The `Location` of a `202 Accepted` that started an operation, and its body.
pub async fn accepted(res: reqwest::Response, kind: &str) -> (String, Value) {
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["kind"], json!(kind));
    assert_eq!(
        location,
        format!(
            "/api/v1/operations/{}",
            body["operation_id"].as_str().unwrap()
        )
    );
    (location, body)
}

pub fn master(h: &Harness) -> MasterKey {
    let digest = {
        use std::hash::{Hash, Hasher};
        let mut s = std::collections::hash_map::DefaultHasher::new();
        h.url.hash(&mut s);
        s.finish()
    };
    let mut bytes = [7u8; 32];
    bytes[..8].copy_from_slice(&digest.to_le_bytes());
    use base64::Engine;
    MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode(bytes)).unwrap()
}

pub async fn spawn_with(h: &Harness, limiter: Option<RateLimiter>) -> TestApp {
    let service = caretrail_http::testing::demo_service(h, master(h), |state| {
        state.heartbeat = Duration::from_millis(200);
        if let Some(l) = limiter {
            state.limiter = Arc::new(l);
        }
    })
    .await;
    TestApp::from_service(service).await
}

impl TestApp {
    /// The test app over a service built by the test itself.
    pub async fn from_service(service: caretrail_http::testing::DemoService) -> TestApp {
        let admin = service
            .tokens
            .create(Role::Admin, None, "admin")
            .await
            .unwrap()
            .1;
        TestApp {
            base: service.base.clone(),
            client: reqwest::Client::new(),
            app: service.app.clone(),
            tokens: service.tokens.clone(),
            auditor: service.auditor.clone(),
            admin,
            operations: service.operations.clone(),
            _service: service,
        }
    }
}

pub async fn spawn(h: &Harness) -> TestApp {
    spawn_with(h, None).await
}

pub fn visit_body(visit: Uuid, worker: Uuid, pairing: Uuid, director: Uuid) -> Value {
    json!({
        "visit_id": visit,
        "model_worker_id": worker,
        "pairing_id": pairing,
        "visited_on": "2025-01-15",
        "region_code": "330106",
        "place": "杭州市西湖区",
        "participants": [{ "who": { "kind": "director", "director_id": director }, "role": "lead" }],
        "gifts": [{ "kind": "cash", "amount_fen": 50000, "description": "慰问金" },
                  { "kind": "flowers" }],
        "medical_advice_given": true
    })
}

pub async fn problem(res: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status, "status for {code}");
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/problem+json",
        "content type for {code}"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], json!(code), "{body}");
    assert_eq!(body["status"], json!(status.as_u16()));
    assert!(body["type"].as_str().unwrap().ends_with(code));
    body
}

/// One SSE event as received: its id (the log position), event type and data.
pub type SseFrame = (u64, String, String);

/// Reads SSE events until `done` says the list is complete.
pub async fn read_sse_while(
    res: reqwest::Response,
    done: impl Fn(&[SseFrame]) -> bool,
) -> Vec<SseFrame> {
    let mut out = Vec::new();
    // Bytes, not text: a chunk may end inside a character (a Chinese name split over two
    // chunks failed this reader once), and only a whole line is decoded.
    let mut buf: Vec<u8> = Vec::new();
    let mut bytes = res.bytes_stream();
    let (mut id, mut kind, mut data) = (None, None, String::new());
    while !done(&out) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), bytes.next())
            .await
            .expect("SSE stalled")
            .expect("SSE ended")
            .expect("SSE chunk");
        buf.extend_from_slice(&chunk);
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = buf.drain(..=i).collect();
            let line = String::from_utf8(raw).expect("an SSE line is UTF-8");
            let line = line.trim_end_matches(['\n', '\r']);
            if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().parse::<u64>().unwrap());
            } else if let Some(v) = line.strip_prefix("event:") {
                kind = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            } else if line.is_empty()
                && let (Some(i), Some(k)) = (id.take(), kind.take())
            {
                out.push((i, k, std::mem::take(&mut data)));
                if done(&out) {
                    break;
                }
            }
        }
    }
    out
}

/// (id, event type) of each frame.
pub fn ids_and_types(frames: Vec<SseFrame>) -> Vec<(u64, String)> {
    frames.into_iter().map(|(i, k, _)| (i, k)).collect()
}

/// Reads SSE events until `count` have arrived.
pub async fn read_sse(res: reqwest::Response, count: usize) -> Vec<(u64, String)> {
    ids_and_types(read_sse_while(res, |seen| seen.len() >= count).await)
}

/// Reads SSE events until the one at position `last` has arrived.
pub async fn read_sse_all_until(res: reqwest::Response, last: u64) -> Vec<(u64, String)> {
    ids_and_types(read_sse_while(res, |seen| seen.last().is_some_and(|f| f.0 == last)).await)
}

/// Reads SSE events with their data as JSON until the one at position `last` has arrived.
pub async fn read_sse_data_until(res: reqwest::Response, last: u64) -> Vec<(u64, String, Value)> {
    read_sse_while(res, |seen| seen.last().is_some_and(|f| f.0 == last))
        .await
        .into_iter()
        .map(|(i, k, d)| (i, k, serde_json::from_str(&d).unwrap()))
        .collect()
}
