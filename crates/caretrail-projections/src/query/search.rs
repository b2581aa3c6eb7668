//! Search by name over sealed names: the people lists' `q`.
//!
//! Names are personal data and the read models keep them sealed under each person's own key,
//! so no SQL can compare them. A search instead reads every row's (id, name event, erased) of
//! the people table (one small statement), opens the names it has not opened before, and
//! compares them in memory; the list query then runs with the matching ids as a filter, so
//! region filters, ordering and cursor paging work as without a search.
//!
//! The opened names live only in a [`NameIndex`], in memory, keyed by (row id, the event that
//! sealed the name): a rename or a relocation that reseals brings a new key, and a replay of an
//! older log position finds the name that was current then. Nothing of it is ever written to a
//! table or a log line. An erased person never matches: the row's `erased` flag is read on
//! every search (and drops the person's entry), an erasure made through this process's key
//! ring empties the whole index ([`KeyRing::erasures`]), and a key destroyed by another process
//! cannot open the name again. A reader matches only the names their access may open (a
//! director: themselves and their own model worker; auditors and integrations: nobody, and
//! the HTTP layer refuses them the parameter).

use std::collections::HashMap;
use std::sync::Mutex;

use caretrail_domain::text::{TextKind, check};

use super::*;

/// The longest search text, in characters: a name is a few characters; anything longer is not
/// a name and would only cost comparisons.
pub const NAME_QUERY_MAX_CHARS: usize = 32;

/// Opened names kept in memory before the index starts over (about 100 bytes each).
const NAME_INDEX_LIMIT: usize = 200_000;

/// Ids per statement when fetching the sealed names not yet opened.
const FETCH_CHUNK: usize = 500;

/// A validated search text, folded for comparison (whitespace removed, lower case), never
/// shown in an error or a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct NameQuery(String);

impl std::fmt::Debug for NameQuery {
    /// Personal data: the text itself is never formatted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NameQuery(..)")
    }
}

impl NameQuery {
    /// Checks a search text: one line of text (the commands' text rule), at most
    /// [`NAME_QUERY_MAX_CHARS`] characters, at least one of them not whitespace. The error
    /// names the rule, never the text.
    pub fn parse(raw: &str) -> Result<NameQuery> {
        check(raw, TextKind::Line).map_err(|e| ProjectionError::InvalidQuery(format!("q {e}")))?;
        // A query string's bytes that are not UTF-8 arrive decoded as U+FFFD; no name is
        // typed with it, and the read side writes it for text it could not keep.
        if raw.contains(caretrail_domain::text::REPLACEMENT) {
            return Err(ProjectionError::InvalidQuery(
                "q must be UTF-8 text (percent-encoded bytes that are not UTF-8 were sent)".into(),
            ));
        }
        if raw.chars().count() > NAME_QUERY_MAX_CHARS {
            return Err(ProjectionError::InvalidQuery(format!(
                "q must be at most {NAME_QUERY_MAX_CHARS} characters"
            )));
        }
        let folded = fold(raw);
        if folded.is_empty() {
            return Err(ProjectionError::InvalidQuery(
                "q must hold at least one character that is not a space".into(),
            ));
        }
        Ok(NameQuery(folded))
    }

    /// Whether the folded name `name` contains this text.
    fn matches(&self, name: &str) -> bool {
        name.contains(self.0.as_str())
    }
}

/// A name as compared: without whitespace (full-width spaces included), in lower case, so
/// `王 小明` finds `王小明` and `li` finds `Li Ming`.
fn fold(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Which people table a search reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum People {
    /// Model workers (`model_workers`).
    ModelWorkers,
    /// Directors (`directors`).
    Directors,
}

impl People {
    fn table(self) -> &'static str {
        match self {
            People::ModelWorkers => "model_workers",
            People::Directors => "directors",
        }
    }
}

/// The opened, folded names of people, in memory only (see the module documentation). One
/// per server, shared by every request and replay.
#[derive(Default)]
pub struct NameIndex {
    inner: Mutex<Names>,
    /// Held while names are opened: after a start or an erasure every search finds the index
    /// empty, and without it each would open every name at once (seconds of work each);
    /// with it the first opens them and the others wait, then find them. Searches that find
    /// everything they need never take it.
    filling: tokio::sync::Mutex<()>,
    /// Names opened since the index was made (for tests and the benchmark).
    opened: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for NameIndex {
    /// Personal data: only the size is formatted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameIndex")
            .field("entries", &self.len())
            .finish()
    }
}

#[derive(Default)]
struct Names {
    /// The key ring's erasure count the entries were opened under.
    erasures: u64,
    /// (people table, row id, event that sealed the name) → the folded name; `None` when the
    /// key is gone.
    names: HashMap<(People, Uuid, Uuid), Option<Box<str>>>,
    /// Each people table's rows as last read from the live read models, with the read
    /// models' version (generation, checkpoint) they were read at or after: between two
    /// applied batches a search reads nothing (as the dashboards' answer cache).
    scans: HashMap<People, Scan>,
}

/// A people table's rows and the live read models' version they were read at (or after).
type Scan = ((i64, u64), Arc<[NameRef]>);

/// What one search works with.
#[derive(Clone, Copy)]
struct Search<'a> {
    keys: &'a KeyRing,
    access: &'a Access,
    index: &'a NameIndex,
    people: People,
    query: &'a NameQuery,
    /// The key ring's erasure count when the search (pass) began.
    epoch: u64,
}

impl NameIndex {
    /// How many names are held (for tests and the benchmark).
    pub fn len(&self) -> usize {
        self.lock().names.len()
    }

    /// How many names searches have opened (unsealed) through this index.
    pub fn opened(&self) -> u64 {
        self.opened.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether no name is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Names> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Empties the index when the key ring has erased someone since it was filled.
    fn sync(&self, erasures: u64) {
        let mut n = self.lock();
        if n.erasures != erasures {
            n.names.clear();
            n.scans.clear();
            n.erasures = erasures;
        }
    }
}

query_row! {
    /// Every people row as a search reads it first, packed into one text value (id, name
    /// event or `-`, erased flag; rows separated by commas): sqlx hands rows over one by one,
    /// and at 10,000 people the per-row cost, not the database, was most of a search.
    PackedRefs {
        "model_workers" => {
            packed ("id"): Text<String>,
        }
    }
}

/// A people row as a search reads it first: no sealed value.
#[derive(Clone, Copy)]
struct NameRef {
    id: Uuid,
    name_event: Option<Uuid>,
    erased: bool,
}

/// Unpacks [`PackedRefs`]; anything else than what the statement writes is a corrupt row
/// naming the column (a NULL is packed as `?`, so it is refused, not skipped).
fn unpack(packed: &str, table: &'static str) -> Result<Vec<NameRef>> {
    let bad = |column: &str, what: &str| crate::sql::corrupt(table, column, what);
    packed
        .split(',')
        .filter(|r| !r.is_empty())
        .map(|r| {
            let mut f = r.split(' ');
            let (Some(id), Some(event), Some(erased), None) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                return Err(bad("id", "a packed row without three fields"));
            };
            Ok(NameRef {
                id: Uuid::try_parse(id).map_err(|_| bad("id", "not a UUID"))?,
                name_event: match event {
                    "-" => None,
                    e => Some(Uuid::try_parse(e).map_err(|_| bad("name_event", "not a UUID"))?),
                },
                erased: match erased {
                    "0" => false,
                    "1" => true,
                    _ => return Err(bad("erased", "not a flag (0 or 1)")),
                },
            })
        })
        .collect()
}

query_row! {
    /// A people row's sealed name, fetched only when not opened before.
    SealedNameRow {
        "model_workers" => {
            id: Text<Uuid>,
            name_sealed: Option<String>,
            name_event: Option<Text<Uuid>>,
        }
    }
}

impl Args {
    /// ` AND {column} IN (...)` over `ids`, bound as one JSON array parameter on either
    /// backend, so the statement's size and parameter count do not grow with the matches.
    pub(super) fn among(&mut self, column: &str, ids: &[Uuid]) -> String {
        format!(" AND {}", self.in_ids(column, ids))
    }

    /// `{column} IN (...)` over `ids`, as in [`Args::among`].
    pub(super) fn in_ids(&mut self, column: &str, ids: &[Uuid]) -> String {
        let json = serde_json::Value::from(ids.iter().map(|u| u.to_string()).collect::<Vec<_>>())
            .to_string();
        let p = self.text(json);
        match self.backend {
            Backend::Sqlite => format!("{column} IN (SELECT value FROM json_each({p}))"),
            Backend::Postgres => {
                format!("{column} IN (SELECT json_array_elements_text(CAST({p} AS json)))")
            }
        }
    }
}

impl ReadModels {
    /// The ids of the `people` whose name contains `query`, as `access` may open them, in id
    /// order. Erased people and people whose name `access` may not open never match.
    /// `live_version` is the live read models' version ([`crate::Projector::live_version`])
    /// when these are the live ones, read before the call: rows read at that version are
    /// reused until it changes. `None` (a replay) always reads.
    #[tracing::instrument(name = "projections.people_named", skip_all, fields(people = ?people))]
    pub async fn people_named(
        &self,
        keys: &KeyRing,
        access: &Access,
        index: &NameIndex,
        people: People,
        query: &NameQuery,
        live_version: Option<(i64, u64)>,
    ) -> Result<Vec<Uuid>> {
        if matches!(access, Access::Redacted) {
            return Ok(Vec::new());
        }
        // An erasure made while this search opened names could let a name opened just before
        // it into the index: such a search starts over, and its second pass cannot open the
        // erased person's name. (Erasures are rare; a third one in a row is answered as is,
        // the read model's `erased` flag still keeping the person out.)
        let mut attempts = 0;
        loop {
            let epoch = keys.erasures();
            index.sync(epoch);
            let search = Search {
                keys,
                access,
                index,
                people,
                query,
                epoch,
            };
            let found = self.people_named_once(search, live_version).await?;
            attempts += 1;
            if keys.erasures() == epoch || attempts == 3 {
                return Ok(found);
            }
        }
    }

    /// One pass of [`ReadModels::people_named`], filling the index only while the key ring's
    /// erasure count is still `epoch`.
    async fn people_named_once(
        &self,
        search: Search<'_>,
        live_version: Option<(i64, u64)>,
    ) -> Result<Vec<Uuid>> {
        let Search {
            access,
            index,
            people,
            ..
        } = search;
        let cached = live_version.and_then(|v| {
            let n = index.lock();
            n.scans
                .get(&people)
                .filter(|(at, _)| *at == v)
                .map(|(_, rows)| rows.clone())
        });
        let rows = match cached {
            Some(rows) => rows,
            None => {
                let rows: Arc<[NameRef]> = self.scan(people).await?.into();
                if let Some(v) = live_version {
                    index.lock().scans.insert(people, (v, rows.clone()));
                }
                rows
            }
        };
        // Which names this reader may open and the index does not hold yet; erased people
        // lose their entries.
        let find_missing = |index: &NameIndex| {
            let mut n = index.lock();
            let mut missing = Vec::new();
            for r in rows.iter() {
                let Some(event) = r.name_event else {
                    continue;
                };
                let key = (people, r.id, event);
                if r.erased {
                    n.names.remove(&key);
                } else if access.may_open(r.id) && !n.names.contains_key(&key) {
                    missing.push(r.id);
                }
            }
            missing
        };
        let mut _filling = None;
        let mut missing = find_missing(index);
        if !missing.is_empty() {
            // Wait for a search that is opening names already, then see what is still missing.
            _filling = Some(index.filling.lock().await);
            missing = missing_again(index, &missing, people, &rows);
        }
        let (mut tx, g) = self.begin().await?;
        let table = physical(g, people.table());
        let mut sealed = Vec::new();
        for chunk in missing.chunks(FETCH_CHUNK) {
            let mut q = tx.args();
            let among = q.among("id", chunk);
            let got: Vec<SealedNameRow> = tx
                .rows(
                    &format!("SELECT id, name_sealed, name_event FROM {table} WHERE 1 = 1{among}"),
                    &q,
                )
                .await
                .map_err(|e| retable(e, people.table()))?;
            sealed.extend(got);
        }
        // Opening may read keys from the database: not inside the read transaction.
        drop(tx);
        self.open_and_match(search, &rows, sealed).await
    }

    /// Every row of `people` as (id, name event, erased), in one packed statement.
    async fn scan(&self, people: People) -> Result<Vec<NameRef>> {
        let (mut tx, g) = self.begin().await?;
        let table = physical(g, people.table());
        let q = tx.args();
        let agg = match tx.backend() {
            Backend::Sqlite => "group_concat",
            Backend::Postgres => "string_agg",
        };
        let packed: PackedRefs = tx
            .one(
                &format!(
                    "SELECT COALESCE({agg}(COALESCE(id, '?') || ' ' || \
                     COALESCE(name_event, '-') || ' ' || COALESCE(CAST(erased AS TEXT), '?'), \
                     ','), '') AS packed FROM {table}"
                ),
                &q,
            )
            .await
            .map_err(|e| retable(e, people.table()))?;
        unpack(&packed.packed.0, people.table())
    }

    /// Opens the `sealed` names fetched for a search, keeps them in the index while the key
    /// ring's erasure count is still `epoch`, and answers the ids in `rows` whose name matches.
    async fn open_and_match(
        &self,
        search: Search<'_>,
        rows: &[NameRef],
        sealed: Vec<SealedNameRow>,
    ) -> Result<Vec<Uuid>> {
        let Search {
            keys,
            access,
            index,
            people,
            query,
            epoch,
        } = search;
        let mut opened = Vec::with_capacity(sealed.len());
        for r in sealed {
            let (Some(text), Some(Text(event))) = (r.name_sealed, r.name_event) else {
                continue;
            };
            let value: Sealed = serde_json::from_str(&text).map_err(|_| {
                crate::sql::corrupt(people.table(), "name_sealed", "not a sealed value's JSON")
            })?;
            if !access.may_open(value.subject) {
                continue;
            }
            let name = keys.unseal(&value, event).await?;
            index
                .opened
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            opened.push((
                (people, r.id.0, event),
                name.map(|n| fold(&n).into_boxed_str()),
            ));
        }
        let mut n = index.lock();
        if keys.erasures() != epoch || n.erasures != epoch {
            // Someone was erased meanwhile: nothing opened here is kept, and the caller
            // starts over.
            n.names.clear();
            return Ok(Vec::new());
        }
        if n.names.len() + opened.len() > NAME_INDEX_LIMIT {
            n.names.clear();
        }
        n.names.extend(opened);
        let mut found: Vec<Uuid> = rows
            .iter()
            .filter(|r| !r.erased && access.may_open(r.id))
            .filter(|r| {
                r.name_event.is_some_and(|event| {
                    n.names
                        .get(&(people, r.id, event))
                        .is_some_and(|name| name.as_deref().is_some_and(|s| query.matches(s)))
                })
            })
            .map(|r| r.id)
            .collect();
        found.sort_unstable();
        Ok(found)
    }
}

/// Of `missing`, the ids whose current name (as `rows` read it) the index still does not hold.
fn missing_again(
    index: &NameIndex,
    missing: &[Uuid],
    people: People,
    rows: &[NameRef],
) -> Vec<Uuid> {
    let n = index.lock();
    let wanted: std::collections::HashSet<&Uuid> = missing.iter().collect();
    rows.iter()
        .filter(|r| wanted.contains(&r.id))
        .filter(|r| {
            r.name_event
                .is_some_and(|event| !n.names.contains_key(&(people, r.id, event)))
        })
        .map(|r| r.id)
        .collect()
}

/// A corrupt row error of the row structs above (declared on `model_workers`) names the table
/// actually read.
fn retable(e: ProjectionError, table: &'static str) -> ProjectionError {
    match e {
        ProjectionError::CorruptRow { column, reason, .. } => ProjectionError::CorruptRow {
            table,
            column,
            reason,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_ignores_spaces_and_case() {
        let q = NameQuery::parse(" 王\u{3000}小 ").unwrap();
        assert!(q.matches(&fold("王小明")));
        assert!(NameQuery::parse("LI").unwrap().matches(&fold("Li Ming")));
        assert!(!NameQuery::parse("张").unwrap().matches(&fold("王小明")));
    }

    #[test]
    fn a_query_that_is_not_a_name_is_refused_without_echoing_it() {
        for bad in [
            "",
            "   ",
            "\u{3000}",
            "王\n",
            "a\u{202e}b",
            "王\u{fffd}",
            &"长".repeat(33),
        ] {
            let e = NameQuery::parse(bad).unwrap_err().to_string();
            assert!(bad.trim().is_empty() || !e.contains(bad.trim()), "{e}");
        }
        assert!(NameQuery::parse(&"长".repeat(32)).is_ok());
    }

    #[test]
    fn the_debug_form_hides_the_text() {
        assert_eq!(
            format!("{:?}", NameQuery::parse("王小明").unwrap()),
            "NameQuery(..)"
        );
    }
}
