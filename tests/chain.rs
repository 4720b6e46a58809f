//! The operator's walk through the README on a devnet: `livepeer devnet`, then `livepeer chain`
//! register, initialize-round, status and reward, as a user would type them.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Devnet, chain, chain_ok, livepeer_bin, node_config};
use serde_json::Value;

/// `chain register`, tried again once when a round boundary slipped in between (rounds are short
/// on the devnet and need initializing; a node with `initialize_round = true`, or we, do it).
fn register(cfg: &Path, service_uri: &str, bond: &str) -> Value {
    let args = ["register", "--reward-cut", "10", "--fee-share", "50", "--service-uri", service_uri, "--bond", bond];
    let out = chain(cfg, &args);
    if !out.status.success() && String::from_utf8_lossy(&out.stdout).contains("current round is not initialized") {
        let _ = chain(cfg, &["initialize-round"]);
        return chain_ok(cfg, &args);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "register: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap()
}

fn lpt(v: &Value) -> f64 {
    v.as_str().unwrap().trim_end_matches(" LPT").parse().unwrap()
}

/// `livepeer devnet` in `dir` with rounds of `round_length` blocks, a block every `block_time`
/// seconds (0: a block per transaction); its output and the chain's port.
fn start_devnet(dir: &Path, round_length: u64, block_time: u64) -> (Output, u16) {
    let port = lp_chain::anvil::free_port().unwrap();
    let (round_length, block_time, port_arg) = (round_length.to_string(), block_time.to_string(), port.to_string());
    let args = ["devnet", "--round-length", &round_length, "--block-time", &block_time, "--port", &port_arg, "--dir"];
    (Command::new(livepeer_bin()).args(args).arg(dir).output().unwrap(), port)
}

/// Mine `blocks` blocks on the chain at `port` (anvil's `anvil_mine`).
fn mine(port: u16, blocks: u64) {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "anvil_mine", "params": [blocks]});
    let resp = common::http().post(format!("http://127.0.0.1:{port}")).json(&body).send().unwrap();
    assert!(resp.status().is_success());
}

#[test]
fn devnet_then_register_initialize_round_status_and_reward() {
    let dir = tempfile::tempdir().unwrap();
    let devnet_dir = dir.path().join("devnet");
    // Blocks only for transactions and when mined here: no round boundary slips in between
    // two commands.
    let start = || start_devnet(&devnet_dir, 20, 0);
    let (out, port) = start();
    let _guard = Devnet(devnet_dir.clone());
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("devnet up at"), "{stdout}");
    // Idempotent: a second run finds the running devnet and changes nothing: the same files,
    // byte for byte (the contract addresses, the configs, the password).
    let files = |dir: &Path| {
        let mut files: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
            .collect();
        files.sort();
        files
    };
    let before = files(&devnet_dir);
    assert!(before.len() >= 3, "{:?}", before.iter().map(|f| &f.0).collect::<Vec<_>>());
    let again = String::from_utf8_lossy(&start().0.stdout).to_string();
    assert!(again.contains("already running"), "{again}");
    assert!(files(&devnet_dir) == before, "the second run changed the devnet's files");

    let cfg = devnet_dir.join("orchestrator.toml");
    // Rounds need initializing before anything bonds; the devnet starts with an initialized one,
    // and initializing it again is refused with the contract's reason.
    let init = chain(&cfg, &["initialize-round"]);
    let text = String::from_utf8_lossy(&init.stdout);
    assert!(init.status.success() || text.contains("round already initialized"), "{text}");
    let registered = register(&cfg, "https://127.0.0.1:8935", "1000");
    assert_eq!(registered["receipts"].as_array().unwrap().len(), 3);
    let status = chain_ok(&cfg, &["status"]);
    let o = &status["orchestrator"];
    assert_eq!((o["registered"].as_bool(), o["active"].as_bool()), (Some(true), Some(false)), "{status}");
    assert_eq!(o["service_uri"], "https://127.0.0.1:8935");
    assert_eq!(lpt(&o["total_stake"]), 1000.0);

    // Active from the next round (a round's length of blocks on), once it is initialized.
    let round = status["round"]["number"].as_u64().unwrap();
    mine(port, 20);
    let status = chain_ok(&cfg, &["status"]);
    assert_eq!(
        (status["round"]["number"].as_u64(), &status["round"]["initialized"]),
        (Some(round + 1), &Value::Bool(false))
    );
    chain_ok(&cfg, &["initialize-round"]);
    let status = chain_ok(&cfg, &["status"]);
    assert_eq!(status["round"]["number"].as_u64(), Some(round + 1), "{status}");
    assert_eq!(status["round"]["initialized"], true, "{status}");
    assert_eq!(status["orchestrator"]["active"], true, "{status}");

    chain_ok(&cfg, &["reward"]);
    let after = chain_ok(&cfg, &["status"]);
    assert!(lpt(&after["orchestrator"]["total_stake"]) > 1000.0, "{after}");
    assert_eq!(after["orchestrator"]["last_reward_round"].as_u64(), Some(round + 1), "{after}");

    // The contract's revert reason reaches the operator.
    let twice = chain(&cfg, &["reward"]);
    assert!(!twice.status.success());
    let text = String::from_utf8_lossy(&twice.stdout);
    assert!(text.contains("caller has already called reward for the current round"), "{text}");

    // A data_dir that belongs to another chain (Arbitrum One's id stored in its database) is
    // refused before anything is sent.
    let other = dir.path().join("other-chain");
    std::fs::create_dir_all(&other).unwrap();
    lp_chain::db::Db::open_in(&other).unwrap().check_chain_id(42161).unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap();
    let moved: Vec<String> =
        text.lines()
            .map(|l| {
                if l.starts_with("data_dir") {
                    format!("data_dir = {:?}", other.display().to_string())
                } else {
                    l.into()
                }
            })
            .collect();
    let other_cfg = dir.path().join("other.toml");
    std::fs::write(&other_cfg, moved.join("\n")).unwrap();
    let refused = chain(&other_cfg, &["status"]);
    let text = String::from_utf8_lossy(&refused.stdout);
    assert_eq!(refused.status.code(), Some(64), "a data_dir of another chain is a setup error");
    assert!(text.contains("42161") && text.contains("31337"), "the error names both chain ids: {text}");
}

#[test]
fn a_gateway_finds_a_registered_orchestrator_on_chain_and_transcodes_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let devnet_dir = dir.path().join("devnet");
    let (out, _) = start_devnet(&devnet_dir, 20, 1);
    let _guard = Devnet(devnet_dir.clone());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The orchestrator node runs on-chain: it initializes rounds and calls reward on its own.
    let orch = common::Node::start(
        "orchestrator",
        &node_config(
            &devnet_dir.join("orchestrator.toml"),
            "[orchestrator]\nservice_addr = \"127.0.0.1:0\"\nx264_preset = \"ultrafast\"\n[admin]\naddr = \"127.0.0.1:0\"\n",
        ),
    );
    let cfg = devnet_dir.join("orchestrator.toml");
    let uri = orch.orchestrator_uri();
    register(&cfg, &uri, "500");

    // The gateway has no orchestrator list: it reads the active set from the chain each round.
    let gateway = common::Node::start(
        "gateway",
        &node_config(
            &devnet_dir.join("gateway.toml"),
            "[gateway]\nhttp_addr = \"127.0.0.1:0\"\nrtmp_addr = \"127.0.0.1:0\"\nprofiles = [\"P144p30fps16x9\"]\n[admin]\naddr = \"127.0.0.1:0\"\n",
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let status = gateway.status();
        let listed = status["gateway"]["orchestrators"].as_array().is_some_and(|a| a.iter().any(|u| u == &uri));
        if listed {
            break;
        }
        assert!(Instant::now() < deadline, "the gateway never listed {uri}: {status}\n{}", gateway.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    let pool = &gateway.status()["chain"]["orchestrator_pool"];
    assert!(pool.as_array().unwrap().iter().any(|m| m["service_uri"] == uri.as_str() && m["active"] == true), "{pool}");

    let segments = common::make_segments(dir.path(), 2, 320, 180);
    let (status, ct, body) = common::push(&gateway.gateway(), "onchain", "0.ts", segments[0].clone());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(common::multipart_parts(&ct, &body).len(), 1);

    // The orchestrator node called reward for the round it became active in.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = chain_ok(&cfg, &["status"]);
        if s["orchestrator"]["last_reward_round"].as_u64() > Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "no reward was called: {s}\n{}", orch.log());
        std::thread::sleep(Duration::from_millis(500));
    }
}
