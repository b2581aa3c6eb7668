//! From a request body to a command, with errors that cannot carry what the client sent.
//!
//! A body may hold personal data anywhere (a phone number typed into the wrong field, a name
//! sent as a key), and serde's messages quote what they were given: `invalid type: string
//! "a\"13800138001"`, ``unknown field `张三` ``. Redacting quoted parts of such text is a
//! heuristic that a quote or a backtick inside the value defeats, so nothing of serde's text
//! reaches the client here. An error is reduced to its *kind* (missing field, unknown field,
//! wrong type, invalid value) and its *path*, and the message is rebuilt from fixed strings
//! and from the command's JSON Schema (the same one published in `schemas/` and the OpenAPI
//! document): the expected type, format, bounds or allowed values at that path.
//!
//! The path is rebuilt from the schema too: each object key of serde's path is kept only while
//! the schema defines it at that place, so a key the client invented (an unknown field, whose
//! error is reported at the object that holds it) never appears in `field`. Array indexes are
//! kept (`gifts[0].amount_fen`): they are numbers, not text.
//!
//! Once a body has deserialized, a walk over it guided by the schema checks every string with
//! the text rule of [`crate::text`], so every text field of every command, nested ones included
//! and fields added later, is covered without naming them. Free-text notes (the personal
//! fields listed in [`NOTE_FIELDS`]) may span lines; every other field must be one line. The
//! same walk refuses what serde's derive lets through: an object key the schema does not
//! define (an internally tagged unit variant ignores unknown keys) and an array where the
//! schema has an object (a derived struct also reads from a sequence).

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

use crate::command::{CommandParseError, command_schemas};
use crate::money::MoneyError;
use crate::region::RegionError;
use crate::text::{self, TextKind};

/// Personal fields that hold free text (notes, reasons, findings) and so may hold line breaks
/// and tabs. Any other text field, including one added later, must be a single line.
pub const NOTE_FIELDS: &[&str] = &[
    "note",
    "reason",
    "summary",
    "description",
    "override_reason",
    "adhoc_reason",
    "living",
    "health",
    "family",
];

/// Each command's JSON Schema as a JSON value, built once.
static SCHEMAS: LazyLock<HashMap<&'static str, Value>> = LazyLock::new(|| {
    command_schemas()
        .into_iter()
        .map(|(name, schema)| (name, schema.to_value()))
        .collect()
});

/// Deserializes the body of the command `name` into `T`, then walks it with the schema
/// (text rule, undefined keys, arrays in place of objects).
pub(crate) fn body<T: DeserializeOwned>(name: &str, body: Value) -> Result<T, CommandParseError> {
    let doc = Doc::of(name);
    // Deserialized from a reference: the body is walked afterwards.
    let parsed = serde_path_to_error::deserialize::<_, T>(&body);
    match parsed {
        Ok(command) => {
            if let Some(doc) = doc {
                let mut path = String::new();
                doc.check_body(doc.root, &body, &mut path, None)?;
            }
            Ok(command)
        }
        Err(e) => Err(describe_error(doc, e.path(), &e.inner().to_string())),
    }
}

/// What went wrong, without any of the text serde was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A required field is absent; the name is one the schema defines at that place.
    Missing,
    /// The object has a key the schema does not define.
    UnknownField,
    /// A value of the wrong JSON type.
    WrongType,
    /// A value of the right type that is not allowed (a bad date, uuid, enum variant, number
    /// out of range).
    InvalidValue,
    /// One of this crate's own refusals, whose message is a constant of this crate.
    Own(&'static str),
}

/// This crate's own value errors, by their exact message: a message is passed on only when it
/// equals one of these, all written by this crate, so nothing a client sent can ride along.
static OWN_MESSAGES: LazyLock<Vec<String>> = LazyLock::new(|| {
    [
        MoneyError::Negative.to_string(),
        MoneyError::Overflow.to_string(),
        MoneyError::NotInteger.to_string(),
        RegionError::Malformed.to_string(),
        RegionError::Unknown.to_string(),
    ]
    .into()
});

fn own_message(message: &str) -> Option<&'static str> {
    OWN_MESSAGES
        .iter()
        .find(|m| *m == message)
        .map(String::as_str)
}

fn classify(message: &str) -> Kind {
    if let Some(own) = own_message(message) {
        return Kind::Own(own);
    }
    if message.starts_with("missing field `") {
        Kind::Missing
    } else if message.starts_with("unknown field `") {
        Kind::UnknownField
    } else if message.starts_with("invalid type: ")
        || message == crate::personal::PERSONAL_WRONG_TYPE
    {
        Kind::WrongType
    } else {
        // `invalid value: ...`, `unknown variant ...`, `invalid length ...`, and the custom
        // errors of foreign types (uuid and chrono quote the offending character).
        Kind::InvalidValue
    }
}

/// The name serde reports as missing, when the schema defines it at `schema`: the derive puts
/// the field's name from the code between the first pair of backticks, and only a name the
/// schema knows is ever used.
fn missing_name<'s>(doc: &Doc<'s>, schema: &'s Value, message: &str) -> Option<&'s str> {
    let rest = message.strip_prefix("missing field `")?;
    let name = &rest[..rest.find('`')?];
    doc.property_key(schema, name)
}

fn describe_error(
    doc: Option<Doc<'_>>,
    path: &serde_path_to_error::Path,
    message: &str,
) -> CommandParseError {
    let kind = classify(message);
    let Some(doc) = doc else {
        return CommandParseError::InvalidBody {
            field: ".".into(),
            message: "the body does not match the command".into(),
        };
    };
    let (mut field, place) = doc.follow(path);
    let expected = doc.expected(place);
    let holder = match place {
        Place::Schema(s) => Some(s),
        Place::Tag(..) => None,
    };
    let message = match kind {
        Kind::Missing => match holder.and_then(|s| missing_name(&doc, s, message)) {
            Some(name) => {
                field = join(&field, name);
                "missing field: this command requires it".to_owned()
            }
            None => "missing field: a field this command requires is absent".to_owned(),
        },
        Kind::UnknownField => UNKNOWN_FIELD.to_owned(),
        Kind::WrongType => wrong_type(&expected),
        Kind::InvalidValue => format!("invalid value: expected {expected}"),
        Kind::Own(text) => text.to_owned(),
    };
    CommandParseError::InvalidBody {
        field: if field.is_empty() { ".".into() } else { field },
        message,
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A place in a command's schema: a schema, or the tag of a union (whose branches each allow
/// one value of it).
#[derive(Clone, Copy)]
enum Place<'s> {
    Schema(&'s Value),
    Tag(&'s Value, &'s str),
}

/// One command's schema document, for following paths and describing what a place expects.
#[derive(Clone, Copy)]
struct Doc<'s> {
    root: &'s Value,
}

/// `$ref`s followed before giving up (the schemas nest a few levels; this bounds a cycle).
const MAX_REFS: usize = 32;

impl<'s> Doc<'s> {
    fn of(name: &str) -> Option<Doc<'static>> {
        SCHEMAS.get(name).map(|root| Doc { root })
    }

    /// `schema` with its `$ref`s followed (refs point into this document's `$defs`).
    fn resolve(&self, mut schema: &'s Value) -> &'s Value {
        for _ in 0..MAX_REFS {
            let Some(target) = schema.get("$ref").and_then(Value::as_str) else {
                break;
            };
            match target
                .strip_prefix("#/$defs/")
                .and_then(|def| self.root.get("$defs")?.get(def))
            {
                Some(next) => schema = next,
                None => break,
            }
        }
        schema
    }

    /// The alternatives a schema allows: its `anyOf`/`oneOf` branches (resolved), or itself.
    fn branches(&self, schema: &'s Value) -> Vec<&'s Value> {
        let schema = self.resolve(schema);
        let mut out = Vec::new();
        for key in ["anyOf", "oneOf"] {
            if let Some(list) = schema.get(key).and_then(Value::as_array) {
                for branch in list {
                    out.extend(self.branches(branch));
                }
            }
        }
        if out.is_empty() {
            out.push(schema);
        }
        out
    }

    /// The schema of property `key` of an object schema, in whichever branch defines it.
    fn property(&self, schema: &'s Value, key: &str) -> Option<&'s Value> {
        self.branches(schema)
            .into_iter()
            .find_map(|b| b.get("properties")?.get(key))
    }

    /// The schema's own spelling of property `key`, when it defines one.
    fn property_key(&self, schema: &'s Value, key: &str) -> Option<&'s str> {
        self.branches(schema).into_iter().find_map(|b| {
            b.get("properties")?
                .as_object()?
                .keys()
                .find(|k| *k == key)
                .map(String::as_str)
        })
    }

    /// The item schema of an array schema.
    fn items(&self, schema: &'s Value) -> Option<&'s Value> {
        self.branches(schema)
            .into_iter()
            .find_map(|b| b.get("items"))
    }

    /// Follows serde's path as far as the schema defines it: the rebuilt path (object keys
    /// the schema defines, array indexes) and what is expected at its end. A key the schema
    /// does not define ends the path there, so an invented key is never repeated back.
    fn follow(&self, path: &serde_path_to_error::Path) -> (String, Place<'s>) {
        let mut out = String::new();
        let mut place = Place::Schema(self.root);
        for segment in path {
            let Place::Schema(schema) = place else { break };
            let next = match segment {
                Segment::Seq { index } => self.items(schema).map(|items| {
                    out.push_str(&format!("[{index}]"));
                    Place::Schema(items)
                }),
                Segment::Map { key } | Segment::Enum { variant: key } => {
                    match (self.property_key(schema, key), self.property(schema, key)) {
                        (Some(name), Some(next)) => {
                            out = join(&out, name);
                            // A union's tag: each branch allows one value, the union all of them.
                            Some(if self.is_tag(schema, name) {
                                Place::Tag(schema, name)
                            } else {
                                Place::Schema(next)
                            })
                        }
                        _ => None,
                    }
                }
                Segment::Unknown => None,
            };
            match next {
                Some(next) => place = next,
                None => break,
            }
        }
        (out, place)
    }

    /// Whether `key` is the tag of the union `schema`: a constant in every branch.
    fn is_tag(&self, schema: &'s Value, key: &str) -> bool {
        let branches = self.branches(schema);
        branches.len() > 1 && shared_tag(&branches) == Some(key)
    }

    /// What is expected at a place, in words built from the schema alone.
    fn expected(&self, place: Place<'s>) -> String {
        match place {
            Place::Schema(schema) => self.describe(schema),
            Place::Tag(union, tag) => {
                let values = tag_values(&self.branches(union), tag);
                format!("one of: {}", values.join(", "))
            }
        }
    }

    /// Whether the schema is (or may be) a personal value.
    fn is_personal(&self, schema: &'s Value) -> bool {
        let mentions =
            |s: &Value| s.get("$ref").and_then(Value::as_str) == Some("#/$defs/Personal");
        mentions(schema)
            || ["anyOf", "oneOf"].iter().any(|k| {
                schema
                    .get(*k)
                    .and_then(Value::as_array)
                    .is_some_and(|list| list.iter().any(mentions))
            })
    }

    /// What the schema expects, in words built from the schema alone.
    fn describe(&self, schema: &'s Value) -> String {
        if self.is_personal(schema) {
            let nullable = self.branches(schema).iter().any(|b| is_null(b));
            return with_null("a string", nullable);
        }
        let branches = self.branches(schema);
        let nullable = branches.iter().any(|b| is_null(b) || allows_null(b));
        let branches: Vec<&Value> = branches.into_iter().filter(|b| !is_null(b)).collect();
        // Enumerations: every branch a constant (schemars writes enum variants as `const`s),
        // or one `enum` list.
        let consts: Vec<&str> = branches
            .iter()
            .filter_map(|b| b.get("const").and_then(Value::as_str))
            .collect();
        if !consts.is_empty() && consts.len() == branches.len() {
            return with_null(&format!("one of: {}", consts.join(", ")), nullable);
        }
        if let [only] = branches[..]
            && let Some(list) = only.get("enum").and_then(Value::as_array)
        {
            let names: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
            return with_null(&format!("one of: {}", names.join(", ")), nullable);
        }
        // Tagged unions: objects told apart by a constant property (`kind`).
        if branches.len() > 1
            && let Some(tag) = shared_tag(&branches)
        {
            let values = tag_values(&branches, tag);
            return with_null(
                &format!("an object whose {tag} is one of: {}", values.join(", ")),
                nullable,
            );
        }
        let mut words: Vec<String> = Vec::new();
        for b in branches {
            for w in describe_typed(b) {
                if !words.contains(&w) {
                    words.push(w);
                }
            }
        }
        if words.is_empty() {
            words.push("a value of another form".into());
        }
        with_null(&words.join(" or "), nullable)
    }

    /// Walks a body that deserialized, guided by the schema: every string must pass the text
    /// rule, every array must be where the schema has one, and every object key must be one
    /// the schema defines there. The last two close gaps of serde's derive: a struct also
    /// deserializes from an array (`[kind, amount, description]`, whose strings would escape
    /// the text rule), and an internally tagged unit variant ignores unknown keys.
    /// `path` is the rebuilt path of `value` and `key` the property name that holds it.
    fn check_body(
        &self,
        schema: &'s Value,
        value: &Value,
        path: &mut String,
        key: Option<&str>,
    ) -> Result<(), CommandParseError> {
        let invalid = |path: &str, message: String| CommandParseError::InvalidBody {
            field: if path.is_empty() {
                ".".into()
            } else {
                path.to_owned()
            },
            message,
        };
        match value {
            Value::String(s) => {
                let kind = match key {
                    Some(k) if NOTE_FIELDS.contains(&k) && self.is_personal(schema) => {
                        TextKind::Multiline
                    }
                    _ => TextKind::Line,
                };
                text::check(s, kind).map_err(|e| invalid(path, e.to_string()))
            }
            Value::Array(items) => {
                let Some(item_schema) = self.items(schema) else {
                    return Err(invalid(path, wrong_type(&self.describe(schema))));
                };
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    self.check_body(item_schema, item, path, key)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Object(map) => {
                let Some(object) = self.object_branch(schema, map) else {
                    return Err(invalid(path, wrong_type(&self.describe(schema))));
                };
                for (k, v) in map {
                    let (Some(name), Some(prop)) =
                        (self.property_key(object, k), self.property(object, k))
                    else {
                        return Err(invalid(path, UNKNOWN_FIELD.to_owned()));
                    };
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(name);
                    self.check_body(prop, v, path, Some(name))?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
        }
    }

    /// The object schema `value` is checked against: the only object branch, or, in a tagged
    /// union, the branch whose tag `value` holds.
    fn object_branch(
        &self,
        schema: &'s Value,
        value: &serde_json::Map<String, Value>,
    ) -> Option<&'s Value> {
        let objects: Vec<&Value> = self
            .branches(schema)
            .into_iter()
            .filter(|b| b.get("properties").is_some())
            .collect();
        if let [only] = objects[..] {
            return Some(only);
        }
        let tag = shared_tag(&objects)?;
        let wanted = value.get(tag)?;
        objects
            .into_iter()
            .find(|b| b.get("properties").and_then(|p| p.get(tag)?.get("const")) == Some(wanted))
    }
}

/// The message of a key the schema does not define at its object.
const UNKNOWN_FIELD: &str =
    "has a field this command does not define (misspelt or not allowed here)";

fn wrong_type(expected: &str) -> String {
    format!("wrong type: expected {expected}")
}

fn is_null(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

/// Whether a schema's `type` list allows null (`["integer", "null"]`).
fn allows_null(schema: &Value) -> bool {
    schema
        .get("type")
        .and_then(Value::as_array)
        .is_some_and(|types| types.iter().any(|t| t == "null"))
}

fn with_null(words: &str, nullable: bool) -> String {
    if nullable {
        format!("{words} or null")
    } else {
        words.to_owned()
    }
}

/// The one property every branch holds a constant in (a union's tag), if any.
fn shared_tag<'s>(branches: &[&'s Value]) -> Option<&'s str> {
    let first = branches.first()?.get("properties")?.as_object()?;
    first
        .iter()
        .filter(|(_, p)| p.get("const").is_some())
        .map(|(k, _)| k.as_str())
        .find(|tag| {
            branches.iter().all(|b| {
                b.get("properties")
                    .and_then(|p| p.get(*tag)?.get("const"))
                    .is_some()
            })
        })
}

/// The constant each branch of a union gives its tag.
fn tag_values<'s>(branches: &[&'s Value], tag: &str) -> Vec<&'s str> {
    branches
        .iter()
        .filter_map(|b| b.get("properties")?.get(tag)?.get("const")?.as_str())
        .collect()
}

/// Describes a schema by its `type` (one or a list), `format`, bounds and pattern.
fn describe_typed(schema: &Value) -> Vec<String> {
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    types
        .into_iter()
        .filter(|t| *t != "null")
        .map(|t| match t {
            "string" => match (
                schema.get("format").and_then(Value::as_str),
                schema.get("pattern").and_then(Value::as_str),
            ) {
                (Some("date"), _) => "a date (YYYY-MM-DD)".to_owned(),
                (Some("uuid"), _) => "a UUID".to_owned(),
                (Some("date-time"), _) => "a date and time (RFC 3339)".to_owned(),
                (Some(format), _) => format!("a string ({format})"),
                (None, Some(pattern)) => format!("a string matching {pattern}"),
                (None, None) => "a string".to_owned(),
            },
            "integer" => match (
                schema.get("minimum").and_then(Value::as_i64),
                schema.get("maximum").and_then(Value::as_u64),
            ) {
                (Some(min), Some(max)) => format!("an integer from {min} to {max}"),
                (Some(0), None) => "a non-negative integer".to_owned(),
                (Some(min), None) => format!("an integer of at least {min}"),
                _ => "an integer".to_owned(),
            },
            "number" => "a number".to_owned(),
            "boolean" => "true or false".to_owned(),
            "array" => "an array".to_owned(),
            "object" => "an object".to_owned(),
            other => format!("a value of type {other}"),
        })
        .collect()
}
