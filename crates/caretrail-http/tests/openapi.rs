//! The OpenAPI document: generated from the routes without problems, covering exactly the
//! routes the service serves, and checked in at `schemas/openapi.json`.
//! Regenerate the checked-in copy with `CARETRAIL_BLESS=1 cargo test -p caretrail-http --test openapi`.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use caretrail_app::{App, KeyRing, MasterKey, SystemClock};
use caretrail_domain::Policy;
use caretrail_http::{AppState, Server, TokenStore, router};
use serde_json::Value;

#[test]
fn the_checked_in_openapi_document_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/openapi.json");
    let generated =
        serde_json::to_string_pretty(&caretrail_http::openapi::document()).unwrap() + "\n";
    if std::env::var("CARETRAIL_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == generated,
        "schemas/openapi.json is out of date with the code; regenerate it with \
         `CARETRAIL_BLESS=1 cargo test -p caretrail-http --test openapi`"
    );
}

/// Hardening (API contract): documenting the routes reports nothing wrong: no duplicate
/// parameter, no schema name described two ways, no path parameter left undeclared.
#[test]
fn the_document_is_generated_without_problems() {
    let built = caretrail_http::openapi::build();
    assert!(built.problems.is_empty(), "{:#?}", built.problems);
}

#[test]
fn every_command_has_a_path_and_every_reference_resolves() {
    let doc = caretrail_http::openapi::document();
    for name in caretrail_domain::command::COMMAND_NAMES {
        let op = &doc["paths"][format!("/api/v1/commands/{name}")]["post"];
        // Subscriptions are changed through /api/v1/subscriptions and accounts through
        // /api/v1/accounts, not the command route.
        if caretrail_domain::CommandKind::from_name(name)
            .is_some_and(|k| k.is_subscription() || k.is_account())
        {
            assert!(op.is_null(), "{name} has no command route");
            continue;
        }
        assert!(op.is_object(), "{name}");
        assert_eq!(
            op["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            format!("#/components/schemas/{name}"),
            "{name}'s body is its own schema"
        );
    }
    let mut refs = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    out.push(r.clone());
                }
                o.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("reference outside components: {r}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling {r}"
        );
    }
}

/// Hardening (API contract): answers are typed, never a bare `{"type": "object"}`, and every
/// authenticated operation names its security requirement and its 401.
#[test]
fn every_answer_is_typed_and_every_token_check_is_documented() {
    let doc = caretrail_http::openapi::document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                for (media, content) in response["content"].as_object().into_iter().flatten() {
                    let schema = &content["schema"];
                    let bare = schema.as_object().is_some_and(|o| {
                        o.len() == 1 && o.get("type").is_some_and(|t| t == "object")
                    });
                    // The document itself is the one object whose shape is OpenAPI's own.
                    assert!(
                        !bare || path == "/openapi.json",
                        "{method} {path} {status} {media}: an untyped object"
                    );
                    if media.ends_with("json") {
                        assert!(schema.is_object(), "{method} {path} {status}: no schema");
                    }
                }
            }
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let public = ["/healthz", "/readyz", "/openapi.json"];
            // Signing in is how a session starts: it takes a user name and password instead.
            let sign_in = path == "/api/v1/session" && method == "post";
            assert_eq!(
                secured,
                !public.contains(&path.as_str()) && !sign_in,
                "{method} {path}: security requirement"
            );
            if secured {
                assert!(op["responses"]["401"].is_object(), "{method} {path}: 401");
            }
        }
    }
}

/// Hardening (API contract, found by schemathesis): a 64-bit integer parameter states its
/// type's bounds (schemars gives only a `format`), so a client is not told that
/// `after=32589158477190044730` is valid; and every `parameters` is a list.
#[test]
fn every_64_bit_parameter_is_bounded() {
    let doc = caretrail_http::openapi::document();
    let mut seen = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(parameters) = op.get("parameters") else {
                continue;
            };
            for p in parameters.as_array().expect("parameters is a list") {
                let schema = &p["schema"];
                if matches!(
                    schema["format"].as_str(),
                    Some("uint64" | "int64" | "uint" | "int")
                ) {
                    seen += 1;
                    assert!(
                        schema["minimum"].is_number() && schema["maximum"].is_number(),
                        "{method} {path} {}",
                        p["name"]
                    );
                }
            }
        }
    }
    assert!(seen > 10, "found only {seen} 64-bit parameters");
}

/// The routes an axum router serves, by path template, read from its `Debug` form (axum has
/// no API to list them). Fails loudly if that form changes rather than finding nothing.
fn route_paths(router_debug: &str) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut rest = router_debug;
    while let Some(i) = rest.find("RouteId(") {
        rest = &rest[i + "RouteId(".len()..];
        let Some(after) = rest.split_once("): \"").map(|(_, a)| a) else {
            continue;
        };
        let Some((path, _)) = after.split_once('"') else {
            continue;
        };
        // axum's own catch-all routes for fallbacks are not routes of the service.
        if !path.contains("__private__axum") {
            paths.insert(path.to_owned());
        }
    }
    paths
}

async fn service_router() -> axum::Router {
    let h = caretrail_store::testing::sqlite().await.unwrap();
    let store = h.open().await;
    let keys = Arc::new(
        KeyRing::open(store.as_ref(), MasterKey::generate().unwrap())
            .await
            .unwrap(),
    );
    let tokens = Arc::new(TokenStore::open(store.as_ref()).await.unwrap());
    let app = Arc::new(App::new(
        store,
        keys,
        Policy::default(),
        Arc::new(SystemClock),
    ));
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    // The harness's directory must outlive the router's pool: keep it for the process.
    std::mem::forget(h);
    let mut state = AppState::new(app, tokens, stop_rx);
    // The route test asks every route with every method and no token, far beyond the limit
    // of requests without a valid token from one address.
    state.anonymous = Arc::new(caretrail_http::RateLimiter::new(1_000_000, 1_000_000));
    router(state)
}

/// Hardening (API contract): the document lists exactly the routes the service serves, with
/// exactly their methods (before, `/api/v1/model-workers` and `/api/v1/visits` were served
/// but missing). The web page's routes are the only ones left out of the API document.
#[tokio::test]
async fn the_document_has_exactly_the_routes_the_router_serves() {
    let router = service_router().await;
    let served = route_paths(&format!("{router:?}"));
    let web = route_paths(&format!("{:?}", caretrail_web::routes::<()>()));
    assert!(
        served.len() > 40 && web.len() >= 3,
        "the router's Debug form changed; found {served:?} and {web:?}"
    );
    let doc = caretrail_http::openapi::document();
    let documented: BTreeMap<String, BTreeSet<String>> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .unwrap()
                .keys()
                .map(|m| m.to_uppercase())
                .collect();
            (path.clone(), methods)
        })
        .collect();
    let api: BTreeSet<String> = served.difference(&web).cloned().collect();
    let documented_paths: BTreeSet<String> = documented.keys().cloned().collect();
    assert_eq!(
        api.difference(&documented_paths).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "served but not documented"
    );
    assert_eq!(
        documented_paths.difference(&api).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented but not served"
    );

    // The methods: ask each path with a method nothing uses, and read the `Allow` of its 405.
    let listener_router = router;
    let (stop, _) = tokio::sync::watch::channel(false);
    let server = Server::bind(
        "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
        listener_router,
        stop,
    )
    .await
    .unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    tokio::spawn(server.run_until(std::future::pending()));
    let client = reqwest::Client::new();
    for (path, methods) in &documented {
        let concrete: String = path
            .split('/')
            .map(|s| if s.starts_with('{') { "1" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let res = client
            .request(reqwest::Method::PATCH, format!("{base}{concrete}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "PATCH {path}");
        let allow: BTreeSet<String> = res
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(',')
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty() && m != "HEAD")
            .collect();
        assert_eq!(&allow, methods, "{path}: served methods vs documented");
    }
}

/// What `/openapi.json` serves is the generated document.
#[tokio::test]
async fn the_served_document_is_the_generated_one() {
    let router = service_router().await;
    let (stop, _) = tokio::sync::watch::channel(false);
    let server = Server::bind("127.0.0.1:0".parse::<SocketAddr>().unwrap(), router, stop)
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    tokio::spawn(server.run_until(std::future::pending()));
    let res = reqwest::get(format!("{base}/openapi.json")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let served: Value = res.json().await.unwrap();
    assert_eq!(served, caretrail_http::openapi::document());
}
