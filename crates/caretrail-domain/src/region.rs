//! GB/T 2260 administrative region codes for Zhejiang.
//!
//! The tables in `data/` are copied from the team's reference data and embedded at compile time,
//! so the domain never reads files at run time. Codes that were retired since 2016 are still
//! accepted, because events keep a code exactly as it was recorded; read models call
//! [`RegionCode::successor`] and [`RegionCode::city`] to roll them up to today's divisions.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const REGIONS_CSV: &str = include_str!("../data/zhejiang-regions.csv");
const RETIRED_CSV: &str = include_str!("../data/retired-codes.csv");

/// The level of a division in the hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionLevel {
    /// 省: the province itself.
    Province,
    /// 地级市: a prefecture-level city.
    Prefecture,
    /// 县级: a district, county or county-level city.
    County,
}

#[derive(Debug)]
struct Entry {
    name: &'static str,
    level: RegionLevel,
    parent: Option<u32>,
    /// For a retired code, the code that succeeded it.
    successor: Option<u32>,
}

/// Parses the embedded tables once. The tables are part of the source tree and a unit test
/// parses every line, so a malformed line is a build defect, not a run-time condition; such
/// lines are skipped rather than panicking.
static TABLE: LazyLock<BTreeMap<u32, Entry>> = LazyLock::new(|| {
    let mut table = BTreeMap::new();
    for line in REGIONS_CSV.lines().skip(1) {
        let cols: Vec<&str> = line.splitn(4, ',').collect();
        let [code, name, level, parent] = cols[..] else {
            continue;
        };
        let Ok(code) = code.parse::<u32>() else {
            continue;
        };
        let level = match level {
            "province" => RegionLevel::Province,
            "prefecture" => RegionLevel::Prefecture,
            "county" => RegionLevel::County,
            _ => continue,
        };
        table.insert(
            code,
            Entry {
                name,
                level,
                parent: parent.trim().parse().ok(),
                successor: None,
            },
        );
    }
    for line in RETIRED_CSV.lines().skip(1) {
        // The note column may contain quoted commas; only the first four columns are used.
        let cols: Vec<&str> = line.splitn(5, ',').collect();
        let [code, name, successor, ..] = cols[..] else {
            continue;
        };
        let (Ok(code), Ok(successor)) = (code.parse::<u32>(), successor.parse::<u32>()) else {
            continue;
        };
        let parent = table.get(&successor).and_then(|e: &Entry| e.parent);
        table.insert(
            code,
            Entry {
                name,
                level: RegionLevel::County,
                parent,
                successor: Some(successor),
            },
        );
    }
    table
});

/// Why a string is not a known region code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    /// Not six ASCII digits.
    #[error("region code must be six digits (GB/T 2260)")]
    Malformed,
    /// Six digits, but not a Zhejiang division, current or retired.
    #[error("region code is not a known Zhejiang division")]
    Unknown,
}

impl RegionError {
    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            RegionError::Malformed => "region_code_malformed",
            RegionError::Unknown => "region_code_unknown",
        }
    }
}

/// A validated six-digit GB/T 2260 code of a Zhejiang division (current or retired).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionCode(u32);

impl RegionCode {
    /// 浙江省 itself.
    pub const ZHEJIANG: RegionCode = RegionCode(330000);

    /// Parses a six-digit code and checks it against the embedded table.
    pub fn parse(s: &str) -> Result<RegionCode, RegionError> {
        if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RegionError::Malformed);
        }
        let code: u32 = s.parse().map_err(|_| RegionError::Malformed)?;
        if TABLE.contains_key(&code) {
            Ok(RegionCode(code))
        } else {
            Err(RegionError::Unknown)
        }
    }

    fn entry(&self) -> Option<&'static Entry> {
        TABLE.get(&self.0)
    }

    /// The official Chinese name, e.g. `龙游县`.
    pub fn name(&self) -> &'static str {
        self.entry().map_or("", |e| e.name)
    }

    /// The level of the division.
    pub fn level(&self) -> RegionLevel {
        self.entry().map_or(RegionLevel::County, |e| e.level)
    }

    /// Whether the code was retired (kept because events record codes as they were).
    pub fn is_retired(&self) -> bool {
        self.entry().is_some_and(|e| e.successor.is_some())
    }

    /// The current code: the successor of a retired code, or the code itself.
    pub fn successor(&self) -> RegionCode {
        match self.entry().and_then(|e| e.successor) {
            Some(s) => RegionCode(s),
            None => *self,
        }
    }

    /// The enclosing division, if any (for a retired code, its successor's parent).
    pub fn parent(&self) -> Option<RegionCode> {
        self.entry().and_then(|e| e.parent).map(RegionCode)
    }

    /// Rolls a code up to its prefecture-level city (a city rolls up to itself); `None` for the
    /// province, which has no city.
    pub fn city(&self) -> Option<RegionCode> {
        let current = self.successor();
        match current.level() {
            RegionLevel::Province => None,
            RegionLevel::Prefecture => Some(current),
            RegionLevel::County => current.parent(),
        }
    }

    /// The six-digit code as text.
    pub fn as_str(&self) -> String {
        format!("{:06}", self.0)
    }

    /// Every code in the embedded table, current and retired, in code order.
    pub fn all() -> impl Iterator<Item = RegionCode> {
        TABLE.keys().map(|c| RegionCode(*c))
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

impl fmt::Debug for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegionCode({:06})", self.0)
    }
}

impl std::str::FromStr for RegionCode {
    type Err = RegionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RegionCode::parse(s)
    }
}

impl Serialize for RegionCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RegionCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(deserializer)?;
        RegionCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for RegionCode {
    fn schema_name() -> Cow<'static, str> {
        "RegionCode".into()
    }
    /// Every code of the embedded table, so that the schema accepts exactly what
    /// [`RegionCode::parse`] does (a six-digit pattern would admit codes the table lacks, and a
    /// client generating from the schema would send them).
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let codes: Vec<String> = RegionCode::all().map(|c| c.as_str()).collect();
        json_schema!({
            "description": "GB/T 2260 six-digit code of a Zhejiang division (current or retired).",
            "type": "string",
            "enum": codes
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hardening (API contract): the schema names exactly the codes `parse` accepts, so a
    /// client that generates a code from the OpenAPI document never sends one the server
    /// refuses as unknown.
    #[test]
    fn the_schema_enumerates_exactly_the_parseable_codes() {
        let schema = schemars::schema_for!(RegionCode);
        let codes: Vec<&str> = schema
            .get("enum")
            .and_then(|e| e.as_array())
            .expect("an enum of codes")
            .iter()
            .map(|c| c.as_str().expect("codes are strings"))
            .collect();
        assert_eq!(codes.len(), RegionCode::all().count());
        for c in &codes {
            assert!(RegionCode::parse(c).is_ok(), "{c}");
        }
        assert!(!codes.contains(&"339999") && RegionCode::parse("339999").is_err());
    }

    #[test]
    fn every_embedded_line_is_parsed() {
        let regions = REGIONS_CSV
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .count();
        let retired = RETIRED_CSV
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .count();
        assert_eq!(TABLE.len(), regions + retired);
        assert_eq!(
            RegionCode::all()
                .filter(|c| c.level() == RegionLevel::Prefecture)
                .count(),
            11
        );
    }

    #[test]
    fn current_codes_parse_with_names_and_cities() {
        let longyou = RegionCode::parse("330825").unwrap();
        assert_eq!(longyou.name(), "龙游县");
        assert_eq!(longyou.city().unwrap().name(), "衢州市");
        let wenzhou = RegionCode::parse("330300").unwrap();
        assert_eq!(wenzhou.city(), Some(wenzhou));
        assert_eq!(RegionCode::parse("330000").unwrap().city(), None);
    }

    #[test]
    fn retired_codes_are_accepted_and_roll_up_to_successor() {
        let jiangdong = RegionCode::parse("330204").unwrap();
        assert!(jiangdong.is_retired());
        assert_eq!(jiangdong.name(), "江东区");
        assert_eq!(jiangdong.successor().to_string(), "330212");
        assert_eq!(jiangdong.city().unwrap().name(), "宁波市");
        assert_eq!(jiangdong.to_string(), "330204");
    }

    #[test]
    fn malformed_and_unknown_codes_are_rejected() {
        assert_eq!(RegionCode::parse("33010"), Err(RegionError::Malformed));
        assert_eq!(RegionCode::parse("33010a"), Err(RegionError::Malformed));
        assert_eq!(RegionCode::parse("110101"), Err(RegionError::Unknown));
        assert_eq!(RegionError::Unknown.code(), "region_code_unknown");
        let err = serde_json::from_str::<RegionCode>("\"999999\"").unwrap_err();
        assert!(err.to_string().contains("not a known Zhejiang division"));
    }
}
