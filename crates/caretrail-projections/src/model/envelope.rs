//! A stored event decoded for projection: its log metadata and the domain event.

use super::*;

/// A stored event decoded for projection.
#[derive(Debug)]
pub struct Envelope {
    /// Position in the global log (1-based, gapless, in commit order).
    pub position: u64,
    /// The event's id, unique in the whole log.
    pub event_id: Uuid,
    /// The stream the event belongs to (`category-uuid`).
    pub stream_id: String,
    /// The event's type name (`VisitRecorded`, ...).
    pub event_type: String,
    /// The calendar date the event is about, if any (Asia/Shanghai).
    pub business_date: Option<NaiveDate>,
    /// When the event was stored, in microseconds since the Unix epoch (UTC): an integer, so
    /// the bulk reader hands it over without building a timestamp.
    pub recorded_at_us: i64,
    /// Who caused the event (see [`caretrail_store::Metadata::actor_id`]).
    pub actor_id: String,
    /// The role they acted in (`admin`, `director`, `system`, ...).
    pub actor_role: String,
    /// The domain event, upcast to its current shape; personal values still sealed.
    pub event: Event,
}

/// Decodes a stored event. Current-version payloads are parsed straight into their typed
/// struct (no intermediate `serde_json::Value`, about twice as fast); older versions go through
/// the domain's upcasters.
pub fn decode(e: RecordedEvent) -> Result<Envelope> {
    let event = decode_event(e.position, &e.event_type, e.schema_version, &e.data)?;
    Ok(Envelope {
        position: e.position,
        event_id: e.event_id,
        stream_id: e.stream_id,
        event_type: e.event_type,
        business_date: e.business_date,
        recorded_at_us: e.recorded_at.timestamp_micros(),
        actor_id: e.actor_id,
        actor_role: e.actor_role,
        event,
    })
}

/// Decodes one payload (the bulk reader calls this with text borrowed from its rows).
pub fn decode_event(
    position: u64,
    event_type: &str,
    schema_version: u32,
    data: &str,
) -> Result<Event> {
    let unreadable = |reason: String| ProjectionError::Unreadable { position, reason };
    macro_rules! fast {
        ($($t:ident),* $(,)?) => {
            match event_type {
                $(stringify!($t) => Some(serde_json::from_str::<ev::$t>(data).map(Event::$t)),)*
                _ => None,
            }
        };
    }
    let parsed = if schema_version == ev::current_version(event_type) {
        fast!(
            ModelWorkerRegistered,
            HardshipAssessed,
            HardshipExited,
            ModelWorkerRelocated,
            DirectorAppointed,
            PairEnded,
            VisitRecorded,
            VisitCorrected,
            VisitVoided,
            IssueRaised,
            IssueResolvedOnSpot,
            BodyResponseRecorded,
            IssueProgressNoted,
            IssueResolved,
            IssueClosed,
            IssueReopened,
            ContactRecorded,
            ModelWorkerDied,
            ModelWorkerPaired,
            ModelWorkerUnpaired,
            DirectorTermEnded,
            DirectorPaired,
            DirectorUnpaired,
            BodyRegistered,
            PairAssigned,
            PairActivityLogged,
            PairActivityWithdrawn,
            IssueAcknowledged,
            IssueEscalated,
            IssueResolutionConfirmed,
            PersonalDataErased,
        )
    } else {
        None
    };
    match parsed {
        Some(r) => r.map_err(|err| unreadable(err.to_string())),
        None => {
            let value: serde_json::Value =
                serde_json::from_str(data).map_err(|err| unreadable(err.to_string()))?;
            Event::from_data(event_type, schema_version, value)
                .map_err(|err| unreadable(err.to_string()))
        }
    }
}
