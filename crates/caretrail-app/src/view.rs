//! Events as readers see them: stored JSON upcast to the current schema, with every sealed
//! personal value opened for readers allowed to see personal data, shown as erased once the
//! subject's key is destroyed, and withheld from everyone else.
//!
//! Sealed values are recognised by shape (an object with exactly `subject`, `nonce` and
//! `ciphertext`), the only form in which the domain lets personal data into the log, so this
//! works for every event type without knowing its fields.

use caretrail_domain::Sealed;
use caretrail_store::RecordedEvent;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::keys::{KeyError, KeyRing};

/// Whether the reader may see personal data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Personal values are opened (administrators).
    Personal,
    /// Only these subjects' values are opened (a director: themselves and the model worker
    /// they are paired with); the rest are redacted.
    Subjects(std::sync::Arc<[uuid::Uuid]>),
    /// Personal values are replaced by `{"redacted": true}` (auditors, integrations).
    Redacted,
}

impl Access {
    /// Whether values sealed for `subject` may be opened.
    pub fn may_open(&self, subject: uuid::Uuid) -> bool {
        match self {
            Access::Personal => true,
            Access::Subjects(allowed) => allowed.contains(&subject),
            Access::Redacted => false,
        }
    }
}

/// An event as served to readers.
#[derive(Clone, Debug, Serialize)]
pub struct EventView {
    /// Position in the global log (1-based, gapless, in commit order).
    pub position: u64,
    /// The stream the event belongs to.
    pub stream_id: String,
    /// The event's version within its stream (1 for the stream's first event).
    pub stream_version: u64,
    /// The event's id.
    pub event_id: uuid::Uuid,
    /// The event's type name (`VisitRecorded`, ...).
    pub event_type: String,
    /// The schema version of `data` after upcasting (the current one).
    pub schema_version: u32,
    /// The version the event was stored with.
    pub stored_schema_version: u32,
    /// The payload in the current schema, each sealed value replaced by its plaintext (a JSON
    /// string), `{"erased": true}` or `{"redacted": true}` as the reader's [`Access`] allows.
    pub data: Value,
    /// Who recorded the event.
    pub actor_id: String,
    /// The role they acted in (`admin`, `director`, `system`, ...).
    pub actor_role: String,
    /// The command that produced the event, if any.
    pub command_id: Option<uuid::Uuid>,
    /// The id shared by everything one user action set off, if any.
    pub correlation_id: Option<uuid::Uuid>,
    /// The event or command that directly caused this one, if any.
    pub causation_id: Option<uuid::Uuid>,
    /// The calendar date the event is about (Asia/Shanghai), if any.
    pub business_date: Option<chrono::NaiveDate>,
    /// Record time (UTC, microsecond precision, never decreasing along positions).
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    /// Lowercase hex of the event's RFC 6962 leaf hash.
    pub leaf_hash: String,
}

/// Why an event could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The stored payload is not JSON, or does not upcast to the current schema.
    #[error("stored event at position {position} is not readable: {reason}")]
    Unreadable {
        /// The event's position.
        position: u64,
        /// Why it cannot be read.
        reason: String,
    },
    /// A sealed value could not be opened: its key could not be read, or it did not open.
    #[error(transparent)]
    Keys(#[from] KeyError),
}

/// The reader's view of `e`.
pub async fn view(
    keys: &KeyRing,
    e: &RecordedEvent,
    access: &Access,
) -> Result<EventView, ViewError> {
    let unreadable = |reason: String| ViewError::Unreadable {
        position: e.position,
        reason,
    };
    let data: Value = serde_json::from_str(&e.data).map_err(|err| unreadable(err.to_string()))?;
    let (version, mut data) = caretrail_domain::upcast(&e.event_type, e.schema_version, data)
        .map_err(|err| unreadable(err.to_string()))?;
    open_sealed(keys, &mut data, e.event_id, access).await?;
    Ok(EventView {
        position: e.position,
        stream_id: e.stream_id.clone(),
        stream_version: e.stream_version,
        event_id: e.event_id,
        event_type: e.event_type.clone(),
        schema_version: version,
        stored_schema_version: e.schema_version,
        data,
        actor_id: e.actor_id.clone(),
        actor_role: e.actor_role.clone(),
        command_id: e.command_id,
        correlation_id: e.correlation_id,
        causation_id: e.causation_id,
        business_date: e.business_date,
        recorded_at: e.recorded_at,
        leaf_hash: hex::encode(e.leaf_hash),
    })
}

fn as_sealed(map: &Map<String, Value>) -> Option<Sealed> {
    if map.len() == 3
        && map.contains_key("subject")
        && map.contains_key("nonce")
        && map.contains_key("ciphertext")
    {
        serde_json::from_value(Value::Object(map.clone())).ok()
    } else {
        None
    }
}

/// Replaces every sealed value in `value` according to `access`: plaintext as a JSON string,
/// `{"erased": true}` after erasure, `{"redacted": true}` without access.
pub async fn open_sealed(
    keys: &KeyRing,
    value: &mut Value,
    event_id: uuid::Uuid,
    access: &Access,
) -> Result<(), KeyError> {
    // Iterative walk: payloads are small, but recursion in async code needs boxing anyway.
    let mut stack: Vec<&mut Value> = vec![value];
    while let Some(v) = stack.pop() {
        let sealed = match &*v {
            Value::Object(map) => as_sealed(map),
            _ => None,
        };
        if let Some(sealed) = sealed {
            *v = if access.may_open(sealed.subject) {
                match keys.unseal(&sealed, event_id).await? {
                    Some(text) => Value::String(text),
                    None => json!({ "erased": true }),
                }
            } else {
                json!({ "redacted": true })
            };
            continue;
        }
        match v {
            Value::Object(map) => stack.extend(map.values_mut()),
            Value::Array(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
    Ok(())
}
