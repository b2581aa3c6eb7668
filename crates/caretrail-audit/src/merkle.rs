//! The RFC 6962 / RFC 9162 Merkle tree over the global log, as pure functions: hashing, the
//! decomposition of a tree into complete subtrees, proof construction from stored complete
//! subtrees, proof verification, and the incremental [`Frontier`].
//!
//! Node naming: `(level, index)` is the complete subtree of `2^level` leaves starting at leaf
//! `index * 2^level`; level 0 nodes are the leaf hashes themselves. Only complete subtrees are
//! ever stored, because they never change once the log has grown past them; every root, and
//! every incomplete subtree a proof needs, is folded from at most `log2(n) + 1` of them.
//!
//! The verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 with the conventions of the public test
//! vectors (transparency-dev/merkle): a leaf index must be below the tree size, a leaf hash is 32
//! bytes, a consistency proof from size 0 is refused, and equal sizes verify only with an empty
//! proof and byte-identical roots.

use sha2::{Digest, Sha256};

/// A SHA-256 node or leaf hash.
pub type Hash = [u8; 32];

/// A complete subtree: `2^level` leaves starting at leaf `index << level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height: the subtree covers `2^level` leaves (0 is a single leaf).
    pub level: u8,
    /// Which subtree of that height, counted from the left: its first leaf is `index << level`.
    pub index: u64,
}

/// `SHA-256(0x00 || data)`: RFC 6962 leaf hash of raw leaf input.
pub fn hash_leaf(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: RFC 6962 interior node hash.
pub fn hash_children(left: &[u8], right: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The hash of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `n` (`n >= 2`): where RFC 6962 splits a tree of `n`
/// leaves.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The complete subtrees whose fold is `MTH(D[start:end])`, left to right. Valid for every range
/// a tree or proof names, because those always start at a multiple of a power of two at least
/// as large as the range's largest complete subtree.
pub fn decompose(start: u64, end: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut at = start;
    let mut rest = end - start;
    while rest > 0 {
        let level = 63 - rest.leading_zeros();
        out.push(NodeId {
            level: level as u8,
            index: at >> level,
        });
        at += 1 << level;
        rest -= 1 << level;
    }
    out
}

/// Folds complete-subtree hashes (left to right, as [`decompose`] lists them) into the root of
/// the range they cover: `H(n0, H(n1, H(..., nk)))`.
pub fn fold(hashes: &[Hash]) -> Hash {
    match hashes.split_last() {
        None => empty_root(),
        Some((last, rest)) => rest
            .iter()
            .rev()
            .fold(*last, |acc, left| hash_children(left, &acc)),
    }
}

/// A contiguous range of leaves `[start, end)` whose subtree hash is one element of a proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// First leaf of the range (0-based leaf index, inclusive).
    pub start: u64,
    /// One past its last leaf (exclusive).
    pub end: u64,
}

/// The spans of an inclusion proof (RFC 6962 §2.1.1 `PATH(m, D[n])`), bottom-up.
pub fn inclusion_spans(index: u64, size: u64) -> Vec<Span> {
    fn path(m: u64, lo: u64, hi: u64, out: &mut Vec<Span>) {
        let n = hi - lo;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m - lo < k {
            path(m, lo, lo + k, out);
            out.push(Span {
                start: lo + k,
                end: hi,
            });
        } else {
            path(m, lo + k, hi, out);
            out.push(Span {
                start: lo,
                end: lo + k,
            });
        }
    }
    let mut out = Vec::new();
    path(index, 0, size, &mut out);
    out
}

/// The spans of a consistency proof from `old` to `new` leaves (RFC 6962 §2.1.2
/// `SUBPROOF(m, D[n], true)`), in proof order. Empty for `old == new` or `old == 0`.
pub fn consistency_spans(old: u64, new: u64) -> Vec<Span> {
    fn subproof(m: u64, lo: u64, hi: u64, complete: bool, out: &mut Vec<Span>) {
        let n = hi - lo;
        if m == n {
            if !complete {
                out.push(Span { start: lo, end: hi });
            }
            return;
        }
        let k = split(n);
        if m <= k {
            subproof(m, lo, lo + k, complete, out);
            out.push(Span {
                start: lo + k,
                end: hi,
            });
        } else {
            subproof(m - k, lo + k, hi, false, out);
            out.push(Span {
                start: lo,
                end: lo + k,
            });
        }
    }
    let mut out = Vec::new();
    if old > 0 && old < new {
        subproof(old, 0, new, true, &mut out);
    }
    out
}

/// Every complete subtree needed to compute the hashes of `spans`.
pub fn nodes_for(spans: &[Span]) -> Vec<NodeId> {
    let mut ids: Vec<NodeId> = spans
        .iter()
        .flat_map(|s| decompose(s.start, s.end))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The hash of each span, given a lookup of complete-subtree hashes; `None` if one is missing.
pub fn hash_spans(spans: &[Span], lookup: impl Fn(NodeId) -> Option<Hash>) -> Option<Vec<Hash>> {
    spans
        .iter()
        .map(|s| {
            let hashes: Option<Vec<Hash>> =
                decompose(s.start, s.end).into_iter().map(&lookup).collect();
            hashes.map(|h| fold(&h))
        })
        .collect()
}

/// Why a proof does not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The leaf index asked for (0-based).
        index: u64,
        /// The tree size (number of leaves).
        size: u64,
    },
    /// The sizes cannot have a consistency proof (old size 0, or old above new).
    #[error("no consistency proof exists from size {old} to size {new}")]
    BadSizes {
        /// The older tree size.
        old: u64,
        /// The newer tree size.
        new: u64,
    },
    /// A hash has the wrong length.
    #[error("a hash is not 32 bytes")]
    BadHashLength,
    /// The proof has the wrong number of elements for the sizes.
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    /// The proof leads to a different root.
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion<P: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf_hash: &[u8],
    proof: &[P],
    root: &[u8],
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    if leaf_hash.len() != 32 {
        return Err(ProofError::BadHashLength);
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r: Hash = leaf_hash
        .try_into()
        .map_err(|_| ProofError::BadHashLength)?;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = hash_children(p.as_ref(), &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = hash_children(&r, p.as_ref());
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if r[..] != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies a consistency proof from (`old`, `old_root`) to (`new`, `new_root`)
/// (RFC 9162 §2.1.4.2).
pub fn verify_consistency<P: AsRef<[u8]>>(
    old: u64,
    new: u64,
    proof: &[P],
    old_root: &[u8],
    new_root: &[u8],
) -> Result<(), ProofError> {
    if old == 0 || old > new {
        return Err(ProofError::BadSizes { old, new });
    }
    if old == new {
        return if proof.is_empty() && old_root == new_root {
            Ok(())
        } else if !proof.is_empty() {
            Err(ProofError::WrongLength)
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    // When the old tree is a complete subtree, its root is the proof's implicit first element.
    let mut elems: Vec<&[u8]> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        elems.push(old_root);
    }
    elems.extend(proof.iter().map(AsRef::as_ref));
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let first: Hash = elems[0].try_into().map_err(|_| ProofError::BadHashLength)?;
    let (mut fr, mut sr) = (first, first);
    for c in &elems[1..] {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = hash_children(c, &fr);
            sr = hash_children(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = hash_children(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr[..] != *old_root || sr[..] != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The right border of a growing tree: one complete-subtree hash per set bit of the size,
/// largest first. Appending a leaf merges equal-sized neighbours, so the root of every prefix
/// costs `O(log n)` without rehashing the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The node ids that make up the frontier of a tree of `size` leaves, left to right.
    pub fn node_ids(size: u64) -> Vec<NodeId> {
        decompose(0, size)
    }

    /// A frontier from the hashes of [`Frontier::node_ids`]`(size)`, in that order.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Option<Self> {
        (nodes.len() == size.count_ones() as usize).then_some(Self { size, nodes })
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; `completed` sees every complete subtree this finishes, the leaf
    /// itself first, as `(node, hash)`.
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(NodeId, &Hash)) {
        let index = self.size;
        completed(NodeId { level: 0, index }, &leaf);
        let mut hash = leaf;
        let mut level = 0u8;
        // Each trailing one bit of the old size is a complete subtree of that level on the
        // border, waiting for a right sibling of the same size: this leaf completes it.
        let mut bits = index;
        while bits & 1 == 1 {
            let left = self.nodes.pop().unwrap_or_else(empty_root);
            hash = hash_children(&left, &hash);
            level += 1;
            bits >>= 1;
            completed(
                NodeId {
                    level,
                    index: index >> level,
                },
                &hash,
            );
        }
        self.nodes.push(hash);
        self.size += 1;
    }

    /// The root of the tree so far.
    pub fn root(&self) -> Hash {
        fold(&self.nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| hash_leaf(&i.to_be_bytes())).collect()
    }

    #[test]
    fn the_frontier_reports_every_complete_subtree_once() {
        let mut f = Frontier::new();
        let mut seen = Vec::new();
        for l in leaves(11) {
            f.push(l, |id, _| seen.push(id));
        }
        // 11 leaves + 5 pairs + 2 fours + 1 eight.
        assert_eq!(seen.len(), 11 + 5 + 2 + 1);
        assert!(seen.contains(&NodeId { level: 3, index: 0 }));
    }

    #[test]
    fn split_is_the_largest_power_of_two_below() {
        assert_eq!(split(2), 1);
        assert_eq!(split(3), 2);
        assert_eq!(split(8), 4);
        assert_eq!(split(9), 8);
    }
}
