//! The OpenAPI 3.1 document, generated from the code: every command's request body is the JSON
//! Schema schemars derives from the domain's command type, every response body the schema of
//! the type the handler returns. OpenAPI 3.1 uses JSON Schema 2020-12 as it is, so the schemas
//! go in unchanged except that their `$defs` are hoisted into `components/schemas`.
//!
//! The document is also checked in at `schemas/openapi.json`; a test fails when the two differ
//! (regenerate with `CARETRAIL_BLESS=1 cargo test -p caretrail-http --test openapi`).

use serde_json::{Map, Value, json};

use crate::commands::CommandAccepted;
use crate::error::Problem;
use crate::events::{EventsPage, StreamPage};
use crate::operations::OperationStatus;

/// Moves `$defs` of `schema` into `components`, rewriting references to point there.
fn hoist(mut schema: Value, components: &mut Map<String, Value>) -> Value {
    if let Some(Value::Object(defs)) = schema.as_object_mut().and_then(|o| o.remove("$defs")) {
        for (name, def) in defs {
            let def = hoist(def, components);
            components.entry(name).or_insert(def);
        }
    }
    if let Some(o) = schema.as_object_mut() {
        o.remove("$schema");
    }
    rewrite_refs(&mut schema);
    schema
}

fn rewrite_refs(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/$defs/")
            {
                *r = format!("#/components/schemas/{name}");
            }
            o.values_mut().for_each(rewrite_refs);
        }
        Value::Array(a) => a.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

fn schema_of<T: schemars::JsonSchema>(components: &mut Map<String, Value>) -> Value {
    hoist(
        serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default(),
        components,
    )
}

fn problem_responses(codes: &[(&str, &str)]) -> Map<String, Value> {
    codes
        .iter()
        .map(|(status, why)| {
            (
                (*status).to_owned(),
                json!({
                    "description": why,
                    "content": { "application/problem+json": {
                        "schema": { "$ref": "#/components/schemas/Problem" } } }
                }),
            )
        })
        .collect()
}

/// The whole document.
pub fn document() -> Value {
    let mut components = Map::new();
    let problem = schema_of::<Problem>(&mut components);
    components.insert("Problem".into(), problem);
    let accepted = schema_of::<CommandAccepted>(&mut components);
    components.insert("CommandAccepted".into(), accepted);
    let page = schema_of::<EventsPage>(&mut components);
    components.insert("EventsPage".into(), page);
    let stream = schema_of::<StreamPage>(&mut components);
    components.insert("StreamPage".into(), stream);
    let operation = schema_of::<OperationStatus>(&mut components);
    components.insert("OperationStatus".into(), operation);

    let mut paths = Map::new();
    for (name, schema) in caretrail_domain::command::command_schemas() {
        let body = hoist(
            serde_json::to_value(schema).unwrap_or_default(),
            &mut components,
        );
        components.insert(name.to_owned(), body);
        let mut responses = problem_responses(&[
            ("400", "malformed JSON or headers"),
            ("401", "no valid bearer token"),
            ("403", "the token's role may not run this command"),
            ("404", "unknown command"),
            (
                "409",
                "a domain rule refused the command, or a concurrency conflict",
            ),
            ("412", "If-Match does not match the stream's version"),
            ("413", "body too large"),
            ("415", "not JSON"),
            ("422", "the body does not match the command's schema"),
            ("429", "rate limited"),
            ("503", "store unavailable"),
        ]);
        responses.insert(
            "201".into(),
            json!({ "description": "accepted: the events written",
                    "content": { "application/json": {
                        "schema": { "$ref": "#/components/schemas/CommandAccepted" } } } }),
        );
        paths.insert(
            format!("/api/v1/commands/{name}"),
            json!({ "post": {
                "operationId": format!("command{name}"),
                "tags": ["commands"],
                "summary": format!("Run {name}"),
                "parameters": [
                    { "name": "Idempotency-Key", "in": "header", "required": false,
                      "description": "A retry with the same key returns the original response and writes nothing.",
                      "schema": { "type": "string", "maxLength": 200 } },
                    { "name": "If-Match", "in": "header", "required": false,
                      "description": "Expected version of the command's aggregate stream.",
                      "schema": { "type": "string" } }
                ],
                "requestBody": { "required": true, "content": { "application/json": {
                    "schema": { "$ref": format!("#/components/schemas/{name}") } } } },
                "responses": responses,
            } }),
        );
    }
    let log_params = json!([
        { "name": "after", "in": "query", "schema": { "type": "integer", "minimum": 0 },
          "description": "Events after this global position." },
        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } },
        { "name": "type", "in": "query", "schema": { "type": "string" },
          "description": "Comma-separated event types." },
        { "name": "category", "in": "query", "schema": { "type": "string" },
          "description": "Comma-separated stream categories (modelworker, director, pairing, visit, issue, body, contact, privacy)." },
        { "name": "as_of_position", "in": "query", "schema": { "type": "integer", "minimum": 0 },
          "description": "Read the log as it stood at this position." }
    ]);
    let read_errors = problem_responses(&[
        ("400", "invalid query"),
        ("401", "no valid bearer token"),
        ("403", "the token's role may not read this"),
        ("503", "store unavailable"),
    ]);
    let with = |ok: Value| {
        let mut r = read_errors.clone();
        r.insert("200".into(), ok);
        Value::Object(r)
    };
    paths.insert(
        "/api/v1/events".into(),
        json!({ "get": { "operationId": "events", "tags": ["events"],
            "summary": "A page of the global event log, in position order",
            "parameters": log_params,
            "responses": with(json!({ "description": "a page and the cursor of the next",
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/EventsPage" } } } })) } }),
    );
    let mut sub_params = log_params.as_array().cloned().unwrap_or_default();
    sub_params.push(json!({ "name": "Last-Event-ID", "in": "header",
        "schema": { "type": "string" }, "description": "Resume after this position." }));
    paths.insert(
        "/api/v1/events/subscribe".into(),
        json!({ "get": { "operationId": "subscribe", "tags": ["events"],
            "summary": "Server-Sent Events: stored events after the position, then live ones; `id:` is the position",
            "parameters": sub_params,
            "responses": with(json!({ "description": "an event stream",
                "content": { "text/event-stream": { "schema": { "type": "string" } } } })) } }),
    );
    paths.insert(
        "/api/v1/streams/{id}".into(),
        json!({ "get": { "operationId": "stream", "tags": ["events"],
            "summary": "One stream's events in version order",
            "parameters": [
                { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } },
                { "name": "from_version", "in": "query", "schema": { "type": "integer", "minimum": 1 } },
                { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }
            ],
            "responses": with(json!({ "description": "the stream",
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/StreamPage" } } } })) } }),
    );
    // Dashboards and audit reads: parameters as query strings, answers as JSON objects (lists
    // are `{"items": [...], "next_cursor": ...}`).
    let common = [
        "as_of",
        "as_of_position",
        "as_of_recorded_at",
        "city",
        "county",
    ];
    for (path, summary, extra) in [
        (
            "/api/v1/me",
            "Who the token belongs to: role, name, director",
            &[][..],
        ),
        (
            "/api/v1/dashboard/overview",
            "Overview: coverage, visits, money and goods, open issues by age",
            &[][..],
        ),
        (
            "/api/v1/dashboard/issues",
            "Issues summary: open by state and age, by body, median days to resolve",
            &[][..],
        ),
        (
            "/api/v1/dashboard/gifts",
            "Gifts by month, city, county or director",
            &["from", "to", "group_by", "limit", "cursor"][..],
        ),
        (
            "/api/v1/dashboard/projections",
            "Dashboard projection lag",
            &[][..],
        ),
        (
            "/api/v1/pairings",
            "Visit status per pairing (status=overdue is the overdue list, by days overdue)",
            &["status", "include_ended", "director_id", "limit", "cursor"][..],
        ),
        (
            "/api/v1/directors",
            "Director caseload and engagement",
            &["role", "sort", "limit", "cursor"][..],
        ),
        (
            "/api/v1/model-workers/{id}",
            "A model worker's file: profile, hardship, pairings, care timeline",
            &["after", "limit"][..],
        ),
        (
            "/api/v1/model-workers/{id}/timeline",
            "A model worker's care timeline, every event in order",
            &["after", "limit"][..],
        ),
        (
            "/api/v1/issues",
            "Issues board",
            &[
                "state",
                "body_id",
                "raised_from",
                "raised_to",
                "breached_only",
                "limit",
                "cursor",
            ][..],
        ),
        (
            "/api/v1/regions",
            "Region coverage per city or county",
            &["level"][..],
        ),
        (
            "/api/v1/audit/checkpoint",
            "The latest signed checkpoint (tree size, root hash, signed note)",
            &[][..],
        ),
        (
            "/api/v1/audit/proof/inclusion",
            "RFC 6962 inclusion proof of a position in a tree size",
            &["position", "tree_size"][..],
        ),
        (
            "/api/v1/audit/proof/consistency",
            "RFC 6962 consistency proof between two tree sizes",
            &["from", "to"][..],
        ),
        (
            "/api/v1/audit/leaf/{position}",
            "The raw leaf encoding of an event and its leaf hash",
            &[][..],
        ),
    ] {
        let mut params: Vec<Value> = Vec::new();
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            let name = segment.trim_matches(|c| c == '{' || c == '}');
            params.push(json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }));
        }
        let names: Vec<&str> = if path.starts_with("/api/v1/audit") || path == "/api/v1/me" {
            extra.to_vec()
        } else {
            common.iter().chain(extra).copied().collect()
        };
        for n in names {
            params.push(json!({ "name": n, "in": "query", "required": false, "schema": { "type": "string" } }));
        }
        paths.insert(
            path.into(),
            json!({ "get": { "tags": [if path.starts_with("/api/v1/audit") { "audit" } else { "dashboards" }],
                "summary": summary, "parameters": params,
                "responses": with(json!({ "description": "ok",
                    "content": { "application/json": { "schema": { "type": "object" } } } })) } }),
        );
    }
    // Long operations: started with a POST that answers 202 and a Location to poll.
    let status_body = json!({ "application/json": {
        "schema": { "$ref": "#/components/schemas/OperationStatus" } } });
    for (path, id, summary, who, unavailable) in [
        (
            "/api/v1/operations/rebuild",
            "startRebuild",
            "Start rebuilding the dashboards' read models into a new generation (administrators)",
            "the token's role may not rebuild (administrators only)",
            "dashboards are not enabled on this server",
        ),
        (
            "/api/v1/operations/export",
            "startExport",
            "Start exporting the audit log to a file (auditors and administrators)",
            "the token's role may not export (auditors and administrators only)",
            "the audit tree is not enabled, or the store is unavailable",
        ),
    ] {
        let mut responses = problem_responses(&[
            ("401", "no valid bearer token"),
            ("403", who),
            (
                "409",
                "an operation of this kind is already running (operation_in_progress); Location names it",
            ),
            ("429", "rate limited"),
            ("503", unavailable),
        ]);
        responses.insert(
            "202".into(),
            json!({ "description": "started: poll the operation at Location",
                "headers": { "Location": { "description": "/api/v1/operations/{id}",
                    "schema": { "type": "string" } } },
                "content": status_body }),
        );
        paths.insert(
            path.into(),
            json!({ "post": { "operationId": id, "tags": ["operations"], "summary": summary,
                "responses": responses } }),
        );
    }
    let id_param = json!([{ "name": "id", "in": "path", "required": true,
        "schema": { "type": "string", "format": "uuid" } }]);
    let mut responses = problem_responses(&[
        ("401", "no valid bearer token"),
        (
            "403",
            "the token's role may not read operations of this kind (who may start a kind may read it)",
        ),
        (
            "404",
            "no such operation (finished ones are kept for an hour, at most the last 16)",
        ),
        ("429", "rate limited"),
    ]);
    responses.insert(
        "200".into(),
        json!({ "description": "state, progress (done of total events), result or error",
            "content": status_body }),
    );
    paths.insert(
        "/api/v1/operations/{id}".into(),
        json!({ "get": { "operationId": "operation", "tags": ["operations"],
            "summary": "A long operation's state and progress", "parameters": id_param,
            "responses": responses } }),
    );
    let mut responses = problem_responses(&[
        ("401", "no valid bearer token"),
        ("403", "the token's role may not read exports"),
        ("404", "no such operation, or not an export"),
        (
            "409",
            "the export is still running (operation_in_progress) or failed (operation_failed)",
        ),
        ("429", "rate limited"),
    ]);
    responses.insert(
        "200".into(),
        json!({ "description": "the export file (docs/audit-format.md) as an attachment",
            "headers": { "Content-Disposition": {
                "description": "attachment; filename=\"caretrail-export-<events>.jsonl\"",
                "schema": { "type": "string" } } },
            "content": { "application/x-ndjson": { "schema": { "type": "string" } } } }),
    );
    paths.insert(
        "/api/v1/operations/{id}/file".into(),
        json!({ "get": { "operationId": "operationFile", "tags": ["operations"],
            "summary": "Download a finished export", "parameters": id_param,
            "responses": responses } }),
    );
    for (path, summary) in [
        ("/healthz", "Liveness"),
        ("/readyz", "Readiness: store reachable, read side caught up"),
        ("/metrics", "Prometheus metrics"),
        ("/openapi.json", "This document"),
    ] {
        paths.insert(
            path.into(),
            json!({ "get": { "tags": ["operations"], "summary": summary, "security": [],
                "responses": { "200": { "description": "ok" } } } }),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "caretrail API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Audit-grade care records for the standing-director pairing assistance programme (常务理事结对帮扶). Errors are application/problem+json with a stable `code`."
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer",
                "description": "A token from `caretrail token create` (only its hash is stored)." } }
        }
    })
}
