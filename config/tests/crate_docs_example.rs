//! The annotated example in the crate documentation is a valid config using every key.

use lp_config::Config;

/// The ```toml block of the crate-level docs in src/lib.rs.
fn docs_example() -> String {
    let source = include_str!("../src/lib.rs");
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
    assert!(config.orchestrator.is_some());
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
