//! The Merkle tree against the public RFC 6962 test vectors (transparency-dev/merkle, copied
//! into `testdata/rfc6962` with their licence), and property tests of the proofs against an
//! independent recursive implementation written here from RFC 6962 §2.1 (not the code path that
//! produced them).

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use caretrail_audit::merkle::{
    self, Frontier, Hash, NodeId, consistency_spans, hash_spans, inclusion_spans, nodes_for,
    verify_consistency, verify_inclusion,
};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

fn vectors(kind: &str) -> Vec<(PathBuf, serde_json::Value)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("vector folder") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "json") {
                out.push(p);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/rfc6962")
        .join(kind);
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p, v)
        })
        .collect()
}

fn b64(v: &serde_json::Value) -> Vec<u8> {
    match v.as_str() {
        Some(s) => B64.decode(s).expect("base64"),
        None => Vec::new(),
    }
}

fn proof(v: &serde_json::Value) -> Vec<Vec<u8>> {
    v.as_array()
        .map(|a| a.iter().map(b64).collect())
        .unwrap_or_default()
}

#[test]
fn every_public_inclusion_vector_verifies_or_is_rejected_as_published() {
    let all = vectors("inclusion");
    assert_eq!(all.len(), 98);
    let mut positives = 0;
    for (path, v) in all {
        let got = verify_inclusion(
            v["leafIdx"].as_u64().unwrap(),
            v["treeSize"].as_u64().unwrap(),
            &b64(&v["leafHash"]),
            &proof(&v["proof"]),
            &b64(&v["root"]),
        );
        let want_err = v["wantErr"].as_bool().unwrap();
        assert_eq!(got.is_err(), want_err, "{}: {got:?}", path.display());
        positives += usize::from(!want_err);
    }
    assert_eq!(positives, 6);
}

#[test]
fn every_public_consistency_vector_verifies_or_is_rejected_as_published() {
    let all = vectors("consistency");
    assert_eq!(all.len(), 98);
    let mut positives = 0;
    for (path, v) in all {
        let got = verify_consistency(
            v["size1"].as_u64().unwrap(),
            v["size2"].as_u64().unwrap(),
            &proof(&v["proof"]),
            &b64(&v["root1"]),
            &b64(&v["root2"]),
        );
        let want_err = v["wantErr"].as_bool().unwrap();
        assert_eq!(got.is_err(), want_err, "{}: {got:?}", path.display());
        positives += usize::from(!want_err);
    }
    assert_eq!(positives, 6);
}

#[test]
fn the_frontier_reproduces_the_reference_roots() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rfc6962/reference-roots.json");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let inputs: Vec<Vec<u8>> = r["leafInputsHex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| hex::decode(h.as_str().unwrap()).unwrap())
        .collect();
    let root_of = |n: usize| r["rootsHexByTreeSize"][n.to_string()].as_str().unwrap();
    let mut f = Frontier::new();
    assert_eq!(
        hex::encode(f.root()),
        r["emptyTreeRootHex"].as_str().unwrap()
    );
    for (i, input) in inputs.iter().enumerate() {
        let leaf = merkle::hash_leaf(input);
        assert_eq!(
            hex::encode(leaf),
            r["leafHashesHex"][i].as_str().unwrap(),
            "leaf {i}"
        );
        f.push(leaf, |_, _| {});
        assert_eq!(
            hex::encode(f.root()),
            root_of(i + 1),
            "root of size {}",
            i + 1
        );
    }
}

// ---------------------------------------------------------------------------------------------
// An independent model, straight from RFC 6962 §2.1: MTH, PATH and PROOF/SUBPROOF by recursion
// over the leaf list. It shares nothing with the crate but SHA-256.

fn rfc_leaf(i: u64) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(i.to_le_bytes());
    h.update(b"leaf");
    h.finalize().into()
}

fn rfc_node(l: &Hash, r: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}

fn rfc_k(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => Sha256::digest([]).into(),
        1 => d[0],
        n => {
            let k = rfc_k(n);
            rfc_node(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = rfc_k(n);
    if m < k {
        let mut p = path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { Vec::new() } else { vec![mth(d)] };
    }
    let k = rfc_k(n);
    if m <= k {
        let mut p = subproof(m, &d[..k], b);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = subproof(m - k, &d[k..], false);
        p.push(mth(&d[..k]));
        p
    }
}

/// The crate's proofs, built the way the auditor builds them: every complete subtree the
/// frontier reports goes into a map (the stand-in for the node table), proofs fold from it.
struct Built {
    nodes: std::collections::HashMap<NodeId, Hash>,
}

fn build(n: u64) -> (Vec<Hash>, Built) {
    let leaves: Vec<Hash> = (0..n).map(rfc_leaf).collect();
    let mut f = Frontier::new();
    let mut nodes = std::collections::HashMap::new();
    for l in &leaves {
        f.push(*l, |id, h| {
            assert!(
                nodes.insert(id, *h).is_none(),
                "node {id:?} completed twice"
            );
        });
    }
    (leaves, Built { nodes })
}

impl Built {
    fn spans(&self, spans: &[merkle::Span]) -> Vec<Hash> {
        // The lookups a proof needs are few: O(log n), which is what makes it cheap in SQL.
        assert!(nodes_for(spans).len() <= 2 * 64);
        hash_spans(spans, |id| self.nodes.get(&id).copied()).expect("every needed node stored")
    }
    fn root(&self, size: u64) -> Hash {
        let ids = merkle::decompose(0, size);
        merkle::fold(&ids.iter().map(|id| self.nodes[id]).collect::<Vec<_>>())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn inclusion_proofs_match_the_rfc_model_and_verify(n in 1u64..300, pick in any::<u64>()) {
        let (leaves, built) = build(n);
        let m = pick % n;
        let proof = built.spans(&inclusion_spans(m, n));
        prop_assert_eq!(&proof, &path(m as usize, &leaves));
        let root = mth(&leaves);
        prop_assert_eq!(built.root(n), root);
        prop_assert!(verify_inclusion(m, n, &leaves[m as usize], &proof, &root).is_ok());
        // Any other leaf, or any changed proof element, must fail.
        let other = rfc_leaf(n + 1);
        prop_assert!(verify_inclusion(m, n, &other, &proof, &root).is_err());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let i = (pick as usize / 7) % bad.len();
            bad[i][0] ^= 1;
            prop_assert!(verify_inclusion(m, n, &leaves[m as usize], &bad, &root).is_err());
        }
    }

    #[test]
    fn consistency_proofs_match_the_rfc_model_and_verify(n in 1u64..300, pick in any::<u64>()) {
        let (leaves, built) = build(n);
        let m = 1 + pick % n;
        let proof = built.spans(&consistency_spans(m, n));
        let want = if m == n { Vec::new() } else { subproof(m as usize, &leaves, true) };
        prop_assert_eq!(&proof, &want);
        let (old_root, new_root) = (mth(&leaves[..m as usize]), mth(&leaves));
        prop_assert_eq!(built.root(m), old_root);
        prop_assert!(verify_consistency(m, n, &proof, &old_root, &new_root).is_ok());
        // A fork: the same sizes with a different old tree must not verify.
        let mut forked = leaves.clone();
        forked[(pick as usize / 3) % m as usize] = rfc_leaf(10_000);
        let forked_old = mth(&forked[..m as usize]);
        prop_assert!(verify_consistency(m, n, &proof, &forked_old, &new_root).is_err());
    }
}
