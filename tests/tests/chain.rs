//! The operator's walk through the README on a devnet: `livepeer devnet`, then `livepeer chain`
//! register, initialize-round, status and reward, as a user would type them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::livepeer_bin;
use serde_json::Value;

/// Stops the devnet (anvil runs detached) when the test ends, pass or fail.
struct Devnet(PathBuf);

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = Command::new(livepeer_bin()).args(["devnet", "--stop", "--dir"]).arg(&self.0).output();
    }
}

fn chain(cfg: &Path, args: &[&str]) -> Output {
    Command::new(livepeer_bin()).args(["chain", "--json", "-c"]).arg(cfg).args(args).output().unwrap()
}

fn chain_ok(cfg: &Path, args: &[&str]) -> Value {
    let out = chain(cfg, args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "chain {args:?}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn lpt(v: &Value) -> f64 {
    v.as_str().unwrap().trim_end_matches(" LPT").parse().unwrap()
}

#[test]
fn devnet_then_register_initialize_round_status_and_reward() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let devnet_dir = dir.path().join("devnet");
    let start = || {
        Command::new(livepeer_bin())
            .args(["devnet", "--round-length", "20", "--port", &port, "--dir"])
            .arg(&devnet_dir)
            .output()
            .unwrap()
    };
    let out = start();
    let _guard = Devnet(devnet_dir.clone());
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("devnet up at"), "{stdout}");
    // Idempotent: a second run finds the running devnet and changes nothing.
    let again = String::from_utf8_lossy(&start().stdout).to_string();
    assert!(again.contains("already running"), "{again}");

    let cfg = devnet_dir.join("orchestrator.toml");
    // Rounds need initializing before anything bonds; someone may already have done it.
    let init = chain(&cfg, &["initialize-round"]);
    let text = String::from_utf8_lossy(&init.stdout);
    assert!(init.status.success() || text.contains("round already initialized"), "{text}");
    let registered = chain_ok(
        &cfg,
        &[
            "register",
            "--reward-cut",
            "10",
            "--fee-share",
            "50",
            "--service-uri",
            "https://127.0.0.1:8935",
            "--bond",
            "1000",
        ],
    );
    assert_eq!(registered["receipts"].as_array().unwrap().len(), 3);
    let status = chain_ok(&cfg, &["status"]);
    let o = &status["orchestrator"];
    assert_eq!((o["registered"].as_bool(), o["active"].as_bool()), (Some(true), Some(false)), "{status}");
    assert_eq!(o["service_uri"], "https://127.0.0.1:8935");
    assert_eq!(lpt(&o["total_stake"]), 1000.0);

    // Active from the next round, once it is initialized.
    let round = status["round"]["number"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = chain_ok(&cfg, &["status"]);
        if s["round"]["number"].as_u64().unwrap() > round {
            break;
        }
        assert!(Instant::now() < deadline, "the round never advanced: {s}");
        std::thread::sleep(Duration::from_millis(500));
    }
    chain_ok(&cfg, &["initialize-round"]);
    let status = chain_ok(&cfg, &["status"]);
    assert_eq!(status["round"]["initialized"], true, "{status}");
    assert_eq!(status["orchestrator"]["active"], true, "{status}");

    chain_ok(&cfg, &["reward"]);
    let after = chain_ok(&cfg, &["status"]);
    assert!(lpt(&after["orchestrator"]["total_stake"]) > 1000.0, "{after}");
    assert_eq!(after["orchestrator"]["last_reward_round"], after["round"]["number"]);

    // The contract's revert reason reaches the operator.
    let twice = chain(&cfg, &["reward"]);
    assert!(!twice.status.success());
    let text = String::from_utf8_lossy(&twice.stdout);
    assert!(text.contains("caller has already called reward for the current round"), "{text}");
}
