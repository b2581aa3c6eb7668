//! What an integration's subscription is made of: which events it takes ([`Filter`]) and
//! where they go ([`Delivery`]), with the rules that need no IO.
//!
//! A subscription is an aggregate of its own (`subscription-…` streams): creating, pausing,
//! resuming, rewinding, rotating its secret, disabling and deleting it are commands whose events
//! are in the log, because who started sending which data where is itself audit history. Its
//! delivery state (the cursor, failures, attempts) changes with every delivery and lives beside
//! the log, in the integrations crate's tables.
//!
//! The rules that need the network (a webhook URL's host must resolve to a public address) are
//! checked by the integrations crate, at creation and again on every attempt; the domain checks
//! the shape: a URL of at most [`MAX_URL_LEN`] bytes with an `https://` or `http://` scheme and
//! no credentials, and a NATS subject prefix of plain tokens.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::EVENT_TYPES;
use crate::rejection::Rejection;
use crate::stream::Category;

/// The longest webhook URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// The longest NATS subject prefix accepted, in bytes.
pub const MAX_PREFIX_LEN: usize = 200;
/// The most event types or categories one filter may list.
pub const MAX_FILTER_ENTRIES: usize = 64;
/// The longest grace period of a rotated secret: a week, time enough for a receiver's operators
/// to deploy the new secret, short enough that a leaked old one stops working.
pub const MAX_GRACE_SECONDS: u32 = 7 * 24 * 3600;
/// The grace period of a rotated secret when the command gives none: a day.
pub const DEFAULT_GRACE_SECONDS: u32 = 24 * 3600;
/// The longest subscription name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Which events a subscription takes. An empty list does not restrict; both lists empty take
/// every event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Only these event types (`VisitRecorded`, `IssueEscalated`, ...).
    // Left out when empty, so the type reads the same as a request and as an answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub types: Vec<String>,
    /// Only events of streams of these categories (`visit`, `issue`, `pairing`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub categories: Vec<String>,
}

impl Filter {
    /// Checks that every type and category exists (a misspelt type would silently deliver
    /// nothing) and that neither list is too long; returns the filter with duplicates removed
    /// and each list sorted, so two equal filters are stored alike.
    pub fn checked(&self) -> Result<Filter, Rejection> {
        if self.types.len() > MAX_FILTER_ENTRIES || self.categories.len() > MAX_FILTER_ENTRIES {
            return Err(Rejection::SubscriptionFilterTooLong);
        }
        if let Some(i) = self
            .types
            .iter()
            .position(|t| !EVENT_TYPES.contains(&t.as_str()))
        {
            return Err(Rejection::SubscriptionFilterUnknown {
                field: format!("filter.types[{i}]"),
            });
        }
        if let Some(i) = self
            .categories
            .iter()
            .position(|c| !Category::ALL.iter().any(|k| k.as_str() == c))
        {
            return Err(Rejection::SubscriptionFilterUnknown {
                field: format!("filter.categories[{i}]"),
            });
        }
        let mut out = self.clone();
        out.types.sort();
        out.types.dedup();
        out.categories.sort();
        out.categories.dedup();
        Ok(out)
    }
}

/// Where a subscription's events go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Delivery {
    /// Each event is POSTed to `url` as a CloudEvents JSON body signed per Standard Webhooks.
    Webhook {
        /// The receiver's URL (`https://`; plain `http://` and private addresses only when the
        /// server allows them). Recorded in the log: put no secrets in it.
        #[schemars(
            length(min = 1, max = 2048),
            regex(pattern = r"^https?://[^/?#@\s]+([/?][^#\s]*)?$")
        )]
        url: String,
    },
    /// Each event is published to the server's NATS JetStream stream.
    Nats {
        /// The first subject tokens (default `caretrail`): events go to
        /// `<prefix>.<category>.<EventType>`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(
            length(min = 1, max = 200),
            regex(pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
        )]
        subject_prefix: Option<String>,
    },
}

impl Delivery {
    /// The delivery's kind as the API names it: `webhook` or `nats`.
    pub fn kind(&self) -> &'static str {
        match self {
            Delivery::Webhook { .. } => "webhook",
            Delivery::Nats { .. } => "nats",
        }
    }

    /// Checks the target's shape (see the module doc).
    pub fn check(&self) -> Result<(), Rejection> {
        match self {
            Delivery::Webhook { url } => check_url_shape(url),
            Delivery::Nats {
                subject_prefix: Some(prefix),
            } => check_subject_prefix(prefix),
            Delivery::Nats {
                subject_prefix: None,
            } => Ok(()),
        }
    }
}

/// Why a subscription was disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionDisableReason {
    /// The receiver answered `410 Gone`: it asked not to be sent anything more.
    Gone,
    /// Every attempt failed for the whole retry schedule.
    Failing,
    /// An administrator stopped it.
    Administrator,
}

impl SubscriptionDisableReason {
    /// The reason as the API and the tables name it.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionDisableReason::Gone => "gone",
            SubscriptionDisableReason::Failing => "failing",
            SubscriptionDisableReason::Administrator => "administrator",
        }
    }
}

/// A webhook URL's shape: scheme, a host, no userinfo (it would be written into the log), at
/// most [`MAX_URL_LEN`] bytes, no whitespace.
pub fn check_url_shape(url: &str) -> Result<(), Rejection> {
    let invalid = || Rejection::SubscriptionUrlInvalid;
    if url.len() > MAX_URL_LEN || url.chars().any(char::is_whitespace) {
        return Err(invalid());
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(invalid)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.starts_with(':') {
        return Err(invalid());
    }
    if authority.contains('@') {
        return Err(Rejection::SubscriptionUrlCredentials);
    }
    Ok(())
}

/// A NATS subject prefix: one or more dot-separated tokens of ASCII letters, digits, `_` and
/// `-`, at most [`MAX_PREFIX_LEN`] bytes; no wildcards, so a subscription publishes only
/// under its own subjects.
pub fn check_subject_prefix(prefix: &str) -> Result<(), Rejection> {
    let token_ok = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if prefix.len() > MAX_PREFIX_LEN || !prefix.split('.').all(token_ok) {
        return Err(Rejection::SubscriptionSubjectPrefixInvalid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_shapes() {
        for ok in [
            "https://example.com/hook",
            "https://example.com",
            "http://127.0.0.1:8080/x?y=1",
            "https://[2001:db8::1]:443/a",
        ] {
            assert_eq!(check_url_shape(ok), Ok(()), "{ok}");
        }
        for bad in [
            "ftp://example.com/",
            "https://",
            "https:///path",
            "example.com",
            "https://exa mple.com/",
            "https://:443/",
        ] {
            assert_eq!(
                check_url_shape(bad),
                Err(Rejection::SubscriptionUrlInvalid),
                "{bad}"
            );
        }
        assert_eq!(
            check_url_shape("https://user:pw@example.com/"),
            Err(Rejection::SubscriptionUrlCredentials)
        );
        assert_eq!(
            check_url_shape(&format!("https://e.com/{}", "a".repeat(MAX_URL_LEN))),
            Err(Rejection::SubscriptionUrlInvalid)
        );
    }

    #[test]
    fn subject_prefixes() {
        for ok in ["caretrail", "a.b-c.d_e", "x1"] {
            assert_eq!(check_subject_prefix(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a..b", "a.*", "a.>", "a b", ".a", "a.", "中文"] {
            assert_eq!(
                check_subject_prefix(bad),
                Err(Rejection::SubscriptionSubjectPrefixInvalid),
                "{bad}"
            );
        }
    }

    #[test]
    fn filters_name_the_unknown_entry_and_are_normalised() {
        let f = Filter {
            types: vec!["VisitRecorded".into(), "Nope".into()],
            categories: vec![],
        };
        assert_eq!(
            f.checked(),
            Err(Rejection::SubscriptionFilterUnknown {
                field: "filter.types[1]".into()
            })
        );
        let f = Filter {
            types: vec![
                "VisitRecorded".into(),
                "IssueRaised".into(),
                "VisitRecorded".into(),
            ],
            categories: vec!["visit".into()],
        };
        let checked = f.checked().unwrap();
        assert_eq!(checked.types, vec!["IssueRaised", "VisitRecorded"]);
        let f = Filter {
            types: vec![],
            categories: vec!["subscriptions".into()],
        };
        assert!(f.checked().is_err());
    }
}
