//! The pure part of group commit: given a batch of appends and what the database says about the
//! streams and command ids they touch, decide which appends succeed, where their events land,
//! and what each caller gets back.
//!
//! Keeping this free of IO means both backends share one implementation of the rules that
//! matter most (expected versions, idempotency, duplicate ids within a batch, gapless
//! positions) and it can be tested without a database.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::StoreError;
use crate::leaf::{LeafFields, leaf_hash};
use crate::types::{
    AppendRequest, AppendResult, Head, RecordedEvent, StreamResult, WrittenEvent, from_micros,
    to_micros,
};

/// What the database said before planning: the head, the current version of every stream the
/// batch names (absent = 0), and the stored results of command ids the batch carries.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub head: Head,
    pub versions: HashMap<String, u64>,
    pub commands: HashMap<Uuid, AppendResult>,
}

/// The plan for one transaction.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Rows to insert, in position order.
    pub events: Vec<RecordedEvent>,
    /// Command ids to record with their results.
    pub commands: Vec<(Uuid, AppendResult)>,
    /// One outcome per request, in request order.
    pub outcomes: Vec<Result<AppendResult, StoreError>>,
}

/// Every distinct stream id a batch names.
pub(crate) fn streams_of<'a>(reqs: &[&'a AppendRequest]) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    reqs.iter()
        .flat_map(|r| r.streams.iter().map(|s| s.stream.as_str()))
        .filter(|s| seen.insert(*s))
        .collect()
}

/// Every command id a batch carries.
pub(crate) fn commands_of(reqs: &[&AppendRequest]) -> Vec<Uuid> {
    let mut seen = HashSet::new();
    reqs.iter()
        .filter_map(|r| r.metadata.command_id)
        .filter(|c| seen.insert(*c))
        .collect()
}

/// Decides the batch. Requests are taken in order; an accepted request's effects (new stream
/// versions, its command id, its event ids) are visible to the requests after it, exactly as if
/// they had been committed one by one.
pub(crate) fn plan(reqs: &[&AppendRequest], mut snap: Snapshot, now: DateTime<Utc>) -> Plan {
    // Record time never goes backwards along positions, even if this clock is behind the one
    // that wrote the head (another server, or a clock step): "as of time T" is then a prefix.
    let now_us = to_micros(now);
    let recorded_us = snap
        .head
        .recorded_at
        .map_or(now_us, |h| now_us.max(to_micros(h)));
    let recorded_at = from_micros(recorded_us);

    let mut next_position = snap.head.position + 1;
    let mut batch_commands: HashMap<Uuid, AppendResult> = HashMap::new();
    let mut batch_event_ids: HashSet<Uuid> = HashSet::new();
    let mut plan = Plan {
        events: Vec::new(),
        commands: Vec::new(),
        outcomes: Vec::with_capacity(reqs.len()),
    };

    'requests: for req in reqs {
        if let Some(prev) = req
            .metadata
            .command_id
            .and_then(|cmd| snap.commands.get(&cmd).or_else(|| batch_commands.get(&cmd)))
        {
            let mut prev = prev.clone();
            prev.deduplicated = true;
            plan.outcomes.push(Ok(prev));
            continue;
        }
        for s in &req.streams {
            let actual = snap.versions.get(s.stream.as_str()).copied().unwrap_or(0);
            if !s.expected.admits(actual) {
                plan.outcomes.push(Err(StoreError::WrongExpectedVersion {
                    stream: s.stream.clone(),
                    expected: s.expected,
                    actual,
                }));
                continue 'requests;
            }
        }
        if let Some(dup) = req
            .streams
            .iter()
            .flat_map(|s| &s.events)
            .find(|e| batch_event_ids.contains(&e.event_id))
        {
            plan.outcomes
                .push(Err(StoreError::DuplicateEventId(dup.event_id)));
            continue;
        }

        let mut result = AppendResult {
            streams: Vec::with_capacity(req.streams.len()),
            events: Vec::with_capacity(req.event_count()),
            recorded_at,
            deduplicated: false,
        };
        for s in &req.streams {
            let version = snap
                .versions
                .entry(s.stream.as_str().to_owned())
                .or_insert(0);
            for e in &s.events {
                *version += 1;
                let mut row = RecordedEvent {
                    position: next_position,
                    stream_id: s.stream.as_str().to_owned(),
                    stream_version: *version,
                    event_id: e.event_id,
                    event_type: e.event_type.clone(),
                    schema_version: e.schema_version,
                    data: e.data.clone(),
                    actor_id: req.metadata.actor_id.clone(),
                    actor_role: req.metadata.actor_role.clone(),
                    command_id: req.metadata.command_id,
                    correlation_id: req.metadata.correlation_id,
                    causation_id: req.metadata.causation_id,
                    business_date: e.business_date,
                    recorded_at,
                    leaf_hash: [0; 32],
                };
                row.leaf_hash = leaf_hash(&LeafFields::from(&row));
                result.events.push(WrittenEvent {
                    event_id: e.event_id,
                    stream_id: row.stream_id.clone(),
                    stream_version: row.stream_version,
                    position: row.position,
                });
                batch_event_ids.insert(e.event_id);
                plan.events.push(row);
                next_position += 1;
            }
            result.streams.push(StreamResult {
                stream_id: s.stream.as_str().to_owned(),
                version: *version,
            });
        }
        if let Some(cmd) = req.metadata.command_id {
            batch_commands.insert(cmd, result.clone());
            plan.commands.push((cmd, result.clone()));
        }
        plan.outcomes.push(Ok(result));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ExpectedVersion, Metadata, NewEvent, StreamId};

    fn req(stream: &str, expected: ExpectedVersion, n: usize, cmd: Option<u128>) -> AppendRequest {
        let events = (0..n)
            .map(|_| NewEvent::json("Tested", 1, &serde_json::json!({})).unwrap())
            .collect();
        let mut md = Metadata::actor("t", "test");
        md.command_id = cmd.map(Uuid::from_u128);
        AppendRequest::single(StreamId::new(stream).unwrap(), expected, events, md)
    }

    #[test]
    fn accepted_appends_see_each_other_and_positions_continue_from_the_head() {
        let a = req("s-1", ExpectedVersion::NoStream, 2, None);
        let b = req("s-1", ExpectedVersion::Exact(2), 1, None);
        let c = req("s-1", ExpectedVersion::Exact(2), 1, None);
        let snap = Snapshot {
            head: Head {
                position: 41,
                recorded_at: None,
            },
            ..Snapshot::default()
        };
        let p = plan(&[&a, &b, &c], snap, Utc::now());
        let positions: Vec<u64> = p.events.iter().map(|e| e.position).collect();
        assert_eq!(positions, vec![42, 43, 44]);
        assert!(p.outcomes[0].is_ok() && p.outcomes[1].is_ok());
        assert!(matches!(
            p.outcomes[2],
            Err(StoreError::WrongExpectedVersion { actual: 3, .. })
        ));
    }

    #[test]
    fn a_command_repeated_within_a_batch_gets_the_first_result() {
        let a = req("s-1", ExpectedVersion::Any, 1, Some(9));
        let b = req("s-1", ExpectedVersion::Any, 1, Some(9));
        let p = plan(&[&a, &b], Snapshot::default(), Utc::now());
        assert_eq!(p.events.len(), 1);
        let first = p.outcomes[0].as_ref().unwrap();
        let second = p.outcomes[1].as_ref().unwrap();
        assert!(second.deduplicated);
        assert_eq!(first.events, second.events);
    }

    #[test]
    fn record_time_never_goes_behind_the_head() {
        let later = Utc::now() + chrono::Duration::hours(1);
        let snap = Snapshot {
            head: Head {
                position: 1,
                recorded_at: Some(later),
            },
            ..Snapshot::default()
        };
        let a = req("s-1", ExpectedVersion::Any, 1, None);
        let p = plan(&[&a], snap, Utc::now());
        assert_eq!(to_micros(p.events[0].recorded_at), to_micros(later));
    }
}
