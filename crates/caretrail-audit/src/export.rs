//! The export format: JSON lines holding the whole log with every leaf field, and every signed
//! checkpoint placed right after the event that completes its tree, each with a consistency
//! proof from the checkpoint before it.
//!
//! ```text
//! {"header":{"format":"caretrail-audit-export","version":1,"origin":"caretrail/log","public_key":"caretrail/log+...","events":N,"checkpoints":K}}
//! {"event":{"position":1,"stream_id":"visit-1",...,"data":"{\"a\":1}","leaf_hash":"<hex>"}}
//! {"checkpoint":{"tree_size":1,"note":"caretrail/log\n1\n...","consistency_proof":[]}}
//! ...
//! {"end":{"events":N,"checkpoints":K}}
//! ```
//!
//! Every line is one externally tagged object, so a reader knows a line's kind from its only
//! key; the `end` line lets a verifier tell a complete export from a cut-off one. The header's
//! public key is informational: a verifier pins its own. See `docs/audit-format.md`.

use std::borrow::Cow;
use std::io::Write;
use std::sync::Arc;

use caretrail_store::leaf::LeafFields;
use caretrail_store::{LogQuery, RecordedEvent, stream_log};
use chrono::{DateTime, NaiveDate};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::auditor::Auditor;
use crate::{AuditError, Result};

/// The `format` value of an export header.
pub const FORMAT: &str = "caretrail-audit-export";
/// The export format version.
pub const VERSION: u32 = 1;

/// One line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Line<'a> {
    /// The first line: what the file is and how much it holds.
    Header(Header),
    /// One event, in position order.
    #[serde(borrow)]
    Event(EventRecord<'a>),
    /// A signed checkpoint, right after the event whose position equals its tree size (after the
    /// last event when it is larger than the log).
    Checkpoint(CheckpointRecord),
    /// The last line: without it the export was cut off.
    End(End),
}

/// The first line.
#[derive(Debug, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// The export format version, [`VERSION`].
    pub version: u32,
    /// The log's name, the first line of its checkpoint notes (`caretrail/log` by default).
    pub origin: String,
    /// The exporting service's verifier key, for information only.
    pub public_key: Option<String>,
    /// Events the export holds: the audit tree's size when the export began.
    pub events: u64,
    /// Checkpoint lines the export holds.
    pub checkpoints: u64,
}

/// An event with every field its leaf hash commits to, and the stored leaf hash.
#[derive(Debug, Serialize, Deserialize)]
pub struct EventRecord<'a> {
    /// Position in the global log (1-based, gapless).
    pub position: u64,
    /// The stream the event belongs to.
    #[serde(borrow)]
    pub stream_id: Cow<'a, str>,
    /// The event's version within its stream (1 for the stream's first event).
    pub stream_version: u64,
    /// The event's id (hyphenated UUID).
    pub event_id: Uuid,
    /// The event's type name.
    #[serde(borrow)]
    pub event_type: Cow<'a, str>,
    /// Version of the payload's shape as stored (not upcast).
    pub schema_version: u32,
    /// `YYYY-MM-DD`; kept as text, because the leaf encodes the text.
    #[serde(borrow)]
    pub business_date: Option<Cow<'a, str>>,
    /// Microseconds since 1970-01-01T00:00:00Z, exactly as encoded in the leaf.
    pub recorded_at_us: i64,
    /// Who caused the event.
    #[serde(borrow)]
    pub actor_id: Cow<'a, str>,
    /// The role they acted in.
    #[serde(borrow)]
    pub actor_role: Cow<'a, str>,
    /// The command that produced the event, if any.
    pub command_id: Option<Uuid>,
    /// The id shared by everything one user action set off, if any.
    pub correlation_id: Option<Uuid>,
    /// The event or command that directly caused this one, if any.
    pub causation_id: Option<Uuid>,
    /// The payload's JSON text embedded verbatim as a JSON value, when that keeps its bytes
    /// exact (it is valid JSON with no line breaks and no surrounding whitespace).
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a RawValue>,
    /// Otherwise the payload's text as a JSON string (exactly one of the two is present).
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub data_text: Option<Cow<'a, str>>,
    /// The stored leaf hash, lowercase hex.
    #[serde(borrow)]
    pub leaf_hash: Cow<'a, str>,
}

impl<'a> EventRecord<'a> {
    /// The record of a stored event.
    pub fn of(e: &'a RecordedEvent) -> Self {
        Self {
            position: e.position,
            stream_id: Cow::Borrowed(&e.stream_id),
            stream_version: e.stream_version,
            event_id: e.event_id,
            event_type: Cow::Borrowed(&e.event_type),
            schema_version: e.schema_version,
            business_date: e
                .business_date
                .map(|d| Cow::Owned(d.format("%Y-%m-%d").to_string())),
            recorded_at_us: e.recorded_at.timestamp_micros(),
            actor_id: Cow::Borrowed(&e.actor_id),
            actor_role: Cow::Borrowed(&e.actor_role),
            command_id: e.command_id,
            correlation_id: e.correlation_id,
            causation_id: e.causation_id,
            data: verbatim(&e.data),
            data_text: verbatim(&e.data)
                .is_none()
                .then_some(Cow::Borrowed(e.data.as_str())),
            leaf_hash: Cow::Owned(hex::encode(e.leaf_hash)),
        }
    }

    /// The payload text, whichever way it was written (`None` if both or neither are present).
    pub fn data(&self) -> Option<&str> {
        match (&self.data, &self.data_text) {
            (Some(raw), None) => Some(raw.get()),
            (None, Some(text)) => Some(text),
            _ => None,
        }
    }

    /// Appends the record's leaf encoding (`caretrail_store::leaf`, version 1) to `out`,
    /// straight from the record's text, without date or time conversions: the verifier's hot
    /// path. `None` if the payload is absent. Equal to the store's encoding of the same event
    /// (a test pins this).
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Option<()> {
        fn put_str(out: &mut Vec<u8>, s: &str) {
            // Export strings come from one JSON line, far below 4 GiB.
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
        let data = self.data()?;
        out.push(caretrail_store::leaf::LEAF_FORMAT_VERSION);
        out.extend_from_slice(&self.position.to_be_bytes());
        put_str(out, &self.stream_id);
        out.extend_from_slice(&self.stream_version.to_be_bytes());
        out.extend_from_slice(self.event_id.as_bytes());
        put_str(out, &self.event_type);
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        match &self.business_date {
            None => out.push(0),
            Some(d) => {
                out.push(1);
                put_str(out, d);
            }
        }
        out.extend_from_slice(&self.recorded_at_us.to_be_bytes());
        put_str(out, &self.actor_id);
        put_str(out, &self.actor_role);
        put_opt_uuid(out, self.command_id);
        put_opt_uuid(out, self.correlation_id);
        put_opt_uuid(out, self.causation_id);
        put_str(out, data);
        Some(())
    }

    /// The leaf fields, or `None` if the record time or date is out of range or the payload is
    /// absent.
    pub fn fields(&self) -> Option<LeafFields<'_>> {
        Some(LeafFields {
            position: self.position,
            stream_id: &self.stream_id,
            stream_version: self.stream_version,
            event_id: self.event_id,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            business_date: match &self.business_date {
                None => None,
                Some(d) => Some(NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()?),
            },
            recorded_at: DateTime::from_timestamp_micros(self.recorded_at_us)?,
            actor_id: &self.actor_id,
            actor_role: &self.actor_role,
            command_id: self.command_id,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            data: self.data()?,
        })
    }
}

/// The payload as a raw JSON value, if embedding it verbatim keeps every byte: `RawValue`
/// drops whitespace around a value, and a line break would split the JSON line.
fn verbatim(data: &str) -> Option<&RawValue> {
    if data.trim() != data || data.contains(['\n', '\r']) {
        return None;
    }
    let raw: &RawValue = serde_json::from_str(data).ok()?;
    (raw.get() == data).then_some(raw)
}

/// A signed checkpoint and the consistency proof from the previous one in the export.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// Leaves (events) the checkpoint commits to: positions 1 to `tree_size`.
    pub tree_size: u64,
    /// The signed note, exactly as signed.
    pub note: String,
    /// Hashes (lowercase hex) proving this tree extends the previous checkpoint's; empty for the
    /// first checkpoint or when the previous one had size 0.
    pub consistency_proof: Vec<String>,
}

/// The last line.
#[derive(Debug, Serialize, Deserialize)]
pub struct End {
    /// Event lines written.
    pub events: u64,
    /// Checkpoint lines written.
    pub checkpoints: u64,
}

/// What an export wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    /// Events written.
    pub events: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
}

fn write_line(out: &mut dyn Write, line: &Line<'_>) -> Result<()> {
    serde_json::to_writer(&mut *out, line).map_err(|e| AuditError::Io(e.into()))?;
    Ok(out.write_all(b"\n")?)
}

/// Writes the log and its checkpoints to `out` (see the module doc). The tree is brought up to
/// date first so every consistency proof can be served; events are read page by page, so memory
/// stays bounded. `progress` sees `(events written, events in total)`.
#[tracing::instrument(name = "audit.export", skip_all)]
pub async fn export(
    auditor: &Auditor,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ExportSummary> {
    auditor.update_tree().await?;
    let store: Arc<dyn caretrail_store::EventStore> = auditor.store().clone();
    let tree_size = auditor.tree_size().await?;
    // Every stored checkpoint goes out, even one larger than the log (a restored backup):
    // the verifier, not the exporter, judges them.
    let checkpoints = auditor.checkpoints().await?;
    let head = tree_size;
    write_line(
        out,
        &Line::Header(Header {
            format: FORMAT.into(),
            version: VERSION,
            origin: auditor.origin().into(),
            public_key: auditor.verifier().map(|v| v.to_string()),
            events: head,
            checkpoints: checkpoints.len() as u64,
        }),
    )?;
    let mut next_cp = 0;
    let mut prev_size = 0u64;
    let mut emit_checkpoints = async |at: u64, out: &mut dyn Write| -> Result<()> {
        while next_cp < checkpoints.len() && checkpoints[next_cp].tree_size <= at {
            let cp = &checkpoints[next_cp];
            let proof = if prev_size > 0 && prev_size < cp.tree_size && cp.tree_size <= head {
                auditor
                    .consistency_proof(prev_size, cp.tree_size)
                    .await?
                    .proof
                    .iter()
                    .map(hex::encode)
                    .collect()
            } else {
                Vec::new()
            };
            write_line(
                out,
                &Line::Checkpoint(CheckpointRecord {
                    tree_size: cp.tree_size,
                    note: cp.note.clone(),
                    consistency_proof: proof,
                }),
            )?;
            prev_size = cp.tree_size;
            next_cp += 1;
        }
        Ok(())
    };
    emit_checkpoints(0, out).await?;
    let query = LogQuery {
        after: 0,
        up_to: Some(head),
        filter: Default::default(),
        limit: 5000,
    };
    let mut events = std::pin::pin!(stream_log(store, query));
    let mut written = 0u64;
    while let Some(e) = events.next().await {
        let e = e?;
        write_line(out, &Line::Event(EventRecord::of(&e)))?;
        written += 1;
        emit_checkpoints(e.position, out).await?;
        if written.is_multiple_of(10_000) {
            progress(written, head);
        }
    }
    progress(written, head);
    emit_checkpoints(u64::MAX, out).await?;
    write_line(
        out,
        &Line::End(End {
            events: written,
            checkpoints: next_cp as u64,
        }),
    )?;
    Ok(ExportSummary {
        events: written,
        checkpoints: next_cp as u64,
    })
}
