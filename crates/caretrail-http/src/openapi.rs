//! The OpenAPI 3.1 document, generated from the routes themselves.
//!
//! Every API route is registered through aide's `ApiRouter` ([`crate::api_routes`]), and
//! registering a route documents it from the handler's signature: a [`Principal`] argument adds
//! the bearer security requirement and the 401/429/503 answers; `Query<T>` adds `T`'s fields as
//! query parameters with their JSON Schema types, formats, bounds and required-ness; `Path<T>`
//! the path parameters; the [`Json`] a handler returns is the schema of its 200 body. What a
//! signature cannot say (each command's body and headers, the problems a handler's own rules
//! answer) the route's registration adds next to it. So a route cannot exist undocumented,
//! and a type change shows in the document.
//!
//! Two schema contracts: what clients send (command bodies, parameters) is described as it
//! deserializes, so an `Option` field may be left out; what they get is described as it
//! serializes, so an `Option` field is always there (maybe null) and a list skipped when empty
//! may be absent. Both use JSON Schema 2020-12 (OpenAPI 3.1's dialect) and share
//! `components/schemas`; [`build`] reports a name the two describe differently.
//!
//! The document is also checked in at `schemas/openapi.json`; a test fails when the two differ
//! (regenerate with `CARETRAIL_BLESS=1 cargo test -p caretrail-http --test openapi`).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::marker::PhantomData;

use aide::OperationInput;
use aide::generate::GenContext;
use aide::openapi::{
    MediaType, OpenApi, Operation, ReferenceOr, RequestBody, Response, SchemaObject, StatusCode,
};
use aide::operation::OperationOutput;
use aide::transform::TransformOperation;
use axum::Router;
use axum::body::Bytes;
use axum::response::sse::Sse;
use axum::response::{IntoResponse, Response as HttpResponse};
use caretrail_domain::{CommandKind, Reach};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, Problem};

/// Where both generators put the definitions their schemas refer to.
const COMPONENTS: &str = "#/components/schemas/";

fn request_generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = COMPONENTS.into())
        .into_generator()
}

fn answer_generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .for_serialize()
        .with(|s| s.definitions_path = COMPONENTS.into())
        .into_generator()
}

thread_local! {
    /// The generator of answer schemas while a document is built (aide's own context holds
    /// the request side's). Thread-local like aide's: a document is built on one thread.
    static ANSWERS: RefCell<SchemaGenerator> = RefCell::new(answer_generator());
    /// What aide reported as wrong while the routes were documented.
    static ERRORS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// The schema of an answer of type `T` (a reference into the components when `T` is named).
pub fn answer_schema<T: JsonSchema>() -> Schema {
    ANSWERS.with(|g| g.borrow_mut().subschema_for::<T>())
}

/// A JSON answer whose documented schema is `T`'s, as `T` serializes.
///
/// Handlers return this rather than `axum::Json` so the document describes answers with the
/// serializing contract (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> HttpResponse {
        axum::Json(self.0).into_response()
    }
}

fn json_response<T: JsonSchema>() -> Response {
    let schema = answer_schema::<T>();
    let description = ANSWERS
        .with(|g| {
            let g = g.borrow();
            resolve(&g, &schema)
                .and_then(|s| s.get("description"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "OK".into());
    Response {
        description,
        content: [("application/json".into(), media(schema))]
            .into_iter()
            .collect(),
        ..Response::default()
    }
}

/// The definition `schema` refers to, or `schema` itself.
fn resolve<'a>(g: &'a SchemaGenerator, schema: &'a Schema) -> Option<&'a Map<String, Value>> {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => g
            .definitions()
            .get(r.strip_prefix(COMPONENTS).unwrap_or(r))
            .and_then(Value::as_object),
        None => schema.as_object(),
    }
}

fn media(schema: Schema) -> MediaType {
    MediaType {
        schema: Some(SchemaObject {
            json_schema: schema,
            example: None,
            external_docs: None,
        }),
        ..MediaType::default()
    }
}

impl<T: JsonSchema> OperationOutput for Json<T> {
    type Inner = T;

    fn operation_response(_: &mut GenContext, _: &mut Operation) -> Option<Response> {
        Some(json_response::<T>())
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        op: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        Self::operation_response(ctx, op)
            .map(|r| (Some(StatusCode::Code(200)), r))
            .into_iter()
            .collect()
    }
}

/// A JSON answer already serialized from a `T` (a cached dashboard), documented as `T`.
#[derive(Debug, Clone)]
pub struct JsonBytes<T> {
    body: Bytes,
    of: PhantomData<fn() -> T>,
}

impl<T> JsonBytes<T> {
    /// `body` must be the JSON serialization of a `T`.
    pub fn new(body: Bytes) -> Self {
        Self {
            body,
            of: PhantomData,
        }
    }
}

impl<T> IntoResponse for JsonBytes<T> {
    fn into_response(self) -> HttpResponse {
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.body,
        )
            .into_response()
    }
}

impl<T: JsonSchema> OperationOutput for JsonBytes<T> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, op: &mut Operation) -> Option<Response> {
        Json::<T>::operation_response(ctx, op)
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        op: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        Json::<T>::inferred_responses(ctx, op)
    }
}

/// A Server-Sent Events answer whose events carry [`EventOut`](crate::events::EventOut)
/// JSON, or an `error` event with a plain-text reason.
pub struct EventStream<S>(pub Sse<S>);

impl<S> IntoResponse for EventStream<S>
where
    Sse<S>: IntoResponse,
{
    fn into_response(self) -> HttpResponse {
        self.0.into_response()
    }
}

impl<S> OperationOutput for EventStream<S> {
    type Inner = ();

    /// OpenAPI 3.1 has `schema` describe each event of a `text/event-stream` (3.2 calls it
    /// `itemSchema`): the fields of one event, with `data` JSON of an event unless the event
    /// is an `error`.
    fn operation_response(_: &mut GenContext, _: &mut Operation) -> Option<Response> {
        let event = answer_schema::<crate::events::EventOut>();
        let schema: Schema = json!({
            "description": "One Server-Sent Event: `id` is the event's log position (send it back as Last-Event-ID to resume), `event` its type, `data` the event as JSON; an `error` event's data is a plain-text reason. Comment lines are heartbeats.",
            "type": "object",
            "required": ["data"],
            "properties": {
                "id": { "type": "string", "pattern": "^[0-9]+$" },
                "event": { "type": "string" },
                "data": { "type": "string" },
                "retry": { "type": "integer" }
            },
            "if": { "properties": { "event": { "const": "error" } }, "required": ["event"] },
            "then": { "properties": { "data": { "type": "string" } } },
            "else": { "properties": { "data": {
                "contentMediaType": "application/json", "contentSchema": event } } }
        })
        .try_into()
        .ok()?;
        Some(Response {
            description: "stored events after the position, then live ones, in log order".into(),
            content: [("text/event-stream".into(), media(schema))]
                .into_iter()
                .collect(),
            ..Response::default()
        })
    }

    fn inferred_responses(
        ctx: &mut GenContext,
        op: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        Self::operation_response(ctx, op)
            .map(|r| (Some(StatusCode::Code(200)), r))
            .into_iter()
            .collect()
    }
}

/// A problem+json answer.
fn problem_response(why: &str) -> Response {
    Response {
        description: why.into(),
        content: [(
            "application/problem+json".into(),
            media(answer_schema::<Problem>()),
        )]
        .into_iter()
        .collect(),
        ..Response::default()
    }
}

/// Errors are documented where they can happen (by the extractor or the route that answers
/// them), never as a catch-all `default` that would hide an undocumented status.
impl OperationOutput for ApiError {
    type Inner = Problem;
}

/// A bearer token: the security requirement, and what the token check itself answers.
impl OperationInput for Principal {
    fn operation_input(_: &mut GenContext, op: &mut Operation) {
        // Either a bearer token or a signed-in session's cookie.
        op.security = vec![
            [(BEARER.to_owned(), Vec::new())].into_iter().collect(),
            [(SESSION.to_owned(), Vec::new())].into_iter().collect(),
        ];
    }

    fn inferred_early_responses(
        _: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        [
            (401, "no valid bearer token or session (unauthenticated)"),
            (
                403,
                "a request with the session cookie that changes something without its X-CSRF-Token (csrf_token_missing, csrf_token_invalid) or from another site (cross_site_request)",
            ),
            (429, "too many requests for this token (rate_limited)"),
            (
                503,
                "the token table or the event store is unreachable (store_unavailable)",
            ),
        ]
        .into_iter()
        .map(|(status, why)| (Some(StatusCode::Code(status)), problem_response(why)))
        .collect()
    }
}

/// The security scheme's name.
const BEARER: &str = "bearer";

/// The session cookie's security scheme.
const SESSION: &str = "session";

/// What route registrations add to the operation a handler's signature documented.
pub trait Describe<'t>: Sized {
    /// The operation's id, tag and one-line summary.
    fn describe(self, id: &str, tag: &str, summary: &str) -> Self;
    /// A problem+json answer with `status`, saying when it happens. A status documented
    /// twice keeps both reasons.
    fn problem(self, status: u16, why: &str) -> Self;
    /// A success answer other than the handler's inferred one.
    fn answer(self, status: u16, response: Response) -> Self;
    /// A request header, with its schema.
    fn header(self, name: &str, description: &str, schema: Value) -> Self;
}

impl<'t> Describe<'t> for TransformOperation<'t> {
    fn describe(mut self, id: &str, tag: &str, summary: &str) -> Self {
        let op = self.inner_mut();
        op.operation_id = Some(id.into());
        op.tags = vec![tag.into()];
        op.summary = Some(summary.into());
        self
    }

    fn problem(mut self, status: u16, why: &str) -> Self {
        let responses = self
            .inner_mut()
            .responses
            .get_or_insert_with(Default::default);
        match responses.responses.get_mut(&StatusCode::Code(status)) {
            Some(ReferenceOr::Item(r)) if !r.description.contains(why) => {
                r.description = format!("{}; or {why}", r.description);
            }
            Some(_) => {}
            None => {
                responses.responses.insert(
                    StatusCode::Code(status),
                    ReferenceOr::Item(problem_response(why)),
                );
            }
        }
        self
    }

    fn answer(mut self, status: u16, response: Response) -> Self {
        let responses = self
            .inner_mut()
            .responses
            .get_or_insert_with(Default::default);
        responses
            .responses
            .insert(StatusCode::Code(status), ReferenceOr::Item(response));
        self
    }

    fn header(mut self, name: &str, description: &str, schema: Value) -> Self {
        let parameter = serde_json::from_value(json!({
            "in": "header", "name": name, "required": false,
            "description": description, "schema": schema,
        }));
        match parameter {
            Ok(p) => self.inner_mut().parameters.push(ReferenceOr::Item(p)),
            Err(e) => error(format!("header {name}: {e}")),
        }
        self
    }
}

fn error(message: String) {
    ERRORS.with(|e| e.borrow_mut().push(message));
}

/// A response described as JSON (headers, non-JSON content), for [`Describe::answer`].
pub fn response(value: Value) -> Response {
    serde_json::from_value(value).unwrap_or_else(|e| {
        error(format!("a response description does not parse: {e}"));
        Response::default()
    })
}

/// A response whose body is `T` as JSON, with `description` and `headers` (OpenAPI header
/// objects by name).
pub fn json_answer<T: JsonSchema>(description: &str, headers: Value) -> Response {
    let mut r = json_response::<T>();
    r.description = description.into();
    r.headers = response(json!({ "description": "", "headers": headers })).headers;
    r
}

/// Documents a JSON request body of type `T` for a handler that reads the body as bytes (and
/// parses it itself, with errors that repeat nothing that was sent).
pub fn json_body<'t, T: schemars::JsonSchema>(
    mut op: TransformOperation<'t>,
    required: bool,
) -> TransformOperation<'t> {
    let schema = aide::generate::in_context(|ctx| ctx.schema.subschema_for::<T>());
    op.inner_mut().request_body = Some(ReferenceOr::Item(RequestBody {
        description: None,
        content: [("application/json".into(), media(schema))]
            .into_iter()
            .collect(),
        required,
        extensions: Default::default(),
    }));
    op
}

/// Documents `POST /api/v1/commands/{name}`: its body is the command's schema, its headers
/// `Idempotency-Key` and `If-Match`, its answers what the command handler answers.
pub fn command<'t>(mut op: TransformOperation<'t>, name: &str) -> TransformOperation<'t> {
    let body = aide::generate::in_context(|ctx| {
        caretrail_domain::command::command_subschema(name, &mut ctx.schema).map(|schema| {
            let description = ctx
                .resolve_schema(&schema)
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned);
            (schema, description)
        })
    });
    let Some((schema, description)) = body else {
        error(format!("no schema for command {name}"));
        return op;
    };
    {
        let o = op.inner_mut();
        o.description = description.clone();
        // Replaces the untyped body the handler's byte-level extractor documented.
        o.request_body = Some(ReferenceOr::Item(RequestBody {
            description,
            content: [("application/json".into(), media(schema))]
                .into_iter()
                .collect(),
            required: true,
            extensions: Default::default(),
        }));
    }
    // Who may run it, and how far, from the domain's tables (the ones the handler asks).
    let issuers = CommandKind::from_name(name).map_or(&[][..], CommandKind::issuers);
    let names: Vec<&str> = issuers.iter().map(|r| r.as_str()).collect();
    let mut forbidden = format!(
        "the token's role may not run this command (only {} may)",
        names.join(" and ")
    );
    if issuers.iter().any(|r| r.reach() == Reach::OwnPairing) {
        forbidden.push_str(
            ", or a director's command is about another pairing than their own (forbidden), \
             or a rule refuses this caller (the rule's code, e.g. visit_not_led_by_actor)",
        );
    } else {
        forbidden.push_str(" (forbidden)");
    }
    op.describe(&format!("command{name}"), "commands", &format!("Run {name}"))
        .header(
            "Idempotency-Key",
            "A retry with the same key (from the same actor) returns the original answer and writes nothing.",
            // Visible ASCII, 1 to 200 characters once the spaces and tabs HTTP strips from
            // around a field value are gone.
            json!({ "type": "string",
                    "pattern": "^[\t ]*[!-~](?:[\t -~]{0,198}[!-~])?[\t ]*$" }),
        )
        .header(
            "If-Match",
            "The expected version of the command's aggregate stream, as a strong entity tag (`\"3\"`) or a bare number; a stream at another version answers 412.",
            json!({ "type": "string",
                    "pattern": "^[\t ]*(?:\"[0-9]{1,19}\"|[0-9]{1,19})[\t ]*$" }),
        )
        .answer(
            201,
            json_answer::<crate::commands::CommandAccepted>(
                "accepted: the events written",
                json!({
                    "Location": { "description": "the command's aggregate stream, /api/v1/streams/{id}",
                                  "schema": { "type": "string" } },
                    "Idempotent-Replayed": { "description": "`true` when this is the stored answer to an earlier request with the same Idempotency-Key",
                                             "schema": { "type": "string", "enum": ["true"] } }
                }),
            ),
        )
        .problem(400, "malformed JSON or a malformed header (malformed_json, invalid_header, invalid_idempotency_key, invalid_if_match)")
        .problem(403, &forbidden)
        .problem(409, "a domain rule refused the command (its rule code), or a concurrent write (concurrency_conflict, duplicate_event_id), or the subject's personal data is erased (subject_erased)")
        .problem(412, "If-Match does not match the stream's version (stream_version_mismatch)")
        .problem(413, "the body is larger than the limit (body_too_large)")
        .problem(415, "the body is not declared as JSON (unsupported_media_type)")
        .problem(422, "the body does not match the command's schema, or a value is invalid (validation_failed or the rule's code); `errors` names the fields")
}

/// The document's front matter and shared parts.
fn front_matter(api: &mut OpenApi) {
    api.info.title = "caretrail API".into();
    api.info.version = env!("CARGO_PKG_VERSION").into();
    api.info.description = Some(
        "Audit-grade care records for the standing-director pairing assistance programme (常务理事结对帮扶). \
         Commands are `POST /api/v1/commands/{CommandName}` with the command's fields as JSON; reads are GETs. \
         Errors are application/problem+json (RFC 9457) with a stable `code`; bodies never echo personal data."
            .into(),
    );
    api.servers = vec![aide::openapi::Server {
        url: "/".into(),
        ..Default::default()
    }];
    api.tags = [
        (
            "commands",
            "Change the record: each command is its own path, its body the command's fields.",
        ),
        (
            "events",
            "The event log: pages, one stream, and the live feed (Server-Sent Events).",
        ),
        (
            "dashboards",
            "Read models: overview, visit status, caseloads, files, issues, gifts, coverage.",
        ),
        (
            "audit",
            "The audit tree: signed checkpoints and RFC 6962 proofs.",
        ),
        (
            "operations",
            "Long operations (rebuilds, exports), followed by polling.",
        ),
        ("service", "Liveness, readiness, metrics and this document."),
    ]
    .into_iter()
    .map(|(name, description)| aide::openapi::Tag {
        name: name.into(),
        description: Some(description.into()),
        ..Default::default()
    })
    .collect();
    api.components
        .get_or_insert_with(Default::default)
        .security_schemes
        .insert(
            BEARER.into(),
            ReferenceOr::Item(aide::openapi::SecurityScheme::Http {
                scheme: "bearer".into(),
                bearer_format: Some("ctk_ followed by 43 base64url characters".into()),
                description: Some(
                    "A token from `caretrail token create` (only its hash is stored); its role decides what it may do."
                        .into(),
                ),
                extensions: Default::default(),
            }),
        );
    api.components
        .get_or_insert_with(Default::default)
        .security_schemes
        .insert(
            SESSION.into(),
            ReferenceOr::Item(aide::openapi::SecurityScheme::ApiKey {
                location: aide::openapi::ApiKeyLocation::Cookie,
                name: crate::session::COOKIE.into(),
                description: Some(
                    "The cookie `POST /api/v1/session` sets (`__Host-caretrail_session` when the server's public URL is https). A request with it that is not GET or HEAD also sends `X-CSRF-Token`."
                        .into(),
                ),
                extensions: Default::default(),
            }),
        );
}

/// The API's routes and their document.
pub struct Built {
    /// The routes, documented.
    pub routes: Router<AppState>,
    /// The OpenAPI document.
    pub document: Value,
    /// What went wrong while documenting (duplicate parameters, conflicting schemas, a
    /// parameter a path declares but no extractor documents); empty when all is well.
    pub problems: Vec<String>,
}

/// Registers the routes of [`crate::api_routes`] and generates their document.
pub fn build() -> Built {
    aide::generate::reset_context();
    aide::generate::in_context(|ctx| ctx.schema = request_generator());
    aide::generate::on_error(|e| error(e.to_string()));
    ANSWERS.with(|g| *g.borrow_mut() = answer_generator());
    ERRORS.with(|e| e.borrow_mut().clear());

    let mut api = OpenApi::default();
    let routes = crate::api_routes().finish_api_with(&mut api, |t| t);
    front_matter(&mut api);
    let answers = ANSWERS.with(|g| g.borrow_mut().take_definitions(true));
    let mut problems = ERRORS.with(|e| std::mem::take(&mut *e.borrow_mut()));
    let mut document = serde_json::to_value(&api).unwrap_or_else(|e| {
        problems.push(format!("the document does not serialize: {e}"));
        Value::Null
    });
    let schemas = &mut document["components"]["schemas"];
    if !schemas.is_object() {
        *schemas = Value::Object(Map::new());
    }
    if let Value::Object(schemas) = schemas {
        for (name, answer) in answers {
            match schemas.get(&name) {
                Some(request) if *request != answer => problems.push(format!(
                    "{name} is described differently as a request and as an answer; give one of them its own schema name"
                )),
                _ => {
                    schemas.insert(name, answer);
                }
            }
        }
    }
    parameter_problems(&mut document);
    integer_bounds(&mut document);
    prune_components(&mut document);
    problems.extend(undeclared_path_parameters(&document));
    Built {
        routes,
        document,
        problems,
    }
}

/// The OpenAPI document.
pub fn document() -> Value {
    build().document
}

/// Every parameter is parsed, so an operation with parameters can answer 400 for one that is
/// malformed or out of range.
fn parameter_problems(document: &mut Value) {
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for op in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
        let has_parameters = op["parameters"].as_array().is_some_and(|p| !p.is_empty());
        if has_parameters && op["responses"].get("400").is_none() {
            op["responses"]["400"] = json!({
                "description": "a parameter is malformed or out of range (invalid_query, or the parameter's own code)",
                "content": { "application/problem+json": {
                    "schema": { "$ref": format!("{COMPONENTS}Problem") } } }
            });
        }
    }
}

/// Gives 64-bit integer parameters the bounds of their type: schemars states them only as a
/// `format`, and a client (or a generated test) that goes past one is refused.
fn integer_bounds(document: &mut Value) {
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    let parameters = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("parameters").and_then(Value::as_array_mut))
        .flatten();
    for p in parameters {
        let Some(schema) = p["schema"].as_object_mut() else {
            continue;
        };
        let (min, max) = match schema.get("format").and_then(Value::as_str) {
            Some("uint64" | "uint") => (json!(0), json!(u64::MAX)),
            Some("int64" | "int") => (json!(i64::MIN), json!(i64::MAX)),
            _ => continue,
        };
        schema.entry("minimum").or_insert(min);
        schema.entry("maximum").or_insert(max);
    }
}

/// Drops component schemas nothing refers to (aide registers the query parameter structs as
/// schemas, though their fields are what is documented).
fn prune_components(document: &mut Value) {
    let mut used = BTreeSet::new();
    let mut pending: Vec<String> = Vec::new();
    let refs_in = |v: &Value, out: &mut Vec<String>| {
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(o) => {
                    if let Some(Value::String(r)) = o.get("$ref")
                        && let Some(name) = r.strip_prefix(COMPONENTS)
                    {
                        out.push(name.to_owned());
                    }
                    o.values().for_each(|v| walk(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        walk(v, out);
    };
    refs_in(&document["paths"], &mut pending);
    while let Some(name) = pending.pop() {
        if used.insert(name.clone()) {
            refs_in(&document["components"]["schemas"][&name], &mut pending);
        }
    }
    if let Some(schemas) = document["components"]["schemas"].as_object_mut() {
        schemas.retain(|name, _| used.contains(name));
        schemas.sort_keys();
    }
}

/// Path parameters a route's path names but its operation does not declare (an extractor
/// that does not document itself).
fn undeclared_path_parameters(document: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(paths) = document["paths"].as_object() else {
        return vec!["the document has no paths".into()];
    };
    for (path, item) in paths {
        let named: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, op) in item.as_object().into_iter().flatten() {
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            if named != declared {
                out.push(format!(
                    "{method} {path}: the path names {named:?} but the operation declares {declared:?}"
                ));
            }
        }
    }
    out
}

/// Path parameters are documented as axum's `Path` documents them (the 400
/// `invalid_path_parameter` a value that does not parse gets is documented by each route).
impl<T: schemars::JsonSchema> OperationInput for crate::extract::Path<T> {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        <axum::extract::Path<T> as OperationInput>::operation_input(ctx, op);
    }
}

/// Query parameters are documented as axum's `Query` documents them (the 400 `invalid_query`
/// a query string that does not parse gets is documented by each route).
impl<T: schemars::JsonSchema> OperationInput for crate::extract::Query<T> {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        <axum::extract::Query<T> as OperationInput>::operation_input(ctx, op);
    }
}
