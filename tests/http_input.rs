//! End-to-end regression tests of issue 14's input and read-model items, on SQLite and
//! PostgreSQL: poison text (#1), personal data in 422 bodies (#3), money bounds (#7) and a
//! visit's lead (#8). Each test names the finding it guards against.

use caretrail_app::MasterKey;
use caretrail_domain::demo;
use caretrail_http::Role;
use caretrail_store::testing::Harness;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

caretrail_store::both_backends!(
    hardening_3_no_422_body_echoes_a_value_or_key_that_was_sent,
    hardening_1_text_no_person_types_is_refused_with_422_naming_the_field,
    hardening_8_a_director_cannot_name_another_director_as_the_lead,
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
