//! The auditor's endpoints: the latest signed checkpoint, inclusion and consistency proofs,
//! and the raw leaf encoding of an event, so an outsider can check the log against checkpoints
//! without trusting this server. Hashes are lowercase hex; the checkpoint also comes as its
//! signed note (C2SP tlog-checkpoint text), whose root hash is base64 as that format requires.

use std::sync::Arc;

use axum::extract::State;
use caretrail_audit::{AuditError, Auditor, ConsistencyProof, InclusionProof, LeafEncoding};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};
use crate::openapi::Json;

pub(crate) fn auditor(state: &AppState) -> ApiResult<&Arc<Auditor>> {
    state.auditor.as_ref().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "audit_unavailable",
            "the audit tree is not enabled on this server",
        )
    })
}

fn audit_error(e: AuditError) -> ApiError {
    match e {
        AuditError::OutOfRange(why) => ApiError::bad_request("out_of_range", why),
        AuditError::Store(s) => s.into(),
        other => ApiError::unavailable_or_internal(other.is_unavailable(), &other),
    }
}

const READERS: &[Role] = &[Role::Admin, Role::Auditor];

/// The latest signed checkpoint.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Checkpoint {
    /// How many events the tree covers.
    pub tree_size: u64,
    /// The tree's root hash, lowercase hex.
    #[schemars(regex(pattern = "^[0-9a-f]{64}$"))]
    pub root_hash: String,
    /// When it was signed (UTC), as in the note's `time` line.
    pub signed_at: chrono::DateTime<chrono::Utc>,
    /// The signed note (C2SP tlog-checkpoint text; its root hash is base64).
    pub note: String,
    /// The verifier key of the signature (`name+hash+base64 key`), when this server signs.
    pub public_key: Option<String>,
}

/// `GET /api/v1/audit/checkpoint`: the latest signed checkpoint (administrators and auditors).
pub async fn checkpoint(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Checkpoint>> {
    p.require(READERS, "read audit checkpoints")?;
    let a = auditor(&state)?;
    let cp = a
        .latest_checkpoint()
        .await
        .map_err(audit_error)?
        .ok_or_else(|| ApiError::not_found("no checkpoint has been signed yet"))?;
    Ok(Json(Checkpoint {
        tree_size: cp.tree_size,
        root_hash: hex::encode(cp.root_hash),
        signed_at: cp.signed_at,
        note: cp.note,
        public_key: a.verifier().map(|v| v.to_string()),
    }))
}

/// Which inclusion proof.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InclusionParams {
    /// The event's log position.
    #[schemars(range(min = 1))]
    pub position: u64,
    /// The size of the tree to prove it in (at least `position`, at most the tree's).
    #[schemars(range(min = 1))]
    pub tree_size: u64,
}

/// `GET /api/v1/audit/proof/inclusion`: the RFC 6962 inclusion proof of the event at
/// `position` in the tree of `tree_size` events.
pub async fn inclusion(
    State(state): State<AppState>,
    p: Principal,
    q: Result<Query<InclusionParams>, ApiError>,
) -> ApiResult<Json<InclusionProof>> {
    p.require(READERS, "read audit proofs")?;
    let Query(q) = q?;
    let proof = auditor(&state)?
        .inclusion_proof(q.position, q.tree_size)
        .await
        .map_err(audit_error)?;
    Ok(Json(proof))
}

/// Which consistency proof.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyParams {
    /// The older tree size.
    #[schemars(range(min = 1))]
    pub from: u64,
    /// The newer tree size (at least `from`, at most the tree's).
    #[schemars(range(min = 1))]
    pub to: u64,
}

/// `GET /api/v1/audit/proof/consistency`: the RFC 6962 consistency proof from tree size `from`
/// to tree size `to`.
pub async fn consistency(
    State(state): State<AppState>,
    p: Principal,
    q: Result<Query<ConsistencyParams>, ApiError>,
) -> ApiResult<Json<ConsistencyProof>> {
    p.require(READERS, "read audit proofs")?;
    let Query(q) = q?;
    let proof = auditor(&state)?
        .consistency_proof(q.from, q.to)
        .await
        .map_err(audit_error)?;
    Ok(Json(proof))
}

/// The event a leaf path names.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct LeafPath {
    /// The event's log position (at most the tree's size).
    #[schemars(range(min = 1))]
    pub position: u64,
}

/// `GET /api/v1/audit/leaf/{position}`: the event's raw leaf encoding and its leaf hash, so a
/// client can recompute the hash itself.
pub async fn leaf(
    State(state): State<AppState>,
    p: Principal,
    Path(LeafPath { position }): Path<LeafPath>,
) -> ApiResult<Json<LeafEncoding>> {
    p.require(READERS, "read leaf encodings")?;
    let leaf = auditor(&state)?
        .leaf_encoding(position)
        .await
        .map_err(audit_error)?;
    Ok(Json(leaf))
}
