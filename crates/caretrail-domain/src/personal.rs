//! Personal data markers: plaintext in memory, ciphertext in the log, erased on the read side.
//!
//! The domain does no cryptography. It marks every personal field with [`Personal`] and offers a
//! visitor over those fields (the `personal_fields_mut` method of each event), so the command
//! handler can seal them before storing and readers can unseal them or mark them erased. Storing
//! plaintext is made impossible rather than merely discouraged: serializing a
//! [`Personal::Plain`] (or an [`Personal::Erased`]) fails, so such an event cannot reach the log.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// The message of the serialization error raised for plaintext personal data.
pub const PLAIN_NOT_STORABLE: &str = "personal data must be sealed before it is stored";
/// The message of the serialization error raised for erased personal data.
pub const ERASED_NOT_STORABLE: &str =
    "erased personal data is a read-side state and cannot be stored";

/// The deserialization error of a personal value that is neither a string nor a sealed object.
pub const PERSONAL_WRONG_TYPE: &str =
    "personal data must be a string (in commands) or a sealed object (in events)";

/// The stored form of a personal value: encrypted by the crypto layer under the subject's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    /// Whose data key sealed the value (a model worker, director or person id).
    pub subject: Uuid,
    /// The AEAD nonce, encoded by the crypto layer.
    pub nonce: String,
    /// The ciphertext with its tag, encoded by the crypto layer.
    pub ciphertext: String,
}

/// A personal value: names, phone, address, health and family findings, free-text notes.
#[derive(Clone, PartialEq, Eq)]
pub enum Personal {
    /// Plaintext, only ever in memory: in commands, in decided events before sealing, and in read
    /// models after unsealing.
    Plain(String),
    /// The only form that may be stored.
    Sealed(Sealed),
    /// The subject's key was destroyed: the value can no longer be read.
    Erased,
}

impl Personal {
    /// Plaintext from a string.
    pub fn plain(s: impl Into<String>) -> Personal {
        Personal::Plain(s.into())
    }

    /// The plaintext, when this value is plain.
    pub fn as_plain(&self) -> Option<&str> {
        match self {
            Personal::Plain(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Debug for Personal {
    /// Debug output never prints plaintext, so personal data cannot leak through logs or panics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Personal::Plain(s) => write!(f, "Plain(<{} chars redacted>)", s.chars().count()),
            Personal::Sealed(s) => write!(f, "Sealed(subject {})", s.subject),
            Personal::Erased => f.write_str("Erased"),
        }
    }
}

impl Serialize for Personal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Personal::Sealed(sealed) => sealed.serialize(serializer),
            Personal::Plain(_) => Err(serde::ser::Error::custom(PLAIN_NOT_STORABLE)),
            Personal::Erased => Err(serde::ser::Error::custom(ERASED_NOT_STORABLE)),
        }
    }
}

impl<'de> Deserialize<'de> for Personal {
    /// A JSON string is plaintext (the command form); a JSON object is the sealed (stored) form.
    /// The decision rejects commands whose personal fields are not plain, so a client cannot
    /// smuggle ciphertext of its own into the log.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Plain(String),
            Sealed(Sealed),
        }
        match Repr::deserialize(deserializer) {
            Ok(Repr::Plain(s)) => Ok(Personal::Plain(s)),
            Ok(Repr::Sealed(s)) => Ok(Personal::Sealed(s)),
            Err(_) => Err(serde::de::Error::custom(PERSONAL_WRONG_TYPE)),
        }
    }
}

impl JsonSchema for Personal {
    fn schema_name() -> Cow<'static, str> {
        "Personal".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let sealed = generator.subschema_for::<Sealed>();
        json_schema!({
            "description": "Personal data. Commands carry it as a plain string; stored events carry it only as a Sealed object (plaintext is refused at serialization).",
            "oneOf": [
                { "type": "string", "description": "plaintext, in commands only" },
                sealed
            ]
        })
    }
}

/// Names a personal field for the visitor: whose data it is and which field, stable across
/// versions, so the crypto layer can bind the ciphertext to event id + subject + field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PersonalRef {
    /// The data subject whose key seals the field.
    pub subject: Uuid,
    /// A stable field path such as `name`, `findings.health` or `participants.2.name`.
    pub field: Cow<'static, str>,
}

impl PersonalRef {
    /// A field with a fixed name.
    pub fn new(subject: Uuid, field: &'static str) -> PersonalRef {
        PersonalRef {
            subject,
            field: Cow::Borrowed(field),
        }
    }

    /// A field inside a list, e.g. `participants.2.name`.
    pub fn indexed(subject: Uuid, list: &str, index: usize, field: &str) -> PersonalRef {
        PersonalRef {
            subject,
            field: Cow::Owned(format!("{list}.{index}.{field}")),
        }
    }
}

/// The visitor signature shared by events and commands.
pub type PersonalVisitor<'a> = dyn FnMut(PersonalRef, &mut Personal) + 'a;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_cannot_be_serialized() {
        let err = serde_json::to_string(&Personal::plain("张三")).unwrap_err();
        assert!(err.to_string().contains(PLAIN_NOT_STORABLE));
        let err = serde_json::to_string(&Personal::Erased).unwrap_err();
        assert!(err.to_string().contains("read-side state"));
    }

    #[test]
    fn sealed_round_trips_and_strings_read_as_plain() {
        let sealed = Personal::Sealed(Sealed {
            subject: Uuid::from_u128(1),
            nonce: "n".into(),
            ciphertext: "c".into(),
        });
        let json = serde_json::to_string(&sealed).unwrap();
        assert_eq!(serde_json::from_str::<Personal>(&json).unwrap(), sealed);
        assert_eq!(
            serde_json::from_str::<Personal>("\"王\"").unwrap(),
            Personal::plain("王")
        );
        assert!(serde_json::from_str::<Personal>("12").is_err());
    }

    #[test]
    fn debug_output_redacts_plaintext() {
        assert!(!format!("{:?}", Personal::plain("张三")).contains("张三"));
    }
}
