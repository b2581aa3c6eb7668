//! Events as CloudEvents 1.0 (structured JSON mode).
//!
//! Integrations receive the log in a format they already have tools for, so an event leaves
//! caretrail as one CloudEvents JSON object: the standard attributes say what happened to which
//! stream and when, `data` is the payload as the integration role reads it (every personal
//! value withheld before it gets here), and extension attributes carry what a receiver needs to
//! follow the log exactly: the global position, the version within the stream, and the leaf
//! hash it can check against the audit tree.
//!
//! The position and the stream version are sent as JSON strings of decimal digits. A CloudEvents
//! `Integer` is a signed 32-bit number, and a log position is a `u64` that may exceed it; a
//! string loses nothing and every receiver parses it the same way.

use caretrail_app::view::EventView;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use uuid::Uuid;

/// One event ready to send: its CloudEvents JSON body and what a transport needs beside it.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The event's position in the global log.
    pub position: u64,
    /// The event's id: the webhook id and the NATS message id, so receivers deduplicate.
    pub event_id: Uuid,
    /// The stream category (`visit`, `pairing`, ...).
    pub category: String,
    /// The event type (`VisitRecorded`, ...).
    pub event_type: String,
    /// When the event was recorded.
    pub recorded_at: DateTime<Utc>,
    /// The CloudEvents structured JSON body.
    pub body: bytes::Bytes,
}

/// The CloudEvents `type` of an event: `cn.caretrail.<EventType>.v<schema_version>` e.g.
/// `cn.caretrail.VisitRecorded.v2`.
///
/// The schema version is part of the type because a receiver's parser is written for one shape
/// of `data`; an event upcast to a new schema is, to the receiver, a different type.
pub fn cloudevent_type(event_type: &str, schema_version: u32) -> String {
    format!("cn.caretrail.{event_type}.v{schema_version}")
}

/// The attributes of a structured-mode event in the order they are written (serde keeps the
/// field order, which makes the bodies easy to read in a receiver's log).
#[derive(Serialize)]
struct Structured<'a> {
    specversion: &'static str,
    id: String,
    source: &'a str,
    #[serde(rename = "type")]
    ty: String,
    subject: &'a str,
    time: String,
    datacontenttype: &'static str,
    position: String,
    streamversion: String,
    leafhash: &'a str,
    actorrole: &'a str,
    data: &'a serde_json::Value,
}

/// Renders one event as the integration role reads it.
///
/// `view` must already be the redacted view (`Access::Redacted`): this function sends `data`
/// as it is. `source` is the CloudEvents `source`, a URI-reference naming this installation
/// (`urn:caretrail:<origin>`).
pub fn render(view: &EventView, source: &str) -> Result<Outgoing, serde_json::Error> {
    let body = Structured {
        specversion: "1.0",
        id: view.event_id.to_string(),
        source,
        ty: cloudevent_type(&view.event_type, view.schema_version),
        subject: &view.stream_id,
        time: view
            .recorded_at
            .to_rfc3339_opts(SecondsFormat::Micros, true),
        datacontenttype: "application/json",
        position: view.position.to_string(),
        streamversion: view.stream_version.to_string(),
        leafhash: &view.leaf_hash,
        actorrole: &view.actor_role,
        data: &view.data,
    };
    let body = serde_json::to_vec(&body)?;
    Ok(Outgoing {
        position: view.position,
        event_id: view.event_id,
        category: category(&view.stream_id).to_owned(),
        event_type: view.event_type.clone(),
        recorded_at: view.recorded_at,
        body: body.into(),
    })
}

/// Events already rendered, shared by every subscription on a node: 100 subscriptions that
/// take the same event send the same body (only the signature, made per attempt, differs), so
/// it is rendered once rather than once per subscription.
///
/// A fixed ring of slots indexed by position: a position names one event for ever (the log is
/// append-only) and the redacted view opens no key, so a cached body never goes stale. Workers
/// that lag far behind each other simply miss and render again.
pub struct RenderCache {
    slots: Box<[std::sync::Mutex<Option<std::sync::Arc<Outgoing>>>]>,
}

impl RenderCache {
    /// A cache of `slots` events (at least one).
    pub fn new(slots: usize) -> Self {
        Self {
            slots: (0..slots.max(1))
                .map(|_| std::sync::Mutex::new(None))
                .collect(),
        }
    }

    fn slot(&self, position: u64) -> &std::sync::Mutex<Option<std::sync::Arc<Outgoing>>> {
        // The modulus is below the slot count, which is a usize.
        let len = self.slots.len() as u64;
        &self.slots[usize::try_from(position % len).unwrap_or(0)]
    }

    /// The event at `position` with id `event_id`, if it is still in the cache.
    pub fn get(&self, position: u64, event_id: Uuid) -> Option<std::sync::Arc<Outgoing>> {
        let slot = self
            .slot(position)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        slot.as_ref()
            .filter(|o| o.position == position && o.event_id == event_id)
            .cloned()
    }

    /// Keeps `out` for the next subscription that sends it.
    pub fn put(&self, out: std::sync::Arc<Outgoing>) {
        let slot = self.slot(out.position);
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(out);
    }
}

/// A stream's category: the text before the first `-` (the store's rule for `StreamId`).
fn category(stream_id: &str) -> &str {
    stream_id.split('-').next().unwrap_or(stream_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cloudevents::event::{ExtensionValue, SpecVersion};
    use cloudevents::{AttributesReader, Data};
    use serde_json::json;

    fn view(position: u64) -> EventView {
        EventView {
            position,
            stream_id: "visit-0190a4b2-7c1d-7e3f-8a9b-0c1d2e3f4a5b".to_owned(),
            stream_version: 3,
            event_id: Uuid::parse_str("0190a4b2-7c1d-7e3f-8a9b-0c1d2e3f4a5c").unwrap(),
            event_type: "VisitRecorded".to_owned(),
            schema_version: 2,
            stored_schema_version: 1,
            data: json!({ "notes": { "redacted": true }, "minutes": 45 }),
            actor_id: "admin-1".to_owned(),
            actor_role: "admin".to_owned(),
            command_id: None,
            correlation_id: None,
            causation_id: None,
            business_date: None,
            recorded_at: Utc
                .with_ymd_and_hms(2025, 3, 4, 5, 6, 7)
                .unwrap()
                .checked_add_signed(chrono::Duration::microseconds(123_456))
                .unwrap(),
            leaf_hash: "ab".repeat(32),
        }
    }

    fn parse(out: &Outgoing) -> cloudevents::Event {
        serde_json::from_slice::<cloudevents::Event>(&out.body).unwrap()
    }

    fn ext(event: &cloudevents::Event, name: &str) -> ExtensionValue {
        event
            .extension(name)
            .unwrap_or_else(|| panic!("extension {name} missing"))
            .clone()
    }

    #[test]
    fn the_type_names_the_event_type_and_its_schema_version() {
        assert_eq!(
            cloudevent_type("VisitRecorded", 2),
            "cn.caretrail.VisitRecorded.v2"
        );
    }

    #[test]
    fn every_attribute_parses_back_with_the_cloudevents_sdk() {
        let v = view(42);
        let out = render(&v, "urn:caretrail:test").unwrap();
        let event = parse(&out);

        assert_eq!(event.specversion(), SpecVersion::V10);
        assert_eq!(event.id(), "0190a4b2-7c1d-7e3f-8a9b-0c1d2e3f4a5c");
        assert_eq!(event.source().as_str(), "urn:caretrail:test");
        assert_eq!(event.ty(), "cn.caretrail.VisitRecorded.v2");
        assert_eq!(event.subject(), Some(v.stream_id.as_str()));
        assert_eq!(event.time(), Some(&v.recorded_at));
        assert_eq!(event.datacontenttype(), Some("application/json"));
        assert_eq!(event.data(), Some(&Data::Json(v.data.clone())));
        assert_eq!(ext(&event, "position"), ExtensionValue::from("42"));
        assert_eq!(ext(&event, "streamversion"), ExtensionValue::from("3"));
        assert_eq!(
            ext(&event, "leafhash"),
            ExtensionValue::from("ab".repeat(32))
        );
        assert_eq!(ext(&event, "actorrole"), ExtensionValue::from("admin"));
        assert_eq!(event.iter_extensions().count(), 4);

        assert_eq!(out.position, 42);
        assert_eq!(out.event_id, v.event_id);
        assert_eq!(out.category, "visit");
        assert_eq!(out.event_type, "VisitRecorded");
        assert_eq!(out.recorded_at, v.recorded_at);
    }

    #[test]
    fn time_is_rfc3339_with_microseconds_in_utc() {
        let out = render(&view(1), "urn:caretrail:test").unwrap();
        let body: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(body["time"], "2025-03-04T05:06:07.123456Z");
    }

    #[test]
    fn extension_names_are_lowercase_alphanumeric_as_the_spec_requires() {
        let out = render(&view(1), "urn:caretrail:test").unwrap();
        let body: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        for name in body.as_object().unwrap().keys() {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
                "{name}"
            );
        }
    }

    #[test]
    fn a_position_above_u32_max_round_trips_as_a_string() {
        let position = u64::from(u32::MAX) + 1;
        let out = render(&view(position), "urn:caretrail:test").unwrap();
        let event = parse(&out);
        let ExtensionValue::String(text) = ext(&event, "position") else {
            panic!("position is not a string")
        };
        assert_eq!(text.parse::<u64>().unwrap(), position);

        let out = render(&view(u64::MAX), "urn:caretrail:test").unwrap();
        let ExtensionValue::String(text) = ext(&parse(&out), "position") else {
            panic!("position is not a string")
        };
        assert_eq!(text.parse::<u64>().unwrap(), u64::MAX);
    }

    #[test]
    fn the_render_cache_answers_only_for_the_same_position_and_event() {
        let cache = RenderCache::new(4);
        let out = std::sync::Arc::new(render(&view(5), "urn:caretrail:test").unwrap());
        let id = out.event_id;
        assert!(cache.get(5, id).is_none());
        cache.put(out.clone());
        assert!(std::sync::Arc::ptr_eq(&cache.get(5, id).unwrap(), &out));
        // Another event in the same slot, or another id at this position, is a miss.
        assert!(cache.get(9, id).is_none());
        assert!(cache.get(5, Uuid::nil()).is_none());
        cache.put(std::sync::Arc::new(
            render(&view(9), "urn:caretrail:test").unwrap(),
        ));
        assert!(cache.get(5, id).is_none());
        assert!(cache.get(9, id).is_some());
    }

    #[test]
    fn the_category_is_the_text_before_the_first_dash() {
        assert_eq!(category("visit-1-2"), "visit");
        assert_eq!(category("pairing"), "pairing");
    }
}
