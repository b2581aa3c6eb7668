//! The little SQL layer every read model shares: typed values, row descriptions, one backend
//! switch for connections, and multi-row statements.
//!
//! This module (with `db.rs`) is the only place in the crate that matches on the backend:
//! [`ReadModelDb`] opens connections and transactions on the store's pool (plain, `BEGIN
//! IMMEDIATE` on SQLite for a write that reads first, or without the statement timeout for an
//! index build) and hands out a [`Conn`], whose methods run a statement on either backend or
//! on a direct SQLite connection. The rest of the crate writes SQL with [`Backend::param`]
//! and never asks which backend it is on.
//!
//! Read-model tables are described once in Rust (the `table!` macro below) and their DDL, loads
//! and upserts are generated for each backend from that description. This keeps the two
//! backends' SQL identical except for placeholders (`?N` on SQLite, `$N` on PostgreSQL) and the
//! integer type name, and lets the crash test compare every row of every table without knowing
//! the tables one by one. Dates are stored as ISO-8601 text and booleans as 0/1 integers on both
//! backends, so comparisons and sorting behave the same everywhere. A column's types and their
//! strict reading (an error naming the table and column, never a default) are in `column.rs`.

use std::fmt::Write as _;

use uuid::Uuid;

use crate::error::{ProjectionError, Result};

mod column;
mod db;

pub use column::*;
pub use db::*;

/// Which SQL dialect to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: `?N` placeholders, `INTEGER` columns.
    Sqlite,
    /// PostgreSQL: `$N` placeholders, `BIGINT` columns.
    Postgres,
}

impl Backend {
    fn int_type(self) -> &'static str {
        match self {
            Backend::Sqlite => "INTEGER",
            Backend::Postgres => "BIGINT",
        }
    }

    /// The `n`-th (from 1) numbered parameter in this backend's SQL: `?n` on SQLite, `$n` on
    /// PostgreSQL. Every statement is written for the backend it runs on; none is rewritten
    /// afterwards (a rewrite would also change a `?` inside a string literal).
    pub fn param(self, n: usize) -> String {
        match self {
            Backend::Sqlite => format!("?{n}"),
            Backend::Postgres => format!("${n}"),
        }
    }
}

/// A static description of one read-model table.
#[derive(Debug)]
pub struct TableDef {
    /// The name without the generation prefix.
    pub name: &'static str,
    /// Every column's name and type, in declaration order: the order rows are written and
    /// read in.
    pub columns: &'static [(&'static str, ColType)],
    /// The primary key's columns.
    pub key: &'static [&'static str],
    /// The secondary indexes, each as its columns in index order.
    pub indexes: &'static [&'static [&'static str]],
    /// Rows are deltas: an upsert adds integer columns instead of replacing them.
    pub additive: bool,
    /// Amounts of money, each stored exactly as two integer columns `{name}_hi` and
    /// `{name}_lo` ([`split_fen`]); an additive upsert carries from one into the other.
    pub money: &'static [&'static str],
}

/// Money in the read model is exact at any size. A sum of amounts can leave the 64-bit range
/// although each amount is inside it (old logs may hold amounts no policy capped, and events
/// can never change), and SQLite has no wider integer: its `+` turns an overflowing sum into
/// a float and PostgreSQL's `BIGINT` stops the projector with an error, while an `i64` fold
/// in memory wraps. So an amount of fen is stored as `hi × 10¹² + lo` with `0 ≤ lo < 10¹²`,
/// in two `INTEGER`/`BIGINT` columns, and an additive upsert adds both parts and carries
/// (`lo` sums stay below 2 × 10¹²; `hi` reaches its limit only past 9 × 10³⁰ fen). Every sum
/// a realistic log holds is below 10¹² fen (ten billion yuan), so `hi` is 0 and `lo` is the
/// amount. Queries sum the two parts separately and join them in 128 bits; a total outside
/// `i64` is an error ([`crate::ProjectionError::AmountNotRepresentable`]), never wrapped,
/// saturated or rounded.
pub const FEN_SPLIT: i64 = 1_000_000_000_000;

/// An amount of fen as its (`hi`, `lo`) columns; an error beyond about ±9 × 10³⁰ fen.
pub fn split_fen(fen: i128) -> Result<(i64, i64)> {
    let split = i128::from(FEN_SPLIT);
    let hi = i64::try_from(fen.div_euclid(split))
        .map_err(|_| ProjectionError::AmountNotRepresentable)?;
    // `rem_euclid` is in 0..10¹², so it fits.
    Ok((hi, fen.rem_euclid(split) as i64))
}

/// The amount of fen the (`hi`, `lo`) columns hold.
pub fn join_fen(hi: i64, lo: i64) -> i128 {
    i128::from(hi) * i128::from(FEN_SPLIT) + i128::from(lo)
}

/// Adds `delta` fen to an amount held as (`hi`, `lo`) columns.
pub fn add_fen(hi: &mut i64, lo: &mut i64, delta: i128) -> Result<()> {
    let sum = join_fen(*hi, *lo)
        .checked_add(delta)
        .ok_or(ProjectionError::AmountNotRepresentable)?;
    (*hi, *lo) = split_fen(sum)?;
    Ok(())
}

/// A typed row of a read-model table.
pub trait Row: Clone + Default + Send + Sync + 'static {
    /// The table this row type is stored in.
    const DEF: TableDef;
    /// Every column's value, in declaration order, to bind to a statement.
    fn to_vals(&self) -> Vec<Val>;
    /// Reads a row selected with every column in declaration order; a value that does not
    /// decode is a [`ProjectionError::CorruptRow`] naming the table and column.
    fn from_vals(v: Vec<Val>) -> Result<Self>;
    /// Binds every column, in declaration order, to a direct SQLite statement.
    fn bind(&self, st: &mut rusqlite::Statement<'_>) -> rusqlite::Result<()>;
    /// Reads a row selected with every column in declaration order from a direct SQLite
    /// statement, as strictly as [`Row::from_vals`].
    fn from_lite(row: &rusqlite::Row<'_>) -> Result<Self>;
}

/// Declares a row struct and its table description.
macro_rules! table {
    (
        $(#[$meta:meta])*
        $name:ident = $table:literal,
        key [$($k:ident),+],
        indexes [$([$($i:ident),+]),*],
        additive = $add:literal,
        money [$($m:ident),*],
        { $($(#[$fmeta:meta])* $f:ident : $t:ty),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct $name { $($(#[$fmeta])* pub $f: $t),+ }

        impl $crate::sql::Row for $name {
            const DEF: $crate::sql::TableDef = $crate::sql::TableDef {
                name: $table,
                columns: &[$((stringify!($f), <$t as $crate::sql::Col>::TYPE)),+],
                key: &[$(stringify!($k)),+],
                indexes: &[$(&[$(stringify!($i)),+]),*],
                additive: $add,
                money: &[$(stringify!($m)),*],
            };
            fn to_vals(&self) -> Vec<$crate::sql::Val> {
                use $crate::sql::Col;
                vec![$(self.$f.to_val()),+]
            }
            fn from_vals(mut v: Vec<$crate::sql::Val>) -> $crate::Result<Self> {
                let mut i = 0;
                Ok($name { $($f: {
                    i += 1;
                    $crate::sql::cell::<$t>(&mut v, i - 1, $table, stringify!($f))?
                }),+ })
            }
            fn bind(&self, st: &mut rusqlite::Statement<'_>) -> rusqlite::Result<()> {
                use $crate::sql::Col;
                let mut i = 0;
                $(i += 1; self.$f.bind(st, i)?;)+
                let _ = i;
                Ok(())
            }
            fn from_lite(row: &rusqlite::Row<'_>) -> $crate::Result<Self> {
                use $crate::sql::Col;
                let mut i = 0;
                Ok($name { $($f: {
                    i += 1;
                    <$t>::from_ref(row.get_ref(i - 1)?)
                        .map_err(|reason| $crate::sql::corrupt($table, stringify!($f), reason))?
                }),+ })
            }
        }
    };
}
pub(crate) use table;

/// The physical name of a table in a generation.
pub fn physical(generation: i64, table: &str) -> String {
    format!("rm{generation}_{table}")
}

/// `CREATE TABLE` and `CREATE INDEX` statements for `def` in `generation`, with the secondary
/// indexes that `index` selects.
pub fn create_statements(
    backend: Backend,
    generation: i64,
    def: &TableDef,
    index: impl Fn(&TableDef, &[&str]) -> bool,
) -> Vec<String> {
    let t = physical(generation, def.name);
    let mut sql = format!("CREATE TABLE IF NOT EXISTS {t} (");
    for (name, ty) in def.columns {
        let ty = match ty {
            ColType::Int => backend.int_type(),
            ColType::Text => "TEXT",
        };
        let _ = write!(sql, "{name} {ty}, ");
    }
    let _ = write!(sql, "PRIMARY KEY ({}))", def.key.join(", "));
    let mut out = vec![sql];
    for (n, cols) in def.indexes.iter().enumerate() {
        if !index(def, cols) {
            continue;
        }
        out.push(format!(
            "CREATE INDEX IF NOT EXISTS {t}_i{n} ON {t} ({})",
            cols.join(", ")
        ));
    }
    out
}

/// A connection of either backend, borrowed from a pool or a transaction.
///
/// `Lite` is a direct SQLite connection (rusqlite) used by the bulk rebuild on its own thread:
/// statements are prepared once and stepped in place, which is what lets a rebuild write at
/// the engine's speed (sqlx sends every statement to a worker thread and back). Its futures
/// never wait, so the async methods below complete on their first poll.
pub enum Conn<'c> {
    /// A sqlx connection to SQLite (pooled, or inside a transaction).
    Sqlite(&'c mut sqlx::SqliteConnection),
    /// A sqlx connection to PostgreSQL (pooled, or inside a transaction).
    Postgres(&'c mut sqlx::PgConnection),
    /// Held mutably so that a `Conn` stays `Send` (a shared rusqlite connection is not `Sync`).
    Lite(&'c mut rusqlite::Connection),
}

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Val::Null => ValueRef::Null,
            Val::Int(i) => ValueRef::Integer(*i),
            Val::Text(s) => ValueRef::Text(s.as_bytes()),
        }))
    }
}

/// Reads one column of a rusqlite row as a [`Val`], keeping what kind of value it is (a float
/// as its text, so that reading it as an integer fails), for [`cell`] to decode strictly.
fn lite_val(v: rusqlite::types::ValueRef<'_>) -> Val {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Val::Null,
        ValueRef::Integer(i) => Val::Int(i),
        ValueRef::Real(f) => Val::Text(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
    }
}

/// A sqlx query of `sql` with `vals` bound, NULLs typed by `types` (either sqlx backend).
macro_rules! bound {
    ($sql:expr, $vals:expr, $types:expr) => {{
        let mut q = sqlx::query(sqlx::AssertSqlSafe($sql));
        for (v, t) in $vals.iter().zip($types) {
            q = match (v, t) {
                (Val::Int(i), _) => q.bind(*i),
                (Val::Text(s), _) => q.bind(s.clone()),
                (Val::Null, ColType::Int) => q.bind(None::<i64>),
                (Val::Null, ColType::Text) => q.bind(None::<String>),
            };
        }
        q
    }};
}

impl Conn<'_> {
    /// The SQL dialect to write statements for on this connection (a direct connection is
    /// SQLite).
    pub fn backend(&self) -> Backend {
        match self {
            Conn::Sqlite(_) | Conn::Lite(_) => Backend::Sqlite,
            Conn::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs a statement written with this backend's placeholders ([`Backend::param`]);
    /// `types` gives the type of each bound value so that NULLs are bound with the column's
    /// type (PostgreSQL insists).
    pub async fn execute(&mut self, sql: &str, vals: &[Val], types: &[ColType]) -> Result<u64> {
        Ok(match self {
            Conn::Lite(c) => {
                let mut st = c.prepare_cached(sql)?;
                st.execute(rusqlite::params_from_iter(vals.iter()))? as u64
            }
            Conn::Sqlite(c) => bound!(sql, vals, types)
                .execute(&mut **c)
                .await?
                .rows_affected(),
            Conn::Postgres(c) => bound!(sql, vals, types)
                .execute(&mut **c)
                .await?
                .rows_affected(),
        })
    }

    /// Runs a query written with this backend's placeholders and reads each row as the
    /// values `out` describes. A value of another type than `out` says is kept as what it is
    /// (not an error and not a default here): the caller decodes it with [`cell`], which names
    /// the table and column it fails on.
    pub async fn fetch(
        &mut self,
        sql: &str,
        vals: &[Val],
        types: &[ColType],
        out: &[ColType],
    ) -> Result<Vec<Vec<Val>>> {
        use sqlx::Row as _;
        macro_rules! run {
            ($c:expr) => {{
                let rows = bound!(sql, vals, types).fetch_all(&mut **$c).await?;
                let mut result = Vec::with_capacity(rows.len());
                for row in rows {
                    let mut vals = Vec::with_capacity(out.len());
                    for (i, ty) in out.iter().enumerate() {
                        // Integer literals are INT4 on PostgreSQL; accept both widths.
                        let int = || match row.try_get::<Option<i64>, _>(i) {
                            Ok(v) => Some(v.map_or(Val::Null, Val::Int)),
                            Err(_) => row
                                .try_get::<Option<i32>, _>(i)
                                .ok()
                                .map(|v| v.map_or(Val::Null, |v| Val::Int(v.into()))),
                        };
                        let text = || {
                            row.try_get::<Option<String>, _>(i)
                                .ok()
                                .map(|v| v.map_or(Val::Null, Val::Text))
                        };
                        let val = match ty {
                            ColType::Int => int().or_else(text),
                            ColType::Text => text().or_else(int),
                        }
                        // Neither an integer nor text: no read-model column holds that.
                        .ok_or_else(|| {
                            ProjectionError::Database(sqlx::Error::ColumnDecode {
                                index: i.to_string(),
                                source: "neither an integer nor text".into(),
                            })
                        })?;
                        vals.push(val);
                    }
                    result.push(vals);
                }
                result
            }};
        }
        Ok(match self {
            Conn::Sqlite(c) => run!(c),
            Conn::Postgres(c) => run!(c),
            Conn::Lite(c) => {
                let _ = types;
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(vals.iter()))?;
                let mut result = Vec::new();
                while let Some(row) = rows.next()? {
                    let mut vals = Vec::with_capacity(out.len());
                    for i in 0..out.len() {
                        vals.push(lite_val(row.get_ref(i)?));
                    }
                    result.push(vals);
                }
                result
            }
        })
    }

    /// Runs plain DDL.
    pub async fn ddl(&mut self, sql: &str) -> Result<()> {
        if let Conn::Lite(c) = self {
            // Not cached: DDL runs once, and PRAGMAs may return a row.
            c.execute_batch(sql)?;
            return Ok(());
        }
        self.execute(sql, &[], &[]).await.map(|_| ())
    }
}

/// The `n`-th placeholder of a generated multi-row statement. SQLite gets anonymous `?`
/// (bound in order): sqlx looks up every parameter's name before binding it, and for numbered
/// parameters SQLite's lookup walks a list, which made binding quadratic in the row count and
/// took half of a rebuild's time.
fn placeholder(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => "?".to_owned(),
        Backend::Postgres => backend.param(n),
    }
}

/// Power-of-two chunk sizes (largest first) covering `n`, so each statement shape is prepared
/// once and reused from the driver's statement cache.
pub fn chunks(n: usize, max: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut left = n;
    let mut size = max.next_power_of_two();
    if size > max {
        size /= 2;
    }
    while left > 0 {
        while size > left {
            size /= 2;
        }
        out.push(size);
        left -= size;
    }
    out
}

/// The largest number of rows per statement for a table of `cols` columns: both backends
/// accept well over 30,000 bound values per statement.
pub fn rows_per_statement(cols: usize) -> usize {
    (30_000 / cols.max(1)).min(512)
}

/// Writes `rows` with multi-row upserts: replacing every non-key column, or adding integer
/// columns when the table is additive.
pub async fn upsert<R: Row>(conn: &mut Conn<'_>, generation: i64, rows: &[R]) -> Result<()> {
    let refs: Vec<&R> = rows.iter().collect();
    upsert_refs(conn, generation, &refs).await
}

/// [`upsert`] for borrowed rows (a cache's rows are written without copying them first).
pub async fn upsert_refs<R: Row>(conn: &mut Conn<'_>, generation: i64, rows: &[&R]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let def = &R::DEF;
    let backend = conn.backend();
    let t = physical(generation, def.name);
    let cols: Vec<&str> = def.columns.iter().map(|(n, _)| *n).collect();
    let types: Vec<ColType> = def.columns.iter().map(|(_, t)| *t).collect();
    let set: Vec<String> = def
        .columns
        .iter()
        .filter(|(n, _)| !def.key.contains(n))
        .map(|(n, ty)| {
            let money = def.money.iter().find(|m| {
                n.strip_prefix(**m)
                    .is_some_and(|r| r == "_hi" || r == "_lo")
            });
            match money {
                // Both parts of an amount are read before either is set (the SET list sees
                // the old row on both backends), so the carry uses the old low part.
                Some(_) if def.additive && n.ends_with("_lo") => {
                    format!("{n} = ({t}.{n} + excluded.{n}) % {FEN_SPLIT}")
                }
                Some(m) if def.additive => format!(
                    "{n} = {t}.{n} + excluded.{n} + ({t}.{m}_lo + excluded.{m}_lo) / {FEN_SPLIT}"
                ),
                _ if def.additive && *ty == ColType::Int => {
                    format!("{n} = {t}.{n} + excluded.{n}")
                }
                _ => format!("{n} = excluded.{n}"),
            }
        })
        .collect();
    let conflict = if set.is_empty() {
        "DO NOTHING".to_owned()
    } else {
        format!("DO UPDATE SET {}", set.join(", "))
    };
    if let Conn::Lite(c) = conn {
        // One prepared single-row statement stepped per row: on a direct connection the
        // per-row cost is the B-tree work itself, and no statement text grows with the batch.
        let marks = vec!["?"; cols.len()].join(", ");
        let sql = format!(
            "INSERT INTO {t} ({}) VALUES ({marks}) ON CONFLICT ({}) {conflict}",
            cols.join(", "),
            def.key.join(", ")
        );
        let mut st = c.prepare_cached(&sql)?;
        for row in rows {
            row.bind(&mut st)?;
            st.raw_execute()?;
        }
        return Ok(());
    }
    if rows.len() >= COPY_ROWS
        && let Conn::Postgres(c) = conn
    {
        return copy_upsert(c, &t, def, &cols, rows, &conflict).await;
    }
    let mut done = 0;
    for size in chunks(rows.len(), rows_per_statement(cols.len())) {
        let mut sql = format!("INSERT INTO {t} ({}) VALUES ", cols.join(", "));
        let mut vals = Vec::with_capacity(size * cols.len());
        let mut all_types = Vec::with_capacity(size * cols.len());
        let mut n = 0;
        for (r, row) in rows[done..done + size].iter().enumerate() {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for c in 0..cols.len() {
                n += 1;
                let _ = write!(
                    sql,
                    "{}{}",
                    if c == 0 { "" } else { ", " },
                    placeholder(backend, n)
                );
            }
            sql.push(')');
            vals.extend(row.to_vals());
            all_types.extend_from_slice(&types);
        }
        let _ = write!(sql, " ON CONFLICT ({}) {conflict}", def.key.join(", "));
        conn.execute(&sql, &vals, &all_types).await?;
        done += size;
    }
    Ok(())
}

/// From this many rows on, a PostgreSQL upsert goes through `COPY` and one set-based
/// statement ([`copy_upsert`]) instead of multi-row `VALUES` statements. Only a rebuild's or a
/// catch-up's flushes reach it; a live batch writes a few rows and keeps its prepared
/// statements.
const COPY_ROWS: usize = 1_024;

/// Upserts `rows` on PostgreSQL as one set: `COPY` (text format) into a temporary table shaped
/// like `t` (no indexes, no WAL), then one `INSERT ... SELECT ... ON CONFLICT` with the same
/// conflict action as the multi-row path, so the result is the same row for row. The staging
/// table is created and dropped inside the caller's transaction, so an aborted transaction
/// leaves none behind. `rows` hold each key once (they come from maps keyed by it), as one
/// `INSERT ... ON CONFLICT` requires.
async fn copy_upsert<R: Row>(
    c: &mut sqlx::PgConnection,
    t: &str,
    def: &TableDef,
    cols: &[&str],
    rows: &[&R],
    conflict: &str,
) -> Result<()> {
    let stage = format!("stage_{t}");
    let list = cols.join(", ");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS pg_temp.{stage}; \
         CREATE TEMP TABLE {stage} (LIKE {t} INCLUDING DEFAULTS)"
    )))
    .execute(&mut *c)
    .await?;
    let mut copy = c
        .copy_in_raw(&format!("COPY {stage} ({list}) FROM STDIN"))
        .await?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    for row in rows {
        for (i, v) in row.to_vals().iter().enumerate() {
            if i > 0 {
                buf.push(b'\t');
            }
            copy_text(&mut buf, v);
        }
        buf.push(b'\n');
        if buf.len() >= 1 << 20 {
            copy.send(std::mem::take(&mut buf)).await?;
            buf.reserve(1 << 20);
        }
    }
    if !buf.is_empty() {
        copy.send(buf).await?;
    }
    copy.finish().await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {t} ({list}) SELECT {list} FROM {stage} ON CONFLICT ({}) {conflict}; \
         DROP TABLE {stage}",
        def.key.join(", ")
    )))
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Appends `v` in `COPY`'s text format: `\N` for NULL; in text, backslash, tab, line feed and
/// carriage return escaped (every other character stands for itself).
fn copy_text(buf: &mut Vec<u8>, v: &Val) {
    match v {
        Val::Null => buf.extend_from_slice(b"\\N"),
        Val::Int(i) => {
            let _ = write!(ByteWriter(buf), "{i}");
        }
        Val::Text(s) => {
            for &b in s.as_bytes() {
                match b {
                    b'\\' => buf.extend_from_slice(b"\\\\"),
                    b'\t' => buf.extend_from_slice(b"\\t"),
                    b'\n' => buf.extend_from_slice(b"\\n"),
                    b'\r' => buf.extend_from_slice(b"\\r"),
                    _ => buf.push(b),
                }
            }
        }
    }
}

/// `fmt::Write` into a byte buffer (integers formatted in place, without a `String` each).
struct ByteWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Runs `SELECT {select} FROM {table} WHERE id IN (...)` over `ids` in chunks of at most 256,
/// decoding each row with `lite` on a direct connection (bound and read in place, no `Val`
/// per column: a rebuild whose population outgrows its row budget reads rows back on every
/// miss) or with `generic` from the columns `types` describe; a row either decodes to `None`
/// is skipped, a row either fails on is the error.
async fn select_by_ids<T>(
    conn: &mut Conn<'_>,
    select: &str,
    table: &str,
    ids: &[Uuid],
    types: &[ColType],
    mut lite: impl FnMut(&rusqlite::Row<'_>) -> Result<Option<T>>,
    mut generic: impl FnMut(Vec<Val>) -> Result<Option<T>>,
) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(ids.len());
    let mut done = 0;
    for size in chunks(ids.len(), 256) {
        let mut sql = format!("SELECT {select} FROM {table} WHERE id IN (");
        for i in 1..=size {
            let p = placeholder(conn.backend(), i);
            let _ = write!(sql, "{}{p}", if i == 1 { "" } else { ", " });
        }
        sql.push(')');
        let chunk = &ids[done..done + size];
        done += size;
        if let Conn::Lite(c) = conn {
            let mut st = c.prepare_cached(&sql)?;
            for (i, id) in chunk.iter().enumerate() {
                id.bind(&mut st, i + 1)?;
            }
            let mut rows = st.raw_query();
            while let Some(row) = rows.next()? {
                out.extend(lite(row)?);
            }
            continue;
        }
        let vals: Vec<Val> = chunk.iter().map(Col::to_val).collect();
        let in_types = vec![ColType::Text; size];
        for row in conn.fetch(&sql, &vals, &in_types, types).await? {
            out.extend(generic(row)?);
        }
    }
    Ok(out)
}

/// Loads the rows of an `id`-keyed table (the id its first column) whose ids are in `ids`,
/// each with its id.
pub async fn load_by_id<R: Row>(
    conn: &mut Conn<'_>,
    generation: i64,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, R)>> {
    let def = &R::DEF;
    let cols: Vec<&str> = def.columns.iter().map(|(n, _)| *n).collect();
    let types: Vec<ColType> = def.columns.iter().map(|(_, t)| *t).collect();
    select_by_ids(
        conn,
        &cols.join(", "),
        &physical(generation, def.name),
        ids,
        &types,
        |row| {
            let id = Uuid::from_ref(row.get_ref(0)?).map_err(|r| corrupt(def.name, "id", r))?;
            Ok(Some((id, R::from_lite(row)?)))
        },
        |row| {
            let id = Uuid::from_val(row.first().cloned().unwrap_or_default())
                .map_err(|r| corrupt(def.name, "id", r))?;
            Ok(Some((id, R::from_vals(row)?)))
        },
    )
    .await
}

/// Reads one required uuid `column` of the rows of the `id`-keyed table `table` whose ids
/// are in `ids`: (id, value) for each row found.
pub async fn load_uuid_column(
    conn: &mut Conn<'_>,
    generation: i64,
    table: &'static str,
    column: &str,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, Uuid)>> {
    select_by_ids(
        conn,
        &format!("id, {column}"),
        &physical(generation, table),
        ids,
        &[ColType::Text, ColType::Text],
        |row| {
            let id = Uuid::from_ref(row.get_ref(0)?).map_err(|r| corrupt(table, "id", r))?;
            let value = Uuid::from_ref(row.get_ref(1)?).map_err(|r| corrupt(table, column, r))?;
            Ok(Some((id, value)))
        },
        |mut row| {
            Ok(Some((
                cell(&mut row, 0, table, "id")?,
                cell(&mut row, 1, table, column)?,
            )))
        },
    )
    .await
}

/// Every row of a table, ordered by its key, as text: what the crash test compares.
pub async fn dump(conn: &mut Conn<'_>, generation: i64, def: &TableDef) -> Result<Vec<String>> {
    let t = physical(generation, def.name);
    let cols: Vec<&str> = def.columns.iter().map(|(n, _)| *n).collect();
    let types: Vec<ColType> = def.columns.iter().map(|(_, t)| *t).collect();
    let sql = format!(
        "SELECT {} FROM {t} ORDER BY {}",
        cols.join(", "),
        def.key.join(", ")
    );
    let rows = conn.fetch(&sql, &[], &[], &types).await?;
    Ok(rows.into_iter().map(|r| format!("{r:?}")).collect())
}

/// Turns a `sqlx` error into ours (kept here so every module maps errors the same way).
impl From<sqlx::Error> for ProjectionError {
    fn from(e: sqlx::Error) -> Self {
        ProjectionError::Database(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Indexes, PairingRow, create_tables};
    use chrono::NaiveDate;
    use futures::FutureExt as _;

    /// A pairing row with every required value set.
    fn pairing(id: Uuid) -> PairingRow {
        let day = NaiveDate::from_ymd_opt(2021, 10, 1).unwrap();
        PairingRow {
            id,
            director_id: Uuid::from_u128(2),
            model_worker_id: Uuid::from_u128(3),
            county_code: "330106".into(),
            effective_from: day,
            due_on: day,
            due_soon_from: day,
            max_days: 183,
            active: true,
            ..PairingRow::default()
        }
    }

    /// The bulk rebuild reads rows back on a direct connection (`Row::from_lite`, a cache
    /// miss): a value that does not decode is an error naming the table and column, where it
    /// was once a nil UUID, `0`, `false` or 0001-01-01 written back over the row.
    #[test]
    fn a_corrupt_row_read_back_on_a_direct_connection_names_its_table_and_column() {
        let mut db = rusqlite::Connection::open_in_memory().unwrap();
        create_tables(&mut Conn::Lite(&mut db), 1, Indexes::All)
            .now_or_never()
            .unwrap()
            .unwrap();
        let id = Uuid::from_u128(1);
        upsert(&mut Conn::Lite(&mut db), 1, &[pairing(id)])
            .now_or_never()
            .unwrap()
            .unwrap();
        let back = load_by_id::<PairingRow>(&mut Conn::Lite(&mut db), 1, &[id])
            .now_or_never()
            .unwrap()
            .unwrap();
        assert_eq!(back, vec![(id, pairing(id))]);
        for (column, value, reason) in [
            ("due_on", "'2021-02-30'", NOT_A_DATE),
            ("director_id", "'not-a-uuid'", NOT_A_UUID),
            ("county_code", "NULL", NULL_IN_REQUIRED),
            ("max_days", "NULL", NULL_IN_REQUIRED),
            ("max_days", "'ten'", "not an integer"),
            ("max_days", "1.5", "not an integer"),
            ("active", "2", "a flag that is neither 0 nor 1"),
            ("ended_on", "'soon'", NOT_A_DATE),
        ] {
            let restore = db
                .query_row(
                    &format!("SELECT quote({column}) FROM rm1_pairings"),
                    [],
                    |r| r.get::<_, String>(0),
                )
                .unwrap();
            db.execute_batch(&format!("UPDATE rm1_pairings SET {column} = {value}"))
                .unwrap();
            let err = load_by_id::<PairingRow>(&mut Conn::Lite(&mut db), 1, &[id])
                .now_or_never()
                .unwrap()
                .unwrap_err();
            match err {
                ProjectionError::CorruptRow {
                    table,
                    column: c,
                    reason: r,
                } => assert_eq!(
                    (table, c.as_str(), r.as_str()),
                    ("pairings", column, reason)
                ),
                other => panic!("{column} = {value}: {other:?}"),
            }
            db.execute_batch(&format!("UPDATE rm1_pairings SET {column} = {restore}"))
                .unwrap();
        }
        // The narrow read of a pairing's model worker is as strict.
        db.execute_batch("UPDATE rm1_pairings SET model_worker_id = 'x'")
            .unwrap();
        let err = load_uuid_column(
            &mut Conn::Lite(&mut db),
            1,
            "pairings",
            "model_worker_id",
            &[id],
        )
        .now_or_never()
        .unwrap()
        .unwrap_err();
        assert!(
            matches!(&err, ProjectionError::CorruptRow { table: "pairings", column, .. } if column == "model_worker_id"),
            "{err:?}"
        );
        assert_eq!(err.code(), "read_model_corrupt");
    }

    #[test]
    fn a_value_of_the_wrong_kind_is_never_read_as_a_default() {
        assert_eq!(i64::from_val(Val::Null), Err(NULL_IN_REQUIRED));
        assert_eq!(i64::from_val(Val::Text("1".into())), Err("not an integer"));
        assert_eq!(String::from_val(Val::Int(1)), Err("not text"));
        assert_eq!(Uuid::from_val(Val::Text(String::new())), Err(NOT_A_UUID));
        assert_eq!(
            NaiveDate::from_val(Val::Text("2021-13-01".into())),
            Err(NOT_A_DATE)
        );
        assert_eq!(
            bool::from_val(Val::Int(-1)),
            Err("a flag that is neither 0 nor 1")
        );
        assert_eq!(Option::<Uuid>::from_val(Val::Null), Ok(None));
        assert_eq!(
            Option::<Uuid>::from_val(Val::Text("x".into())),
            Err(NOT_A_UUID)
        );
    }

    #[test]
    fn a_date_bound_on_a_direct_connection_reads_back_as_its_iso_text() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for (y, m, d) in [
            (2021, 10, 31),
            (1, 1, 1),
            (999, 12, 9),
            (9999, 12, 31),
            (-44, 3, 15),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            let mut st = conn.prepare("SELECT ?1").unwrap();
            date.bind(&mut st, 1).unwrap();
            let mut rows = st.raw_query();
            let text: String = rows.next().unwrap().unwrap().get(0).unwrap();
            assert_eq!(text, date.to_string(), "{date:?}");
            assert_eq!(NaiveDate::from_val(super::Val::Text(text)), Ok(date));
        }
    }
}
