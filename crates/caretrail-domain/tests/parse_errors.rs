//! Command bodies that are wrong in every way a field can be wrong, for every field of every
//! command: the errors name the field and what the schema expects, and never carry a byte of
//! what was sent (Hardening #3), and every text field refuses characters no person types
//! (Hardening #1).
//!
//! The bodies are made from the published JSON Schemas: a valid body per command (every
//! property filled, each union branch in turn), then one field at a time replaced by poison
//! values holding a marker number inside quotes, backticks, backslashes and newlines, and
//! keys the schema does not define added to every object.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use caretrail_domain::command::{COMMAND_NAMES, command_schemas};
use caretrail_domain::{Command, CommandParseError};
use serde_json::{Map, Value, json};

/// A phone-number-like marker: it must appear in no error.
const MARKER: &str = "13800138001";
/// A fragment of the marker, so that a reformatted echo (`1.3800138001e30`) is caught too.
const FRAGMENT: &str = "3800138";

fn poisons() -> Vec<Value> {
    vec![
        json!(format!("a\"{MARKER}")),
        json!(format!("`{MARKER}`")),
        json!(format!("\\{MARKER}\\u0000")),
        json!(format!("line\n{MARKER}\r\n")),
        json!(format!("{MARKER}\"}}, \"x\": \"")),
        json!(format!("'{MARKER}' `a` \"b\"")),
        json!(MARKER),
        json!(format!("2021-10-01{MARKER}")),
        json!(format!("00000000-0000-0000-0000-{MARKER}")),
        json!(13_800_138_001u64),
        json!(-13_800_138_001i64),
        json!(13_800_138_001.5f64),
        json!(1.380_013_800_1e30f64),
        json!([MARKER, 13_800_138_001u64]),
        json!({ MARKER: MARKER }),
        json!({ format!("a\"{MARKER}"): 1 }),
        json!(true),
        json!(null),
    ]
}

fn unknown_keys() -> Vec<String> {
    vec![
        MARKER.to_owned(),
        format!("a`{MARKER}`"),
        format!("x\"{MARKER}\\"),
        format!("n\n{MARKER}"),
    ]
}

struct Gen<'a> {
    root: &'a Value,
    /// Which branch of each union to take.
    branch: usize,
}

impl<'a> Gen<'a> {
    fn resolve(&self, mut s: &'a Value) -> &'a Value {
        while let Some(r) = s.get("$ref").and_then(Value::as_str) {
            s = &self.root["$defs"][r.trim_start_matches("#/$defs/")];
        }
        s
    }

    /// A valid value for `schema`, with every optional property filled.
    fn sample(&self, schema: &'a Value) -> Value {
        let s = self.resolve(schema);
        for key in ["anyOf", "oneOf"] {
            if let Some(list) = s.get(key).and_then(Value::as_array) {
                let usable: Vec<&Value> = list
                    .iter()
                    .filter(|b| {
                        let b = self.resolve(b);
                        b.get("type") != Some(&json!("null"))
                            // Personal's sealed form is refused in commands.
                            && b.get("properties").and_then(|p| p.get("ciphertext")).is_none()
                    })
                    .collect();
                let pick = usable[self.branch.min(usable.len() - 1)];
                return self.sample(pick);
            }
        }
        if let Some(c) = s.get("const") {
            return c.clone();
        }
        if let Some(list) = s.get("enum").and_then(Value::as_array) {
            return list[0].clone();
        }
        let ty = match s.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .unwrap()
                .to_owned(),
            _ => panic!("no type in {s}"),
        };
        match ty.as_str() {
            "string" => match (s.get("format").and_then(Value::as_str), s.get("pattern")) {
                (Some("date"), _) => json!("2021-10-01"),
                (Some("uuid"), _) => json!("00000000-0000-0000-0000-000000000001"),
                (_, Some(_)) => json!("330100"),
                _ => json!("文本"),
            },
            "integer" => json!(s.get("minimum").and_then(Value::as_i64).unwrap_or(0).max(1)),
            "boolean" => json!(false),
            "array" => json!([self.sample(&s["items"])]),
            "object" => {
                let mut m = Map::new();
                if let Some(props) = s.get("properties").and_then(Value::as_object) {
                    for (k, p) in props {
                        m.insert(k.clone(), self.sample(p));
                    }
                }
                Value::Object(m)
            }
            other => panic!("type {other}"),
        }
    }
}

/// Every place in `value` (JSON pointer segments), objects and arrays included.
fn places(value: &Value, at: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(at.clone());
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                let mut next = at.clone();
                next.push(k.clone());
                places(v, next, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let mut next = at.clone();
                next.push(i.to_string());
                places(v, next, out);
            }
        }
        _ => {}
    }
}

fn at_mut<'v>(value: &'v mut Value, path: &[String]) -> &'v mut Value {
    path.iter().fold(value, |v, seg| match v {
        Value::Object(m) => m.get_mut(seg).unwrap(),
        Value::Array(a) => &mut a[seg.parse::<usize>().unwrap()],
        _ => unreachable!(),
    })
}

fn assert_clean(name: &str, what: &str, err: &CommandParseError) {
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains(MARKER) && !text.contains(FRAGMENT),
        "{name}, {what}: the error echoes what was sent: {text}"
    );
}

/// Hardening #3: no error for any poisoned field or invented key of any command carries the
/// marker, and every field an error names is one the command defines.
#[test]
fn no_parse_error_of_any_command_echoes_a_value_or_an_unknown_key() {
    let schemas = command_schemas();
    assert_eq!(schemas.len(), COMMAND_NAMES.len());
    let mut errors = 0;
    for (name, schema) in &schemas {
        let root = schema.as_value();
        for branch in 0..3 {
            let base = Gen { root, branch }.sample(root);
            Command::parse(name, base.clone())
                .unwrap_or_else(|e| panic!("{name}: the generated body is refused: {e}\n{base}"));
            let mut all = Vec::new();
            places(&base, Vec::new(), &mut all);
            for place in &all {
                for poison in poisons() {
                    let mut body = base.clone();
                    *at_mut(&mut body, place) = poison.clone();
                    if let Err(e) = Command::parse(name, body) {
                        errors += 1;
                        assert_clean(name, &format!("{place:?} = {poison}"), &e);
                    }
                }
                if let Value::Object(_) = at_mut(&mut base.clone(), place) {
                    for key in unknown_keys() {
                        let mut body = base.clone();
                        let Value::Object(m) = at_mut(&mut body, place) else {
                            unreachable!()
                        };
                        m.insert(key.clone(), json!(MARKER));
                        let err = Command::parse(name, body).expect_err(&format!(
                            "{name}: a key the command does not define is refused at {place:?}"
                        ));
                        errors += 1;
                        assert_clean(name, &format!("{place:?} + key {key:?}"), &err);
                        let CommandParseError::InvalidBody { field, message } = &err else {
                            panic!("{err}")
                        };
                        // The error is reported at the object that holds the key.
                        let expected =
                            place
                                .iter()
                                .fold(String::new(), |p, seg| match seg.parse::<usize>() {
                                    Ok(i) => format!("{p}[{i}]"),
                                    Err(_) if p.is_empty() => seg.clone(),
                                    Err(_) => format!("{p}.{seg}"),
                                });
                        let expected = if expected.is_empty() {
                            ".".into()
                        } else {
                            expected
                        };
                        assert_eq!(field, &expected, "{name}: {message}");
                        assert!(message.contains("does not define"), "{message}");
                    }
                }
            }
        }
    }
    assert!(errors > 5_000, "only {errors} errors were produced");
}

fn field_and_message(name: &str, body: Value) -> (String, String) {
    match Command::parse(name, body) {
        Err(CommandParseError::InvalidBody { field, message }) => (field, message),
        other => panic!("{name}: expected an invalid body, got {other:?}"),
    }
}

fn visit(extra: Value) -> Value {
    let mut body = json!({
        "visit_id": "00000000-0000-0000-0000-000000000005",
        "model_worker_id": "00000000-0000-0000-0000-000000000001",
        "pairing_id": "00000000-0000-0000-0000-000000000004",
        "visited_on": "2021-10-13",
        "region_code": "330100",
        "participants": [{ "who": { "kind": "director",
            "director_id": "00000000-0000-0000-0000-000000000002" }, "role": "lead" }],
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// Hardening #3: the issue's own example, `"honour_year": "a\"13800138001"`, and each kind
/// of error: the message is rebuilt from the schema (expected type, bounds, allowed values).
#[test]
fn each_kind_of_error_is_described_from_the_schema() {
    let worker = |field: &str, value: Value| {
        let mut body = json!({ "model_worker_id": "00000000-0000-0000-0000-000000000001",
            "honour": "other", "region_code": "330100", "name": "王" });
        body[field] = value;
        field_and_message("RegisterModelWorker", body)
    };
    assert_eq!(
        worker("honour_year", json!("a\"13800138001")),
        (
            "honour_year".into(),
            "wrong type: expected an integer from 0 to 65535 or null".into()
        )
    );
    assert_eq!(
        worker("honour_year", json!(70_000)),
        (
            "honour_year".into(),
            "invalid value: expected an integer from 0 to 65535 or null".into()
        )
    );
    assert_eq!(
        worker("honour", json!("`13800138001`")).1,
        "invalid value: expected one of: national_model_worker, national_advanced_worker, \
         provincial_model_worker, provincial_advanced_worker, other"
    );
    assert_eq!(
        worker("model_worker_id", json!("Z3800138001")).1,
        "invalid value: expected a UUID"
    );
    assert_eq!(
        worker("name", json!(13_800_138_001u64)).1,
        "wrong type: expected a string"
    );
    assert_eq!(
        worker("region_code", json!("110101")).1,
        "region code is not a known Zhejiang division"
    );
    // A missing field is named at its place; an unknown key is reported at its object.
    assert_eq!(
        field_and_message(
            "RecordVisit",
            visit(json!({ "participants": [{ "who": { "kind": "director" }, "role": "lead" }] }))
        ),
        (
            "participants[0].who.director_id".into(),
            "missing field: this command requires it".into()
        )
    );
    assert_eq!(
        field_and_message(
            "RecordVisit",
            visit(
                json!({ "participants": [{ "who": { "kind": "x\"13800138001" }, "role": "lead" }] })
            )
        ),
        (
            "participants[0].who.kind".into(),
            "invalid value: expected one of: director, named, unnamed".into()
        )
    );
    assert_eq!(
        field_and_message(
            "RecordVisit",
            visit(json!({ "gifts": [{ "kind": "cash", "amount_fen": -13_800_138_001i64 }] }))
        ),
        (
            "gifts[0].amount_fen".into(),
            "amount must not be negative".into()
        )
    );
    assert_eq!(
        field_and_message("RecordVisit", visit(json!({ "visited_on": "2021-02-30" }))),
        (
            "visited_on".into(),
            "invalid value: expected a date (YYYY-MM-DD)".into()
        )
    );
    let (field, message) = field_and_message(
        "RecordVisit",
        visit(json!({ "findings": { "health": "好", "张三 13800138001": "x" } })),
    );
    assert_eq!(field, "findings");
    assert!(message.contains("does not define"), "{message}");
    assert_eq!(field_and_message("RecordDeath", json!([MARKER])).0, ".");
    // A struct in array form is refused, so its strings cannot escape the text rule.
    let (field, message) = field_and_message(
        "RecordVisit",
        visit(json!({ "gifts": [["goods", 100, "米\u{0}"]] })),
    );
    assert_eq!(field, "gifts[0]");
    assert_eq!(message, "wrong type: expected an object");
    // An error inside a participant is named at its own field, not at the participant.
    assert_eq!(
        field_and_message(
            "RecordVisit",
            visit(json!({ "participants": [{ "who": { "kind": "director",
                "director_id": "`13800138001`" }, "role": "lead" }] }))
        ),
        (
            "participants[0].who.director_id".into(),
            "invalid value: expected a UUID".into()
        )
    );
    // An internally tagged unit variant does not ignore a key it does not define.
    let (field, message) = field_and_message(
        "RecordVisit",
        visit(json!({ "participants": [{ "who": { "kind": "unnamed",
            "director_id": "00000000-0000-0000-0000-000000000002" }, "role": "lead" }] })),
    );
    assert_eq!(field, "participants[0].who");
    assert!(message.contains("does not define"), "{message}");
}

/// Hardening #1: a NUL (the issue's `"团\u0000体"`) or any other character no person types is
/// refused in every text field, plain strings and personal values, nested ones included; the
/// error names the field.
#[test]
fn text_no_person_types_is_refused_in_every_text_field() {
    let body = json!({ "body_id": "00000000-0000-0000-0000-000000000003",
        "kind": "association", "name": "团\u{0}体" });
    let (field, message) = field_and_message("RegisterBody", body);
    assert_eq!(field, "name");
    assert!(message.contains("no person types"), "{message}");
    for (extra, path) in [
        (
            json!({ "gifts": [{ "kind": "goods", "description": "米\u{7}" }] }),
            "gifts[0].description",
        ),
        (
            json!({ "benefit_checks": [{ "benefit": "待遇\u{FFFE}", "status": "unknown" }] }),
            "benefit_checks[0].benefit",
        ),
        (
            json!({ "participants": [{ "who": { "kind": "named", "person_id":
                "00000000-0000-0000-0000-000000000009", "name": "李\u{202E}四" }, "role": "lead",
                "office": "主席" }] }),
            "participants[0].who.name",
        ),
        (
            json!({ "participants": [{ "who": { "kind": "unnamed" }, "role": "lead",
                "office": "主席\u{85}" }] }),
            "participants[0].office",
        ),
        (
            json!({ "findings": { "family": "子女\u{FEFF}在外地" } }),
            "findings.family",
        ),
        (json!({ "place": "西湖区\n文三路" }), "place"),
    ] {
        let (field, _) = field_and_message("RecordVisit", visit(extra.clone()));
        assert_eq!(field, path, "{extra}");
    }
    // Notes keep their paragraphs and tabs.
    Command::parse(
        "RecordVisit",
        visit(json!({ "findings": { "health": "血压偏高。\r\n\t按时服药。" } })),
    )
    .expect("a note may span lines");
    let (field, message) = field_and_message(
        "RecordVisit",
        visit(json!({ "findings": { "health": "血压\u{0}偏高" } })),
    );
    assert_eq!(field, "findings.health");
    assert!(message.contains("no person types"), "{message}");
    // Names are one line.
    let (field, message) = field_and_message(
        "AppointDirector",
        json!({ "director_id": "00000000-0000-0000-0000-000000000002",
            "body_id": "00000000-0000-0000-0000-000000000003", "role": "director",
            "term": { "from": "2021-01-01" }, "name": "冯\t亚丽" }),
    );
    assert_eq!(field, "name");
    assert!(message.contains("single line"), "{message}");
}
