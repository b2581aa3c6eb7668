//! `docs/integrations.md` lists the CloudEvents `type` of every event type; this keeps the list
//! in step with the code (a new event type, or a new schema version, fails here until the
//! document says so).

#![allow(clippy::unwrap_used)]

use caretrail_domain::event::{EVENT_TYPES, current_version};
use caretrail_integrations::cloudevent::cloudevent_type;

#[test]
fn the_integrations_document_lists_every_event_types_cloudevents_type() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/integrations.md"),
    )
    .unwrap();
    let listed: Vec<(String, String)> = doc
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            match cells.as_slice() {
                ["", a, b, ""] if a.starts_with('`') && b.starts_with("`cn.caretrail.") => Some((
                    a.trim_matches('`').to_owned(),
                    b.trim_matches('`').to_owned(),
                )),
                _ => None,
            }
        })
        .collect();
    let expected: Vec<(String, String)> = EVENT_TYPES
        .iter()
        .map(|t| ((*t).to_owned(), cloudevent_type(t, current_version(t))))
        .collect();
    assert_eq!(listed, expected);
}
