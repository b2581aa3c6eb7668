//! Given/when/then for the pure decision, and an in-memory runner.
//!
//! `given(events).when(command).then(events)` folds the given events into states, loads
//! every stream [`streams_to_load`] names (an unknown stream is empty), decides, and compares the
//! decided events with the expected ones; `then_err(code)` expects a refusal with that code.
//! Both also check that the decision only writes to streams it asked to load: a write to any
//! other stream would escape the optimistic-concurrency check. The helper is public so that the
//! command handler's own tests can use the same vocabulary.

use chrono::NaiveDate;
use uuid::Uuid;

use crate::command::Command;
use crate::decide::{Actor, Context, Decision, Policy, decide, streams_to_load};
use crate::event::Event;
use crate::rejection::Rejection;
use crate::state::{State, States, evolve};
use crate::stream::StreamName;

/// The fixed "today" of tests unless set: a day after the demo visits.
pub fn default_today() -> NaiveDate {
    // 2021-11-01 is a valid date; `from_ymd_opt` returns `None` only for invalid dates.
    NaiveDate::from_ymd_opt(2021, 11, 1).unwrap_or_default()
}

/// The actor used by tests: an administrator (acting as no director).
pub const TEST_ACTOR: Actor = Actor {
    id: Uuid::from_u128(0xAC70),
    director: None,
};

/// An in-memory event log with per-stream states: enough to run commands end to end without a
/// store.
#[derive(Debug, Clone, Default)]
pub struct InMemory {
    /// Every stored event, in order.
    pub log: Vec<(StreamName, Event)>,
    states: States,
}

impl InMemory {
    /// An empty log.
    pub fn new() -> InMemory {
        InMemory::default()
    }

    /// Appends events without deciding (for `given`).
    pub fn append(&mut self, events: impl IntoIterator<Item = (StreamName, Event)>) {
        for (stream, event) in events {
            self.states.apply(stream, &event);
            self.log.push((stream, event));
        }
    }

    /// The states a command needs, loaded the way a command handler loads them.
    pub fn load_for(&self, command: &Command) -> (States, Vec<StreamName>) {
        let mut loaded = States::new();
        let mut names: Vec<StreamName> = Vec::new();
        loop {
            let wanted = streams_to_load(command, &loaded);
            let new: Vec<StreamName> = wanted.into_iter().filter(|s| !loaded.contains(s)).collect();
            if new.is_empty() {
                return (loaded, names);
            }
            for stream in new {
                let state = self
                    .states
                    .get(&stream)
                    .cloned()
                    .unwrap_or_else(|| State::initial(stream.category));
                loaded.insert(stream, state);
                names.push(stream);
            }
        }
    }

    /// Decides a command on the current states without storing the result.
    pub fn decide(&self, command: &Command, ctx: &Context<'_>) -> Result<Decision, Rejection> {
        let (states, names) = self.load_for(command);
        let decision = decide(&states, command, ctx)?;
        for (stream, event) in &decision {
            assert!(
                names.contains(stream),
                "{} wrote {} to {stream}, which streams_to_load did not name",
                command.name(),
                event.event_type()
            );
        }
        Ok(decision)
    }

    /// Decides and, when accepted, stores the events.
    pub fn execute(&mut self, command: &Command, ctx: &Context<'_>) -> Result<Decision, Rejection> {
        let decision = self.decide(command, ctx)?;
        self.append(decision.clone());
        Ok(decision)
    }

    /// The current state of a stream.
    pub fn state(&self, stream: &StreamName) -> State {
        self.states
            .get(stream)
            .cloned()
            .unwrap_or_else(|| State::initial(stream.category))
    }

    /// Folds a stream from the log again (checks that `evolve` alone explains the state).
    pub fn refold(&self, stream: &StreamName) -> State {
        self.log
            .iter()
            .filter(|(s, _)| s == stream)
            .fold(State::initial(stream.category), |st, (_, e)| evolve(st, e))
    }
}

/// Starts a test from events already in the log.
pub fn given(events: impl IntoIterator<Item = (StreamName, Event)>) -> Given {
    let mut store = InMemory::new();
    store.append(events);
    Given {
        store,
        today: default_today(),
        policy: Policy::default(),
        actor: TEST_ACTOR,
    }
}

/// The state before the command.
#[derive(Debug, Clone)]
pub struct Given {
    store: InMemory,
    today: NaiveDate,
    policy: Policy,
    actor: Actor,
}

impl Given {
    /// Sets who acts (default [`TEST_ACTOR`]).
    pub fn actor(mut self, actor: Actor) -> Given {
        self.actor = actor;
        self
    }

    /// Sets today's date.
    pub fn today(mut self, today: NaiveDate) -> Given {
        self.today = today;
        self
    }

    /// Sets the policy.
    pub fn policy(mut self, policy: Policy) -> Given {
        self.policy = policy;
        self
    }

    /// The command under test.
    pub fn when(self, command: impl Into<Command>) -> When {
        When {
            given: self,
            command: command.into(),
        }
    }
}

/// The state and the command.
#[derive(Debug, Clone)]
pub struct When {
    given: Given,
    command: Command,
}

impl When {
    /// Decides and returns the raw result.
    pub fn result(&self) -> Result<Decision, Rejection> {
        let ctx = Context {
            today: self.given.today,
            actor: self.given.actor,
            policy: &self.given.policy,
        };
        self.given.store.decide(&self.command, &ctx)
    }

    /// Expects exactly these events, in this order.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = (StreamName, Event)>) {
        let expected: Decision = expected.into_iter().collect();
        match self.result() {
            Ok(actual) => assert_eq!(
                actual,
                expected,
                "{} decided other events than expected",
                self.command.name()
            ),
            Err(r) => panic!("{} was refused with {}: {r}", self.command.name(), r.code()),
        }
    }

    /// Expects a refusal with this code.
    #[track_caller]
    pub fn then_err(self, code: &str) {
        match self.result() {
            Ok(events) => panic!(
                "{} was accepted, expected {code}; events: {:?}",
                self.command.name(),
                events
                    .iter()
                    .map(|(_, e)| e.event_type())
                    .collect::<Vec<_>>()
            ),
            Err(r) => assert_eq!(
                r.code(),
                code,
                "{} refused with another code: {r}",
                self.command.name()
            ),
        }
    }
}
