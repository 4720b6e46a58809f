//! The example configs in `deploy/` load, and each configures the roles its name implies.

use std::path::{Path, PathBuf};

use lp_config::{Config, Network};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// `(gateway, orchestrator, transcoder)` sections expected in `deploy/<name>.toml`.
fn expected_roles(name: &str) -> (bool, bool, bool) {
    match name {
        "gateway" => (true, false, false),
        "orchestrator" | "orchestrator-remote" => (false, true, false),
        "transcoder" => (false, false, true),
        "all-in-one" => (true, true, false),
        other => panic!("deploy/{other}.toml: add its expected roles to this test"),
    }
}

#[test]
fn every_deploy_example_is_valid() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(deploy_dir()).expect("deploy/ is readable") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "toml") {
            continue;
        }
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let config = Config::load(&path, &[]).unwrap_or_else(|e| panic!("{} is invalid:\n{e}", path.display()));
        assert_eq!(config.network, Network::Offchain, "{name}");
        let roles = (config.gateway.is_some(), config.orchestrator.is_some(), config.transcoder.is_some());
        assert_eq!(roles, expected_roles(&name), "{name}: (gateway, orchestrator, transcoder)");
        // What --dump-config prints loads back to the same config.
        assert_eq!(Config::from_toml_str(&config.to_toml(), &[]), Ok(config));
        names.push(name);
    }
    names.sort();
    assert_eq!(names, ["all-in-one", "gateway", "orchestrator", "orchestrator-remote", "transcoder"]);
}

#[test]
fn orchestrator_examples_differ_in_where_they_transcode() {
    let load =
        |name: &str| Config::load(&deploy_dir().join(format!("{name}.toml")), &[]).unwrap().orchestrator.unwrap();
    let local = load("orchestrator");
    assert!(local.transcode);
    let remote = load("orchestrator-remote");
    assert!(!remote.transcode);
    assert_eq!(remote.secret_file, Some(PathBuf::from("secret.txt")));
}

#[test]
fn examples_show_the_defaults() {
    // Each example shows the default of every key it sets (apart from the role-specific ones
    // checked above), so it doubles as a reference.
    let all = Config::load(&deploy_dir().join("all-in-one.toml"), &[]).unwrap();
    let mut expected = Config {
        gateway: Some(lp_config::GatewayConfig {
            orchestrators: vec!["https://127.0.0.1:8935".to_string()],
            ..Default::default()
        }),
        orchestrator: Some(Default::default()),
        ..Default::default()
    };
    assert_eq!(all, expected);
    let gateway = Config::load(&deploy_dir().join("gateway.toml"), &[]).unwrap();
    expected.orchestrator = None;
    assert_eq!(gateway, expected);
}
