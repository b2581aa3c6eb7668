//! One column's value: the column types both backends store ([`ColType`]), values bound to
//! statements ([`Val`]), and the strict reading of a stored value as a Rust type ([`Col`]):
//! a NULL where a value is required, text that is not a UUID or a date, a non-integer, or a
//! flag other than 0 or 1 is an error naming the table and column, never a default.

use chrono::NaiveDate;
use uuid::Uuid;

use crate::error::{ProjectionError, Result};

/// The type of a column, as both backends store it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColType {
    /// A 64-bit integer (`INTEGER` on SQLite, `BIGINT` on PostgreSQL): counts, amounts of
    /// fen, positions, and flags as 0 or 1.
    Int,
    /// `TEXT`: ids as hyphenated UUIDs, dates as ISO-8601 (`YYYY-MM-DD`), codes and sealed
    /// values.
    Text,
}

/// One value bound to a statement, or read back by [`Conn::fetch`] for a strict [`cell`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Val {
    /// SQL `NULL` (bound with its column's type, which PostgreSQL requires).
    #[default]
    Null,
    /// An integer ([`ColType::Int`]).
    Int(i64),
    /// Text ([`ColType::Text`]).
    Text(String),
}

/// Why a stored value cannot be read as its column's type: the reason a
/// [`ProjectionError::CorruptRow`] gives. It never repeats the value (it may be anything).
pub type Undecodable = &'static str;

/// A required column holds NULL.
pub const NULL_IN_REQUIRED: Undecodable = "NULL where a value is required";

/// A Rust type that maps to one column. Reading is strict: a value of the wrong type, text
/// that does not parse, or a NULL in a column that is not an `Option` is an error, never a
/// default (a corrupt or mis-migrated row must not show as a plausible number or date).
pub trait Col: Sized {
    /// The type of the column that holds the value.
    const TYPE: ColType;
    /// The value as it is stored (a date as its ISO-8601 text, a flag as 0 or 1, `None` as
    /// NULL).
    fn to_val(&self) -> Val;
    /// Reads a stored value strictly: why it cannot be this type, never a default.
    fn from_val(v: Val) -> Result<Self, Undecodable>;
    /// Binds the value as parameter `i` of a direct SQLite statement without building a
    /// [`Val`] (no allocation for text that the row already holds).
    fn bind(&self, st: &mut rusqlite::Statement<'_>, i: usize) -> rusqlite::Result<()> {
        st.raw_bind_parameter(i, self.to_val())
    }
    /// Reads the value from a column of a direct SQLite row without building a [`Val`] (no
    /// string allocated for ids and dates, which a rebuild reads back for every cache miss).
    fn from_ref(v: rusqlite::types::ValueRef<'_>) -> Result<Self, Undecodable>;
}

/// The text of a direct SQLite value, or why it is not text.
fn lite_text(v: rusqlite::types::ValueRef<'_>) -> Result<&str, Undecodable> {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Text(t) => std::str::from_utf8(t).map_err(|_| "text that is not UTF-8"),
        ValueRef::Null => Err(NULL_IN_REQUIRED),
        _ => Err("not text"),
    }
}

impl Col for i64 {
    const TYPE: ColType = ColType::Int;
    fn to_val(&self) -> Val {
        Val::Int(*self)
    }
    fn bind(&self, st: &mut rusqlite::Statement<'_>, i: usize) -> rusqlite::Result<()> {
        st.raw_bind_parameter(i, *self)
    }
    fn from_val(v: Val) -> Result<Self, Undecodable> {
        match v {
            Val::Int(i) => Ok(i),
            Val::Null => Err(NULL_IN_REQUIRED),
            Val::Text(_) => Err("not an integer"),
        }
    }
    fn from_ref(v: rusqlite::types::ValueRef<'_>) -> Result<Self, Undecodable> {
        match v {
            rusqlite::types::ValueRef::Integer(i) => Ok(i),
            rusqlite::types::ValueRef::Null => Err(NULL_IN_REQUIRED),
            _ => Err("not an integer"),
        }
    }
}

/// A flag is stored as the integer 0 or 1; any other value is corrupt.
fn flag(i: i64) -> Result<bool, Undecodable> {
    match i {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err("a flag that is neither 0 nor 1"),
    }
}

impl Col for bool {
    const TYPE: ColType = ColType::Int;
    fn to_val(&self) -> Val {
        Val::Int(i64::from(*self))
    }
    fn bind(&self, st: &mut rusqlite::Statement<'_>, i: usize) -> rusqlite::Result<()> {
        st.raw_bind_parameter(i, i64::from(*self))
    }
    fn from_val(v: Val) -> Result<Self, Undecodable> {
        flag(i64::from_val(v)?)
    }
    fn from_ref(v: rusqlite::types::ValueRef<'_>) -> Result<Self, Undecodable> {
        flag(i64::from_ref(v)?)
    }
}

impl Col for String {
    const TYPE: ColType = ColType::Text;
    fn to_val(&self) -> Val {
        Val::Text(self.clone())
    }
    fn bind(&self, st: &mut rusqlite::Statement<'_>, i: usize) -> rusqlite::Result<()> {
        st.raw_bind_parameter(i, self.as_str())
    }
    fn from_val(v: Val) -> Result<Self, Undecodable> {
        match v {
            Val::Text(s) => Ok(s),
            Val::Null => Err(NULL_IN_REQUIRED),
            Val::Int(_) => Err("not text"),
        }
    }
    fn from_ref(v: rusqlite::types::ValueRef<'_>) -> Result<Self, Undecodable> {
        lite_text(v).map(str::to_owned)
    }
}

/// Why stored text is not a UUID.
pub const NOT_A_UUID: Undecodable = "text that is not a UUID";
/// Why stored text is not a date.
pub const NOT_A_DATE: Undecodable = "text that is not an ISO-8601 date";

impl Col for Uuid {
    const TYPE: ColType = ColType::Text;
    fn to_val(&self) -> Val {
        Val::Text(self.to_string())
    }
    fn bind(&self, st: &mut rusqlite::Statement<'_>, i: usize) -> rusqlite::Result<()> {
        let mut buf = Uuid::encode_buffer();
        st.raw_bind_parameter(i, &*self.as_hyphenated().encode_lower(&mut buf))
    }
    fn from_val(v: Val) -> Result<Self, Undecodable> {
        String::from_val(v)?.parse().map_err(|_| NOT_A_UUID)
    }
    fn from_ref(v: rusqlite::types::ValueRef<'_>) -> Result<Self, Undecodable> {
        match v {
            rusqlite::types::ValueRef::Text(t) => Uuid::try_parse_ascii(t).map_err(|_| NOT_A_UUID),
            rusqlite::types::ValueRef::Null => Err(NULL_IN_REQUIRED),
            _ => Err("not text"),
        }
    }
}

impl Col for NaiveDate {
    const TYPE: ColType = ColType::Text;
    fn to_val(&self) -> Val {
        Val::Text(self.to_string())
    }
    /// Writes `YYYY-MM-DD` into a stack buffer: every row a rebuild writes carries dates, and
    /// formatting through `Display` allocated a string per bound date.
    fn bind(&self, st: &mut rusqlite::Statement<'_>, i: usize) -> rusqlite::Result<()> {
        use chrono::Datelike;
        let (y, m, d) = (self.year(), self.month(), self.day());
        if !(0..=9999).contains(&y) {
            return st.raw_bind_parameter(i, self.to_string());
        }
        let y = y as u32;
        let digit = |n: u32| b'0' + (n % 10) as u8;
        let buf = [
            digit(y / 1000),
            digit(y / 100),
            digit(y / 10),
            digit(y),
            b'-',
            digit(m / 10),
            digit(m),
            b'-',
            digit(d / 10),
            digit(d),
        ];
        // ASCII digits and dashes only, so the buffer is valid UTF-8.
        st.raw_bind_parameter(i, std::str::from_utf8(&buf).unwrap_or_default())
    }
    fn from_val(v: Val) -> Result<Self, Undecodable> {
        String::from_val(v)?.parse().map_err(|_| NOT_A_DATE)
    }
    fn from_ref(v: rusqlite::types::ValueRef<'_>) -> Result<Self, Undecodable> {
        lite_text(v)?.parse().map_err(|_| NOT_A_DATE)
    }
}

impl<T: Col> Col for Option<T> {
    const TYPE: ColType = T::TYPE;
    fn to_val(&self) -> Val {
        match self {
            Some(v) => v.to_val(),
            None => Val::Null,
        }
    }
    fn bind(&self, st: &mut rusqlite::Statement<'_>, i: usize) -> rusqlite::Result<()> {
        match self {
            Some(v) => v.bind(st, i),
            None => st.raw_bind_parameter(i, rusqlite::types::Null),
        }
    }
    fn from_val(v: Val) -> Result<Self, Undecodable> {
        match v {
            Val::Null => Ok(None),
            v => T::from_val(v).map(Some),
        }
    }
    fn from_ref(v: rusqlite::types::ValueRef<'_>) -> Result<Self, Undecodable> {
        match v {
            rusqlite::types::ValueRef::Null => Ok(None),
            v => T::from_ref(v).map(Some),
        }
    }
}

/// The error for a value of `table`.`column` that cannot be read as its type.
pub fn corrupt(table: &'static str, column: &str, reason: impl Into<String>) -> ProjectionError {
    ProjectionError::CorruptRow {
        table,
        column: column.to_owned(),
        reason: reason.into(),
    }
}

/// Reads column `i` (named `column`) of a row fetched as [`Val`]s from `table`, strictly.
pub fn cell<T: Col>(row: &mut [Val], i: usize, table: &'static str, column: &str) -> Result<T> {
    let v = row.get_mut(i).map_or(Val::Null, std::mem::take);
    T::from_val(v).map_err(|reason| corrupt(table, column, reason))
}
