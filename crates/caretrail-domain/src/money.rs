//! Money as integer fen (1 yuan = 100 fen).
//!
//! Amounts never touch floating point: a [`Fen`] is a non-negative `i64`, all arithmetic is
//! checked, and deserialization accepts only JSON integers, so `1.5`, `100.0` and `1e3` are
//! rejected instead of being silently rounded. The type parses, it does not validate: once a
//! value of this type exists it is known to be a valid amount.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a number is not a valid amount of fen. Each variant has a stable machine code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Amounts are never negative: money given is recorded as given, refunds are not modelled.
    #[error("amount must not be negative")]
    Negative,
    /// The amount (or a sum of amounts) does not fit in an `i64` of fen.
    #[error("amount is too large")]
    Overflow,
    /// A decimal or exponent number was given where an integer number of fen is required.
    #[error("amount must be an integer number of fen (1 yuan = 100 fen), not a decimal number")]
    NotInteger,
}

impl MoneyError {
    /// The stable snake_case code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            MoneyError::Negative => "amount_negative",
            MoneyError::Overflow => "amount_overflow",
            MoneyError::NotInteger => "amount_not_integer",
        }
    }
}

/// A non-negative amount of money in fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fen(i64);

impl Fen {
    /// Zero fen.
    pub const ZERO: Fen = Fen(0);

    /// Parses an integer number of fen, rejecting negative values.
    pub const fn new(fen: i64) -> Result<Fen, MoneyError> {
        if fen < 0 {
            Err(MoneyError::Negative)
        } else {
            Ok(Fen(fen))
        }
    }

    /// Whole yuan, for readable fixtures: `Fen::from_yuan(1000)` is 1000.00 yuan.
    pub fn from_yuan(yuan: i64) -> Result<Fen, MoneyError> {
        let fen = yuan.checked_mul(100).ok_or(MoneyError::Overflow)?;
        Fen::new(fen)
    }

    /// The amount in fen.
    pub fn as_i64(self) -> i64 {
        self.0
    }

    /// Adds two amounts, failing on overflow rather than wrapping.
    pub fn checked_add(self, other: Fen) -> Result<Fen, MoneyError> {
        self.0
            .checked_add(other.0)
            .map(Fen)
            .ok_or(MoneyError::Overflow)
    }

    /// Subtracts, failing when the result would be negative.
    pub fn checked_sub(self, other: Fen) -> Result<Fen, MoneyError> {
        match self.0.checked_sub(other.0) {
            Some(v) => Fen::new(v),
            None => Err(MoneyError::Overflow),
        }
    }

    /// Sums amounts with checked arithmetic.
    pub fn sum<I: IntoIterator<Item = Fen>>(amounts: I) -> Result<Fen, MoneyError> {
        amounts.into_iter().try_fold(Fen::ZERO, Fen::checked_add)
    }
}

impl fmt::Display for Fen {
    /// Shows yuan with two decimals, e.g. `1234.50`; integer division keeps it exact.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl TryFrom<i64> for Fen {
    type Error = MoneyError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Fen::new(value)
    }
}

impl Serialize for Fen {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for Fen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FenVisitor;
        impl Visitor<'_> for FenVisitor {
            type Value = Fen;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer number of fen")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Fen, E> {
                Fen::new(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Fen, E> {
                i64::try_from(v)
                    .map_err(|_| E::custom(MoneyError::Overflow))
                    .and_then(|v| Fen::new(v).map_err(E::custom))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Fen, E> {
                match i64::try_from(v) {
                    Ok(v) => Fen::new(v).map_err(E::custom),
                    Err(_) if v < 0 => Err(E::custom(MoneyError::Negative)),
                    Err(_) => Err(E::custom(MoneyError::Overflow)),
                }
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Fen, E> {
                i64::try_from(v)
                    .map_err(|_| E::custom(MoneyError::Overflow))
                    .and_then(|v| Fen::new(v).map_err(E::custom))
            }
            // JSON parsers hand every decimal or exponent literal (`1.5`, `100.0`, `1e3`) to
            // this method, as well as integers too large for u64: all are refused, because
            // accepting `100.0` would invite client code that computes money in floats.
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Fen, E> {
                if v.is_finite() && v.abs() >= 9.2e18 {
                    Err(E::custom(MoneyError::Overflow))
                } else if v < 0.0 {
                    Err(E::custom(MoneyError::Negative))
                } else {
                    Err(E::custom(MoneyError::NotInteger))
                }
            }
        }
        deserializer.deserialize_any(FenVisitor)
    }
}

impl JsonSchema for Fen {
    fn schema_name() -> Cow<'static, str> {
        "Fen".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Money as a non-negative integer number of fen (1 yuan = 100 fen). Decimal numbers are rejected.",
            "type": "integer",
            "format": "int64",
            "minimum": 0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Fen, String> {
        serde_json::from_str::<Fen>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn integers_parse_and_display_as_yuan() {
        assert_eq!(parse("100"), Ok(Fen(100)));
        assert_eq!(Fen(100).to_string(), "1.00");
        assert_eq!(Fen(123_456).to_string(), "1234.56");
        assert_eq!(Fen(5).to_string(), "0.05");
        assert_eq!(parse("0"), Ok(Fen::ZERO));
        assert_eq!(parse(&i64::MAX.to_string()), Ok(Fen(i64::MAX)));
    }

    #[test]
    fn negative_amounts_are_rejected() {
        assert!(parse("-1").unwrap_err().contains("must not be negative"));
        assert_eq!(Fen::new(-1), Err(MoneyError::Negative));
        assert_eq!(MoneyError::Negative.code(), "amount_negative");
    }

    #[test]
    fn decimals_and_exponents_are_rejected_even_when_whole() {
        for json in ["1.5", "100.0", "1e3", "0.0", "-0.5"] {
            let err = parse(json).unwrap_err();
            assert!(
                err.contains("integer number of fen") || err.contains("negative"),
                "{json}: {err}"
            );
        }
        assert!(
            parse("100.0")
                .unwrap_err()
                .contains("integer number of fen")
        );
    }

    #[test]
    fn overflow_is_rejected() {
        assert!(
            parse("9223372036854775808")
                .unwrap_err()
                .contains("too large")
        );
        assert!(parse("1e30").unwrap_err().contains("too large"));
        assert!(
            parse("100000000000000000000000")
                .unwrap_err()
                .contains("too large")
        );
        assert_eq!(Fen(i64::MAX).checked_add(Fen(1)), Err(MoneyError::Overflow));
        assert_eq!(Fen::sum([Fen(i64::MAX), Fen(1)]), Err(MoneyError::Overflow));
        assert_eq!(Fen::from_yuan(i64::MAX), Err(MoneyError::Overflow));
    }

    #[test]
    fn strings_are_not_amounts() {
        assert!(
            parse("\"100\"")
                .unwrap_err()
                .contains("non-negative integer number of fen")
        );
    }

    #[test]
    fn subtraction_never_goes_negative() {
        assert_eq!(Fen(5).checked_sub(Fen(3)), Ok(Fen(2)));
        assert_eq!(Fen(3).checked_sub(Fen(5)), Err(MoneyError::Negative));
    }
}
