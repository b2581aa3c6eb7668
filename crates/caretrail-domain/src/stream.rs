//! Stream names: `"{category}-{uuid}"`.
//!
//! Every aggregate instance has one stream in the event store. The category comes first and
//! contains no `-`, so the store (and read models) can split a name at the first `-`.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// The aggregate kinds, each a stream category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// A model worker's file.
    ModelWorker,
    /// A director.
    Director,
    /// A pairing.
    Pairing,
    /// A visit.
    Visit,
    /// An issue.
    Issue,
    /// A body.
    Body,
    /// A daily contact.
    Contact,
    /// Erasure requests for one data subject.
    Privacy,
    /// An integration's subscription to the log (its target, filter and state changes).
    Subscription,
    /// An account a person signs in with (its role and state changes; never its password).
    Account,
}

impl Category {
    /// All categories.
    pub const ALL: [Category; 10] = [
        Category::ModelWorker,
        Category::Director,
        Category::Pairing,
        Category::Visit,
        Category::Issue,
        Category::Body,
        Category::Contact,
        Category::Privacy,
        Category::Subscription,
        Category::Account,
    ];

    /// The prefix used in stream names.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::ModelWorker => "modelworker",
            Category::Director => "director",
            Category::Pairing => "pairing",
            Category::Visit => "visit",
            Category::Issue => "issue",
            Category::Body => "body",
            Category::Contact => "contact",
            Category::Privacy => "privacy",
            Category::Subscription => "subscription",
            Category::Account => "account",
        }
    }
}

/// The name of one stream: a category and an aggregate id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamName {
    /// The aggregate kind.
    pub category: Category,
    /// The aggregate id.
    pub id: Uuid,
}

impl StreamName {
    /// A stream name from its parts.
    pub fn new(category: Category, id: impl Into<Uuid>) -> StreamName {
        StreamName {
            category,
            id: id.into(),
        }
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.category.as_str(), self.id)
    }
}

/// Why a string is not a stream name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a caretrail stream name (expected \"{{category}}-{{uuid}}\")")]
pub struct StreamNameError;

impl FromStr for StreamName {
    type Err = StreamNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (cat, id) = s.split_once('-').ok_or(StreamNameError)?;
        let category = Category::ALL
            .into_iter()
            .find(|c| c.as_str() == cat)
            .ok_or(StreamNameError)?;
        let id = Uuid::parse_str(id).map_err(|_| StreamNameError)?;
        Ok(StreamName { category, id })
    }
}

impl From<crate::ModelWorkerId> for Uuid {
    fn from(v: crate::ModelWorkerId) -> Uuid {
        v.0
    }
}
impl From<crate::DirectorId> for Uuid {
    fn from(v: crate::DirectorId) -> Uuid {
        v.0
    }
}
impl From<crate::PairingId> for Uuid {
    fn from(v: crate::PairingId) -> Uuid {
        v.0
    }
}
impl From<crate::VisitId> for Uuid {
    fn from(v: crate::VisitId) -> Uuid {
        v.0
    }
}
impl From<crate::IssueId> for Uuid {
    fn from(v: crate::IssueId) -> Uuid {
        v.0
    }
}
impl From<crate::BodyId> for Uuid {
    fn from(v: crate::BodyId) -> Uuid {
        v.0
    }
}
impl From<crate::ContactId> for Uuid {
    fn from(v: crate::ContactId) -> Uuid {
        v.0
    }
}
impl From<crate::SubscriptionId> for Uuid {
    fn from(v: crate::SubscriptionId) -> Uuid {
        v.0
    }
}
impl From<crate::AccountId> for Uuid {
    fn from(v: crate::AccountId) -> Uuid {
        v.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let name = StreamName::new(Category::ModelWorker, Uuid::from_u128(7));
        let text = name.to_string();
        assert_eq!(text, "modelworker-00000000-0000-0000-0000-000000000007");
        assert_eq!(text.parse::<StreamName>(), Ok(name));
        assert!(
            "visitx-00000000-0000-0000-0000-000000000007"
                .parse::<StreamName>()
                .is_err()
        );
    }
}
