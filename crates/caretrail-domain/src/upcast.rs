//! Schema evolution: old event data is upcast to the current version on read.
//!
//! Stored events are never rewritten (their hashes are part of the audit trail), so a change to
//! an event's shape bumps its schema version and adds a step here that turns version `n` data
//! into version `n + 1`. Readers call [`upcast`] (or `Event::from_data`, which calls it) and only
//! ever see the current shape.

use serde_json::Value;

use crate::event::{EVENT_TYPES, current_version};

/// Why stored data could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpcastError {
    /// The event type is not known to this code.
    #[error("unknown event type {0}")]
    UnknownEventType(String),
    /// The version is newer than this code writes (written by a newer release), or zero.
    #[error("unsupported schema version {version} of {event_type}")]
    UnsupportedVersion {
        /// The event type.
        event_type: String,
        /// The stored version.
        version: u32,
    },
    /// The (upcast) data does not match the event type's shape.
    #[error("invalid data for {event_type}: {message}")]
    InvalidData {
        /// The event type.
        event_type: String,
        /// What is wrong.
        message: String,
    },
}

/// One step: turns data of `(event_type, from)` into data of version `from + 1`.
type Step = fn(Value) -> Result<Value, String>;

/// The registry of steps, by event type and the version they upgrade from.
const STEPS: &[(&str, u32, Step)] = &[("VisitRecorded", 1, visit_recorded_v1_to_v2)];

/// `VisitRecorded` v1 had no `medical_advice_given`; the form had no such box, so no advice was
/// recorded, and `false` is the faithful reading.
fn visit_recorded_v1_to_v2(mut data: Value) -> Result<Value, String> {
    let object = data
        .as_object_mut()
        .ok_or("VisitRecorded data is not an object")?;
    object
        .entry("medical_advice_given")
        .or_insert(Value::Bool(false));
    Ok(data)
}

/// Upcasts stored data to the current schema version of its event type.
pub fn upcast(
    event_type: &str,
    version: u32,
    mut data: Value,
) -> Result<(u32, Value), UpcastError> {
    if !EVENT_TYPES.contains(&event_type) {
        return Err(UpcastError::UnknownEventType(event_type.to_owned()));
    }
    let current = current_version(event_type);
    if version == 0 || version > current {
        return Err(UpcastError::UnsupportedVersion {
            event_type: event_type.to_owned(),
            version,
        });
    }
    for from in version..current {
        let step = STEPS
            .iter()
            .find(|(t, v, _)| *t == event_type && *v == from)
            .map(|(_, _, step)| *step)
            .ok_or(UpcastError::UnsupportedVersion {
                event_type: event_type.to_owned(),
                version,
            })?;
        data = step(data).map_err(|message| UpcastError::InvalidData {
            event_type: event_type.to_owned(),
            message,
        })?;
    }
    Ok((current, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_version_gap_has_a_step() {
        for event_type in EVENT_TYPES {
            for from in 1..current_version(event_type) {
                assert!(
                    STEPS.iter().any(|(t, v, _)| t == event_type && *v == from),
                    "{event_type} has no upcaster from v{from}"
                );
            }
        }
    }

    #[test]
    fn unknown_types_and_future_versions_are_refused() {
        assert_eq!(
            upcast("Nope", 1, json!({})),
            Err(UpcastError::UnknownEventType("Nope".into()))
        );
        assert!(matches!(
            upcast("VisitRecorded", 3, json!({})),
            Err(UpcastError::UnsupportedVersion { version: 3, .. })
        ));
    }

    #[test]
    fn current_versions_pass_through_unchanged() {
        let data = json!({"medical_advice_given": true});
        assert_eq!(upcast("VisitRecorded", 2, data.clone()), Ok((2, data)));
    }
}
