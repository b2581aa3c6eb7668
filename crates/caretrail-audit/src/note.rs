//! Signed checkpoints in the C2SP `tlog-checkpoint` / `signed-note` text format, with Ed25519.
//!
//! ```text
//! caretrail/log                         <- origin (the log's name; also the key name)
//! 1234                                  <- tree size, decimal
//! 8mQ0...base64 root hash...=           <- RFC 6962 root, standard base64
//! time 2026-01-02T03:04:05.123456Z      <- extension line: when it was signed (UTC)
//!                                       <- blank line ends the signed body
//! — caretrail/log AbCd...               <- signature line: base64(key hash ‖ Ed25519 signature)
//! ```
//!
//! The signature covers the body bytes up to and including the newline before the blank line.
//! The key hash is the first 4 bytes of `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)`, as in the
//! signed-note spec; the public key is shared as the verifier-key string
//! `name+hex(key hash)+base64(0x01 ‖ public key)`, and the private key is stored as
//! `PRIVATE+KEY+name+hex(key hash)+base64(0x01 ‖ seed)`, the same text forms Go's `note`
//! package uses, so off-the-shelf tooling can read them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// The signed-note algorithm byte for Ed25519.
const ALG_ED25519: u8 = 0x01;
/// The em dash that opens every signature line (U+2014) followed by a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Why a note or key does not parse or verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The text is not a well-formed signed checkpoint.
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// No signature line is by the given key.
    #[error("no signature by key {0}")]
    NoSignatureByKey(String),
    /// A signature line by the key does not verify.
    #[error("the signature by key {0} does not verify")]
    BadSignature(String),
    /// A key string does not parse.
    #[error("malformed key: {0}")]
    BadKey(&'static str),
}

/// `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)[..4]`.
fn key_hash(name: &str, public: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public.as_bytes());
    let d: [u8; 32] = h.finalize().into();
    [d[0], d[1], d[2], d[3]]
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

/// A checkpoint signer: a key name and an Ed25519 signing key.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::BadKey(
                "key names must be non-empty, without '+' or whitespace",
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// A fresh signer with a key from the operating system's random source.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|_| NoteError::BadKey("no OS randomness"))?;
        Self::from_seed(name, seed)
    }

    /// Parses `PRIVATE+KEY+name+hash+base64(0x01 ‖ seed)`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::BadKey("a private key starts with PRIVATE+KEY+"))?;
        // The base64 key may itself contain '+', so only the first two separate fields.
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(hash), Some(key), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::BadKey("expected PRIVATE+KEY+name+hash+key"));
        };
        let bytes = B64
            .decode(key)
            .map_err(|_| NoteError::BadKey("key is not base64"))?;
        let seed: [u8; 32] = match bytes.split_first() {
            Some((&ALG_ED25519, seed)) => seed
                .try_into()
                .map_err(|_| NoteError::BadKey("seed is not 32 bytes"))?,
            _ => return Err(NoteError::BadKey("not an Ed25519 key")),
        };
        let signer = Self::from_seed(name, seed)?;
        if hex::encode(key_hash(name, &signer.key.verifying_key())) != hash {
            return Err(NoteError::BadKey("key hash does not match the key"));
        }
        Ok(signer)
    }

    /// The private key text (`PRIVATE+KEY+...`), for the key file.
    pub fn to_private_string(&self) -> String {
        let mut bytes = vec![ALG_ED25519];
        bytes.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex::encode(key_hash(&self.name, &self.key.verifying_key())),
            B64.encode(bytes)
        )
    }

    /// The matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Signs `body` (which must end with a newline) and returns the whole note.
    pub fn sign(&self, body: &str) -> String {
        let sig = self.key.sign(body.as_bytes());
        let mut blob = key_hash(&self.name, &self.key.verifying_key()).to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        format!("{body}\n{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob))
    }
}

/// A checkpoint verifier: a key name and an Ed25519 public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses the verifier-key string `name+hex(key hash)+base64(0x01 ‖ public key)`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        // The base64 key may itself contain '+', so only the first two separate fields.
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(hash), Some(key), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::BadKey("expected name+hash+key"));
        };
        if !valid_name(name) {
            return Err(NoteError::BadKey("bad key name"));
        }
        let bytes = B64
            .decode(key)
            .map_err(|_| NoteError::BadKey("key is not base64"))?;
        let public: [u8; 32] = match bytes.split_first() {
            Some((&ALG_ED25519, k)) => k
                .try_into()
                .map_err(|_| NoteError::BadKey("public key is not 32 bytes"))?,
            _ => return Err(NoteError::BadKey("not an Ed25519 key")),
        };
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| NoteError::BadKey("not a valid Ed25519 point"))?;
        if hex::encode(key_hash(name, &key)) != hash {
            return Err(NoteError::BadKey("key hash does not match the key"));
        }
        Ok(Self {
            name: name.to_owned(),
            key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Verifies the note's signature by this key (`verify_strict`: no malleable or small-order
    /// signatures) and returns the signed body.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let split = note
            .find("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let (body, sigs) = (&note[..split + 1], &note[split + 2..]);
        let want_hash = key_hash(&self.name, &self.key);
        let mut found = false;
        for line in sigs.lines() {
            let rest = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed(
                "a signature line must start with '— '",
            ))?;
            let (name, sig) = rest.split_once(' ').ok_or(NoteError::Malformed(
                "a signature line needs a name and a signature",
            ))?;
            let blob = B64
                .decode(sig)
                .map_err(|_| NoteError::Malformed("a signature is not base64"))?;
            if name != self.name || blob.len() < 4 || blob[..4] != want_hash {
                continue;
            }
            found = true;
            let sig = Signature::from_slice(&blob[4..])
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            self.key
                .verify_strict(body.as_bytes(), &sig)
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
        }
        if found {
            Ok(body)
        } else {
            Err(NoteError::NoSignatureByKey(self.name.clone()))
        }
    }
}

impl std::fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut bytes = vec![ALG_ED25519];
        bytes.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(key_hash(&self.name, &self.key)),
            B64.encode(bytes)
        )
    }
}

/// The signed content of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointBody {
    /// The log's name, the note's first line (`caretrail/log` by default).
    pub origin: String,
    /// Leaves (events) the tree holds: the checkpoint commits to positions 1 to `tree_size`.
    pub tree_size: u64,
    /// The tree's RFC 6962 root hash (standard base64 in the note's text).
    pub root_hash: Hash,
    /// When it was signed (the `time` extension line), if present.
    pub time: Option<DateTime<Utc>>,
}

impl CheckpointBody {
    /// The note body text, ending with a newline.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.tree_size,
            B64.encode(self.root_hash)
        );
        if let Some(t) = self.time {
            s.push_str(&format!(
                "time {}\n",
                t.to_rfc3339_opts(SecondsFormat::Micros, true)
            ));
        }
        s
    }

    /// Parses a note body (as returned by [`NoteVerifier::open`]).
    pub fn parse(body: &str) -> Result<Self, NoteError> {
        let mut lines = body.lines();
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or(NoteError::Malformed("missing origin line"))?;
        let tree_size = lines
            .next()
            .and_then(|l| {
                // Decimal without leading zeros, as the spec asks.
                (l == "0" || !l.starts_with('0'))
                    .then(|| l.parse::<u64>().ok())
                    .flatten()
            })
            .ok_or(NoteError::Malformed("bad tree size line"))?;
        let root_hash: Hash = lines
            .next()
            .and_then(|l| B64.decode(l).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or(NoteError::Malformed("bad root hash line"))?;
        let mut time = None;
        for ext in lines {
            if let Some(t) = ext.strip_prefix("time ") {
                time = Some(
                    DateTime::parse_from_rfc3339(t)
                        .map_err(|_| NoteError::Malformed("bad time line"))?
                        .with_timezone(&Utc),
                );
            }
        }
        Ok(Self {
            origin: origin.to_owned(),
            tree_size,
            root_hash,
            time,
        })
    }
}

/// Verifies `note` with `verifier` and parses its body.
pub fn open_checkpoint(verifier: &NoteVerifier, note: &str) -> Result<CheckpointBody, NoteError> {
    let body = verifier.open(note)?;
    CheckpointBody::parse(body)
}

/// Parses a checkpoint's body without checking any signature (to locate it in a report).
pub fn peek_checkpoint(note: &str) -> Result<CheckpointBody, NoteError> {
    let split = note
        .find("\n\n")
        .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    CheckpointBody::parse(&note[..split + 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> CheckpointBody {
        CheckpointBody {
            origin: "caretrail/test".into(),
            tree_size: 42,
            root_hash: [7; 32],
            time: DateTime::from_timestamp_micros(1_700_000_000_000_001),
        }
    }

    #[test]
    fn a_signed_checkpoint_opens_with_its_key_and_round_trips() {
        let s = NoteSigner::from_seed("caretrail/test", [1; 32]).unwrap();
        let note = s.sign(&body().to_text());
        assert!(note.contains("\n\n\u{2014} caretrail/test "));
        let v = NoteVerifier::parse(&s.verifier().to_string()).unwrap();
        assert_eq!(open_checkpoint(&v, &note).unwrap(), body());
        let back = NoteSigner::parse(&s.to_private_string()).unwrap();
        assert_eq!(back.verifier(), s.verifier());
    }

    #[test]
    fn another_key_or_a_changed_body_is_refused() {
        let s = NoteSigner::from_seed("caretrail/test", [1; 32]).unwrap();
        let other = NoteSigner::from_seed("caretrail/test", [2; 32]).unwrap();
        let note = s.sign(&body().to_text());
        assert!(matches!(
            other.verifier().open(&note),
            Err(NoteError::NoSignatureByKey(_))
        ));
        let forged = note.replace("\n42\n", "\n43\n");
        assert!(matches!(
            s.verifier().open(&forged),
            Err(NoteError::BadSignature(_))
        ));
    }
}
