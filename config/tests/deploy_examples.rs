//! The example configs in `deploy/` load, and each configures the roles its name implies.

use std::path::{Path, PathBuf};

use lp_config::{Config, Network};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// `(gateway, orchestrator, transcoder, ai_worker)` sections expected in `deploy/<name>.toml`.
fn expected_roles(name: &str) -> (bool, bool, bool, bool) {
    match name {
        "gateway" => (true, false, false, false),
        "orchestrator" | "orchestrator-remote" => (false, true, false, false),
        "transcoder" => (false, false, true, false),
        "ai-worker" => (false, false, false, true),
        "all-in-one" => (true, true, false, false),
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
        let roles = (
            config.gateway.is_some(),
            config.orchestrator.is_some(),
            config.transcoder.is_some(),
            config.ai_worker.is_some(),
        );
        assert_eq!(roles, expected_roles(&name), "{name}: (gateway, orchestrator, transcoder, ai_worker)");
        // What --dump-config prints loads back to the same config.
        assert_eq!(Config::from_toml_str(&config.to_toml(), &[]), Ok(config));
        names.push(name);
    }
    names.sort();
    assert_eq!(names, ["ai-worker", "all-in-one", "gateway", "orchestrator", "orchestrator-remote", "transcoder"]);
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
    // checked above, and the data_dir and ports that let the examples run side by side), so it
    // doubles as a reference.
    let addr = |s: &str| s.parse().unwrap();
    let all = Config::load(&deploy_dir().join("all-in-one.toml"), &[]).unwrap();
    let expected = Config {
        data_dir: PathBuf::from(".livepeer-all-in-one"),
        gateway: Some(lp_config::GatewayConfig {
            http_addr: addr("127.0.0.1:9936"),
            rtmp_addr: addr("127.0.0.1:1936"),
            orchestrators: vec!["https://127.0.0.1:8937".to_string()],
            ..Default::default()
        }),
        orchestrator: Some(lp_config::OrchestratorConfig {
            service_addr: addr("127.0.0.1:8937"),
            ..Default::default()
        }),
        admin: lp_config::AdminConfig { addr: addr("127.0.0.1:7939") },
        ..Default::default()
    };
    assert_eq!(all, expected);
    let gateway = Config::load(&deploy_dir().join("gateway.toml"), &[]).unwrap();
    let expected = Config {
        data_dir: PathBuf::from(".livepeer-gateway"),
        gateway: Some(lp_config::GatewayConfig {
            orchestrators: vec!["https://127.0.0.1:8935".to_string(), "https://127.0.0.1:8936".to_string()],
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(gateway, expected);
}

/// Every example, by name.
fn all_examples() -> Vec<(String, Config)> {
    let mut all: Vec<(String, Config)> = std::fs::read_dir(deploy_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "toml"))
        .map(|p| (p.file_stem().unwrap().to_str().unwrap().to_string(), Config::load(&p, &[]).unwrap()))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[test]
fn the_examples_can_run_side_by_side_on_one_machine() {
    // The README runs gateway, orchestrator, orchestrator-remote and transcoder (and all-in-one)
    // on one machine: no two may listen on one port or share a data_dir.
    let all = all_examples();
    assert_eq!(all.len(), 6);
    let mut ports = Vec::new();
    let mut data_dirs = Vec::new();
    for (name, cfg) in &all {
        ports.push((cfg.admin.addr.port(), format!("{name}: admin.addr")));
        if let Some(g) = &cfg.gateway {
            ports.push((g.http_addr.port(), format!("{name}: gateway.http_addr")));
        }
        if let Some(o) = &cfg.orchestrator {
            ports.push((o.service_addr.port(), format!("{name}: orchestrator.service_addr")));
        }
        data_dirs.push((cfg.data_dir.clone(), name.clone()));
    }
    for (i, (port, what)) in ports.iter().enumerate() {
        for (other, other_what) in &ports[i + 1..] {
            assert_ne!(port, other, "{what} and {other_what} use the same port");
        }
    }
    for (i, (dir, name)) in data_dirs.iter().enumerate() {
        for (other, other_name) in &data_dirs[i + 1..] {
            assert_ne!(dir, other, "{name} and {other_name} share a data_dir");
        }
    }

    // And they point at each other: the transcoder at orchestrator-remote, the gateway at both
    // orchestrators, all-in-one's gateway at its own orchestrator.
    let get = |name: &str| &all.iter().find(|(n, _)| n == name).unwrap().1;
    let https = |cfg: &Config| format!("https://{}", cfg.orchestrator.as_ref().unwrap().service_addr);
    assert_eq!(get("transcoder").transcoder.as_ref().unwrap().orchestrator, https(get("orchestrator-remote")));
    // The AI worker serves the model orchestrator-remote lists without a path.
    let worker = get("ai-worker").ai_worker.as_ref().unwrap();
    assert_eq!(worker.orchestrator, https(get("orchestrator-remote")));
    let remote_models = &get("orchestrator-remote").orchestrator.as_ref().unwrap().models;
    for m in &worker.models {
        let listed = remote_models.iter().find(|o| o.pipeline == m.pipeline && o.model_id == m.model_id);
        assert_eq!(listed.map(|o| o.path.is_none()), Some(true), "{} {}", m.pipeline, m.model_id);
    }
    let listed = &get("gateway").gateway.as_ref().unwrap().orchestrators;
    assert!(listed.contains(&https(get("orchestrator"))) && listed.contains(&https(get("orchestrator-remote"))));
    assert_eq!(get("all-in-one").gateway.as_ref().unwrap().orchestrators, [https(get("all-in-one"))]);
}

#[test]
fn no_example_calls_offchain_the_only_network() {
    for entry in std::fs::read_dir(deploy_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(!text.contains("only network"), "{} still says offchain is the only network", path.display());
        }
    }
}
