//! The values that cross the store's boundary: what an append asks for, what it returns, and
//! what a read yields.
//!
//! Stream ids and event types are validated on the way in, so that everything stored can be
//! encoded unambiguously into a leaf (see [`crate::leaf`]) and filtered by category.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::StoreError;

/// Longest stream id or event type we accept, in bytes. Long enough for `category-uuid`
/// composites, short enough to keep index pages dense.
const MAX_NAME_LEN: usize = 200;

/// The id of a stream: `category-rest`, where the category is everything before the first `-`
/// (`pairing-0192...` has category `pairing`). A stream id without `-` is its own category.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId(String);

impl StreamId {
    /// Parses a stream id: non-empty, at most 200 bytes, printable (no control characters and
    /// no whitespace), because ids appear in URLs, logs and the leaf encoding.
    pub fn new(id: impl Into<String>) -> Result<Self, StoreError> {
        let id = id.into();
        validate_name(&id).map_err(|why| StoreError::InvalidStreamId(why.to_owned()))?;
        Ok(Self(id))
    }

    /// The stream's category: the part before the first `-`.
    pub fn category(&self) -> &str {
        category_of(&self.0)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The category of a stream id string (the part before the first `-`).
pub fn category_of(stream_id: &str) -> &str {
    stream_id.split_once('-').map_or(stream_id, |(c, _)| c)
}

fn validate_name(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > MAX_NAME_LEN {
        return Err("must be at most 200 bytes");
    }
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain whitespace or control characters");
    }
    Ok(())
}

impl TryFrom<String> for StreamId {
    type Error = StoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<StreamId> for String {
    fn from(value: StreamId) -> Self {
        value.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the writer expects a stream's version to be before the append. A stream's version is
/// the number of events in it: 0 for a stream that does not exist, 1 after its first event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "version")]
pub enum ExpectedVersion {
    /// No check at all.
    Any,
    /// The stream must not exist yet (version 0).
    NoStream,
    /// The stream must already exist (version ≥ 1).
    Exists,
    /// The stream must be at exactly this version (`Exact(0)` is the same as `NoStream`).
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream currently at `actual` satisfies this expectation.
    pub fn admits(self, actual: u64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == 0,
            Self::Exists => actual > 0,
            Self::Exact(n) => actual == n,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any version"),
            Self::NoStream => f.write_str("no stream"),
            Self::Exists => f.write_str("an existing stream"),
            Self::Exact(n) => write!(f, "version {n}"),
        }
    }
}

/// An event to append. The payload is JSON text; the store keeps these exact bytes and the leaf
/// hash commits to them, so whoever serialises the payload decides its canonical form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// The event's id, unique in the whole log: an append repeating a stored id is refused.
    pub event_id: Uuid,
    /// The event's type name (`VisitRecorded`, ...): at most 200 bytes, no whitespace or
    /// control characters.
    pub event_type: String,
    /// Version of the payload's shape for this event type, from 1; readers upcast older ones.
    pub schema_version: u32,
    /// The payload: JSON text, stored and hashed byte for byte as given.
    pub data: String,
    /// The business date the event is about (the visit date, in Asia/Shanghai), if any.
    pub business_date: Option<NaiveDate>,
}

impl NewEvent {
    /// An event whose payload is `data` serialised with serde_json, with a fresh UUIDv7 id
    /// (time-ordered, so ids of one append sort like their positions).
    pub fn json<T: Serialize + ?Sized>(
        event_type: impl Into<String>,
        schema_version: u32,
        data: &T,
    ) -> Result<Self, StoreError> {
        let data = serde_json::to_string(data)
            .map_err(|e| StoreError::InvalidAppend(format!("payload does not serialise: {e}")))?;
        Ok(Self {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version,
            data,
            business_date: None,
        })
    }

    /// The same event with a business date.
    pub fn on(mut self, date: NaiveDate) -> Self {
        self.business_date = Some(date);
        self
    }

    /// The same event with a caller-chosen id (for idempotent producers).
    pub fn with_id(mut self, event_id: Uuid) -> Self {
        self.event_id = event_id;
        self
    }
}

/// Who caused an append and why. It applies to every event of the append.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Who did it: a director's or token's id; the nil UUID for the server itself (role `system`).
    pub actor_id: String,
    /// In which role they acted (`admin`, `director`, `auditor`, `system`, ...).
    pub actor_role: String,
    /// The command that produced the append; a second append with the same id writes nothing
    /// and returns the first one's result.
    pub command_id: Option<Uuid>,
    /// The id shared by everything one user action set off.
    pub correlation_id: Option<Uuid>,
    /// The event or command that directly caused this one.
    pub causation_id: Option<Uuid>,
}

impl Metadata {
    /// Metadata for an actor with no command, correlation or causation id.
    pub fn actor(actor_id: impl Into<String>, actor_role: impl Into<String>) -> Self {
        Self {
            actor_id: actor_id.into(),
            actor_role: actor_role.into(),
            ..Self::default()
        }
    }

    /// The same metadata carrying a command id (which makes the append idempotent).
    pub fn command(mut self, command_id: Uuid) -> Self {
        self.command_id = Some(command_id);
        self
    }
}

/// The events for one stream within an append, with that stream's expectation. An entry with
/// no events only checks the expectation: a guard on a stream the decision read but does not
/// change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamAppend {
    /// The stream to append to.
    pub stream: StreamId,
    /// What the stream's version must be before the append.
    pub expected: ExpectedVersion,
    /// The events to append to it, in order; empty for a guard.
    pub events: Vec<NewEvent>,
}

/// One atomic append: every stream's expectation holds and all events are written, or nothing
/// is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendRequest {
    /// The streams the append touches, each at most once; at least one.
    pub streams: Vec<StreamAppend>,
    /// Who caused the append and why, recorded with each of its events.
    pub metadata: Metadata,
}

impl AppendRequest {
    /// An append to a single stream.
    pub fn single(
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        metadata: Metadata,
    ) -> Self {
        Self {
            streams: vec![StreamAppend {
                stream,
                expected,
                events,
            }],
            metadata,
        }
    }

    /// Checks what can be checked without the database: stream ids unique within the append,
    /// event types well-formed, payloads valid JSON, event ids unique within the append.
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        if self.streams.is_empty() {
            return Err(StoreError::InvalidAppend(
                "an append names no stream".into(),
            ));
        }
        let mut seen_streams = std::collections::HashSet::new();
        let mut seen_ids = std::collections::HashSet::new();
        for s in &self.streams {
            if !seen_streams.insert(&s.stream) {
                return Err(StoreError::InvalidAppend(format!(
                    "stream {} appears twice in one append",
                    s.stream
                )));
            }
            for e in &s.events {
                validate_name(&e.event_type)
                    .map_err(|why| StoreError::InvalidAppend(format!("event type {why}")))?;
                if e.schema_version == 0 {
                    return Err(StoreError::InvalidAppend(
                        "schema version starts at 1".into(),
                    ));
                }
                if serde_json::from_str::<serde::de::IgnoredAny>(&e.data).is_err() {
                    return Err(StoreError::InvalidAppend(format!(
                        "payload of event {} is not valid JSON",
                        e.event_id
                    )));
                }
                if !seen_ids.insert(e.event_id) {
                    return Err(StoreError::InvalidAppend(format!(
                        "event id {} appears twice in one append",
                        e.event_id
                    )));
                }
            }
        }
        for (what, value) in [
            ("actor id", &self.metadata.actor_id),
            ("actor role", &self.metadata.actor_role),
        ] {
            validate_name(value)
                .map_err(|why| StoreError::InvalidAppend(format!("metadata {what} {why}")))?;
        }
        Ok(())
    }

    /// Number of events in the append.
    pub fn event_count(&self) -> usize {
        self.streams.iter().map(|s| s.events.len()).sum()
    }
}

/// Reads an `AppendResult` stored in the idempotency ledger for `command_id`.
pub(crate) fn stored_result(command_id: Uuid, text: &str) -> Result<AppendResult, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        position: 0,
        reason: format!("stored result of command {command_id} does not parse: {e}"),
    })
}

/// Where one stream stands after an append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamResult {
    /// The stream's id.
    pub stream_id: String,
    /// The stream's version after the append (unchanged for a guard-only entry).
    pub version: u64,
}

/// Where one written event landed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenEvent {
    /// The event's id.
    pub event_id: Uuid,
    /// The stream it was appended to.
    pub stream_id: String,
    /// Its version within that stream (1 for a stream's first event).
    pub stream_version: u64,
    /// Its position in the global log (1-based, gapless, in commit order).
    pub position: u64,
}

/// The result of an append. A retry carrying the same command id gets the same value back, with
/// `deduplicated` set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendResult {
    /// Every stream of the append with its version after it, in the request's order.
    pub streams: Vec<StreamResult>,
    /// Where each event of the append landed, in position order.
    pub events: Vec<WrittenEvent>,
    /// Record time of every event of the append (UTC, microsecond precision).
    pub recorded_at: DateTime<Utc>,
    /// True when this result was stored by an earlier append with the same command id and
    /// nothing was written now.
    #[serde(skip)]
    pub deduplicated: bool,
}

impl AppendResult {
    /// Global position of the first event written, if any.
    pub fn first_position(&self) -> Option<u64> {
        self.events.first().map(|e| e.position)
    }

    /// Global position of the last event written, if any.
    pub fn last_position(&self) -> Option<u64> {
        self.events.last().map(|e| e.position)
    }

    /// The version of `stream` after the append.
    pub fn version_of(&self, stream: &StreamId) -> Option<u64> {
        self.streams
            .iter()
            .find(|s| s.stream_id == stream.as_str())
            .map(|s| s.version)
    }
}

/// An event as stored, with everything the leaf hash commits to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Position in the global log (1-based, gapless, in commit order).
    pub position: u64,
    /// The stream the event belongs to.
    pub stream_id: String,
    /// The event's version within its stream: 1 for the stream's first event, then 2, 3, ...
    pub stream_version: u64,
    /// The event's id, unique in the whole log.
    pub event_id: Uuid,
    /// The event's type name (`VisitRecorded`, ...).
    pub event_type: String,
    /// Version of the payload's shape as written, from 1 (not upcast).
    pub schema_version: u32,
    /// The payload's JSON text, byte for byte as appended.
    pub data: String,
    /// Who caused the event (see [`Metadata::actor_id`]).
    pub actor_id: String,
    /// The role they acted in (see [`Metadata::actor_role`]).
    pub actor_role: String,
    /// The command that produced the event, if any (see [`Metadata::command_id`]).
    pub command_id: Option<Uuid>,
    /// The id shared by everything one user action set off, if any.
    pub correlation_id: Option<Uuid>,
    /// The event or command that directly caused this one, if any.
    pub causation_id: Option<Uuid>,
    /// The calendar date the event is about (Asia/Shanghai for caretrail's events), if any.
    pub business_date: Option<NaiveDate>,
    /// When the event was stored (UTC, microsecond precision, never decreasing along positions).
    pub recorded_at: DateTime<Utc>,
    /// SHA-256 of `0x00 || leaf encoding`, see [`crate::leaf`].
    #[serde(with = "hex_bytes")]
    pub leaf_hash: [u8; 32],
}

impl RecordedEvent {
    /// The stream's category.
    pub fn category(&self) -> &str {
        category_of(&self.stream_id)
    }

    /// Recomputes the leaf hash from the event's content; equal to `leaf_hash` unless the stored
    /// row was altered.
    pub fn recompute_leaf_hash(&self) -> [u8; 32] {
        crate::leaf::leaf_hash(&crate::leaf::LeafFields::from(self))
    }

    /// The payload parsed into `T`.
    pub fn data_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.data)
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&s, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

/// Which events a read or subscription wants. Empty lists mean "all".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    /// Only these event types.
    pub event_types: Vec<String>,
    /// Only streams of these categories.
    pub categories: Vec<String>,
}

impl EventFilter {
    /// Everything.
    pub fn all() -> Self {
        Self::default()
    }

    /// Whether the filter lets `event` through.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        (self.event_types.is_empty() || self.event_types.contains(&event.event_type))
            && (self.categories.is_empty() || self.categories.iter().any(|c| c == event.category()))
    }

    /// Whether the filter is a no-op.
    pub fn is_all(&self) -> bool {
        self.event_types.is_empty() && self.categories.is_empty()
    }
}

/// A page of the global log: events with `after < position <= up_to` that pass `filter`, in
/// position order, at most `limit` of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogQuery {
    /// Lower bound (exclusive): only events after this position; 0 reads from the start.
    pub after: u64,
    /// Upper bound (inclusive): an "as of position" read. `None` means the current head.
    pub up_to: Option<u64>,
    /// Which events to return.
    pub filter: EventFilter,
    /// Most events to return.
    pub limit: usize,
}

impl LogQuery {
    /// Everything after `after`, `limit` at a time.
    pub fn after(after: u64, limit: usize) -> Self {
        Self {
            after,
            up_to: None,
            filter: EventFilter::all(),
            limit,
        }
    }
}

/// The head of the log: its last position (0 when empty) and that event's record time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The last position (0 when the log is empty).
    pub position: u64,
    /// Record time of the event at `position` (`None` when the log is empty).
    pub recorded_at: Option<DateTime<Utc>>,
}

/// Truncates a timestamp to whole microseconds, the precision both backends store.
pub(crate) fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The inverse of [`to_micros`].
pub(crate) fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_is_the_part_before_the_first_dash() {
        assert_eq!(
            StreamId::new("pairing-123-4").unwrap().category(),
            "pairing"
        );
        assert_eq!(StreamId::new("solo").unwrap().category(), "solo");
    }

    #[test]
    fn stream_ids_with_whitespace_or_control_characters_are_refused() {
        for bad in ["", "a b", "a\u{1f}b", "a\nb"] {
            assert!(matches!(
                StreamId::new(bad),
                Err(StoreError::InvalidStreamId(_))
            ));
        }
        assert!(StreamId::new("x".repeat(201)).is_err());
    }

    #[test]
    fn expectations_admit_exactly_the_versions_they_name() {
        assert!(ExpectedVersion::NoStream.admits(0));
        assert!(!ExpectedVersion::NoStream.admits(1));
        assert!(ExpectedVersion::Exists.admits(12));
        assert!(!ExpectedVersion::Exists.admits(0));
        assert!(ExpectedVersion::Exact(10).admits(10));
        assert!(!ExpectedVersion::Exact(10).admits(9));
        assert!(ExpectedVersion::Any.admits(0));
    }
}
