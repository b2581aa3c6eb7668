//! The care domain of caretrail: commands, events and rules of the pairing-assistance
//! programme (常务理事结对帮扶), as pure functions.
//!
//! **Architecture invariant:** this crate does no IO. It has no async, no database, no clock and
//! no randomness: today's date, the actor and ids are passed in, so every rule is tested with
//! given/when/then and no store.
//!
//! # How the command handler uses it
//!
//! 1. Parse the HTTP body: [`Command::parse`]`(name, json)`.
//! 2. Ask [`streams_to_load`]`(&command, &states)`, load and fold each stream
//!    ([`State::fold`] / [`evolve`]) into a [`States`], remembering each stream's version; repeat
//!    until no new stream is named (two rounds at most).
//! 3. [`decide()`]`(&states, &command, &Context { today, actor, policy })` gives
//!    `Vec<(StreamName, Event)>` or a [`Rejection`] with a stable code.
//! 4. Seal personal fields of each event with [`Event::personal_fields_mut`] (AEAD bound to event
//!    id + [`PersonalRef::subject`] + [`PersonalRef::field`]), then serialize with
//!    [`Event::to_data`] (which refuses plaintext), storing [`Event::event_type`] and
//!    [`Event::schema_version`] beside the data.
//! 5. Append every written stream with the version loaded in step 2 as its expected version, in
//!    one transaction; on a conflict, go back to step 2 (a bounded number of times).
//! 6. Read with [`Event::from_data`], which upcasts old schema versions first.
//!
//! # Why cross-aggregate rules write to every stream they read
//!
//! "One active pairing per director and per model worker" spans three aggregates. `AssignPair`
//! therefore writes `PairAssigned` to the pairing's stream, `DirectorPaired` to the director's
//! and `ModelWorkerPaired` to the model worker's; `EndPair`, `EndDirectorTerm` and `RecordDeath`
//! write `PairEnded`, `DirectorUnpaired` and `ModelWorkerUnpaired`. Two concurrent assignments
//! of one director then both expect the director stream's old version, and the second append
//! fails. Likewise a visit or contact writes `PairActivityLogged` to its pairing, so it conflicts
//! with a concurrent `EndPair`, and `EndPair` refuses an end date before the last activity.
//!
//! Each stream gets its own event type rather than one `PairAssigned` copied into three
//! streams, for two reasons: a stream's events then describe that aggregate only (the model
//! worker's timeline says "paired with director X"), and a projection reading the whole log
//! counts each fact once without de-duplicating copies. Streams whose facts only ever grow (a
//! body or a director exists) are read without being written to.
//!
//! # Personal data
//!
//! Personal values are [`Personal`]: plain in memory, [`Sealed`] in the log, `Erased` on the
//! read side after crypto-shredding. Serializing plaintext fails, so an unsealed event cannot
//! be stored by mistake. Decisions never depend on personal values, so erasure never changes
//! what a replay decides.

pub mod authority;
pub mod command;
pub mod decide;
pub mod demo;
pub mod event;
pub mod ids;
pub mod money;
pub mod parse;
pub mod personal;
pub mod region;
pub mod rejection;
pub mod schema;
pub mod state;
pub mod stream;
pub mod subscription;
pub mod testing;
pub mod text;
pub mod upcast;
pub mod vocab;

pub use authority::{Reach, Relation, Role, Scope, Subject, Touch};
pub use command::{Command, CommandKind, CommandParseError};
pub use decide::{
    Actor, Context, DEFAULT_MAX_GIFT_FEN, Decision, Policy, decide, stream_created, streams_to_load,
};
pub use event::Event;
pub use ids::*;
pub use money::{Fen, MoneyError};
pub use personal::{Personal, PersonalRef, Sealed};
pub use region::{RegionCode, RegionError};
pub use rejection::{Rejection, RejectionKind};
pub use state::{State, States, evolve};
pub use stream::{Category, StreamName};
pub use upcast::{UpcastError, upcast};
