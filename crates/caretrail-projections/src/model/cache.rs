//! The applier's row cache: the rows of one `id`-keyed table a batch has seen, which ones it
//! changed, and whether the table holds nothing else.

use super::*;

/// Rows of one `id`-keyed table that a batch has seen: `None` marks a row known to be absent.
///
/// Rows are boxed: a hash table keeps an eighth to a half of its slots empty and doubles when
/// it grows, and with rows stored inline every empty slot cost a whole row (a model worker is
/// 248 bytes). Measured on the 4.4M-event log: when the model workers came to fill most of
/// the row budget, their table's doubling alone added some 20 MB to the rebuild's peak.
pub(super) struct Cache<R> {
    pub(super) rows: HashMap<Uuid, Option<Box<R>>>,
    pub(super) dirty: HashSet<Uuid>,
    /// The table holds exactly what this cache holds (built from empty, never trimmed): a
    /// miss is an absent row and needs no read.
    pub(super) fresh: bool,
}

impl<R: Row> Cache<R> {
    pub(super) fn new(fresh: bool) -> Self {
        Self {
            rows: HashMap::new(),
            dirty: HashSet::new(),
            fresh,
        }
    }

    /// After a flush: forgets the rows for which `done` holds (rows no event is expected to
    /// touch again); the table is then no longer known to hold only what the cache holds.
    pub(super) fn forget_where(&mut self, mut done: impl FnMut(&R) -> bool) {
        let before = self.rows.len();
        self.rows
            .retain(|_, row| !row.as_deref().is_some_and(&mut done));
        if self.rows.len() != before {
            self.fresh = false;
        }
    }

    /// After a flush: forgets every row once the cache holds more than `limit`.
    pub(super) fn trim(&mut self, limit: usize) {
        if self.rows.len() > limit && self.dirty.is_empty() {
            self.rows = HashMap::new();
            self.fresh = false;
        }
    }
}

impl<R: Row> Cache<R> {
    pub(super) fn get(&self, id: Uuid) -> Option<&R> {
        self.rows.get(&id).and_then(Option::as_deref)
    }

    pub(super) fn get_mut(&mut self, id: Uuid) -> Option<&mut R> {
        let row = self.rows.get_mut(&id).and_then(Option::as_deref_mut);
        if row.is_some() {
            self.dirty.insert(id);
        }
        row
    }

    pub(super) fn put(&mut self, id: Uuid, row: R) {
        self.rows.insert(id, Some(Box::new(row)));
        self.dirty.insert(id);
    }

    /// Loads the rows among `ids` that this cache does not know yet. When the cache is fresh,
    /// the table is known to hold only what the cache holds, so nothing is read.
    /// Returns the ids that were read from the table.
    pub(super) async fn ensure(
        &mut self,
        conn: &mut Conn<'_>,
        generation: i64,
        ids: impl IntoIterator<Item = Uuid>,
    ) -> Result<Vec<Uuid>> {
        let fresh = self.fresh;
        let mut unknown: Vec<Uuid> = ids
            .into_iter()
            .filter(|id| !self.rows.contains_key(id))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        if unknown.is_empty() || fresh {
            for id in unknown {
                self.rows.insert(id, None);
            }
            return Ok(Vec::new());
        }
        for (id, row) in sql::load_by_id::<R>(conn, generation, &unknown).await? {
            self.rows.insert(id, Some(Box::new(row)));
        }
        for &id in &unknown {
            self.rows.entry(id).or_insert(None);
        }
        Ok(unknown)
    }

    pub(super) async fn flush(&mut self, conn: &mut Conn<'_>, generation: i64) -> Result<()> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        let mut ids: Vec<Uuid> = self.dirty.drain().collect();
        // Key order makes the write pattern (and B-tree page splits) deterministic.
        ids.sort_unstable();
        let rows: Vec<&R> = ids.iter().filter_map(|id| self.get(*id)).collect();
        sql::upsert_refs(conn, generation, &rows).await
    }
}
