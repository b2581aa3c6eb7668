//! `ARCHITECTURE.md` is where a newcomer learns the code's shape, so it has to stay true as
//! the code moves. This test checks the two things that go stale without anyone noticing:
//! the list of edges between the workspace's crates (against each crate's `[dependencies]`)
//! and that every source file of every crate is named in that crate's section of the code map.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn architecture() -> String {
    std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md is readable")
}

/// The workspace crates (`crates/*`), by name.
fn crates() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("crates"))
        .expect("crates/ is readable")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.starts_with("caretrail-"))
        .collect();
    names.sort();
    names
}

/// The workspace crates a manifest's `[dependencies]` table names (dev-dependencies and
/// build-dependencies are not edges of the architecture).
fn workspace_dependencies(manifest: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest).expect("a readable Cargo.toml");
    let mut section = String::new();
    let mut deps = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        if section != "[dependencies]" || line.starts_with('#') {
            continue;
        }
        let name = line
            .split(['.', ' ', '='])
            .next()
            .unwrap_or_default()
            .trim();
        if name.starts_with("caretrail-") {
            deps.insert(name.to_owned());
        }
    }
    deps
}

/// The edges listed under "## Crate edges": lines of the form
/// ``- `caretrail-app` → `caretrail-domain`, `caretrail-store` `` (a crate with no edges says
/// "nothing").
fn documented_edges(doc: &str) -> BTreeMap<String, BTreeSet<String>> {
    let section = doc
        .split("\n## Crate edges")
        .nth(1)
        .expect("ARCHITECTURE.md has a \"## Crate edges\" section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    let mut edges = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("- `")) {
        let (from, to) = line
            .split_once('→')
            .unwrap_or_else(|| panic!("an edge line needs an arrow: {line}"));
        let names = |s: &str| -> BTreeSet<String> {
            s.split('`')
                .skip(1)
                .step_by(2)
                .filter(|n| n.starts_with("caretrail"))
                .map(str::to_owned)
                .collect()
        };
        let from = names(from)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("an edge line names its crate first: {line}"));
        edges.insert(from, names(to));
    }
    edges
}

#[test]
fn every_crate_edge_is_in_architecture_md_and_no_other() {
    let doc = architecture();
    let documented = documented_edges(&doc);
    let mut actual = BTreeMap::new();
    actual.insert(
        "caretrail".to_owned(),
        workspace_dependencies(&root().join("Cargo.toml")),
    );
    for name in crates() {
        actual.insert(
            name.clone(),
            workspace_dependencies(&root().join("crates").join(&name).join("Cargo.toml")),
        );
    }
    assert_eq!(
        documented, actual,
        "ARCHITECTURE.md's \"Crate edges\" (left) differ from the manifests' [dependencies] (right)"
    );
}

fn rust_files(dir: &Path, base: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("a readable source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, base, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(base).expect("under its base");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn every_source_file_is_named_in_its_crates_section_of_the_code_map() {
    let doc = architecture();
    let mut missing = Vec::new();
    for name in crates() {
        let heading = format!("### `crates/{name}`");
        let section = doc
            .split(&heading)
            .nth(1)
            .unwrap_or_else(|| panic!("ARCHITECTURE.md has no section {heading}"))
            .split("\n### ")
            .next()
            .unwrap_or_default();
        let src = root().join("crates").join(&name).join("src");
        let mut files = Vec::new();
        rust_files(&src, &src, &mut files);
        for file in files.into_iter().filter(|f| f != "lib.rs") {
            if !section.contains(&format!("`{file}`")) && !section.contains(&format!("{file}`")) {
                missing.push(format!("crates/{name}/src/{file}"));
            }
        }
    }
    let mut binary = Vec::new();
    rust_files(&root().join("src"), &root(), &mut binary);
    for file in binary {
        if !doc.contains(&format!("`{file}`")) {
            missing.push(file);
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md does not name these source files: {missing:#?}"
    );
}
