//! End-to-end regression tests of issue 14's input and read-model items, on SQLite and
//! PostgreSQL: poison text (#1), personal data in 422 bodies (#3), money bounds (#7) and a
//! visit's lead (#8). Each test names the finding it guards against.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use caretrail_app::MasterKey;
use caretrail_domain::event::{self as ev, Event};
use caretrail_domain::vocab::{BodyKind, ContactExchanged, Findings, Gift, GiftKind};
use caretrail_domain::{BodyId, Category, Fen, RegionCode, StreamName, VisitId, demo};
use caretrail_http::Role;
use caretrail_store::testing::Harness;
use caretrail_store::{AppendRequest, ExpectedVersion, Metadata, NewEvent};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

caretrail_store::both_backends!(
    hardening_3_no_422_body_echoes_a_value_or_key_that_was_sent,
    hardening_1_text_no_person_types_is_refused_with_422_naming_the_field,
    hardening_8_a_director_cannot_name_another_director_as_the_lead,
    hardening_1_a_nul_appended_through_the_store_does_not_stop_the_dashboards,
    hardening_7_a_gift_above_the_cap_is_refused_and_a_total_beyond_64_bits_is_a_stable_error,
);

/// A phone-number-like marker that must appear in no response.
const MARKER: &str = "13800138001";

struct T {
    base: String,
    client: reqwest::Client,
    service: caretrail_http::testing::DemoService,
    admin: String,
}

fn master(h: &Harness) -> MasterKey {
    use base64::Engine;
    let mut bytes = [9u8; 32];
    bytes[..8].copy_from_slice(&(h.url.len() as u64).to_le_bytes());
    MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode(bytes)).unwrap()
}

async fn spawn(h: &Harness) -> T {
    let service = caretrail_http::testing::demo_service(h, master(h), |_| {}).await;
    let admin = service
        .tokens
        .create(Role::Admin, None, "admin")
        .await
        .unwrap()
        .1;
    T {
        base: service.base.clone(),
        client: reqwest::Client::new(),
        service,
        admin,
    }
}

impl T {
    async fn token(&self, role: Role, director: Option<Uuid>) -> String {
        self.service
            .tokens
            .create(role, director, "test")
            .await
            .unwrap()
            .1
    }

    /// Posts a command; the status and the body as text.
    async fn post(&self, token: &str, command: &str, body: &Value) -> (StatusCode, String) {
        let res = self
            .client
            .post(format!("{}/api/v1/commands/{command}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    }
}

impl T {
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap())
    }

    /// Appends `event` directly through the store, past every command check (as an old log
    /// or another writer could hold it); returns the head position after it.
    async fn append(&self, category: Category, id: Uuid, event: Event) -> u64 {
        let stream = caretrail_app::store_id(&StreamName::new(category, id)).unwrap();
        let new = NewEvent {
            event_id: Uuid::now_v7(),
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            data: event.to_data().unwrap().to_string(),
            business_date: event.business_date(),
        };
        let metadata = Metadata {
            actor_id: "test".into(),
            actor_role: "system".into(),
            ..Metadata::default()
        };
        let store = self.service.app.store();
        store
            .append(AppendRequest::single(
                stream,
                ExpectedVersion::Any,
                vec![new],
                metadata,
            ))
            .await
            .unwrap();
        store.head().await.unwrap().position
    }

    /// Waits until the live dashboards have applied `position` (20 s at most).
    async fn projected(&self, position: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (_, lag) = self.get("/api/v1/dashboard/projections").await;
            if lag["checkpoint"].as_u64().unwrap_or(0) >= position {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the dashboards stopped: {lag}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn visit_body(lead: Uuid, companion: Option<Uuid>) -> Value {
    let mut participants =
        vec![json!({ "who": { "kind": "director", "director_id": lead }, "role": "lead" })];
    if let Some(c) = companion {
        participants
            .push(json!({ "who": { "kind": "director", "director_id": c }, "role": "companion" }));
    }
    json!({
        "visit_id": Uuid::now_v7(),
        "model_worker_id": demo::workers::YU_PEIYE.uuid(),
        "pairing_id": demo::pairing(1).uuid(),
        "visited_on": "2025-01-15",
        "region_code": "330106",
        "participants": participants,
        "gifts": [{ "kind": "cash", "amount_fen": 50000, "description": "慰问金" }],
        "findings": { "health": "尚可" },
        "medical_advice_given": false,
        "benefit_checks": [{ "benefit": "劳模待遇", "status": "implemented" }],
    })
}

fn worker_body() -> Value {
    json!({ "model_worker_id": Uuid::now_v7(), "honour": "provincial_model_worker",
            "region_code": "330106", "name": "王某", "honour_year": 2015,
            "occupation": "种粮大户" })
}

/// Sets the value at a JSON pointer.
fn with(mut body: Value, pointer: &str, value: Value) -> Value {
    *body.pointer_mut(pointer).expect(pointer) = value;
    body
}

/// Adds a key at the object a JSON pointer names.
fn with_key(mut body: Value, pointer: &str, key: &str) -> Value {
    body.pointer_mut(pointer)
        .and_then(Value::as_object_mut)
        .expect(pointer)
        .insert(key.to_owned(), json!(MARKER));
    body
}

/// Hardening #3: a wrong value of every field kind (string, integer, date, uuid, enum, nested
/// array element, unknown key), holding the marker inside quotes, backticks, backslashes and
/// newlines, answers 422 naming the field, and the marker appears nowhere in the body.
async fn hardening_3_no_422_body_echoes_a_value_or_key_that_was_sent(h: &Harness) {
    let t = spawn(h).await;
    let director = demo::directors::FENG_YALI.uuid();
    let strings = [
        format!("a\"{MARKER}"),
        format!("`{MARKER}`"),
        format!("\\{MARKER}\\"),
        format!("x\n{MARKER}\n"),
        format!("{MARKER}\"}}"),
    ];
    let mut cases: Vec<(&str, Value, &str)> = Vec::new();
    for s in &strings {
        let s = json!(s);
        cases.push((
            "RegisterModelWorker",
            with(worker_body(), "/honour_year", s.clone()),
            "honour_year",
        ));
        cases.push((
            "RegisterModelWorker",
            with(worker_body(), "/honour", s.clone()),
            "honour",
        ));
        cases.push((
            "RegisterModelWorker",
            with(worker_body(), "/model_worker_id", s.clone()),
            "model_worker_id",
        ));
        cases.push((
            "RegisterModelWorker",
            with(worker_body(), "/region_code", s.clone()),
            "region_code",
        ));
        // A name must be one line: the newline case is refused, the others are valid names.
        cases.push((
            "RecordVisit",
            with(visit_body(director, None), "/visited_on", s.clone()),
            "visited_on",
        ));
        cases.push((
            "RecordVisit",
            with(visit_body(director, None), "/gifts/0/amount_fen", s.clone()),
            "gifts[0].amount_fen",
        ));
        cases.push((
            "RecordVisit",
            with(visit_body(director, None), "/gifts/0/kind", s.clone()),
            "gifts[0].kind",
        ));
        cases.push((
            "RecordVisit",
            with(
                visit_body(director, None),
                "/participants/0/who/kind",
                s.clone(),
            ),
            "participants[0].who.kind",
        ));
        cases.push((
            "RecordVisit",
            with(
                visit_body(director, None),
                "/participants/0/who/director_id",
                s.clone(),
            ),
            "participants[0].who.director_id",
        ));
        cases.push((
            "RecordVisit",
            with(
                visit_body(director, None),
                "/benefit_checks/0/status",
                s.clone(),
            ),
            "benefit_checks[0].status",
        ));
        cases.push((
            "RecordVisit",
            with(
                visit_body(director, None),
                "/medical_advice_given",
                s.clone(),
            ),
            "medical_advice_given",
        ));
        cases.push((
            "RecordVisit",
            with(visit_body(director, None), "/participants", s.clone()),
            "participants",
        ));
        let key = s.as_str().unwrap();
        cases.push(("RegisterModelWorker", with_key(worker_body(), "", key), "."));
        cases.push((
            "RecordVisit",
            with_key(visit_body(director, None), "/gifts/0", key),
            "gifts[0]",
        ));
        cases.push((
            "RecordVisit",
            with_key(visit_body(director, None), "/participants/0/who", key),
            "participants[0].who",
        ));
        cases.push((
            "RecordVisit",
            with_key(visit_body(director, None), "/findings", key),
            "findings",
        ));
    }
    for number in [
        json!(-13_800_138_001i64),
        json!(13_800_138_001.5f64),
        json!(1.380_013_800_1e30f64),
    ] {
        cases.push((
            "RecordVisit",
            with(
                visit_body(director, None),
                "/gifts/0/amount_fen",
                number.clone(),
            ),
            "gifts[0].amount_fen",
        ));
        cases.push((
            "RegisterModelWorker",
            with(worker_body(), "/name", number.clone()),
            "name",
        ));
        cases.push((
            "RegisterModelWorker",
            with(worker_body(), "/honour_year", number),
            "honour_year",
        ));
    }
    for (command, body, field) in &cases {
        let (status, text) = t.post(&t.admin, command, body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{command} {field}: {text}"
        );
        assert!(
            !text.contains(MARKER) && !text.contains("3800138"),
            "{command} {field} echoes: {text}"
        );
        let p: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(p["code"], json!("validation_failed"));
        assert_eq!(p["errors"][0]["field"], json!(field), "{text}");
    }
    // An unknown command name is not repeated back either, to any role.
    let director_token = t.token(Role::Director, Some(director)).await;
    for token in [&t.admin, &director_token] {
        let (status, text) = t.post(token, &format!("X{MARKER}"), &json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(!text.contains(MARKER), "{text}");
    }
}

/// Hardening #1: the issue's `"团\u0000体"` and other text no person types answer 422 naming
/// the field (nested ones included), and nothing is written.
async fn hardening_1_text_no_person_types_is_refused_with_422_naming_the_field(h: &Harness) {
    let t = spawn(h).await;
    let head = t.service.app.store().head().await.unwrap().position;
    let director = demo::directors::FENG_YALI.uuid();
    let cases = [
        (
            "RegisterBody",
            json!({ "body_id": Uuid::now_v7(), "kind": "association", "name": "团\u{0}体" }),
            "name",
        ),
        (
            "RegisterModelWorker",
            with(worker_body(), "/occupation", json!("种粮\u{1B}[2J大户")),
            "occupation",
        ),
        (
            "RegisterModelWorker",
            with(worker_body(), "/name", json!("王\u{FFFF}某")),
            "name",
        ),
        (
            "RecordVisit",
            with(
                visit_body(director, None),
                "/gifts/0/description",
                json!("慰问\u{0}金"),
            ),
            "gifts[0].description",
        ),
        (
            "RecordVisit",
            with(
                visit_body(director, None),
                "/findings/health",
                json!("尚\u{85}可"),
            ),
            "findings.health",
        ),
        (
            "RecordVisit",
            with(
                visit_body(director, None),
                "/benefit_checks/0/benefit",
                json!("劳模\n待遇"),
            ),
            "benefit_checks[0].benefit",
        ),
    ];
    for (command, body, field) in cases {
        let (status, text) = t.post(&t.admin, command, &body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{command}: {text}"
        );
        let p: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(p["errors"][0]["field"], json!(field), "{text}");
    }
    assert_eq!(t.service.app.store().head().await.unwrap().position, head);
    // A note keeps its paragraphs.
    let body = with(
        visit_body(director, None),
        "/findings/health",
        json!("血压偏高。\n按时服药。"),
    );
    let (status, text) = t.post(&t.admin, "RecordVisit", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
}

/// Hardening #8: a director may bring another director along, but may not name them as the
/// lead of a visit on their own pairing, neither when recording nor when correcting it.
async fn hardening_8_a_director_cannot_name_another_director_as_the_lead(h: &Harness) {
    let t = spawn(h).await;
    let feng = demo::directors::FENG_YALI.uuid();
    let chen = demo::directors::CHEN_MEIFANG.uuid();
    let token = t.token(Role::Director, Some(feng)).await;
    let (status, text) = t
        .post(&token, "RecordVisit", &visit_body(chen, Some(feng)))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let p: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(p["code"], json!("visit_lead_not_actor"), "{p}");
    assert_eq!(p["detail_zh"], json!("理事记录的走访须由本人带队"));
    // Leading it with the other director along is fine.
    let body = visit_body(feng, Some(chen));
    let (status, text) = t.post(&token, "RecordVisit", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    // A correction that hands the lead to the other director is refused.
    let correction = json!({ "visit_id": body["visit_id"], "reason": "更正", "changes": {
        "participants": [
            { "who": { "kind": "director", "director_id": chen }, "role": "lead" },
            { "who": { "kind": "director", "director_id": feng }, "role": "companion" } ] } });
    let (status, text) = t.post(&token, "CorrectVisit", &correction).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains("visit_lead_not_actor"), "{text}");
    // An administrator records what the office was told, with any director as the lead.
    let (status, text) = t.post(&t.admin, "CorrectVisit", &correction).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
}

/// Hardening #1: `"团\u0000体"` in the log (appended through the store, as a log from before the
/// text rule holds it) stopped the projector on PostgreSQL for good. The running service's
/// dashboards now apply it and every event after it.
async fn hardening_1_a_nul_appended_through_the_store_does_not_stop_the_dashboards(h: &Harness) {
    let t = spawn(h).await;
    let body = BodyId::from_u128(0xBAD0);
    let event = ev::BodyRegistered {
        body_id: body,
        kind: BodyKind::UnionCity,
        name: "团\u{0}体".into(),
        region_code: None,
    };
    let poisoned = t.append(Category::Body, body.0, event.into()).await;
    t.projected(poisoned).await;
    // The audit tree copies no event text (it hashes the stored bytes): it takes the event in
    // too, and a checkpoint signs it.
    let auditor = &t.service.auditor;
    assert!(auditor.update_tree().await.unwrap() >= poisoned);
    assert!(auditor.sign_checkpoint().await.unwrap().tree_size >= poisoned);
    let (status, text) = t
        .post(
            &t.admin,
            "RegisterBody",
            &json!({ "body_id": Uuid::now_v7(), "kind": "volunteer_team", "name": "志愿服务队" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let after: Value = serde_json::from_str(&text).unwrap();
    t.projected(after["events"][0]["position"].as_u64().unwrap())
        .await;
}

/// Hardening #7: the two amounts. 9223372036854775807 fen is refused with
/// `gift_amount_above_cap` naming the gift; 100000 is accepted. The same huge amount already
/// in the log (appended through the store) keeps its exact value on the visit, and the
/// month's total, which no 64-bit field can hold, answers 500 `amount_not_representable`.
async fn hardening_7_a_gift_above_the_cap_is_refused_and_a_total_beyond_64_bits_is_a_stable_error(
    h: &Harness,
) {
    let t = spawn(h).await;
    let feng = demo::directors::FENG_YALI.uuid();
    let huge = with(
        visit_body(feng, None),
        "/gifts/0/amount_fen",
        json!(i64::MAX),
    );
    let (status, text) = t.post(&t.admin, "RecordVisit", &huge).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let p: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(p["code"], json!("gift_amount_above_cap"));
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("gifts[0].amount_fen"),
        "{p}"
    );
    assert!(
        p["detail_zh"].as_str().unwrap().contains("100000.00 元"),
        "{p}"
    );
    let small = with(
        visit_body(feng, None),
        "/gifts/0/amount_fen",
        json!(100_000),
    );
    let (status, text) = t.post(&t.admin, "RecordVisit", &small).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let visit = VisitId::from_u128(0x7777);
    let event = ev::VisitRecorded {
        visit_id: visit,
        model_worker_id: demo::workers::YU_PEIYE,
        pairing_id: None,
        director_id: Some(demo::directors::FENG_YALI),
        adhoc_reason: None,
        visited_on: chrono::NaiveDate::from_ymd_opt(2025, 1, 15).unwrap(),
        region_code: RegionCode::parse("330106").unwrap(),
        place: None,
        participants: vec![],
        gifts: vec![Gift {
            kind: GiftKind::Cash,
            amount_fen: Some(Fen::new(i64::MAX).unwrap()),
            description: None,
        }],
        findings: Findings::default(),
        contact_exchanged: ContactExchanged::default(),
        medical_advice_given: false,
        benefit_checks: vec![],
        late_entry: false,
    };
    let head = t.append(Category::Visit, visit.0, event.into()).await;
    t.projected(head).await;
    let (status, visits) = t.get("/api/v1/visits?from=2025-01-01&to=2025-01-31").await;
    assert_eq!(status, StatusCode::OK, "{visits}");
    let mut amounts: Vec<i64> = visits["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["cash_fen"].as_i64().unwrap())
        .collect();
    amounts.sort_unstable();
    assert_eq!(amounts, vec![100_000, i64::MAX], "{visits}");
    for path in [
        "/api/v1/dashboard/gifts?from=2025-01-01&to=2025-12-31&group_by=month",
        "/api/v1/dashboard/overview?as_of=2025-01-31",
    ] {
        let (status, p) = t.get(path).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}: {p}");
        assert_eq!(p["code"], json!("amount_not_representable"), "{p}");
    }
}
