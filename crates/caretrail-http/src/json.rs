//! Request bodies as JSON, strictly: an object that holds the same key twice is refused.
//!
//! `serde_json` keeps the last of two equal keys. Parsers disagree on that (some keep the
//! first, some refuse), so a body such as `{"amount_fen": 100, "amount_fen": 100000}` can mean
//! one thing to a proxy, a log or a reviewer's tool and another to caretrail. A care record
//! that an auditor relies on must mean one thing, so such a body is refused before anything
//! reads it. The error gives the position, never the key: keys are what the client sent.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Why a body is not acceptable JSON.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// Not JSON at all.
    #[error("the body is not valid JSON (line {line}, column {column})")]
    Syntax {
        /// 1-based line of the fault.
        line: usize,
        /// 1-based column of the fault.
        column: usize,
    },
    /// An object holds one key twice.
    #[error("an object in the body holds the same key twice (line {line}, column {column})")]
    DuplicateKey {
        /// 1-based line of the second occurrence's value.
        line: usize,
        /// 1-based column of the second occurrence's value.
        column: usize,
    },
}

impl From<JsonError> for ApiError {
    fn from(e: JsonError) -> Self {
        let code = match e {
            JsonError::Syntax { .. } => "malformed_json",
            JsonError::DuplicateKey { .. } => "duplicate_json_key",
        };
        ApiError::bad_request(code, e.to_string())
    }
}

/// The marker `serde_json` carries from [`StrictVisitor`] to [`parse`] in a custom error.
const DUPLICATE: &str = "caretrail: duplicate key";

/// Parses `bytes` as one JSON value, refusing duplicate keys at any depth.
pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    serde_json::from_slice::<Strict>(bytes)
        .map(|s| s.0)
        .map_err(|e| {
            let (line, column) = (e.line(), e.column());
            if e.to_string().starts_with(DUPLICATE) {
                JsonError::DuplicateKey { line, column }
            } else {
                JsonError::Syntax { line, column }
            }
        })
}

/// A JSON value read with [`StrictVisitor`].
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

/// Builds a [`Value`] as `serde_json` does, except that a repeated key is an error. Nesting
/// depth stays bounded by `serde_json`'s own recursion limit, which applies to any visitor.
struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON text holds no NaN or infinity, so this is always a number.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if out.contains_key(&key) {
                return Err(de::Error::custom(DUPLICATE));
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Parses a request body strictly ([`parse`]) into `T`: a body that is not JSON is 400, one
/// that does not fit `T` is 422 naming the field (from `T`'s own names), never a value sent.
pub fn parse_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = parse(bytes)?;
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let field = e.path().to_string();
        let message = match e.inner().to_string() {
            m if m.starts_with("missing field") => "is required".to_owned(),
            m if m.starts_with("unknown field") => "is not a field of this request".to_owned(),
            _ => "has the wrong type or shape".to_owned(),
        };
        ApiError::validation(
            "the body is not valid here",
            vec![crate::error::FieldError { field, message }],
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_serde_json_reads_is_read_the_same() {
        for text in [
            r#"{"a": 1, "b": [true, null, -3, 1.5, "x", {"c": {}}], "d": 18446744073709551615}"#,
            "[]",
            "\"文字\"",
            "-9223372036854775808",
            "1e400",
        ] {
            let strict = parse(text.as_bytes());
            let plain = serde_json::from_str::<Value>(text);
            match (strict, plain) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
                (Err(JsonError::Syntax { .. }), Err(_)) => {}
                (a, b) => panic!("{text}: {a:?} / {b:?}"),
            }
        }
    }

    #[test]
    fn a_repeated_key_is_refused_at_any_depth_and_the_key_is_not_named() {
        for text in [
            r#"{"amount_fen": 100, "amount_fen": 100000}"#,
            r#"{"a": {"b": 1, "b": 1}}"#,
            r#"[{"x": 1}, {"x": 1, "y": 2, "x": 3}]"#,
        ] {
            let err = parse(text.as_bytes()).unwrap_err();
            assert!(
                matches!(err, JsonError::DuplicateKey { .. }),
                "{text}: {err:?}"
            );
            let shown = err.to_string();
            assert!(!shown.contains("amount") && !shown.contains('"'), "{shown}");
        }
        // Equal keys in different objects are fine.
        assert_eq!(
            parse(br#"[{"x": 1}, {"x": 2}]"#).unwrap(),
            json!([{ "x": 1 }, { "x": 2 }])
        );
    }

    #[test]
    fn syntax_errors_and_deep_nesting_are_errors_not_panics() {
        assert!(matches!(
            parse(b"{\"a\": }"),
            Err(JsonError::Syntax { line: 1, .. })
        ));
        let deep = "[".repeat(100_000);
        assert!(matches!(
            parse(deep.as_bytes()),
            Err(JsonError::Syntax { .. })
        ));
    }
}
