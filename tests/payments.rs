//! Payments between real `livepeer` processes on a devnet (`livepeer devnet`: anvil with our
//! contracts): a gateway pays an orchestrator with tickets, the orchestrator is SIGKILLed right
//! after it took a winning ticket, and after a restart the ticket is redeemed on-chain.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Node, livepeer_bin};
use serde_json::{Value, json};

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

/// `anvil_mine`: the devnet's chain moves `blocks` ahead at once.
fn mine(rpc: &str, blocks: u64) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "anvil_mine", "params": [format!("{blocks:#x}")]});
    let resp = common::http().post(rpc).json(&body).send().unwrap();
    assert!(resp.status().is_success());
}

/// A devnet config without its `data_dir` line (the node harness sets one), plus `extra`.
fn node_config(devnet_config: &Path, extra: &str) -> String {
    let text = std::fs::read_to_string(devnet_config).unwrap();
    let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with("data_dir")).collect();
    format!("{}\n{extra}", kept.join("\n"))
}

fn wait<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wei(v: &Value) -> u128 {
    v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_u64().map(u128::from)).unwrap_or_else(|| panic!("{v}"))
}

#[test]
fn a_winning_ticket_taken_just_before_a_crash_is_redeemed_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let devnet_dir = dir.path().join("devnet");
    let port = lp_chain::anvil::free_port().unwrap().to_string();
    let out = Command::new(livepeer_bin())
        .args(["devnet", "--round-length", "100", "--port", &port, "--dir"])
        .arg(&devnet_dir)
        .output()
        .unwrap();
    let _guard = Devnet(devnet_dir.clone());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rpc = format!("http://127.0.0.1:{port}");

    // Tickets worth 0.0005 ETH with a face value of 0.001 ETH: half of them win.
    let mut orch = Node::start(
        "orchestrator",
        &node_config(
            &devnet_dir.join("orchestrator.toml"),
            "[orchestrator]\nservice_addr = \"127.0.0.1:0\"\nx264_preset = \"ultrafast\"\n\
             price_per_unit = \"500000000\"\nticket_ev = \"0.0005 eth\"\nmax_face_value = \"0.001 eth\"\n\
             [admin]\naddr = \"127.0.0.1:0\"\n",
        ),
    );
    let o_cfg = devnet_dir.join("orchestrator.toml");
    let uri = orch.orchestrator_uri();
    chain_ok(&o_cfg, &["register", "--reward-cut", "10", "--fee-share", "0", "--service-uri", &uri, "--bond", "500"]);
    let g_cfg = devnet_dir.join("gateway.toml");
    chain_ok(&g_cfg, &["fund", "--deposit", "1", "--reserve", "1"]);
    // Active from the next round, which the orchestrator node initializes.
    let round = chain_ok(&o_cfg, &["status"])["round"]["number"].as_u64().unwrap();
    mine(&rpc, 100);
    wait("the orchestrator active in the next round", 60, || {
        let s = chain_ok(&o_cfg, &["status"]);
        (s["round"]["number"].as_u64() > Some(round) && s["orchestrator"]["active"] == true).then_some(())
    });
    let fees_before = wei(&chain_ok(&o_cfg, &["status"])["delegator"]["pending_fees_wei"]);

    let gateway = Node::start(
        "gateway",
        &node_config(
            &g_cfg,
            &format!(
                "[gateway]\nhttp_addr = \"127.0.0.1:0\"\nprofiles = [\"P144p30fps16x9\"]\norchestrators = [{uri:?}]\n\
                 max_ticket_ev = \"0.01 eth\"\nmax_total_ev = \"0.1 eth\"\n[admin]\naddr = \"127.0.0.1:0\"\n"
            ),
        ),
    );
    let segments = common::make_segments(dir.path(), 8, 320, 180);
    let mut winning = 0;
    for (i, seg) in segments.iter().enumerate() {
        let (status, _, body) = common::push(&gateway.gateway(), "paid", &format!("{i}.ts"), seg.clone());
        assert_eq!(status, 200, "{}\n{}", String::from_utf8_lossy(&body), orch.log());
        winning = orch.status()["orchestrator"]["payments"][0]["winning_tickets"].as_u64().unwrap_or(0);
        if winning > 0 {
            break;
        }
    }
    assert!(winning > 0, "no winning ticket in {} segments (1 in 2 win)", segments.len());
    // The winner was committed before its segment was answered: kill now, as a crash would.
    orch.kill();

    let listed = chain_ok(&orch.config(), &["tickets"]);
    let tickets = listed["tickets"].as_array().unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(tickets.len() as u64, winning, "{listed}");
    assert!(tickets.iter().all(|t| t["status"] == "pending"), "{listed}");

    orch.restart();
    mine(&rpc, 41); // the parameters expire 40 blocks after they were issued
    let redeemed = wait("the winning tickets redeemed after the restart", 60, || {
        let listed = chain_ok(&orch.config(), &["tickets"]);
        let tickets = listed["tickets"].as_array()?.clone();
        tickets.iter().all(|t| t["status"] == "redeemed").then_some(tickets)
    });
    let paid: u128 = redeemed.iter().map(|t| wei(&t["paid_wei"])).sum();
    assert_eq!(paid, 1_000_000_000_000_000 * winning as u128, "each paid its face value: {redeemed:?}");
    let fees_after = wei(&chain_ok(&o_cfg, &["status"])["delegator"]["pending_fees_wei"]);
    assert_eq!(fees_after - fees_before, paid, "the orchestrator's fees rose by what was redeemed");
    drop(gateway);
}
