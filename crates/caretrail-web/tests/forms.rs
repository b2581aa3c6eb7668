//! The record forms' vocabulary, read from the page's own files and checked against the
//! domain's: a form for every command route, a place and words in both languages for every
//! refusal the domain can give, the API's values in every select, and a label for every field.
//! (Which forms a role sees is the server's answer, `/api/v1/me`; `tests/api/roles.rs` in
//! caretrail-http checks that answer against the domain's table, and `tests/browser.rs` that
//! the page shows exactly it.)

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

const APP: &str = include_str!("../assets/app.js");
const I18N: &str = include_str!("../assets/i18n.js");
const REJECTIONS: &str = include_str!("../../caretrail-domain/src/rejection.rs");

/// The text between `open` and the first `close` after it.
fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text
        .find(open)
        .unwrap_or_else(|| panic!("{open} not found"))
        + open.len();
    let end = text[start..].find(close).unwrap() + start;
    &text[start..end]
}

/// Every double-quoted string in `text`.
fn quoted(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The Chinese and the English dictionary's text.
fn dictionaries() -> (&'static str, &'static str) {
    (
        between(I18N, "const zh = {", "\n  };"),
        between(I18N, "const en = {", "\n  };"),
    )
}

fn has_key(dict: &str, key: &str) -> bool {
    dict.contains(&format!("\"{key}\":"))
}

/// The domain's refusal codes, from `Rejection::code`, less the subscriptions' (their view
/// places them itself).
fn rejection_codes() -> BTreeSet<String> {
    let body = between(REJECTIONS, "pub fn code(&self)", "\n    }\n");
    body.lines()
        .filter_map(|l| l.split("=> \"").nth(1))
        .map(|c| c.trim_end_matches("\",").to_owned())
        // Subscriptions and accounts have views of their own, with their own messages.
        .filter(|c| {
            !c.starts_with("subscription_")
                && c != "unknown_subscription"
                && !c.starts_with("account_")
                && c != "unknown_account"
        })
        .collect()
}

#[test]
fn every_command_route_has_a_form_and_nothing_else_does() {
    let forms = quoted(between(APP, "const FORM_COMMANDS = [", "];"));
    let unique: BTreeSet<String> = forms.iter().cloned().collect();
    assert_eq!(unique.len(), forms.len(), "a form is listed twice");
    let routes: BTreeSet<String> = caretrail_domain::CommandKind::ALL
        .iter()
        .filter(|k| !k.is_subscription() && !k.is_account())
        .map(|k| k.name().to_owned())
        .collect();
    assert_eq!(unique, routes);
    let (zh, en) = dictionaries();
    for c in &forms {
        assert!(has_key(zh, &format!("cmd.{c}")), "no Chinese name for {c}");
        assert!(has_key(en, &format!("cmd.{c}")), "no English name for {c}");
    }
}

#[test]
fn every_refusal_has_a_place_and_words_in_both_languages() {
    let codes = rejection_codes();
    assert!(codes.len() > 50, "the scan found only {codes:?}");
    let places = between(APP, "const REJECTION_PLACES = {", "\n  };");
    let (zh, en) = dictionaries();
    for code in &codes {
        assert!(
            places.contains(&format!(" {code}: [")),
            "{code} has no place in REJECTION_PLACES"
        );
        assert!(has_key(zh, &format!("rej.{code}")), "no Chinese for {code}");
        assert!(has_key(en, &format!("rej.{code}")), "no English for {code}");
    }
    // Every field named as a place is one a form has: its path is written out in app.js
    // outside the table (as a described field, a builder's field or a list's prefix).
    let open = "const REJECTION_PLACES = {";
    let table_start = APP.find(open).unwrap();
    let table_end = table_start + open.len() + places.len();
    let elsewhere = format!("{}{}", &APP[..table_start], &APP[table_end..]);
    for path in quoted(places) {
        if !path.starts_with('$') {
            assert!(
                elsewhere.contains(&format!("\"{path}\"")),
                "{path} is a place no form has"
            );
        }
    }
    // And nothing is placed that the domain does not say.
    for entry in places.split("],") {
        let Some(code) = entry.split(':').next().map(str::trim) else {
            continue;
        };
        if !code.is_empty() {
            assert!(
                codes.contains(code),
                "{code} is not a refusal of the domain"
            );
        }
    }
}

/// The values a command's JSON Schema allows for one of its definitions.
fn schema_enum(command: &str, def: &str) -> BTreeSet<String> {
    let path = format!(
        "{}/../../schemas/commands/{command}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let d = &schema["$defs"][def];
    let values: Vec<&serde_json::Value> = match d.get("enum") {
        Some(e) => e.as_array().unwrap().iter().collect(),
        None => d["oneOf"]
            .as_array()
            .unwrap_or_else(|| panic!("{command}: {def} is not an enum"))
            .iter()
            .map(|v| v.get("const").unwrap_or_else(|| &v["enum"][0]))
            .collect(),
    };
    values
        .into_iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_select_offers_the_apis_values_with_labels_in_both_languages() {
    let enums = between(APP, "const ENUMS = {", "\n  };");
    let prefixes = between(APP, "const ENUM_PREFIX = {", "};");
    let (zh, en) = dictionaries();
    let expected = [
        ("gift", "RecordVisit", "GiftKind"),
        ("prole", "RecordVisit", "ParticipantRole"),
        ("icat", "RaiseIssue", "IssueCategory"),
        ("urg", "RaiseIssue", "Urgency"),
        ("escchan", "EscalateIssue", "EscalationChannel"),
        ("contchan", "RecordContact", "ContactChannel"),
        ("out", "ResolveIssue", "ResolutionOutcome"),
        ("honour", "RegisterModelWorker", "Honour"),
        ("tier", "AssessHardship", "HardshipTier"),
        ("cause", "AssessHardship", "HardshipCause"),
        ("drole", "AppointDirector", "DirectorRole"),
        ("endreason", "EndPair", "PairEndReason"),
        ("legal", "ErasePersonalData", "LegalBasis"),
        ("bodykind", "RegisterBody", "BodyKind"),
        ("satisfaction", "ConfirmResolution", "Satisfaction"),
        ("via", "ConfirmResolution", "ConfirmationVia"),
        ("bodyresp", "RecordBodyResponse", "BodyResponseKind"),
        ("bstatus", "RecordVisit", "BenefitStatus"),
    ];
    let listed: Vec<&str> = enums
        .lines()
        .filter_map(|l| l.trim().split(':').next())
        .filter(|n| !n.is_empty())
        .collect();
    assert_eq!(listed.len(), expected.len(), "an enum without a check");
    for (name, command, def) in expected {
        let line = enums
            .lines()
            .find(|l| l.trim().starts_with(&format!("{name}: [")))
            .unwrap_or_else(|| panic!("ENUMS has no {name}"));
        let values: BTreeSet<String> = quoted(line).into_iter().collect();
        let mut want = schema_enum(command, def);
        if name == "prole" {
            // The lead is chosen in a field of its own; the other participants take the rest.
            want.remove("lead");
        }
        assert_eq!(values, want, "{name}");
        let prefix = prefixes
            .split(',')
            .find_map(|p| {
                let (k, v) = p.split_once(':')?;
                (k.trim().trim_start_matches('{').trim() == name).then(|| quoted(v)[0].clone())
            })
            .unwrap_or_else(|| format!("enum.{name}"));
        for v in &values {
            assert!(
                has_key(zh, &format!("{prefix}.{v}")),
                "no Chinese label for {prefix}.{v}"
            );
            assert!(
                has_key(en, &format!("{prefix}.{v}")),
                "no English label for {prefix}.{v}"
            );
        }
    }
}

#[test]
fn every_described_field_has_a_label_in_both_languages() {
    let specs = between(APP, "const SPECS = {", "\n  };");
    let helpers = between(APP, "const W = (o = {})", "const SPECS");
    let (zh, en) = dictionaries();
    let mut paths = BTreeSet::new();
    for text in [specs, helpers] {
        for piece in text.split("{ p: \"").skip(1) {
            paths.insert(piece.split('"').next().unwrap().to_owned());
        }
    }
    assert!(paths.len() > 40, "the scan found only {paths:?}");
    for p in &paths {
        assert!(has_key(zh, &format!("ff.{p}")), "no Chinese label for {p}");
        assert!(has_key(en, &format!("ff.{p}")), "no English label for {p}");
    }
}

#[test]
fn both_languages_have_the_same_keys() {
    let (zh, en) = dictionaries();
    // A quoted string followed by a colon is a key (values hold no unescaped quotes).
    let keys = |dict: &str| -> BTreeSet<String> {
        let parts: Vec<&str> = dict.split('"').collect();
        (1..parts.len())
            .step_by(2)
            .filter(|&i| {
                parts
                    .get(i + 1)
                    .is_some_and(|n| n.trim_start().starts_with(':'))
            })
            .map(|i| parts[i].to_owned())
            .collect()
    };
    let (z, e) = (keys(zh), keys(en));
    assert!(z.len() > 600, "the scan found only {} keys", z.len());
    assert_eq!(
        z.difference(&e).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "only in Chinese"
    );
    assert_eq!(
        e.difference(&z).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "only in English"
    );
}
