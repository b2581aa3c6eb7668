//! The canonical byte encoding of a stored event and its RFC 6962 leaf hash.
//!
//! Every stored event carries `leaf_hash = SHA-256(0x00 || encode(event))`. The encoding covers
//! the whole envelope and the payload, so changing any stored column of an event changes its
//! hash; the `0x00` prefix is RFC 6962's domain separation between leaves and interior nodes,
//! so these hashes are the leaves of the audit Merkle tree as they are.
//!
//! Encoding, version 1 (all integers big-endian; `str` = u32 byte length + UTF-8 bytes;
//! `opt<T>` = one byte 0 for absent, or 1 followed by `T`; `uuid` = its 16 bytes):
//!
//! | field            | type          |
//! |------------------|---------------|
//! | format version   | u8 = 1        |
//! | position         | u64           |
//! | stream id        | str           |
//! | stream version   | u64           |
//! | event id         | uuid          |
//! | event type       | str           |
//! | schema version   | u32           |
//! | business date    | opt<str> (`YYYY-MM-DD`) |
//! | recorded at      | i64 microseconds since 1970-01-01T00:00:00Z |
//! | actor id         | str           |
//! | actor role       | str           |
//! | command id       | opt<uuid>     |
//! | correlation id   | opt<uuid>     |
//! | causation id     | opt<uuid>     |
//! | data             | str (the payload's JSON text, byte for byte as stored) |
//!
//! The stream category is derived from the stream id and is therefore not encoded separately.

use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::types::RecordedEvent;

/// The version byte that opens every encoding produced by this module.
pub const LEAF_FORMAT_VERSION: u8 = 1;

/// Borrowed view of every field the leaf commits to.
#[derive(Clone, Copy, Debug)]
pub struct LeafFields<'a> {
    /// Position in the global log (1-based).
    pub position: u64,
    /// The stream the event belongs to.
    pub stream_id: &'a str,
    /// The event's version within its stream (1 for the stream's first event).
    pub stream_version: u64,
    /// The event's id (encoded as its 16 bytes).
    pub event_id: Uuid,
    /// The event's type name.
    pub event_type: &'a str,
    /// Version of the payload's shape as stored.
    pub schema_version: u32,
    /// The business date, if any (encoded as `YYYY-MM-DD` text).
    pub business_date: Option<NaiveDate>,
    /// Record time (encoded as whole microseconds since 1970-01-01T00:00:00Z).
    pub recorded_at: DateTime<Utc>,
    /// Who caused the event.
    pub actor_id: &'a str,
    /// The role they acted in.
    pub actor_role: &'a str,
    /// The command that produced the event, if any.
    pub command_id: Option<Uuid>,
    /// The id shared by everything one user action set off, if any.
    pub correlation_id: Option<Uuid>,
    /// The event or command that directly caused this one, if any.
    pub causation_id: Option<Uuid>,
    /// The payload's JSON text, byte for byte as stored.
    pub data: &'a str,
}

impl<'a> From<&'a RecordedEvent> for LeafFields<'a> {
    fn from(e: &'a RecordedEvent) -> Self {
        Self {
            position: e.position,
            stream_id: &e.stream_id,
            stream_version: e.stream_version,
            event_id: e.event_id,
            event_type: &e.event_type,
            schema_version: e.schema_version,
            business_date: e.business_date,
            recorded_at: e.recorded_at,
            actor_id: &e.actor_id,
            actor_role: &e.actor_role,
            command_id: e.command_id,
            correlation_id: e.correlation_id,
            causation_id: e.causation_id,
            data: &e.data,
        }
    }
}

/// Appends the canonical encoding of `f` to `out`.
pub fn encode_into(f: &LeafFields<'_>, out: &mut Vec<u8>) {
    fn put_str(out: &mut Vec<u8>, s: &str) {
        // Lengths above u32::MAX cannot occur: payloads that large are refused by SQLite and
        // PostgreSQL (1 GiB limits) long before.
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    fn put_opt_uuid(out: &mut Vec<u8>, u: Option<Uuid>) {
        match u {
            None => out.push(0),
            Some(u) => {
                out.push(1);
                out.extend_from_slice(u.as_bytes());
            }
        }
    }
    out.reserve(128 + f.stream_id.len() + f.event_type.len() + f.data.len());
    out.push(LEAF_FORMAT_VERSION);
    out.extend_from_slice(&f.position.to_be_bytes());
    put_str(out, f.stream_id);
    out.extend_from_slice(&f.stream_version.to_be_bytes());
    out.extend_from_slice(f.event_id.as_bytes());
    put_str(out, f.event_type);
    out.extend_from_slice(&f.schema_version.to_be_bytes());
    match f.business_date {
        None => out.push(0),
        Some(d) => {
            out.push(1);
            put_str(out, &d.format("%Y-%m-%d").to_string());
        }
    }
    out.extend_from_slice(&f.recorded_at.timestamp_micros().to_be_bytes());
    put_str(out, f.actor_id);
    put_str(out, f.actor_role);
    put_opt_uuid(out, f.command_id);
    put_opt_uuid(out, f.correlation_id);
    put_opt_uuid(out, f.causation_id);
    put_str(out, f.data);
}

/// The canonical encoding of `f` as a new vector.
pub fn encode(f: &LeafFields<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(f, &mut out);
    out
}

/// `SHA-256(0x00 || encode(f))`: the event's RFC 6962 leaf hash.
pub fn leaf_hash(f: &LeafFields<'_>) -> [u8; 32] {
    let mut buf = Vec::with_capacity(256);
    buf.push(0x00);
    encode_into(f, &mut buf);
    Sha256::digest(&buf).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LeafFields<'static> {
        LeafFields {
            position: 1,
            stream_id: "visit-1",
            stream_version: 1,
            event_id: Uuid::from_u128(0x0102),
            event_type: "VisitRecorded",
            schema_version: 2,
            business_date: NaiveDate::from_ymd_opt(2021, 10, 13),
            recorded_at: DateTime::from_timestamp_micros(1_634_000_000_000_001).unwrap(),
            actor_id: "admin",
            actor_role: "admin",
            command_id: Some(Uuid::from_u128(7)),
            correlation_id: None,
            causation_id: None,
            data: r#"{"a":1}"#,
        }
    }

    #[test]
    fn encoding_is_length_prefixed_and_starts_with_the_format_version() {
        let bytes = encode(&sample());
        assert_eq!(bytes[0], LEAF_FORMAT_VERSION);
        assert_eq!(&bytes[1..9], &1u64.to_be_bytes());
        assert_eq!(&bytes[9..13], &7u32.to_be_bytes());
        assert_eq!(&bytes[13..20], b"visit-1");
        assert!(bytes.ends_with(br#"{"a":1}"#));
    }

    #[test]
    fn every_field_changes_the_leaf_hash() {
        let base = leaf_hash(&sample());
        let mut variants = Vec::new();
        let mut f = sample();
        f.position = 2;
        variants.push(f);
        let mut f = sample();
        f.stream_id = "visit-2";
        variants.push(f);
        let mut f = sample();
        f.stream_version = 2;
        variants.push(f);
        let mut f = sample();
        f.event_id = Uuid::from_u128(3);
        variants.push(f);
        let mut f = sample();
        f.event_type = "VisitVoided";
        variants.push(f);
        let mut f = sample();
        f.schema_version = 1;
        variants.push(f);
        let mut f = sample();
        f.business_date = None;
        variants.push(f);
        let mut f = sample();
        f.recorded_at = DateTime::from_timestamp_micros(1).unwrap();
        variants.push(f);
        let mut f = sample();
        f.actor_id = "x";
        variants.push(f);
        let mut f = sample();
        f.actor_role = "x";
        variants.push(f);
        let mut f = sample();
        f.command_id = None;
        variants.push(f);
        let mut f = sample();
        f.correlation_id = Some(Uuid::nil());
        variants.push(f);
        let mut f = sample();
        f.causation_id = Some(Uuid::nil());
        variants.push(f);
        let mut f = sample();
        f.data = r#"{"a":2}"#;
        variants.push(f);
        for v in &variants {
            assert_ne!(leaf_hash(v), base, "{v:?}");
        }
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        // "ab" + "c" and "a" + "bc" must not collide: that is what the length prefixes are for.
        let mut a = sample();
        a.actor_id = "ab";
        a.actor_role = "c";
        let mut b = sample();
        b.actor_id = "a";
        b.actor_role = "bc";
        assert_ne!(leaf_hash(&a), leaf_hash(&b));
    }
}
