//! [`Auditor`]: the service side of the toolkit. It keeps the Merkle tree up to date as the
//! exactly-once consumer [`crate::TREE_CONSUMER`], signs checkpoints, and answers the questions
//! the HTTP layer forwards: the latest checkpoint, inclusion and consistency proofs, and the
//! raw leaf encoding of an event.
//!
//! Every proof or root reads at most a few dozen stored complete subtrees in one query, however
//! long the log is; the tree grows by appending each new leaf to an in-memory
//! [`Frontier`] and storing the subtrees it completes, in the same transaction that moves the
//! consumer's checkpoint.
//!
//! The two background tasks, [`Auditor::run_tree_follower`] and [`run_checkpointer`], never stop
//! on an error: they report as `audit.tree` and `audit.checkpointer` in the store's health
//! registry, retry after a capped exponential backoff until the cause is gone (a full disk, a
//! lost database, a busy lock), and log only when their state changes. Each unit of their
//! database work is abandoned after the store's `background_unit` deadline, so a connection
//! gone silent cannot wedge them; an abandoned tree batch commits nothing and its in-memory
//! frontier is reloaded from storage.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use caretrail_store::{EventStore, Expect, LogQuery, StoreError};
use chrono::Utc;
use serde::Serialize;

use crate::db::{AuditDb, StoredCheckpoint};
use crate::key::KeySource;
use crate::merkle::{self, Frontier, Hash, NodeId};
use crate::note::{CheckpointBody, NoteSigner, NoteVerifier};
use crate::{AuditError, Result, TREE_CONSUMER};

/// How an [`Auditor`] is set up.
#[derive(Clone, Debug)]
pub struct AuditConfig {
    /// The log's name in checkpoints (the C2SP origin line), also the key name.
    pub origin: String,
    /// Where the signing key lives; `None` for an auditor that only reads and proves.
    pub key: Option<KeySource>,
    /// Events per tree-consumer transaction.
    pub batch: usize,
}

impl AuditConfig {
    /// The default origin line.
    pub const DEFAULT_ORIGIN: &str = "caretrail/log";

    /// Defaults for a database URL: origin `caretrail/log`, the key file beside the database.
    pub fn for_url(db_url: &str) -> Self {
        Self {
            origin: Self::DEFAULT_ORIGIN.to_owned(),
            key: Some(KeySource::File(KeySource::default_for(db_url))),
            batch: 2000,
        }
    }
}

/// An inclusion proof for the event at `position` in the tree of `tree_size` leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct InclusionProof {
    /// Global log position of the event (1-based).
    pub position: u64,
    /// `position - 1`: the leaf's index in the tree.
    pub leaf_index: u64,
    /// Number of leaves in the tree the proof is against.
    pub tree_size: u64,
    /// The leaf hash, lowercase hex.
    #[serde(with = "crate::hex_hash")]
    #[schemars(with = "crate::hex_hash::HexHash")]
    pub leaf_hash: Hash,
    /// Sibling hashes, bottom-up (RFC 9162 §2.1.3), lowercase hex.
    #[serde(serialize_with = "crate::hex_hash::serialize_vec")]
    #[schemars(with = "Vec<crate::hex_hash::HexHash>")]
    pub proof: Vec<Hash>,
}

/// A consistency proof between two tree sizes (RFC 9162 §2.1.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ConsistencyProof {
    /// The older tree size (number of leaves).
    pub from: u64,
    /// The newer tree size (number of leaves).
    pub to: u64,
    /// The proof's hashes, lowercase hex.
    #[serde(serialize_with = "crate::hex_hash::serialize_vec")]
    #[schemars(with = "Vec<crate::hex_hash::HexHash>")]
    pub proof: Vec<Hash>,
}

/// The raw leaf encoding of an event, so an outsider can recompute its leaf hash as
/// `SHA-256(0x00 || encoding)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct LeafEncoding {
    /// Global log position of the event (1-based).
    pub position: u64,
    /// The encoding's bytes, lowercase hex.
    #[serde(serialize_with = "hex_bytes")]
    #[schemars(with = "String", regex(pattern = "^([0-9a-f]{2})*$"))]
    pub encoding: Vec<u8>,
    /// The leaf hash, lowercase hex.
    #[serde(with = "crate::hex_hash")]
    #[schemars(with = "crate::hex_hash::HexHash")]
    pub leaf_hash: Hash,
}

fn hex_bytes<S: serde::Serializer>(b: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(b))
}

/// The service side of the audit toolkit.
pub struct Auditor {
    store: Arc<dyn EventStore>,
    db: AuditDb,
    origin: String,
    signer: Option<NoteSigner>,
    batch: usize,
    /// The frontier after the last batch this process committed; reused when the consumer's
    /// checkpoint still equals its size, reloaded from storage otherwise.
    frontier: Mutex<Option<Frontier>>,
}

impl Auditor {
    /// Opens the audit tables on the store's database (through the store's own pool) and loads
    /// or creates the signing key.
    #[tracing::instrument(name = "audit.open", skip_all)]
    pub async fn open(store: Arc<dyn EventStore>, config: AuditConfig) -> Result<Self> {
        let db = AuditDb::open(store.as_ref()).await?;
        let signer = match &config.key {
            Some(k) => Some(k.load(&config.origin)?),
            None => None,
        };
        Ok(Self {
            store,
            db,
            origin: config.origin,
            signer,
            batch: config.batch.max(1),
            frontier: Mutex::new(None),
        })
    }

    /// The store this auditor follows.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// The audit tables.
    pub fn db(&self) -> &AuditDb {
        &self.db
    }

    /// The public key that verifies this auditor's checkpoints, if it has a signing key.
    pub fn verifier(&self) -> Option<NoteVerifier> {
        self.signer.as_ref().map(NoteSigner::verifier)
    }

    /// The checkpoint origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The number of leaves the stored tree covers.
    pub async fn tree_size(&self) -> Result<u64> {
        Ok(self.store.checkpoint(TREE_CONSUMER).await?)
    }

    /// Brings the stored tree up to the log's head, batch by batch, each batch committed with
    /// the consumer's checkpoint. Returns the new tree size. Safe to run from many tasks or
    /// processes at once: the store serialises consumer transactions of one name.
    #[tracing::instrument(name = "audit.update_tree", skip_all)]
    pub async fn update_tree(&self) -> Result<u64> {
        loop {
            if let Some(size) = self.unit(self.tree_batch()).await? {
                return Ok(size);
            }
        }
    }

    /// Runs one unit of database work, abandoning it after the store's `background_unit`
    /// deadline (a silent connection fails the unit instead of hanging its caller).
    async fn unit<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let deadline = self.store.options().timeouts.background_unit;
        tokio::time::timeout(deadline, work)
            .await
            .unwrap_or(Err(AuditError::Store(StoreError::Unresponsive(deadline))))
    }

    /// One database operation (a request's read, a statement of a tree batch, the insert of a
    /// checkpoint), abandoned after the store's deadline for one operation: a statement that
    /// has not answered by then is on a connection that went silent.
    async fn read<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let deadline = self.store.options().timeouts.deadline();
        tokio::time::timeout(deadline, work)
            .await
            .unwrap_or(Err(AuditError::Store(StoreError::Unresponsive(deadline))))
    }

    /// Adds one batch of leaves to the stored tree in one consumer transaction. Returns the
    /// tree size when the tree had already reached the head (nothing to add), `None` after a
    /// batch was committed.
    async fn tree_batch(&self) -> Result<Option<u64>> {
        {
            // The leaves are read before the consumer transaction, not inside it. On SQLite
            // the transaction holds the write lock on one pooled connection, and a read inside
            // it needs a second: when every other pooled connection was a writer waiting for
            // that lock (20 subscriptions created at once), neither side could go on until the
            // pool's 30 s acquire timeout, and the whole database stalled (issue 16's attack
            // finding 7).
            let seen = self.store.checkpoint(TREE_CONSUMER).await?;
            let events = self
                .store
                .read_log(&LogQuery::after(seen, self.batch))
                .await?;
            let mut tx = self.store.begin_consumer(TREE_CONSUMER).await?;
            let from = tx.position();
            if from != seen {
                // Another instance moved the tree on meanwhile: read again after it.
                tx.rollback().await?;
                return Ok(None);
            }
            if events.is_empty() {
                tx.rollback().await?;
                return Ok(Some(from));
            }
            // Taken out of the slot: a batch abandoned half-way leaves it empty, and the next
            // one reloads the frontier from storage.
            let cached = self
                .frontier
                .lock()
                .map_err(|_| AuditError::OutOfRange("frontier lock poisoned".into()))?
                .take()
                .filter(|f| f.size() == from);
            let mut frontier = match cached {
                Some(f) => f,
                None => {
                    let ids = Frontier::node_ids(from);
                    let found = self.read(self.db.nodes_in_tx(&mut tx, &ids)).await?;
                    let hashes = ids
                        .iter()
                        .map(|id| found.get(id).copied().ok_or(AuditError::MissingNode(*id)))
                        .collect::<Result<Vec<_>>>()?;
                    Frontier::from_parts(from, hashes).ok_or(AuditError::MissingNode(NodeId {
                        level: 0,
                        index: from,
                    }))?
                }
            };
            let mut nodes = Vec::with_capacity(events.len() * 2);
            for (i, e) in events.iter().enumerate() {
                let expected = from + 1 + i as u64;
                if e.position != expected {
                    tx.rollback().await?;
                    return Err(AuditError::LogGap {
                        expected,
                        found: e.position,
                    });
                }
                // A leaf whose content no longer matches its hash must not be signed over.
                if e.recompute_leaf_hash() != e.leaf_hash {
                    tx.rollback().await?;
                    return Err(AuditError::LeafMismatch {
                        position: e.position,
                    });
                }
                frontier.push(e.leaf_hash, |id, h| nodes.push((id, *h)));
            }
            self.read(self.db.insert_nodes(&mut tx, &nodes)).await?;
            let to = frontier.size();
            tx.commit(to).await?;
            tracing::debug!(tree_size = to, "merkle tree advanced");
            if let Ok(mut slot) = self.frontier.lock() {
                *slot = Some(frontier);
            }
            Ok(None)
        }
    }

    /// Follows the log: updates the tree whenever the store's head moves (and at least every
    /// store poll interval, to see other processes' appends), reporting as `audit.tree`.
    /// Failures are retried with backoff until they pass; it never returns (cancel it to stop).
    pub async fn run_tree_follower(self: Arc<Self>) {
        const FOLLOW_PACE: std::time::Duration = std::time::Duration::from_millis(20);
        let mut head = self.store.notifier().watch_head();
        let poll = self.store.options().poll_interval;
        let task = self
            .store
            .health()
            .register("audit.tree", Expect::FollowsLog { every: poll * 2 });
        loop {
            match self.update_tree().await {
                Ok(size) => task.at(size),
                Err(e) => {
                    tokio::time::sleep(task.failed(e.kind(), &e)).await;
                    continue;
                }
            }
            // Gather what arrives for a moment before the next transaction: under a steady
            // command load a tree update per event would keep taking SQLite's single write
            // lock from the command writer. Checkpoints are signed every minute or on demand
            // (which brings the tree up to date first), so the pace delays no proof.
            tokio::time::sleep(FOLLOW_PACE).await;
            // Either a wake-up or the poll tick: both just mean "look again".
            let _ = tokio::time::timeout(poll, head.changed()).await;
        }
    }

    async fn hashes_of(&self, ids: &[NodeId]) -> Result<std::collections::HashMap<NodeId, Hash>> {
        let found = self.db.nodes(ids).await?;
        if let Some(missing) = ids.iter().find(|id| !found.contains_key(id)) {
            return Err(AuditError::MissingNode(*missing));
        }
        Ok(found)
    }

    async fn check_size(&self, tree_size: u64) -> Result<()> {
        let have = self.tree_size().await?;
        if tree_size > have {
            return Err(AuditError::OutOfRange(format!(
                "tree size {tree_size} is beyond the tree's {have} leaves"
            )));
        }
        Ok(())
    }

    /// The root of the tree's first `tree_size` leaves.
    pub async fn root_at(&self, tree_size: u64) -> Result<Hash> {
        self.read(self.root_at_now(tree_size)).await
    }

    async fn root_at_now(&self, tree_size: u64) -> Result<Hash> {
        self.check_size(tree_size).await?;
        let ids = merkle::decompose(0, tree_size);
        let found = self.hashes_of(&ids).await?;
        let hashes: Vec<Hash> = ids.iter().map(|id| found[id]).collect();
        Ok(merkle::fold(&hashes))
    }

    /// An inclusion proof of the event at `position` (1-based) in the tree of `tree_size`.
    #[tracing::instrument(name = "audit.inclusion_proof", skip_all, fields(position, tree_size))]
    pub async fn inclusion_proof(&self, position: u64, tree_size: u64) -> Result<InclusionProof> {
        self.read(self.inclusion_proof_now(position, tree_size))
            .await
    }

    async fn inclusion_proof_now(&self, position: u64, tree_size: u64) -> Result<InclusionProof> {
        if position == 0 || position > tree_size {
            return Err(AuditError::OutOfRange(format!(
                "position {position} is not in a tree of {tree_size} events"
            )));
        }
        self.check_size(tree_size).await?;
        let index = position - 1;
        let spans = merkle::inclusion_spans(index, tree_size);
        let leaf = NodeId { level: 0, index };
        let mut ids = merkle::nodes_for(&spans);
        ids.push(leaf);
        let found = self.hashes_of(&ids).await?;
        let proof = merkle::hash_spans(&spans, |id| found.get(&id).copied())
            .ok_or(AuditError::MissingNode(leaf))?;
        Ok(InclusionProof {
            position,
            leaf_index: index,
            tree_size,
            leaf_hash: found[&leaf],
            proof,
        })
    }

    /// A consistency proof from the tree of `from` leaves to the tree of `to` leaves.
    #[tracing::instrument(name = "audit.consistency_proof", skip_all, fields(from, to))]
    pub async fn consistency_proof(&self, from: u64, to: u64) -> Result<ConsistencyProof> {
        self.read(self.consistency_proof_now(from, to)).await
    }

    async fn consistency_proof_now(&self, from: u64, to: u64) -> Result<ConsistencyProof> {
        if from == 0 || from > to {
            return Err(AuditError::OutOfRange(format!(
                "no consistency proof from {from} to {to} (need 0 < from <= to)"
            )));
        }
        self.check_size(to).await?;
        let spans = merkle::consistency_spans(from, to);
        let ids = merkle::nodes_for(&spans);
        let found = self.hashes_of(&ids).await?;
        let proof = merkle::hash_spans(&spans, |id| found.get(&id).copied()).ok_or(
            AuditError::MissingNode(NodeId {
                level: 0,
                index: from,
            }),
        )?;
        Ok(ConsistencyProof { from, to, proof })
    }

    /// The raw leaf encoding of the event at `position`, with its stored leaf hash.
    pub async fn leaf_encoding(&self, position: u64) -> Result<LeafEncoding> {
        self.read(self.leaf_encoding_now(position)).await
    }

    async fn leaf_encoding_now(&self, position: u64) -> Result<LeafEncoding> {
        let events = self
            .store
            .read_log(&LogQuery {
                after: position.saturating_sub(1),
                up_to: Some(position),
                filter: Default::default(),
                limit: 1,
            })
            .await?;
        let e = events
            .into_iter()
            .find(|e| e.position == position)
            .ok_or_else(|| AuditError::OutOfRange(format!("no event at position {position}")))?;
        Ok(LeafEncoding {
            position,
            encoding: caretrail_store::leaf::encode(&(&e).into()),
            leaf_hash: e.leaf_hash,
        })
    }

    /// The signed checkpoint with the largest tree size.
    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>> {
        self.read(self.db.latest_checkpoint()).await
    }

    /// Every signed checkpoint, by tree size.
    pub async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>> {
        self.read(self.db.all_checkpoints()).await
    }

    /// Brings the tree up to the head and signs a checkpoint of it, unless the latest
    /// checkpoint already has that size (then it is returned as it is).
    #[tracing::instrument(name = "audit.sign_checkpoint", skip_all)]
    pub async fn sign_checkpoint(&self) -> Result<StoredCheckpoint> {
        let signer = self.signer.as_ref().ok_or(AuditError::NoSigningKey)?;
        let size = self.update_tree().await?;
        if let Some(latest) = self.latest_checkpoint().await?
            && latest.tree_size >= size
        {
            return Ok(latest);
        }
        let root = self.root_at(size).await?;
        let signed_at = Utc::now();
        let body = CheckpointBody {
            origin: self.origin.clone(),
            tree_size: size,
            root_hash: root,
            time: Some(signed_at),
        };
        let note = signer.sign(&body.to_text());
        let checkpoint = StoredCheckpoint {
            tree_size: size,
            root_hash: root,
            signed_at,
            note,
        };
        let stored = self.read(self.db.insert_checkpoint(&checkpoint)).await?;
        tracing::info!(tree_size = size, "signed a checkpoint");
        Ok(stored)
    }
}

/// Signs a checkpoint every `interval` (when the log grew), keeping the tree up to date in
/// between, and reports as `audit.checkpointer`. A failed signing is retried after a capped
/// exponential backoff (not only at the next tick) until it succeeds; it never returns (cancel
/// it to stop).
pub async fn run_checkpointer(auditor: Arc<Auditor>, interval: Duration) {
    let task = auditor
        .store
        .health()
        .register("audit.checkpointer", Expect::Periodic { every: interval });
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        loop {
            // Every database operation of a signing has its own deadline (a tree batch, a
            // read, the insert), so a long catch-up of the tree is not cut short as a whole.
            match auditor.sign_checkpoint().await {
                Ok(_) => {
                    task.succeeded();
                    break;
                }
                Err(e) => tokio::time::sleep(task.failed(e.kind(), &e)).await,
            }
        }
    }
}
