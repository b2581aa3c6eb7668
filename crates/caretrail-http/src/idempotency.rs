//! Idempotency keys bound to the request they were first used with.
//!
//! An `Idempotency-Key` and the actor make the command id (`commands::command_id_for`), and
//! the store answers a known command id with its stored result. On its own that answered a
//! reused key with *another* body with the first command's result and dropped the second
//! command. So the first request under a key records a fingerprint of itself (SHA-256 of the
//! command's name and its body in canonical form) under the command id, with an
//! insert-if-absent, *before* the command runs; every later request under that key compares:
//! the same request goes on (and gets the stored result, or runs if the first never got to
//! write), another one is refused with 422 `idempotency_key_reused`, as the IETF
//! Idempotency-Key draft and Stripe do. Two concurrent requests under one key with different
//! bodies cannot both run: only one insert wins.
//!
//! The fingerprint lives in its own table rather than in the event metadata: metadata is part
//! of every event's leaf hash (and so of the audit format), and a command that writes nothing
//! or is refused by the domain has no event to carry it. The price is one small write per
//! keyed command, outside the append's transaction; that is safe because the row only ever
//! narrows what may run under the key, and it is written before anything that could run.
//! A key stays bound to its first body whatever became of that command (even a refusal):
//! a corrected request needs a new key. Releasing a key after a refusal would race with a
//! concurrent retry of the same body that may have been stored meanwhile.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// SHA-256 over a domain tag, the command name and the canonical body.
pub fn fingerprint(command: &str, body: &serde_json::Value) -> [u8; 32] {
    let mut canonical = Vec::with_capacity(256);
    write_canonical(body, &mut canonical);
    Sha256::new()
        .chain_update(b"caretrail.idempotency.request.v1\0")
        .chain_update(command.as_bytes())
        .chain_update(b"\0")
        .chain_update(&canonical)
        .finalize()
        .into()
}

/// JSON with object members sorted by key and no insignificant whitespace, so that two
/// serialisations of one body (member order, spacing) are the same request. Numbers and
/// strings are written as serde_json writes them.
fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut members: Vec<_> = map.iter().collect();
            members.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(k.clone()), out);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &serde_json::Value, out: &mut Vec<u8>) {
    // Writing a scalar into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// What a key's ledger says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The key was new: it is now bound to this request.
    First,
    /// The key was bound to this same request before (a retry).
    Same,
    /// The key is bound to another request.
    Other,
}

/// The longest a claim may take before the command answers 503 `store_unavailable`: a claim
/// is one small insert, so a longer wait means the database cannot serve.
pub const CLAIM_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3);

/// Binds `command_id` to `fingerprint` unless it is bound already, and says which happened.
/// On SQLite, claims of one process run one at a time (a claim waiting for the write lock
/// holds a pooled connection; see `tables`). `db` is the store's database, whose HTTP tables
/// the token table opened. (It takes the raw [`Database`] that is on its way out because its
/// caller, the command handler, still hands that; the statements are the store-registered
/// ones of `tables`.)
pub(crate) async fn claim(
    tables: &dyn crate::tables::HttpTables,
    command_id: Uuid,
    fingerprint: &[u8; 32],
) -> Result<Claim, sqlx::Error> {
    let (inserted, stored) = tables
        .claim(command_id, fingerprint, chrono::Utc::now())
        .await?;
    Ok(verdict(fingerprint, inserted, stored))
}

/// [`claim`] for many keys at once, in one transaction; the answers are in the order given.
/// A roster import claims its file's keys this way before it runs the rows.
pub(crate) async fn claim_many(
    tables: &dyn crate::tables::HttpTables,
    claims: &[(Uuid, [u8; 32])],
) -> Result<Vec<Claim>, sqlx::Error> {
    let answers = tables.claim_many(claims, chrono::Utc::now()).await?;
    Ok(claims
        .iter()
        .zip(answers)
        .map(|((_, fingerprint), (inserted, stored))| verdict(fingerprint, inserted, stored))
        .collect())
}

/// What an insert-if-absent and the stored fingerprint say about a request.
fn verdict(fingerprint: &[u8; 32], inserted: bool, stored: Option<Vec<u8>>) -> Claim {
    match (inserted, stored) {
        (true, _) => Claim::First,
        (_, Some(s)) if s.as_slice() == fingerprint.as_slice() => Claim::Same,
        (_, Some(_)) => Claim::Other,
        // Rows are never deleted, so a conflict without a row cannot happen; if it did, the
        // key's request is unknown and running this one could answer it with another's result.
        (_, None) => Claim::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn member_order_and_spacing_do_not_change_the_fingerprint() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b": [1, {"y": 2, "x": "名"}], "a": null}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":null,"b":[1,{"x":"名","y":2}]}"#).unwrap();
        assert_eq!(
            fingerprint("RegisterBody", &a),
            fingerprint("RegisterBody", &b)
        );
    }

    #[test]
    fn another_value_another_command_or_another_order_is_another_request() {
        let base = fingerprint("RegisterBody", &json!({ "name": "甲", "items": [1, 2] }));
        assert_ne!(
            base,
            fingerprint("RegisterBody", &json!({ "name": "乙", "items": [1, 2] }))
        );
        assert_ne!(
            base,
            fingerprint("RenameBody", &json!({ "name": "甲", "items": [1, 2] }))
        );
        assert_ne!(
            base,
            fingerprint("RegisterBody", &json!({ "name": "甲", "items": [2, 1] }))
        );
        // The name and the body cannot trade bytes.
        assert_ne!(fingerprint("A", &json!("B")), fingerprint("AB", &json!("")));
    }
}
