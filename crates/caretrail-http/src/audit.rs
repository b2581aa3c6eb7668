//! The auditor's endpoints: the latest signed checkpoint, inclusion and consistency proofs,
//! and the raw leaf encoding of an event, so an outsider can check the log against checkpoints
//! without trusting this server. Hashes are lowercase hex; the checkpoint also comes as its
//! signed note (C2SP tlog-checkpoint text), whose root hash is base64 as that format requires.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use caretrail_audit::{AuditError, Auditor};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};

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

fn query_error(e: QueryRejection) -> ApiError {
    ApiError::bad_request("invalid_query", e.body_text())
}

const READERS: &[Role] = &[Role::Admin, Role::Auditor];

pub async fn checkpoint(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    p.require(READERS, "read audit checkpoints")?;
    let a = auditor(&state)?;
    let cp = a
        .latest_checkpoint()
        .await
        .map_err(audit_error)?
        .ok_or_else(|| ApiError::not_found("no checkpoint has been signed yet"))?;
    Ok(Json(json!({
        "tree_size": cp.tree_size,
        "root_hash": hex(&cp.root_hash),
        "signed_at": cp.signed_at,
        "note": cp.note,
        "public_key": a.verifier().map(|v| v.to_string()),
    })))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionParams {
    pub position: u64,
    pub tree_size: u64,
}

pub async fn inclusion(
    State(state): State<AppState>,
    p: Principal,
    q: Result<Query<InclusionParams>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    p.require(READERS, "read audit proofs")?;
    let Query(q) = q.map_err(query_error)?;
    let proof = auditor(&state)?
        .inclusion_proof(q.position, q.tree_size)
        .await
        .map_err(audit_error)?;
    Ok(Json(
        serde_json::to_value(proof).map_err(|e| ApiError::internal(&e))?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyParams {
    pub from: u64,
    pub to: u64,
}

pub async fn consistency(
    State(state): State<AppState>,
    p: Principal,
    q: Result<Query<ConsistencyParams>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    p.require(READERS, "read audit proofs")?;
    let Query(q) = q.map_err(query_error)?;
    let proof = auditor(&state)?
        .consistency_proof(q.from, q.to)
        .await
        .map_err(audit_error)?;
    Ok(Json(
        serde_json::to_value(proof).map_err(|e| ApiError::internal(&e))?,
    ))
}

pub async fn leaf(
    State(state): State<AppState>,
    p: Principal,
    Path(position): Path<u64>,
) -> ApiResult<Json<Value>> {
    p.require(READERS, "read leaf encodings")?;
    let leaf = auditor(&state)?
        .leaf_encoding(position)
        .await
        .map_err(audit_error)?;
    Ok(Json(
        serde_json::to_value(leaf).map_err(|e| ApiError::internal(&e))?,
    ))
}
