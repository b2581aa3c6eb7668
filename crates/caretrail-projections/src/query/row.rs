//! How the dashboards read rows: every query decodes into a named row struct (sqlx's derived
//! `FromRow`, by column name, on either backend), never into positions and defaults.
//!
//! Read-model values are stored the same way on both backends (ids and dates as text, flags
//! as 0/1 integers), which neither backend's own decoders read as `Uuid`, `NaiveDate` or
//! `bool` from those columns; and sqlx's SQLite decoders turn a NULL into `0` or `""`. The
//! column types below close both gaps: [`Text`] parses text into its type, [`Int`] and
//! [`Flag`] read integers, and each refuses a NULL (optional columns are `Option<...>` of
//! them). A value that does not decode is a [`ProjectionError::CorruptRow`] naming the
//! read-model table and column ([`decode_error`]), never a plausible wrong number or date.

use chrono::NaiveDate;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Type, ValueRef as _};
use uuid::Uuid;

use crate::error::ProjectionError;
use crate::sql::{NOT_A_DATE, NOT_A_UUID, NULL_IN_REQUIRED, Undecodable, corrupt};

/// A value stored as text and parsed when read.
pub(crate) trait FromText: Sized {
    fn from_text(text: &str) -> Result<Self, Undecodable>;
}

impl FromText for String {
    fn from_text(text: &str) -> Result<Self, Undecodable> {
        Ok(text.to_owned())
    }
}

impl FromText for Uuid {
    fn from_text(text: &str) -> Result<Self, Undecodable> {
        Uuid::try_parse(text).map_err(|_| NOT_A_UUID)
    }
}

impl FromText for NaiveDate {
    fn from_text(text: &str) -> Result<Self, Undecodable> {
        text.parse().map_err(|_| NOT_A_DATE)
    }
}

/// A required column stored as text: a `String`, a `Uuid` or an ISO-8601 `NaiveDate`.
#[derive(Clone, Debug)]
pub(crate) struct Text<T>(pub T);

impl<DB: Database, T> Type<DB> for Text<T>
where
    String: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as Type<DB>>::type_info()
    }
    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: Database, T: FromText> Decode<'r, DB> for Text<T>
where
    &'r str: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        if value.is_null() {
            return Err(NULL_IN_REQUIRED.into());
        }
        let text = <&'r str as Decode<'r, DB>>::decode(value)?;
        Ok(Text(T::from_text(text)?))
    }
}

/// A required integer column (a count, a part of an amount, a position).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Int(pub i64);

impl<DB: Database> Type<DB> for Int
where
    i64: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <i64 as Type<DB>>::type_info()
    }
    fn compatible(ty: &DB::TypeInfo) -> bool {
        <i64 as Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: Database> Decode<'r, DB> for Int
where
    i64: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        if value.is_null() {
            return Err(NULL_IN_REQUIRED.into());
        }
        Ok(Int(<i64 as Decode<'r, DB>>::decode(value)?))
    }
}

/// A required flag, stored as the integer 0 or 1 (anything else is corrupt).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Flag(pub bool);

impl<DB: Database> Type<DB> for Flag
where
    i64: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <i64 as Type<DB>>::type_info()
    }
    fn compatible(ty: &DB::TypeInfo) -> bool {
        <i64 as Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: Database> Decode<'r, DB> for Flag
where
    i64: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let Int(i) = <Int as Decode<'r, DB>>::decode(value)?;
        match i {
            0 => Ok(Flag(false)),
            1 => Ok(Flag(true)),
            _ => Err("a flag that is neither 0 nor 1".into()),
        }
    }
}

/// The value of an optional [`Text`] column.
pub(crate) fn opt<T>(v: Option<Text<T>>) -> Option<T> {
    v.map(|Text(t)| t)
}

/// A dashboard row: decoded by column name from either backend's rows, and able to say which
/// read-model table and column each of its fields is read from.
pub(crate) trait QueryRow:
    for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
    + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
    + Send
    + Unpin
    + 'static
{
    /// The read-model table and column the field `field` (a name the query selects) is read
    /// from: the column itself, or what an aggregate or `COALESCE` reads.
    fn source_of(field: &str) -> (&'static str, &'static str);
}

/// Our error for a failed fetch of `R` rows: a column that does not decode is a corrupt row
/// of the table it comes from; anything else is the database's failure.
pub(crate) fn decode_error<R: QueryRow>(e: sqlx::Error) -> ProjectionError {
    match e {
        sqlx::Error::ColumnDecode { index, source } => {
            // sqlx names a column by its debug form, `"name"`.
            let (table, column) = R::source_of(index.trim_matches('"'));
            corrupt(table, column, source.to_string())
        }
        other => ProjectionError::Database(other),
    }
}

/// Declares a dashboard row struct whose fields are grouped by the read-model table they are
/// selected from (an aggregate counts as its table's). A field selected under another name
/// than its column's (`p.id AS pairing_id`) gives the column: `pairing_id ("id"): Text<Uuid>`,
/// so a decoding error names the table and column as they are stored.
macro_rules! query_row {
    (
        $(#[$meta:meta])*
        $name:ident {
            $($table:literal => {
                $($(#[$fmeta:meta])* $f:ident $(($col:literal))? : $t:ty),+ $(,)?
            }),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, sqlx::FromRow)]
        pub(crate) struct $name { $($($(#[$fmeta])* $f: $t),+),+ }

        impl $crate::query::row::QueryRow for $name {
            fn source_of(field: &str) -> (&'static str, &'static str) {
                $($(if field == stringify!($f) {
                    return ($table, $crate::query::row::query_row!(@column $f $($col)?));
                })+)+
                ("?", "?")
            }
        }
    };
    (@column $f:ident) => { stringify!($f) };
    (@column $f:ident $col:literal) => { $col };
}
pub(crate) use query_row;
