//! Command handling: the glue between the pure care domain (`caretrail-domain`) and the event
//! store (`caretrail-store`).
//!
//! [`App::execute`] runs one command: if its command id was already stored it answers with the
//! stored result; otherwise it loads every stream the decision reads (from a cache of folded
//! states plus the events appended since), decides, seals every personal field under its
//! subject's key ([`keys`]), and appends all written streams atomically with the versions it
//! loaded as expected versions. A concurrency conflict means another command changed one of
//! those streams in between: it decides again on fresh state, a bounded number of times.
//!
//! Architecture invariant: no HTTP here and no SQL except the key table. Authorisation (who may
//! run which command) happens in the caller; this crate records who did it.

pub mod erasures;
pub mod keys;
pub mod view;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use caretrail_domain::{
    Actor, Command, Context, DirectorId, Event, Personal, Policy, Rejection, RejectionKind, State,
    States, StreamName, decide, streams_to_load,
};
use caretrail_store::{
    AppendRequest, AppendResult, EventStore, ExpectedVersion, Metadata, NewEvent, StoreError,
    StreamAppend, StreamId,
};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use uuid::Uuid;

pub use keys::{KeyError, KeyRing, MasterKey};

/// How many times a command is decided again after a concurrency conflict.
pub const MAX_ATTEMPTS: u32 = 8;

/// Folded states kept in memory before the cache is emptied.
const STATE_CACHE_LIMIT: usize = 20_000;

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The domain refused the command; [`Rejection::code`] says why.
    #[error("command rejected: {0}")]
    Rejected(Rejection),
    /// The caller's expected version of the command's primary stream (HTTP `If-Match`) is not
    /// its current version.
    #[error("stream {stream} is at version {actual}, not the expected {expected}")]
    PreconditionFailed {
        /// The stream the precondition was about.
        stream: String,
        /// The version the caller expected.
        expected: u64,
        /// The stream's version when the command was decided.
        actual: u64,
    },
    /// Other commands kept changing the same streams; the caller may retry.
    #[error("the command conflicted with concurrent changes {0} times in a row")]
    Contention(u32),
    /// A stored event could not be read back into the domain.
    #[error("stored event at position {position} cannot be read: {reason}")]
    Unreadable {
        /// The event's position in the log (0 for an event just decided, not yet stored).
        position: u64,
        /// Why it could not be read.
        reason: String,
    },
    /// Personal data could not be sealed (e.g. the subject was erased).
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a caller should read a failure: the HTTP layer answers each class with one status and
/// every failure with [`AppError::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The command's input is wrong whatever the world holds (HTTP 422).
    InvalidInput,
    /// The world does not allow it now: a domain rule, or a concurrent change (HTTP 409).
    Conflict,
    /// This caller may not do it (HTTP 403).
    NotPermitted,
    /// The caller's expected stream version is not the current one (HTTP 412).
    PreconditionFailed,
    /// The database cannot serve now; a retry later may succeed (HTTP 503).
    Unavailable,
    /// A defect or corruption on the server's side (HTTP 500).
    Internal,
}

impl AppError {
    /// The stable machine-readable code clients see: the HTTP API answers every failure of a
    /// command with exactly this code, so it is the one list of them. Server-side failures
    /// share `internal_error` (their cause goes to the log, not to the client).
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Rejected(r) => r.code(),
            AppError::PreconditionFailed { .. } => "stream_version_mismatch",
            AppError::Keys(KeyError::SubjectErased(_)) => "subject_erased",
            AppError::Contention(_) => "concurrency_conflict",
            AppError::Store(StoreError::WrongExpectedVersion { .. }) => "concurrency_conflict",
            AppError::Store(StoreError::DuplicateEventId(_)) => "duplicate_event_id",
            AppError::Store(StoreError::InvalidAppend(_) | StoreError::InvalidStreamId(_)) => {
                "validation_failed"
            }
            e => match e.class() {
                ErrorClass::Unavailable => "store_unavailable",
                _ => "internal_error",
            },
        }
    }

    /// How a caller should read this failure.
    pub fn class(&self) -> ErrorClass {
        match self {
            AppError::Rejected(r) => match r.kind() {
                RejectionKind::InvalidInput => ErrorClass::InvalidInput,
                RejectionKind::StateConflict => ErrorClass::Conflict,
                RejectionKind::NotPermitted => ErrorClass::NotPermitted,
            },
            AppError::PreconditionFailed { .. } => ErrorClass::PreconditionFailed,
            AppError::Contention(_) | AppError::Keys(KeyError::SubjectErased(_)) => {
                ErrorClass::Conflict
            }
            AppError::Store(StoreError::WrongExpectedVersion { .. })
            | AppError::Store(StoreError::DuplicateEventId(_)) => ErrorClass::Conflict,
            AppError::Store(StoreError::InvalidAppend(_) | StoreError::InvalidStreamId(_)) => {
                ErrorClass::InvalidInput
            }
            // An unreachable or full database is "retry later"; anything else from it (a
            // corrupt row, a constraint the code should have prevented) is a server fault.
            AppError::Store(e) if e.is_unavailable() => ErrorClass::Unavailable,
            AppError::Keys(e) if e.is_unavailable() => ErrorClass::Unavailable,
            AppError::Store(_) | AppError::Keys(_) | AppError::Unreadable { .. } => {
                ErrorClass::Internal
            }
        }
    }
}

/// Who runs a command and why: recorded with every event it produces.
#[derive(Clone, Debug)]
pub struct CommandMeta {
    /// The acting user's id.
    pub actor_id: Uuid,
    /// The role they act in (`admin`, `director`, `system`, ...).
    pub actor_role: String,
    /// The director they act as, for a director's command (from their token): the domain's
    /// rules that depend on who acts need it (a director's visit is led by that director).
    pub director: Option<Uuid>,
    /// Makes the command idempotent: a retry with the same id gets the first result.
    pub command_id: Uuid,
    /// Shared by everything one user action set off (defaults to the command id).
    pub correlation_id: Option<Uuid>,
    /// What directly caused this command, if anything.
    pub causation_id: Option<Uuid>,
    /// Whether this command id may have been stored before (a client retry). A fresh id made
    /// by the server cannot be, and skipping the lookup saves a query per command.
    pub may_be_retry: bool,
}

impl CommandMeta {
    /// A command by `actor_id` in `role` with a fresh command id.
    pub fn new(actor_id: Uuid, role: impl Into<String>) -> Self {
        Self {
            actor_id,
            actor_role: role.into(),
            director: None,
            command_id: Uuid::now_v7(),
            correlation_id: None,
            causation_id: None,
            may_be_retry: true,
        }
    }
}

/// Where "now" comes from; tests and the demo pin it.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that always says the same time.
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// The business calendar's date at `t`: Asia/Shanghai, which has been UTC+8 without daylight
/// saving since 1991, so a fixed offset is exact for every date this system records.
pub fn shanghai_date(t: DateTime<Utc>) -> NaiveDate {
    let offset = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    t.with_timezone(&offset).date_naive()
}

/// The command handler.
pub struct App {
    store: Arc<dyn EventStore>,
    keys: Arc<KeyRing>,
    policy: Policy,
    clock: Arc<dyn Clock>,
    states: Mutex<HashMap<StreamName, (u64, State)>>,
}

impl App {
    /// A command handler over `store`, sealing personal values with `keys`, deciding under
    /// `policy`, with "now" from `clock`.
    pub fn new(
        store: Arc<dyn EventStore>,
        keys: Arc<KeyRing>,
        policy: Policy,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            keys,
            policy,
            clock,
            states: Mutex::new(HashMap::new()),
        }
    }

    /// The event store commands are appended to.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// The key ring that seals and opens personal values.
    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    /// The configurable rules commands are decided under.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Where "now" comes from.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Runs `command` on behalf of `meta`'s actor.
    pub async fn execute(
        &self,
        command: &Command,
        meta: &CommandMeta,
    ) -> Result<AppendResult, AppError> {
        self.execute_expecting(command, meta, None).await
    }

    /// Runs `command`, first checking that its primary stream (the first one it reads: the
    /// aggregate it is about) is at `expected` version, when given.
    #[tracing::instrument(name = "app.execute", skip_all, fields(command = command.name(), command_id = %meta.command_id))]
    pub async fn execute_expecting(
        &self,
        command: &Command,
        meta: &CommandMeta,
        expected: Option<u64>,
    ) -> Result<AppendResult, AppError> {
        if meta.may_be_retry
            && let Some(done) = self.store.command_result(meta.command_id).await?
        {
            self.after_commit(command).await?;
            return Ok(done);
        }
        for attempt in 1..=MAX_ATTEMPTS {
            // The first attempt trusts that a stream the command creates does not exist yet
            // (one read fewer per creation); a conflict sends the next attempt to read it.
            match self.attempt(command, meta, expected, attempt == 1).await {
                Err(AppError::Store(e)) if e.is_conflict() => {
                    tracing::debug!(attempt, "conflict; deciding again on fresh state");
                    // A concurrent retry of this very command may have won.
                    if let Some(done) = self.store.command_result(meta.command_id).await? {
                        self.after_commit(command).await?;
                        return Ok(done);
                    }
                }
                Ok(result) => {
                    self.after_commit(command).await?;
                    return Ok(result);
                }
                Err(e) => return Err(e),
            }
        }
        Err(AppError::Contention(MAX_ATTEMPTS))
    }

    /// Effects outside the log that follow a stored command. Erasure destroys the key after
    /// the `PersonalDataErased` event is stored, so the log never claims an erasure that did
    /// not happen for long: a crash in between is repaired by retrying the command, which
    /// finds the stored result and erases again (erasing is idempotent).
    async fn after_commit(&self, command: &Command) -> Result<(), AppError> {
        match command {
            Command::ErasePersonalData(c) => self.keys.erase(c.subject_id).await?,
            // A subscription's signing secrets are sealed under its own key
            // (caretrail-integrations); destroying the key destroys every copy of them.
            Command::DeleteSubscription(c) => self.keys.erase(c.subscription_id.uuid()).await?,
            _ => {}
        }
        Ok(())
    }

    async fn attempt(
        &self,
        command: &Command,
        meta: &CommandMeta,
        expected: Option<u64>,
        optimistic: bool,
    ) -> Result<AppendResult, AppError> {
        let created = if optimistic && expected.is_none() {
            caretrail_domain::stream_created(command)
        } else {
            None
        };
        let mut states = States::new();
        let mut versions: HashMap<StreamName, u64> = HashMap::new();
        let primary = streams_to_load(command, &states).first().copied();
        loop {
            let wanted: Vec<StreamName> = streams_to_load(command, &states)
                .into_iter()
                .filter(|s| !states.contains(s))
                .collect();
            if wanted.is_empty() {
                break;
            }
            for stream in wanted {
                if created == Some(stream) {
                    versions.insert(stream, 0);
                    states.insert(stream, State::initial(stream.category));
                    continue;
                }
                let (version, state) = self.load(&stream).await?;
                versions.insert(stream, version);
                states.insert(stream, state);
            }
        }
        if let (Some(expected), Some(primary)) = (expected, primary) {
            let actual = versions.get(&primary).copied().unwrap_or(0);
            if actual != expected {
                return Err(AppError::PreconditionFailed {
                    stream: primary.to_string(),
                    expected,
                    actual,
                });
            }
        }
        let now = self.clock.now();
        let ctx = Context {
            today: shanghai_date(now),
            actor: Actor {
                id: meta.actor_id,
                director: meta.director.map(DirectorId),
            },
            policy: &self.policy,
        };
        let decided = decide(&states, command, &ctx).map_err(AppError::Rejected)?;

        let mut appends: Vec<StreamAppend> = Vec::new();
        for (stream, mut event) in decided {
            let event_id = Uuid::now_v7();
            seal_event(&self.keys, &mut event, event_id).await?;
            let data = event.to_data().map_err(|e| AppError::Unreadable {
                position: 0,
                reason: format!("decided event does not serialise: {e}"),
            })?;
            let new = NewEvent {
                event_id,
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                data: data.to_string(),
                business_date: event.business_date(),
            };
            let id = store_id(&stream)?;
            match appends.iter_mut().find(|a| a.stream == id) {
                Some(a) => a.events.push(new),
                None => appends.push(StreamAppend {
                    expected: ExpectedVersion::Exact(versions.get(&stream).copied().unwrap_or(0)),
                    stream: id,
                    events: vec![new],
                }),
            }
        }
        if appends.is_empty() {
            // Nothing to write is still an answer: record the command id so a retry agrees.
            appends.push(StreamAppend {
                stream: StreamId::new(format!("command-{}", meta.command_id))?,
                expected: ExpectedVersion::NoStream,
                events: vec![],
            });
        }
        let metadata = Metadata {
            actor_id: meta.actor_id.to_string(),
            actor_role: meta.actor_role.clone(),
            command_id: Some(meta.command_id),
            correlation_id: Some(meta.correlation_id.unwrap_or(meta.command_id)),
            causation_id: meta.causation_id,
        };
        Ok(self
            .store
            .append(AppendRequest {
                streams: appends,
                metadata,
            })
            .await?)
    }

    /// A domain stream's current version and folded state (for authorisation checks and
    /// read-side questions that need the aggregate, not a projection).
    pub async fn state(&self, stream: &StreamName) -> Result<(u64, State), AppError> {
        self.load(stream).await
    }

    /// A stream's current version and folded state, from the cache plus newer events.
    async fn load(&self, stream: &StreamName) -> Result<(u64, State), AppError> {
        let cached = self
            .states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(stream)
            .cloned();
        let (mut version, mut state) =
            cached.unwrap_or_else(|| (0, State::initial(stream.category)));
        let id = store_id(stream)?;
        loop {
            let events = self.store.read_stream(&id, version + 1, 1000).await?;
            let Some(last) = events.last() else { break };
            let last_version = last.stream_version;
            for e in &events {
                state = caretrail_domain::evolve(state, &to_domain(e)?);
            }
            version = last_version;
        }
        let mut cache = self.states.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= STATE_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(*stream, (version, state.clone()));
        Ok((version, state))
    }

    /// Every event of a domain stream, read back into the domain (personal fields still
    /// sealed).
    pub async fn read_domain_stream(&self, stream: &StreamName) -> Result<Vec<Event>, AppError> {
        let id = store_id(stream)?;
        let mut out = Vec::new();
        let mut from = 1;
        loop {
            let events = self.store.read_stream(&id, from, 1000).await?;
            let Some(last) = events.last() else { break };
            from = last.stream_version + 1;
            for e in &events {
                out.push(to_domain(e)?);
            }
        }
        Ok(out)
    }
}

/// Replaces every plain personal field of `event` with its sealed form, bound to `event_id`.
pub async fn seal_event(keys: &KeyRing, event: &mut Event, event_id: Uuid) -> Result<(), KeyError> {
    // The visitor is synchronous and sealing may touch the key table, so collect first.
    let mut plain = Vec::new();
    event.personal_fields_mut(&mut |r, v| {
        if let Personal::Plain(text) = v {
            plain.push((r.subject, text.clone()));
        }
    });
    let mut sealed = Vec::with_capacity(plain.len());
    for (subject, text) in &plain {
        sealed.push(keys.seal(*subject, event_id, text).await?);
    }
    let mut sealed = sealed.into_iter();
    event.personal_fields_mut(&mut |_, v| {
        if matches!(v, Personal::Plain(_))
            && let Some(s) = sealed.next()
        {
            *v = Personal::Sealed(s);
        }
    });
    Ok(())
}

/// The store's id for a domain stream name.
pub fn store_id(stream: &StreamName) -> Result<StreamId, StoreError> {
    StreamId::new(stream.to_string())
}

/// Reads a stored event back into the domain, upcasting old versions.
pub fn to_domain(e: &caretrail_store::RecordedEvent) -> Result<Event, AppError> {
    let unreadable = |reason: String| AppError::Unreadable {
        position: e.position,
        reason,
    };
    let data: serde_json::Value =
        serde_json::from_str(&e.data).map_err(|err| unreadable(err.to_string()))?;
    Event::from_data(&e.event_type, e.schema_version, data)
        .map_err(|err| unreadable(err.to_string()))
}
