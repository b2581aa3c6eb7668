//! The page's subscription form offers the event types and stream categories a filter may
//! name, from lists in `app.js`; this keeps them equal to the domain's (a type missing from the
//! page cannot be chosen, one the domain does not know would be refused).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

/// The quoted strings of the JavaScript array `const NAME = [...]` in `app.js`.
fn js_list(name: &str) -> BTreeSet<String> {
    let js = include_str!("../assets/app.js");
    let start = js.find(&format!("const {name} = [")).unwrap();
    let rest = &js[start..];
    let body = &rest[rest.find('[').unwrap() + 1..rest.find(']').unwrap()];
    body.split(',')
        .map(|s| s.trim().trim_matches('"').to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

#[test]
fn the_subscription_forms_lists_are_the_domains() {
    let types: BTreeSet<String> = caretrail_domain::event::EVENT_TYPES
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    assert_eq!(js_list("EVENT_TYPES"), types);
    let categories: BTreeSet<String> = caretrail_domain::Category::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    assert_eq!(js_list("CATEGORIES"), categories);
}
