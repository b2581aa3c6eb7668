//! The verifier: checks an export file or a live database with nothing but the public key, and
//! names the first thing that fails, in log order.
//!
//! For each event, in position order: positions run 1, 2, 3, ... without holes, and the leaf
//! hash recomputes from the event's content. Each signed checkpoint is checked when the tree
//! built from those leaves reaches its size: its signature verifies with the pinned key
//! (`verify_strict`), its root equals the root of the leaves, and the consistency proof the log
//! serves from the previous checkpoint verifies (RFC 9162 §2.1.4.2). A checkpoint larger than
//! the log means the log lost events it had signed (an old backup restored, a truncation).
//!
//! The work per event is one leaf encoding into a reused buffer, one SHA-256 of it and on
//! average one interior hash; the tree is kept as a [`Frontier`], so memory is `O(log n)`.

mod file;

use std::collections::VecDeque;

use caretrail_store::leaf::{LeafFields, encode_into};
use caretrail_store::{LogQuery, stream_log};
use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::auditor::Auditor;
use crate::merkle::{self, Frontier, Hash};
use crate::note::{self, NoteError, NoteVerifier};

pub use file::verify_file;

/// The first failure a verification found.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The event's content does not hash to its leaf hash: its data, metadata or position was
    /// changed, or it was moved.
    #[error("position {position}: the event does not hash to its leaf hash")]
    LeafHashMismatch {
        /// The position of the event that does not hash.
        position: u64,
    },
    /// A position is missing from the log (an event was deleted).
    #[error("position {position}: the event is missing (the log continues at {found})")]
    MissingPosition {
        /// The first missing position.
        position: u64,
        /// The position the log continues at.
        found: u64,
    },
    /// A position appears again or out of order.
    #[error("position {position}: expected next, but found position {found}")]
    UnexpectedPosition {
        /// The position expected next.
        position: u64,
        /// The position found instead, a lower one (repeated or out of order).
        found: u64,
    },
    /// A checkpoint's signature does not verify with the pinned key.
    #[error("checkpoint at tree size {tree_size}: {reason}")]
    BadSignature {
        /// The checkpoint's tree size.
        tree_size: u64,
        /// Why its note does not verify.
        reason: NoteError,
    },
    /// The signed root differs from the root of the log's leaves: the log was rewritten (or
    /// forked) somewhere in `first_position..=tree_size`, after the last checkpoint that held.
    #[error(
        "checkpoint at tree size {tree_size}: the log's root differs from the signed root; \
         the log was changed at or after position {first_position}"
    )]
    RootMismatch {
        /// The checkpoint's tree size.
        tree_size: u64,
        /// The first position that may have changed: one past the last checkpoint that held
        /// (1 when none did).
        first_position: u64,
    },
    /// A signed checkpoint covers more events than the log has: signed events are gone.
    #[error(
        "checkpoint at tree size {tree_size}: the log has only {log_size} events; \
         position {} onwards is missing", log_size + 1
    )]
    CheckpointBeyondLog {
        /// The checkpoint's tree size.
        tree_size: u64,
        /// How many events the log has.
        log_size: u64,
    },
    /// The consistency proof between two checkpoints does not verify.
    #[error("checkpoint at tree size {to}: the consistency proof from tree size {from} is invalid")]
    InconsistentCheckpoints {
        /// The earlier checkpoint's tree size.
        from: u64,
        /// The later checkpoint's tree size.
        to: u64,
    },
    /// A line of an export file is not in the documented format.
    #[error("line {line}: {reason}")]
    Malformed {
        /// The line of the export file, from 1; 0 when the fault is on no line (a trusted
        /// checkpoint).
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The export file ends without its `end` line, or counts disagree with it.
    #[error("the export is truncated or incomplete: {0}")]
    Truncated(String),
    /// The file could not be read.
    #[error("cannot read the export: {0}")]
    Io(#[from] std::io::Error),
    /// The store or the audit tables could not be read.
    #[error(transparent)]
    Audit(#[from] crate::AuditError),
}

impl VerifyError {
    /// The first log position this failure names, if it names one.
    pub fn position(&self) -> Option<u64> {
        match self {
            Self::LeafHashMismatch { position }
            | Self::MissingPosition { position, .. }
            | Self::UnexpectedPosition { position, .. } => Some(*position),
            Self::RootMismatch { first_position, .. } => Some(*first_position),
            Self::CheckpointBeyondLog { log_size, .. } => Some(log_size + 1),
            _ => None,
        }
    }

    /// The tree size of the checkpoint this failure names, if any.
    pub fn checkpoint(&self) -> Option<u64> {
        match self {
            Self::BadSignature { tree_size, .. }
            | Self::RootMismatch { tree_size, .. }
            | Self::CheckpointBeyondLog { tree_size, .. } => Some(*tree_size),
            Self::InconsistentCheckpoints { to, .. } => Some(*to),
            _ => None,
        }
    }
}

/// Extra inputs to a verification.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Checkpoints the auditor obtained earlier (signed notes), checked as if the log had
    /// served them: a restored old backup is caught by the newer checkpoint the auditor kept.
    pub trusted_checkpoints: Vec<String>,
}

/// What a successful verification covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events verified: the size of the log.
    pub events: u64,
    /// Checkpoints verified, trusted ones included.
    pub checkpoints: u64,
    /// The root of all verified leaves.
    pub root: Hash,
    /// The largest verified checkpoint's tree size, if any.
    pub latest_checkpoint: Option<u64>,
}

/// A checkpoint waiting for the tree to reach its size.
struct Pending {
    tree_size: u64,
    note: String,
    /// The log's consistency proof from the previous checkpoint (`None`: none was offered).
    proof: Option<Vec<Hash>>,
}

/// The streaming core shared by file and database verification.
struct Verifier<'k> {
    key: &'k NoteVerifier,
    frontier: Frontier,
    buf: Vec<u8>,
    pending: VecDeque<Pending>,
    previous: Option<(u64, Hash)>,
    checkpoints: u64,
}

impl<'k> Verifier<'k> {
    fn new(key: &'k NoteVerifier) -> Self {
        Self {
            key,
            frontier: Frontier::new(),
            buf: Vec::with_capacity(1024),
            pending: VecDeque::new(),
            previous: None,
            checkpoints: 0,
        }
    }

    fn event(&mut self, f: &LeafFields<'_>, stored: &Hash) -> Result<(), VerifyError> {
        self.expect_position(f.position)?;
        self.buf.clear();
        self.buf.push(0);
        encode_into(f, &mut self.buf);
        self.leaf(f.position, stored)
    }

    fn expect_position(&self, position: u64) -> Result<(), VerifyError> {
        let expected = self.frontier.size() + 1;
        if position == expected {
            return Ok(());
        }
        Err(if position > expected {
            VerifyError::MissingPosition {
                position: expected,
                found: position,
            }
        } else {
            VerifyError::UnexpectedPosition {
                position: expected,
                found: position,
            }
        })
    }

    /// Hashes the encoding in `buf` (after its 0x00 prefix) and appends it as the next leaf.
    fn leaf(&mut self, position: u64, stored: &Hash) -> Result<(), VerifyError> {
        let hash: Hash = Sha256::digest(&self.buf).into();
        self.push(position, hash, stored)
    }

    /// An event encoded by someone else: `encoded` is `0x00 || leaf encoding`.
    fn encoded(&mut self, position: u64, encoded: &[u8], stored: &Hash) -> Result<(), VerifyError> {
        self.expect_position(position)?;
        let hash: Hash = Sha256::digest(encoded).into();
        self.push(position, hash, stored)
    }

    fn push(&mut self, position: u64, hash: Hash, stored: &Hash) -> Result<(), VerifyError> {
        if &hash != stored {
            return Err(VerifyError::LeafHashMismatch { position });
        }
        self.frontier.push(hash, |_, _| {});
        self.check_due()
    }

    /// Queues a checkpoint, keeping the queue ordered by tree size.
    fn checkpoint(&mut self, p: Pending) -> Result<(), VerifyError> {
        let at = self
            .pending
            .iter()
            .position(|q| q.tree_size > p.tree_size)
            .unwrap_or(self.pending.len());
        self.pending.insert(at, p);
        self.check_due()
    }

    fn check_due(&mut self) -> Result<(), VerifyError> {
        while let Some(p) = self.pending.front() {
            if p.tree_size > self.frontier.size() {
                break;
            }
            let p = self.pending.pop_front().unwrap_or_else(|| unreachable!());
            self.check(p)?;
        }
        Ok(())
    }

    fn check(&mut self, p: Pending) -> Result<(), VerifyError> {
        let tree_size = p.tree_size;
        let body = note::open_checkpoint(self.key, &p.note)
            .map_err(|reason| VerifyError::BadSignature { tree_size, reason })?;
        if body.tree_size != tree_size {
            return Err(VerifyError::BadSignature {
                tree_size,
                reason: NoteError::Malformed("the signed tree size differs from the record's"),
            });
        }
        if tree_size < self.frontier.size() {
            // Only reachable for trusted checkpoints smaller than the log's first checkpoint
            // offered after the tree passed them; they were queued too late to check.
            return Err(VerifyError::Malformed {
                line: 0,
                reason: format!("checkpoint {tree_size} arrived after its position"),
            });
        }
        let root = self.frontier.root();
        let prev_size = self.previous.map_or(0, |(s, _)| s);
        if root != body.root_hash {
            return Err(VerifyError::RootMismatch {
                tree_size,
                first_position: prev_size + 1,
            });
        }
        if let (Some((old, old_root)), Some(proof)) = (self.previous, &p.proof)
            && old > 0
            && old < tree_size
            && merkle::verify_consistency(old, tree_size, proof, &old_root, &root).is_err()
        {
            return Err(VerifyError::InconsistentCheckpoints {
                from: old,
                to: tree_size,
            });
        }
        self.previous = Some((tree_size, root));
        self.checkpoints += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<VerifyReport, VerifyError> {
        if let Some(p) = self.pending.pop_front() {
            // A signature that does not verify is reported as such, not as missing events.
            note::open_checkpoint(self.key, &p.note).map_err(|reason| {
                VerifyError::BadSignature {
                    tree_size: p.tree_size,
                    reason,
                }
            })?;
            return Err(VerifyError::CheckpointBeyondLog {
                tree_size: p.tree_size,
                log_size: self.frontier.size(),
            });
        }
        Ok(VerifyReport {
            events: self.frontier.size(),
            checkpoints: self.checkpoints,
            root: self.frontier.root(),
            latest_checkpoint: self.previous.map(|(s, _)| s),
        })
    }
}

fn trusted(options: &VerifyOptions) -> Result<Vec<Pending>, VerifyError> {
    options
        .trusted_checkpoints
        .iter()
        .map(|n| {
            let body = note::peek_checkpoint(n).map_err(|e| VerifyError::Malformed {
                line: 0,
                reason: format!("trusted checkpoint: {e}"),
            })?;
            Ok(Pending {
                tree_size: body.tree_size,
                note: n.clone(),
                proof: None,
            })
        })
        .collect()
}

fn parse_proof(line: u64, hexes: &[String]) -> Result<Vec<Hash>, VerifyError> {
    hexes
        .iter()
        .map(|h| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h, &mut out).map_err(|_| VerifyError::Malformed {
                line,
                reason: "a proof hash is not 64 hex digits".into(),
            })?;
            Ok(out)
        })
        .collect()
}

/// Verifies the live database behind `auditor` with the pinned `key`: the stored events, the
/// stored checkpoints, and the consistency proofs the stored tree serves between them.
#[tracing::instrument(name = "audit.verify_store", skip_all)]
pub async fn verify_store(
    auditor: &Auditor,
    key: &NoteVerifier,
    options: &VerifyOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, VerifyError> {
    let store = auditor.store().clone();
    let mut v = Verifier::new(key);
    for p in trusted(options)? {
        v.checkpoint(p)?;
    }
    let mut previous = 0u64;
    for cp in auditor.checkpoints().await? {
        // The proof is asked of the log's own tree; a tree that cannot serve one, or serves a
        // forged one, fails the check.
        let proof = if previous > 0 && previous < cp.tree_size {
            match auditor.consistency_proof(previous, cp.tree_size).await {
                Ok(p) => Some(p.proof),
                Err(_) => Some(Vec::new()),
            }
        } else {
            None
        };
        previous = cp.tree_size;
        v.checkpoint(Pending {
            tree_size: cp.tree_size,
            note: cp.note,
            proof,
        })?;
    }
    let head = store
        .head()
        .await
        .map_err(crate::AuditError::from)?
        .position;
    let query = LogQuery {
        after: 0,
        up_to: None,
        filter: Default::default(),
        limit: 10_000,
    };
    let mut events = std::pin::pin!(stream_log(store, query));
    while let Some(e) = events.next().await {
        let e = e.map_err(crate::AuditError::from)?;
        v.event(&LeafFields::from(&e), &e.leaf_hash)?;
        let n = v.frontier.size();
        if n.is_multiple_of(65_536) {
            progress(n, head);
        }
    }
    progress(v.frontier.size(), head);
    v.finish()
}

#[cfg(test)]
mod tests {
    use crate::export::{EventRecord, Line};
    use caretrail_store::RecordedEvent;
    use chrono::{DateTime, NaiveDate};
    use uuid::Uuid;

    #[test]
    fn the_export_record_encodes_exactly_like_the_store() {
        for i in 0..64u64 {
            let e = RecordedEvent {
                position: i + 1,
                stream_id: format!("pairing-{i}"),
                stream_version: i / 3 + 1,
                event_id: Uuid::from_u128(u128::from(i) * 0x1234_5678_9abc),
                event_type: "VisitRecorded".into(),
                schema_version: (i % 3) as u32 + 1,
                data: if i % 5 == 0 {
                    format!(" {{\"i\": {i}}}\n")
                } else {
                    format!(r#"{{"i":{i},"t":"看望"}}"#)
                },
                actor_id: "director-1".into(),
                actor_role: "director".into(),
                command_id: (i % 2 == 0).then(|| Uuid::from_u128(u128::from(i) + 7)),
                correlation_id: (i % 3 == 0).then(|| Uuid::from_u128(u128::from(i) + 9)),
                causation_id: (i % 4 == 0).then(|| Uuid::from_u128(u128::from(i) + 11)),
                business_date: (i % 2 == 1)
                    .then(|| {
                        NaiveDate::from_ymd_opt(2021, 1 + (i % 12) as u32, 1 + (i % 28) as u32)
                    })
                    .flatten(),
                recorded_at: DateTime::from_timestamp_micros(1_600_000_000_000_000 + i as i64 * 17)
                    .unwrap(),
                leaf_hash: [0; 32],
            };
            let line = serde_json::to_string(&Line::Event(EventRecord::of(&e))).unwrap();
            let Line::Event(back) = serde_json::from_str::<Line<'_>>(&line).unwrap() else {
                panic!("not an event line");
            };
            let mut ours = Vec::new();
            back.encode_into(&mut ours).unwrap();
            assert_eq!(
                ours,
                caretrail_store::leaf::encode(&(&e).into()),
                "event {i}"
            );
        }
    }
}
