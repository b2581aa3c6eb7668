//! Audit proofs: inclusion and consistency proofs verified against the signed checkpoint by a
//! check written from RFC 6962, independent of the server.

use caretrail_http::Role;
use caretrail_store::testing::Harness;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

caretrail_store::both_backends!(audit_proofs_verify_against_the_signed_checkpoint,);

/// RFC 6962 inclusion check written from the RFC (section 2.1.1), independent of the server.
fn root_from_inclusion(index: u64, size: u64, leaf: [u8; 32], proof: &[[u8; 32]]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let node = |l: &[u8; 32], r: &[u8; 32]| -> [u8; 32] {
        Sha256::new()
            .chain_update([1u8])
            .chain_update(l)
            .chain_update(r)
            .finalize()
            .into()
    };
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = leaf;
    for p in proof {
        if fnode % 2 == 1 || fnode == snode {
            r = node(p, &r);
            while fnode % 2 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    r
}

fn unhex(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

async fn audit_proofs_verify_against_the_signed_checkpoint(h: &Harness) {
    let t = spawn(h).await;
    t.auditor.sign_checkpoint().await.unwrap();
    let auditor = t.token(Role::Auditor, None).await;
    let cp: Value = t
        .get(&auditor, "/api/v1/audit/checkpoint")
        .await
        .json()
        .await
        .unwrap();
    let size = cp["tree_size"].as_u64().unwrap();
    assert_eq!(size, t.app.store().head().await.unwrap().position);
    assert!(cp["note"].as_str().unwrap().starts_with("caretrail/log\n"));
    let root = unhex(cp["root_hash"].as_str().unwrap());
    for position in [1, size / 2, size] {
        let proof: Value = t
            .get(
                &auditor,
                &format!("/api/v1/audit/proof/inclusion?position={position}&tree_size={size}"),
            )
            .await
            .json()
            .await
            .unwrap();
        let hashes: Vec<[u8; 32]> = proof["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| unhex(h.as_str().unwrap()))
            .collect();
        let leaf = unhex(proof["leaf_hash"].as_str().unwrap());
        assert_eq!(
            root_from_inclusion(position - 1, size, leaf, &hashes),
            root,
            "position {position}"
        );
        // The leaf hash recomputes from the raw encoding the server publishes.
        let enc: Value = t
            .get(&auditor, &format!("/api/v1/audit/leaf/{position}"))
            .await
            .json()
            .await
            .unwrap();
        let bytes: Vec<u8> = (0..enc["encoding"].as_str().unwrap().len() / 2)
            .map(|i| {
                u8::from_str_radix(&enc["encoding"].as_str().unwrap()[2 * i..2 * i + 2], 16)
                    .unwrap()
            })
            .collect();
        use sha2::{Digest, Sha256};
        let recomputed: [u8; 32] = Sha256::new()
            .chain_update([0u8])
            .chain_update(&bytes)
            .finalize()
            .into();
        assert_eq!(recomputed, leaf);
    }
    let consistency = t
        .get(
            &auditor,
            &format!("/api/v1/audit/proof/consistency?from=10&to={size}"),
        )
        .await;
    assert_eq!(consistency.status(), StatusCode::OK);
    problem(
        t.get(
            &auditor,
            &format!(
                "/api/v1/audit/proof/inclusion?position={}&tree_size={size}",
                size + 1
            ),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "out_of_range",
    )
    .await;
    let integration = t.token(Role::Integration, None).await;
    problem(
        t.get(&integration, "/api/v1/audit/checkpoint").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}
