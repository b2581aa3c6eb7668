//! The checked-in `schemas/openapi.json` is exactly what the code generates.
//! Regenerate with `CARETRAIL_BLESS=1 cargo test -p caretrail-http --test openapi`.

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

#[test]
fn every_command_has_a_path_and_every_reference_resolves() {
    let doc = caretrail_http::openapi::document();
    for name in caretrail_domain::command::COMMAND_NAMES {
        assert!(
            doc["paths"][format!("/api/v1/commands/{name}")]["post"].is_object(),
            "{name}"
        );
    }
    let mut refs = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(o) => {
                if let Some(serde_json::Value::String(r)) = o.get("$ref") {
                    out.push(r.clone());
                }
                o.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
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
