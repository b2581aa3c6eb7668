//! Erasures made by any server reach this one's key cache: the log is followed for
//! `PersonalDataErased` and `SubscriptionDeleted` events, and each one is applied here.
//!
//! Why: each server keeps the data keys it has unwrapped in memory ([`KeyRing`]), because a
//! dashboard opens many names per request and a database read per name would cost more than
//! the rest of the request. An erasure made through this server marks its own cache at once,
//! but with several servers on one database, another server would go on opening the person's
//! data with its cached key until it restarted. The log is the authority on what was erased
//! (the command handler stores the event first and destroys the key after it), so every
//! server follows it and erases again on its own: destroying a key is idempotent, marks the
//! cache, bumps [`KeyRing::erasures`] (which the caches of opened names are keyed on), and also
//! finishes an erasure whose key destruction was cut short by a crash on the server that
//! recorded it.
//!
//! The follower starts at the head of the log and then empties the key cache, so a key loaded
//! before it started cannot outlive an erasure it missed. It reports into the store's health
//! registry as `keys.erasures`, so a server whose follower is failing or stopped is not ready.

use std::sync::Arc;
use std::time::Duration;

use caretrail_store::{EventFilter, EventStore, Expect, StoreError, subscribe};
use uuid::Uuid;

use crate::keys::KeyRing;

/// The events that destroy a subject's key: a person's erasure, and a subscription's deletion
/// (its signing secrets are sealed under its own key).
const ERASING_EVENTS: [&str; 2] = ["PersonalDataErased", "SubscriptionDeleted"];

/// Follows the log and applies every erasure to `keys`. Retries its own failures with backoff;
/// never returns (cancel it to stop).
pub async fn follow_erasures(store: Arc<dyn EventStore>, keys: Arc<KeyRing>) {
    let poll = store.options().poll_interval;
    // The subscription polls the head every `poll` while it waits (another process's commits
    // reach SQLite only that way), so the wait below must outlast one poll, or it would cut
    // every poll short and never see them; it reports at least every two polls.
    let wait = poll * 2;
    let task = store
        .health()
        .register("keys.erasures", Expect::FollowsLog { every: wait * 2 });
    let start = loop {
        match store.head().await {
            Ok(head) => break head.position,
            Err(e) => tokio::time::sleep(task.failed(e.kind(), &e)).await,
        }
    };
    keys.forget_cached();
    let mut events = erasing_events(&store, start);
    task.at(start);
    loop {
        // Waiting is bounded, so an idle follower still reports where it is (`FollowsLog`); a
        // cut-off wait loses nothing (the subscription keeps its place).
        let next = match tokio::time::timeout(wait, events.next()).await {
            Err(_) => {
                task.at(events.position());
                continue;
            }
            Ok(next) => next,
        };
        let event = match next {
            Ok(event) => event,
            Err(e) => {
                tokio::time::sleep(task.failed(e.kind(), &e)).await;
                continue;
            }
        };
        let Some(subject) = erased_subject(&event) else {
            // An erasing event without a readable subject is a corrupt log: say so and keep
            // failing on it, never skip it (skipping would leave a key open).
            let e = StoreError::Corrupt {
                position: event.position,
                reason: format!("{} names no subject", event.event_type),
            };
            tokio::time::sleep(task.failed("erasure_unreadable", &e)).await;
            events = erasing_events(&store, event.position - 1);
            continue;
        };
        // Retried until it is applied: a key this server still holds must not stay open.
        loop {
            match keys.erase(subject).await {
                Ok(()) => break,
                Err(e) => tokio::time::sleep(task.failed("key_erase_failed", &e)).await,
            }
        }
        tracing::debug!(
            position = event.position,
            "erasure applied to this server's keys"
        );
        task.at(event.position);
    }
}

/// The erasing events of the log after `after`, live.
fn erasing_events(store: &Arc<dyn EventStore>, after: u64) -> caretrail_store::Subscription {
    let filter = EventFilter {
        event_types: ERASING_EVENTS.iter().map(|t| (*t).to_owned()).collect(),
        categories: Vec::new(),
    };
    subscribe(store.clone(), after, filter)
}

/// The subject whose key an erasing event destroys.
fn erased_subject(event: &caretrail_store::RecordedEvent) -> Option<Uuid> {
    let data: serde_json::Value = serde_json::from_str(&event.data).ok()?;
    let field = match event.event_type.as_str() {
        "PersonalDataErased" => "subject_id",
        "SubscriptionDeleted" => "subscription_id",
        _ => return None,
    };
    data.get(field)?.as_str()?.parse().ok()
}

/// How long a test or a caller may wait for an erasure made elsewhere to be applied here: the
/// follower's wake-up comes with the commit (same process), a NOTIFY (PostgreSQL), or at the
/// latest the store's next poll of the head (another process on SQLite), plus the erasure.
pub fn propagation_bound(store: &dyn EventStore) -> Duration {
    store.options().poll_interval * 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, data: &str) -> caretrail_store::RecordedEvent {
        caretrail_store::RecordedEvent {
            position: 7,
            stream_id: format!("privacy-{}", Uuid::nil()),
            stream_version: 1,
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: 1,
            data: data.into(),
            actor_id: "admin".into(),
            actor_role: "admin".into(),
            command_id: None,
            correlation_id: None,
            causation_id: None,
            business_date: None,
            recorded_at: chrono::Utc::now(),
            leaf_hash: [0; 32],
        }
    }

    #[test]
    fn the_subject_is_read_from_either_erasing_event_and_nothing_else() {
        let id = Uuid::now_v7();
        assert_eq!(
            erased_subject(&event(
                "PersonalDataErased",
                &format!(
                    r#"{{"subject_id":"{id}","legal_basis":"subject_request","erased_on":"2021-10-30"}}"#
                )
            )),
            Some(id)
        );
        assert_eq!(
            erased_subject(&event(
                "SubscriptionDeleted",
                &format!(r#"{{"subscription_id":"{id}"}}"#)
            )),
            Some(id)
        );
        assert_eq!(erased_subject(&event("PersonalDataErased", "{}")), None);
        assert_eq!(
            erased_subject(&event("PersonalDataErased", "not json")),
            None
        );
        assert_eq!(
            erased_subject(&event(
                "VisitRecorded",
                &format!(r#"{{"subject_id":"{id}"}}"#)
            )),
            None
        );
    }
}
