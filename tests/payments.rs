//! Payments between real `livepeer` processes on a devnet (`livepeer devnet`: anvil with our
//! contracts): a gateway pays an orchestrator with tickets; the orchestrator SIGKILLed right
//! after it took a winning ticket redeems it after a restart; with the chain's RPC endpoint
//! down, transcoding goes on and the winners wait until it is back.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Devnet, Node, chain_ok, livepeer_bin, node_config};
use serde_json::{Value, json};

/// `anvil_mine`: the devnet's chain moves `blocks` ahead at once.
fn mine(rpc: &str, blocks: u64) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "anvil_mine", "params": [format!("{blocks:#x}")]});
    let resp = common::http().post(rpc).json(&body).send().unwrap();
    assert!(resp.status().is_success());
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

/// Face value of the tickets: 0.001 ETH, twice their EV, so half of them win.
const FACE_VALUE: u128 = 1_000_000_000_000_000;

/// A devnet, an active orchestrator and a funded gateway, both nodes reaching the chain at
/// `node_rpc(anvil's port)` (the devnet's own URL, or a proxy to it).
struct Paid {
    // Fields drop in order: the devnet is stopped while its directory (in `_tmp`) still exists.
    _devnet: Devnet,
    /// The devnet's chain, directly.
    rpc: String,
    o_cfg: PathBuf,
    orch: Node,
    gateway: Node,
    segments: Vec<Vec<u8>>,
    _tmp: tempfile::TempDir,
}

impl Paid {
    fn start(node_rpc: impl FnOnce(u16) -> String) -> Paid {
        let tmp = tempfile::tempdir().unwrap();
        let devnet_dir = tmp.path().join("devnet");
        let port = lp_chain::anvil::free_port().unwrap();
        let out = Command::new(livepeer_bin())
            .args(["devnet", "--round-length", "100", "--port", &port.to_string(), "--dir"])
            .arg(&devnet_dir)
            .output()
            .unwrap();
        let devnet = Devnet(devnet_dir.clone());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let rpc = format!("http://127.0.0.1:{port}");
        let node_url = format!("url = {:?}", node_rpc(port));
        let config = |file: &str, extra: &str| {
            node_config(&devnet_dir.join(file), extra).replace(&format!("url = {rpc:?}"), &node_url)
        };

        let orch = Node::start(
            "orchestrator",
            &config(
                "orchestrator.toml",
                "[orchestrator]\nservice_addr = \"127.0.0.1:0\"\nx264_preset = \"ultrafast\"\n\
                 price_per_unit = \"500000000\"\nticket_ev = \"0.0005 eth\"\nmax_face_value = \"0.001 eth\"\n\
                 [admin]\naddr = \"127.0.0.1:0\"\n",
            ),
        );
        let o_cfg = devnet_dir.join("orchestrator.toml");
        let uri = orch.orchestrator_uri();
        let register = ["register", "--reward-cut", "10", "--fee-share", "0", "--service-uri", &uri, "--bond", "500"];
        chain_ok(&o_cfg, &register);
        chain_ok(&devnet_dir.join("gateway.toml"), &["fund", "--deposit", "1", "--reserve", "1"]);
        // Active from the next round, which the orchestrator node initializes.
        let round = chain_ok(&o_cfg, &["status"])["round"]["number"].as_u64().unwrap();
        mine(&rpc, 100);
        wait("the orchestrator active in the next round", 60, || {
            let s = chain_ok(&o_cfg, &["status"]);
            (s["round"]["number"].as_u64() > Some(round) && s["orchestrator"]["active"] == true).then_some(())
        });
        // And the node itself there: it reads whether it is active at each new round, and
        // refuses tickets while it believes it is not (it polls the chain every second).
        let seen = format!("round round={} initialized=true", round + 1);
        wait("the orchestrator node in the next round", 60, || orch.log().contains(&seen).then_some(()));
        let gateway = Node::start(
            "gateway",
            &config(
                "gateway.toml",
                &format!(
                    "[gateway]\nhttp_addr = \"127.0.0.1:0\"\nrtmp_addr = \"127.0.0.1:0\"\nprofiles = [\"P144p30fps16x9\"]\norchestrators = [{uri:?}]\n\
                     max_ticket_ev = \"0.01 eth\"\nmax_total_ev = \"0.1 eth\"\n[admin]\naddr = \"127.0.0.1:0\"\n"
                ),
            ),
        );
        let segments = common::make_segments(tmp.path(), 12, 320, 180);
        Paid { _devnet: devnet, rpc, o_cfg, orch, gateway, segments, _tmp: tmp }
    }

    fn fees(&self) -> u128 {
        wei(&chain_ok(&self.o_cfg, &["status"])["delegator"]["pending_fees_wei"])
    }

    fn push(&self, seq: usize) {
        let (status, _, body) =
            common::push(&self.gateway.gateway(), "paid", &format!("{seq}.ts"), self.segments[seq].clone());
        assert_eq!(status, 200, "{}\n{}", String::from_utf8_lossy(&body), self.orch.log());
    }

    fn winning(&self) -> u64 {
        self.orch.status()["orchestrator"]["payments"][0]["winning_tickets"].as_u64().unwrap_or(0)
    }

    /// Push segments until the orchestrator took a winning ticket; the next segment's number.
    fn push_until_a_winner(&self) -> usize {
        for seq in 0..8 {
            self.push(seq);
            if self.winning() > 0 {
                return seq + 1;
            }
        }
        panic!("no winning ticket in 8 segments (1 in 2 tickets wins)");
    }

    /// The winning tickets in the orchestrator's database.
    fn tickets(&self) -> Vec<Value> {
        let listed = chain_ok(&self.orch.config(), &["tickets"]);
        listed["tickets"].as_array().unwrap_or_else(|| panic!("{listed}")).clone()
    }

    /// Wait until every winner is redeemed; what the broker paid for them.
    fn redeemed(&self) -> u128 {
        let redeemed = wait("the winning tickets redeemed", 60, || {
            let tickets = self.tickets();
            tickets.iter().all(|t| t["status"] == "redeemed").then_some(tickets)
        });
        let paid: u128 = redeemed.iter().map(|t| wei(&t["paid_wei"])).sum();
        assert_eq!(paid, FACE_VALUE * redeemed.len() as u128, "each paid its face value: {redeemed:?}");
        paid
    }
}

#[test]
fn a_winning_ticket_taken_just_before_a_crash_is_redeemed_after_the_restart() {
    let mut net = Paid::start(|port| format!("http://127.0.0.1:{port}"));
    let fees_before = net.fees();
    net.push_until_a_winner();
    let winning = net.winning();
    // The winner was committed before its segment was answered: kill now, as a crash would.
    net.orch.kill();
    let tickets = net.tickets();
    assert_eq!(tickets.len() as u64, winning, "{tickets:?}");
    assert!(tickets.iter().all(|t| t["status"] == "pending"), "{tickets:?}");

    net.orch.restart();
    mine(&net.rpc, 41); // the parameters expire 40 blocks after they were issued
    let paid = net.redeemed();
    assert_eq!(net.fees() - fees_before, paid, "the orchestrator's fees rose by what was redeemed");
}

#[test]
fn with_the_chain_unreachable_transcoding_goes_on_and_winners_wait_for_it() {
    let proxy = std::cell::OnceCell::new();
    let net = Paid::start(|port| proxy.get_or_init(|| lp_testkit::net::Proxy::start(port)).url());
    let proxy = proxy.get().unwrap();
    let fees_before = net.fees();
    let next = net.push_until_a_winner();

    proxy.take_down();
    for seq in next..next + 3 {
        net.push(seq); // paid and transcoded on what both nodes last read from the chain
    }
    mine(&net.rpc, 41);
    // The orchestrator tried the chain and could not reach it; nothing was redeemed.
    let polls_failed = || net.orch.log().matches("block poll failed").count();
    let before = polls_failed();
    wait("two more failed block polls", 30, || (polls_failed() >= before + 2).then_some(()));
    assert!(net.tickets().iter().all(|t| t["status"] == "pending"), "nothing redeemed while unreachable");

    proxy.bring_back();
    let paid = net.redeemed();
    assert_eq!(net.fees() - fees_before, paid, "the orchestrator's fees rose by what was redeemed");
}
