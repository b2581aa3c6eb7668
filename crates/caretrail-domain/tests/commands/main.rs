//! Given/when/then tests of every command: the exact events when accepted, and the exact code
//! of every refusal.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

use caretrail_domain::Category::*;
use caretrail_domain::command::*;
use caretrail_domain::event::*;
use caretrail_domain::testing::{TEST_ACTOR, given};
use caretrail_domain::vocab::*;
use caretrail_domain::*;
use common::*;

mod account;
mod contact_and_privacy;
mod director;
mod model_worker;
mod pairing;
mod visit;
