//! The annotated example in the crate documentation is a valid config, and it documents exactly
//! the keys the reader knows: a key added to a section shows up here until it is documented.

use std::collections::BTreeSet;

use crate::Config;
use crate::read::{Keys, Kind, Section};

/// The ```toml block of the crate-level docs in src/lib.rs.
fn docs_example() -> String {
    let source = include_str!("lib.rs");
    let mut lines = source
        .lines()
        .take_while(|line| line.starts_with("//!"))
        .map(|line| line.strip_prefix("//! ").unwrap_or(line.trim_start_matches("//!")))
        .skip_while(|line| *line != "```toml")
        .skip(1);
    let mut example = String::new();
    for line in lines.by_ref() {
        if line == "```" {
            return example;
        }
        example.push_str(line);
        example.push('\n');
    }
    panic!("no closed ```toml block in the crate docs");
}

#[test]
fn crate_docs_example_is_valid_and_complete() {
    let example = docs_example();
    let config =
        Config::from_toml_str(&example, &[]).unwrap_or_else(|e| panic!("the crate docs example is invalid:\n{e}"));
    let gateway = config.gateway.as_ref().unwrap();
    assert_eq!(gateway.orchestrators, ["https://127.0.0.1:8935"]);
    let orchestrator = config.orchestrator.as_ref().unwrap();
    assert_eq!(orchestrator.models.len(), 1);
    assert!(config.transcoder.is_some());
    // Every key of the dump (all keys but unset optional ones) appears in the example, set or
    // commented out.
    for line in config.to_toml().lines() {
        if let Some((key, _)) = line.split_once(" = ") {
            assert!(
                example.contains(&format!("\n{key} = ")) || example.contains(&format!("# {key} = ")),
                "the crate docs example lacks `{key}`"
            );
        }
    }
    for optional in ["profiles_file", "service_uri"] {
        assert!(example.contains(&format!("# {optional} = ")), "{optional}");
    }
}

/// A table header (`"[]"` for `[name]`, `"[[]]"` for `[[name]]`) or a key, in a table named as
/// errors name it (`""` for the top level, `"gateway"`, `"orchestrator.models"`).
type Entry = (String, String);

/// What the example shows, set or commented out (`# key = value`, `# [eth]`).
fn documented(example: &str) -> BTreeSet<Entry> {
    let is_key =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    let mut table = String::new();
    let mut entries = BTreeSet::new();
    for line in example.lines() {
        let line = line.strip_prefix("# ").unwrap_or(line);
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
            table = name.to_string();
            entries.insert((table.clone(), "[[]]".to_string()));
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = name.to_string();
            entries.insert((table.clone(), "[]".to_string()));
        } else if let Some((key, _)) = line.split_once(" = ")
            && is_key(key)
        {
            entries.insert((table.clone(), key.to_string()));
        }
    }
    entries
}

/// What the reader knows.
fn known(table: &str, keys: Keys, entries: &mut BTreeSet<Entry>) {
    for (key, kind) in keys {
        let path = if table.is_empty() { key.to_string() } else { format!("{table}.{key}") };
        match kind {
            Kind::Section(keys) => {
                entries.insert((path.clone(), "[]".to_string()));
                known(&path, keys, entries);
            }
            Kind::Tables(keys) => {
                entries.insert((path.clone(), "[[]]".to_string()));
                known(&path, keys, entries);
            }
            Kind::Str | Kind::Int | Kind::Bool | Kind::StrList => {
                entries.insert((table.to_string(), key.to_string()));
            }
        }
    }
}

#[test]
fn crate_docs_example_documents_exactly_the_keys_the_reader_knows() {
    let documented = documented(&docs_example());
    let mut known_keys = BTreeSet::new();
    known("", Config::KEYS, &mut known_keys);
    let unknown: Vec<_> = documented.difference(&known_keys).collect();
    let undocumented: Vec<_> = known_keys.difference(&documented).collect();
    assert!(
        unknown.is_empty() && undocumented.is_empty(),
        "documented but unknown to the reader: {unknown:?}; known to the reader but not documented: {undocumented:?}"
    );
    // The walk saw the nested tables.
    assert!(documented.contains(&("orchestrator.models".to_string(), "pipeline".to_string())));
    assert!(documented.contains(&("eth".to_string(), "min_gas_price".to_string())));
}

#[test]
fn the_check_sees_a_key_missing_from_either_side() {
    // An example missing a key, or with one the reader does not know, differs from the reader.
    let mut known_keys = BTreeSet::new();
    known("", Config::KEYS, &mut known_keys);
    let example = docs_example();
    assert_ne!(documented(&example.replace("\nwarm = false\n", "\n")), known_keys);
    assert_ne!(documented(&example.replace("\nwarm = false\n", "\nwarm = false\n# cold = true\n")), known_keys);
}
