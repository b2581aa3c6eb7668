//! Verification of an export file on two threads: one reads the file, parses its JSON lines
//! and re-encodes each event's leaf; the caller's thread hashes the encodings, grows the tree
//! and checks the checkpoints. JSON parsing is the larger half of the work, hashing and the
//! tree the smaller, so the two overlap on two cores.
//!
//! The reading thread sends everything it finds, failures included, in file order through a
//! bounded channel, and the verifying thread handles it in that order: the first failure
//! reported is the first in the file, exactly as when one thread did both. When the verifying
//! thread stops at a failure it drops its end of the channel, and the reading thread stops at
//! its next send.

use std::io::BufRead;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use super::{Pending, Verifier, VerifyError, VerifyOptions, VerifyReport, parse_proof, trusted};
use crate::export::{End, FORMAT, Line, VERSION};
use crate::merkle::Hash;
use crate::note::NoteVerifier;

/// Events per message between the threads: enough to make the channel's cost per event
/// negligible, few enough that the verifying thread starts at once.
const BATCH_EVENTS: usize = 512;
/// Batches in flight (read but not yet verified); bounds the memory the reader runs ahead by.
const BATCHES_IN_FLIGHT: usize = 4;

/// One thing the reading thread found, in file order.
enum Item {
    /// An event: its position, its stored leaf hash, and where its `0x00 || encoding` ends in
    /// the batch's bytes (it starts where the previous event's ended).
    Event {
        position: u64,
        stored: Hash,
        end: usize,
    },
    /// The header's announced event count, for progress.
    Header { announced: u64 },
    /// A checkpoint line.
    Checkpoint(Pending),
    /// The end line.
    End(End),
    /// The first failure the reader found; nothing follows it.
    Failed(VerifyError),
}

/// A run of items and the leaf encodings of its events, back to back.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    items: Vec<Item>,
    events: usize,
}

/// Verifies an export read from `reader` with the pinned `key`. `progress` sees
/// `(events verified, events announced by the header)`.
pub fn verify_file(
    reader: impl BufRead + Send,
    key: &NoteVerifier,
    options: &VerifyOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, VerifyError> {
    let mut v = Verifier::new(key);
    for p in trusted(options)? {
        v.checkpoint(p)?;
    }
    let (full_tx, full_rx) = sync_channel::<Batch>(BATCHES_IN_FLIGHT);
    let (free_tx, free_rx) = channel::<Batch>();
    std::thread::scope(|scope| {
        scope.spawn(move || read(reader, &full_tx, &free_rx));
        // `full_rx` and `free_tx` are dropped when this returns, which stops the reader.
        verify(v, full_rx, free_tx, progress)
    })
}

/// The reading thread: parses lines into batches until the file ends, a failure is found, or
/// the verifier hangs up.
fn read(mut reader: impl BufRead, out: &SyncSender<Batch>, free: &Receiver<Batch>) {
    let mut batch = Batch::default();
    let mut text: Vec<u8> = Vec::with_capacity(4096);
    let mut line_no = 0u64;
    let mut ended = false;
    loop {
        text.clear();
        let failed = match reader.read_until(b'\n', &mut text) {
            Ok(0) => break,
            Ok(_) => {
                line_no += 1;
                parse(&text, line_no, &mut ended, &mut batch).err()
            }
            Err(e) => Some(VerifyError::Io(e)),
        };
        if let Some(e) = failed {
            batch.items.push(Item::Failed(e));
            let _ = out.send(batch);
            return;
        }
        if batch.events >= BATCH_EVENTS {
            let next = free.try_recv().unwrap_or_default();
            if out.send(std::mem::replace(&mut batch, next)).is_err() {
                return;
            }
        }
    }
    if !batch.items.is_empty() {
        let _ = out.send(batch);
    }
}

/// Parses one line into `batch`: the checks that need only the line itself.
fn parse(
    text: &[u8],
    line_no: u64,
    ended: &mut bool,
    batch: &mut Batch,
) -> Result<(), VerifyError> {
    let malformed = |reason: String| VerifyError::Malformed {
        line: line_no,
        reason,
    };
    if *ended {
        return Err(malformed("content after the end line".into()));
    }
    let line: Line<'_> = serde_json::from_slice(text.strip_suffix(b"\n").unwrap_or(text))
        .map_err(|e| malformed(e.to_string()))?;
    match line {
        Line::Header(h) => {
            if line_no != 1 || h.format != FORMAT || h.version != VERSION {
                return Err(malformed(format!(
                    "expected a {FORMAT} version {VERSION} header on line 1"
                )));
            }
            batch.items.push(Item::Header {
                announced: h.events,
            });
        }
        _ if line_no == 1 => return Err(malformed("the first line must be the header".into())),
        Line::Event(e) => {
            if e.data().is_none() {
                return Err(malformed(
                    "an event needs exactly one of data and data_text".into(),
                ));
            }
            let mut stored = [0u8; 32];
            hex::decode_to_slice(e.leaf_hash.as_bytes(), &mut stored)
                .map_err(|_| malformed("leaf_hash is not 64 hex digits".into()))?;
            batch.bytes.push(0);
            if e.encode_into(&mut batch.bytes).is_none() {
                // Unreachable after the payload check above; kept as the one-thread
                // verifier reported it.
                return Err(VerifyError::Malformed {
                    line: 0,
                    reason: format!("event at position {} has no payload", e.position),
                });
            }
            batch.items.push(Item::Event {
                position: e.position,
                stored,
                end: batch.bytes.len(),
            });
            batch.events += 1;
        }
        Line::Checkpoint(c) => {
            let proof = parse_proof(line_no, &c.consistency_proof)?;
            batch.items.push(Item::Checkpoint(Pending {
                tree_size: c.tree_size,
                note: c.note,
                proof: Some(proof),
            }));
        }
        Line::End(e) => {
            *ended = true;
            batch.items.push(Item::End(e));
        }
    }
    Ok(())
}

/// The verifying thread (the caller's): hashes, grows the tree and checks checkpoints in file
/// order, then the end line's counts.
fn verify(
    mut v: Verifier<'_>,
    batches: Receiver<Batch>,
    free: Sender<Batch>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, VerifyError> {
    let mut announced = 0u64;
    let mut end = None;
    let mut lines = 0u64;
    for mut batch in batches.iter() {
        let mut start = 0;
        for item in batch.items.drain(..) {
            lines += 1;
            match item {
                Item::Event {
                    position,
                    stored,
                    end,
                } => {
                    v.encoded(position, &batch.bytes[start..end], &stored)?;
                    start = end;
                    let n = v.frontier.size();
                    if n.is_multiple_of(65_536) {
                        progress(n, announced);
                    }
                }
                Item::Header { announced: a } => announced = a,
                Item::Checkpoint(p) => v.checkpoint(p)?,
                Item::End(e) => end = Some(e),
                Item::Failed(e) => return Err(e),
            }
        }
        batch.bytes.clear();
        batch.events = 0;
        // The reader may have finished; a batch it no longer takes back is simply dropped.
        let _ = free.send(batch);
    }
    progress(v.frontier.size(), announced);
    let Some(end) = end else {
        return Err(VerifyError::Truncated(format!(
            "no end line after {lines} lines"
        )));
    };
    if (end.events != v.frontier.size()
        || end.checkpoints != v.checkpoints + v.pending.len() as u64)
        // Pending checkpoints beyond the log are reported more precisely by `finish`.
        && v.pending.is_empty()
    {
        return Err(VerifyError::Truncated(format!(
            "the end line counts {} events and {} checkpoints, the file holds {} and {}",
            end.events,
            end.checkpoints,
            v.frontier.size(),
            v.checkpoints
        )));
    }
    v.finish()
}
