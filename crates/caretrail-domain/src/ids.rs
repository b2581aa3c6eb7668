//! Typed identifiers.
//!
//! Every aggregate id is a `Uuid` wrapped in its own type so that a visit id can never be passed
//! where a pairing id is expected. Ids are chosen by the caller (the domain has no randomness):
//! the HTTP client or the command handler generates them, tests use fixed values.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
            JsonSchema,
        )]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fixed id from a 128-bit constant, for tests and demo data.
            pub const fn from_u128(v: u128) -> Self {
                $name(Uuid::from_u128(v))
            }

            /// The underlying uuid.
            pub fn uuid(&self) -> Uuid {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(v: Uuid) -> Self {
                $name(v)
            }
        }
    };
}

id_type!(
    /// A model worker (劳模), the cared-for person; also the personal-data subject of their file.
    ModelWorkerId
);
id_type!(
    /// A director (常务理事 or other officer); also the subject of the director's own personal data.
    DirectorId
);
id_type!(
    /// A pairing (结对) of one director with one model worker.
    PairingId
);
id_type!(
    /// A visit (走访慰问).
    VisitId
);
id_type!(
    /// An issue (问题 / 诉求) raised by or for a model worker.
    IssueId
);
id_type!(
    /// A body (union, department, association, volunteer team).
    BodyId
);
id_type!(
    /// A daily contact (日常联系) between visits.
    ContactId
);
id_type!(
    /// A person who is neither a model worker nor a director but is named in a record, e.g. a
    /// union official accompanying a visit. It is the subject whose key seals that name, so the
    /// person's name can be erased on its own.
    PersonId
);
id_type!(
    /// A subscription: an integration's durable, filtered feed of the log.
    SubscriptionId
);
id_type!(
    /// An account a person signs in with (a user name and password kept outside the log).
    AccountId
);
