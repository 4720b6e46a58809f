//! The demo on a devnet chain (the default): anvil with our contracts on a free port, an
//! orchestrator (dev account 1) that registers itself, a gateway (dev account 2) that funds its
//! ticket deposit and reserve, the two as two nodes of this process (each with its own config,
//! keystore and database, as on two machines), the stream paid for with tickets, and the winning
//! tickets redeemed by the orchestrator once their parameters expired.
//!
//! Two shortcuts a real chain does not allow, both through anvil's API and said so in the
//! output: the chain is mined ahead to the next round (registration takes effect then), and
//! ahead past the ticket parameters' expiry (the redeemer reveals `recipientRand` only then).
//!
//! anvil is this process's child and is killed when the demo ends, also on an error, Ctrl-C or
//! SIGTERM.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::Provider as _;
use alloy::providers::ext::AnvilApi;
use alloy::rpc::types::Filter;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent as _;
use anyhow::{Context as _, Result, bail};
use lp_actors::gateway::OrchestratorTransport as _;
use lp_chain::anvil::{Anvil, AnvilOptions, DEV_KEYS};
use lp_chain::bindings::TicketBroker::WinningTicketRedeemed;
use lp_chain::client::{ChainClient, Token, format_amount};
use lp_chain::devnet::DevnetParams;
use lp_chain::pm::params::PARAMS_EXPIRY_BLOCKS;
use lp_chain::pm::{Price, TicketParams};
use lp_chain::tx::TxPolicy;
use lp_config::{AdminConfig, Config, EthConfig, GatewayConfig, Network, OrchestratorConfig, Wei};
use serde::Serialize;

use super::{
    DemoArgs, Summary, make_stream, prepare, prepare_out, print_serve_help, print_summary, push_stream, run_ai,
    with_models,
};
use crate::client::HttpTransport;
use crate::node::{self, Roles, RunningNode};

/// Blocks per round: long enough that tickets of a round are still redeemable after their
/// parameters expired ([`PARAMS_EXPIRY_BLOCKS`] after issue; tickets stay valid two rounds).
const ROUND_LENGTH: u64 = 100;
/// LPT the orchestrator bonds to itself.
const BOND_LPT: u64 = 1000;
/// The expected value of one ticket (`ticket_ev`): 0.001 ETH.
const TICKET_EV: u64 = 1_000_000_000_000_000;
/// A ticket wins one time in this many: `max_face_value` is this many ticket EVs.
const WIN_ODDS: u64 = 5;
/// The price makes a 2-second segment of the demo's ladder cost about this many ticket EVs.
const SEGMENT_EVS: u64 = 5;
/// The gateway's deposit and reserve: 1 ETH each.
const FUNDS_WEI: u64 = 1_000_000_000_000_000_000;
const PASSWORD: &str = "demo-password";
/// How long the nodes may take to read the chain, and the redeemer to redeem every winner.
const READY_DEADLINE: Duration = Duration::from_secs(30);
const REDEEM_DEADLINE: Duration = Duration::from_secs(60);

/// The demo was stopped by a signal (exit status 130).
#[derive(Debug, thiserror::Error)]
#[error("{0}; the network and the chain are stopped")]
pub struct Interrupted(&'static str);

/// The payments of the run, in `summary.json` (amounts in wei, as decimal strings).
#[derive(Debug, Serialize)]
pub struct Payments {
    pub network: &'static str,
    pub chain_rpc: String,
    pub orchestrator_address: String,
    pub gateway_address: String,
    /// The orchestrator's price, in wei per pixel.
    pub price_per_pixel_wei: String,
    pub ticket_face_value_wei: String,
    pub ticket_win_probability: f64,
    pub tickets_sent: u64,
    /// Of those, the tickets that paid for the AI requests (up front, each request's units at
    /// its model's price).
    pub ai_tickets_sent: u64,
    /// Tickets the orchestrator took as valid.
    pub tickets_received: u64,
    pub winning_tickets: u64,
    /// Winning tickets the TicketBroker paid (its `WinningTicketRedeemed` events).
    pub tickets_redeemed: u64,
    pub redeemed_wei: String,
    /// The orchestrator's pending fees (BondingManager `pendingFees`) before the stream and
    /// after the redemptions.
    pub orchestrator_fees_wei_before: String,
    pub orchestrator_fees_wei_after: String,
}

impl Payments {
    pub fn print(&self) {
        let eth = |wei: &str| format_amount(wei.parse().unwrap_or_default(), Token::Eth);
        println!(
            "  tickets         {} sent ({} for the AI requests), {} received, {} winning (1 in {:.0}, face value {}), \
             {} redeemed for {}",
            self.tickets_sent,
            self.ai_tickets_sent,
            self.tickets_received,
            self.winning_tickets,
            1.0 / self.ticket_win_probability,
            eth(&self.ticket_face_value_wei),
            self.tickets_redeemed,
            eth(&self.redeemed_wei)
        );
        println!(
            "  fees            the orchestrator's pending fees went from {} to {} (read from the chain)",
            eth(&self.orchestrator_fees_wei_before),
            eth(&self.orchestrator_fees_wei_after)
        );
        println!("  chain           {} (anvil, stopped with the demo)", self.chain_rpc);
    }
}

/// What the demo runs; torn down in [`Demo::stop`] whatever happened.
#[derive(Default)]
struct Demo {
    anvil: Option<Anvil>,
    /// The gateway first: it stops before the orchestrator it sends to.
    nodes: Vec<RunningNode>,
    gateway_url: String,
    gateway_rtmp: Option<std::net::SocketAddr>,
    admins: Vec<(&'static str, SocketAddr)>,
}

impl Demo {
    async fn stop(mut self) {
        for node in &self.nodes {
            node.stop().await;
        }
        // Kills anvil.
        self.anvil.take();
    }
}

pub async fn run(args: DemoArgs) -> Result<()> {
    let out = args.out.clone();
    let hls_dir = prepare_out(&out)?;
    // A fresh chain each run: keystores, databases (their tickets belong to the old chain) and
    // certificates of an earlier run go.
    let dir = out.join("devnet");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = fs::canonicalize(&dir)?;
    let segments = make_stream(&out, args.seconds)?;

    let mut demo = Demo::default();
    let outcome = tokio::select! {
        outcome = run_demo(&args, &segments, &hls_dir, &dir, &mut demo) => outcome,
        why = signalled() => Err(Interrupted(why).into()),
    };
    let outcome = match outcome {
        Ok(check) if args.serve => serve(&mut demo, &args).await.map(|()| check),
        other => other,
    };
    demo.stop().await;
    outcome?
}

/// SIGINT or SIGTERM.
async fn signalled() -> &'static str {
    use actix_web::rt::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = actix_web::rt::signal::ctrl_c().await;
        return "interrupted";
    };
    tokio::select! {
        _ = actix_web::rt::signal::ctrl_c() => "interrupted",
        _ = term.recv() => "terminated",
    }
}

/// `--serve`: the chain mines a block a second from now on, so that rounds pass (the
/// orchestrator initializes them) and the tickets of the user's streams expire and are redeemed.
async fn serve(demo: &mut Demo, args: &DemoArgs) -> Result<()> {
    let rpc = demo.anvil.as_ref().map(Anvil::url).unwrap_or_default();
    let provider = lp_chain::client::http_provider(&rpc)?;
    provider.anvil_set_interval_mining(1).await.context("switching anvil to a block a second")?;
    print_serve_help(&demo.gateway_url, demo.gateway_rtmp, super::ai::models(&args.models).is_some());
    for (role, admin) in &demo.admins {
        println!("The {role}: metrics http://{admin}/metrics, status http://{admin}/status");
    }
    println!("The chain: {rpc} (anvil, now mining a block a second; rounds of {ROUND_LENGTH} blocks)");
    node::wait_all(std::mem::take(&mut demo.nodes)).await
}

fn eth(wei: U256) -> String {
    format_amount(wei, Token::Eth)
}

fn client_policy() -> TxPolicy {
    // anvil mines each transaction at once: ask for its receipt often.
    TxPolicy { receipt_poll_interval: Duration::from_millis(100), ..Default::default() }
}

/// Everything up to the summary; answers whether every segment was transcoded and every winner
/// redeemed.
async fn run_demo(
    args: &DemoArgs,
    segments: &[PathBuf],
    hls_dir: &Path,
    dir: &Path,
    demo: &mut Demo,
) -> Result<Result<()>> {
    println!("starting a local chain (anvil) and deploying the Livepeer contracts (rounds of {ROUND_LENGTH} blocks)…");
    let anvil = Anvil::spawn(AnvilOptions::default())?;
    let rpc = anvil.url();
    demo.anvil = Some(anvil);
    let orchestrator_key: PrivateKeySigner = DEV_KEYS[1].parse()?;
    let gateway_key: PrivateKeySigner = DEV_KEYS[2].parse()?;
    let (orchestrator, gateway) = (orchestrator_key.address(), gateway_key.address());
    let bond = U256::from(BOND_LPT) * U256::from(10u64).pow(U256::from(18u64));
    let params = DevnetParams { round_length: ROUND_LENGTH, ..Default::default() };
    let deployment = lp_chain::devnet::deploy(&rpc, DEV_KEYS[0], &params, &[(orchestrator, bond)]).await?;
    let controller = deployment.contracts.controller;
    let connect = |key: PrivateKeySigner| ChainClient::connect(&rpc, controller, Some(key), client_policy());
    let deployer = connect(DEV_KEYS[0].parse()?).await?;
    let orchestrator_chain = connect(orchestrator_key).await?;
    let gateway_chain = connect(gateway_key.clone()).await?;
    println!("chain up at {rpc}, controller {controller}");

    // The orchestrator's address is fixed before it starts: it is registered on the chain.
    let service_addr = SocketAddr::from(([127, 0, 0, 1], lp_chain::anvil::free_port()?));
    let service_uri = format!("https://{service_addr}");
    orchestrator_chain.register(bond, 100_000, 500_000, &service_uri).await.context("registering the orchestrator")?;
    let round = deployer.current_round().await?;
    let head = deployer.block_number().await?;
    let ahead = (round.start_block + round.length).saturating_sub(head);
    let provider = lp_chain::client::http_provider(&rpc)?;
    provider.anvil_mine(Some(ahead), None).await.context("mining to the next round")?;
    deployer.initialize_round().await?;
    let status = orchestrator_chain.status(orchestrator).await?;
    if !status.active {
        bail!("the orchestrator is not active in round {} after registering", status.round.round);
    }
    println!(
        "orchestrator {orchestrator} registered (bonded {BOND_LPT} LPT, service URI {service_uri}); \
         mined {ahead} blocks with anvil_mine to round {}, where it is active (a demo shortcut: on a real chain the round passes with time)",
        status.round.round
    );
    let funds = U256::from(FUNDS_WEI);
    gateway_chain.fund(funds, funds).await.context("funding the gateway's deposit and reserve")?;
    println!("gateway {gateway} funded its ticket deposit ({}) and reserve ({})", eth(funds), eth(funds));
    let fees_before = status.pending_fees;
    let first_block = deployer.block_number().await?;

    // The two nodes, each with its keystore, as on two machines.
    let password_file = dir.join("password.txt");
    fs::write(&password_file, PASSWORD)?;
    let eth_config = |role: &str, key: &str| -> Result<EthConfig> {
        let keystore = dir.join("keystores").join(role);
        lp_chain::keystore::import(&keystore, &password_file, key)?;
        Ok(EthConfig {
            controller: Some(controller.to_string()),
            keystore: Some(keystore),
            block_poll_interval_secs: 1,
            // The orchestrator initializes the rounds when `--serve` lets them pass.
            initialize_round: role == "orchestrator",
            initialize_round_max_delay_secs: 2,
            ..EthConfig::new(rpc.as_str(), password_file.as_path())
        })
    };
    let gateway_cfg = Config {
        network: Network::Devnet,
        data_dir: dir.join("gateway"),
        gateway: Some(GatewayConfig {
            http_addr: "127.0.0.1:0".parse()?,
            rtmp_addr: "127.0.0.1:0".parse()?,
            profiles: args.profiles.clone(),
            orchestrators: vec![service_uri.clone()],
            max_ticket_ev: Wei::from(10 * TICKET_EV),
            max_total_ev: Wei::from(100 * TICKET_EV),
            ..Default::default()
        }),
        admin: AdminConfig { addr: "127.0.0.1:0".parse()? },
        eth: Some(eth_config("gateway", DEV_KEYS[2])?),
        ..Default::default()
    };
    let gateway_roles = Roles::from_config(&gateway_cfg);
    let gateway_prepared = prepare(&gateway_cfg, gateway_roles)?;
    let price_per_pixel = price_per_pixel(&gateway_prepared.profiles);
    // The AI models are priced too, and paid for with tickets like the stream.
    let mut section = with_models(
        OrchestratorConfig {
            service_addr,
            service_uri: Some(service_uri.clone()),
            price_per_unit: Wei::from(price_per_pixel),
            ticket_ev: Wei::from(TICKET_EV),
            max_face_value: Wei::from(WIN_ODDS * TICKET_EV),
            ..Default::default()
        },
        &args.models,
    );
    section.models = super::ai::priced(std::mem::take(&mut section.models), TICKET_EV);
    let orchestrator_cfg = Config {
        network: Network::Devnet,
        data_dir: dir.join("orchestrator"),
        orchestrator: Some(section),
        admin: AdminConfig { addr: "127.0.0.1:0".parse()? },
        eth: Some(eth_config("orchestrator", DEV_KEYS[1])?),
        ..Default::default()
    };
    let orchestrator_roles = Roles::from_config(&orchestrator_cfg);
    let prepared = prepare(&orchestrator_cfg, orchestrator_roles)?;
    let orchestrator_node = node::start(&orchestrator_cfg, orchestrator_roles, prepared).await?;
    demo.admins.push(("orchestrator", orchestrator_node.addrs.admin));
    demo.nodes.push(orchestrator_node);
    let gateway_node = node::start(&gateway_cfg, gateway_roles, gateway_prepared).await?;
    let gateway_url = format!("http://{}", gateway_node.addrs.gateway.context("gateway address")?);
    demo.admins.insert(0, ("gateway", gateway_node.addrs.admin));
    demo.gateway_rtmp = gateway_node.addrs.rtmp;
    demo.nodes.insert(0, gateway_node);
    demo.gateway_url = gateway_url.clone();
    println!(
        "network up: orchestrator {service_uri} (local transcoder, admin http://{}), gateway {gateway_url} (admin http://{})",
        demo.admins[1].1, demo.admins[0].1
    );

    wait_for_chain(&demo.admins).await?;
    let terms = ticket_terms(&service_uri, &gateway_key).await?;
    let win_probability = f64::from(terms.win_prob) / f64::from(U256::MAX);
    println!(
        "the orchestrator's terms: {price_per_pixel} wei per pixel (a segment of this ladder ≈ {SEGMENT_EVS} tickets); \
         tickets worth {} each, face value {}, win probability 1 in {:.0}",
        eth(terms.ev()),
        eth(terms.face_value),
        1.0 / win_probability
    );

    let pushed = push_stream(&gateway_url, segments, hls_dir).await?;
    let stream_tickets = metric(&crate::telemetry::metrics_handle().render(), lp_actors::payment::TICKETS_SENT);
    let ai = run_ai(args, &gateway_url, segments).await?;
    let metrics = crate::telemetry::metrics_handle().render();
    let tickets_sent = metric(&metrics, lp_actors::payment::TICKETS_SENT);
    let received = metric(&metrics, lp_actors::payment::TICKETS_RECV);
    let winning = metric(&metrics, lp_actors::payment::WINNING_TICKETS_RECV);
    println!("{tickets_sent} tickets sent, {received} received by the orchestrator, {winning} of them winning");

    // The redeemer takes a ticket up once its parameters expired.
    provider.anvil_mine(Some(PARAMS_EXPIRY_BLOCKS + 1), None).await.context("mining past the parameters' expiry")?;
    println!(
        "mined {} blocks with anvil_mine so that the ticket parameters expire (a demo shortcut); waiting for the orchestrator to redeem its winning tickets…",
        PARAMS_EXPIRY_BLOCKS + 1
    );
    let redeemed = wait_for_redemptions(&deployer, orchestrator, first_block, winning).await?;
    let fees_after = orchestrator_chain.status(orchestrator).await?.pending_fees;

    let payments = Payments {
        network: "devnet",
        chain_rpc: rpc.clone(),
        orchestrator_address: orchestrator.to_string(),
        gateway_address: gateway.to_string(),
        price_per_pixel_wei: price_per_pixel.to_string(),
        ticket_face_value_wei: terms.face_value.to_string(),
        ticket_win_probability: win_probability,
        tickets_sent,
        ai_tickets_sent: tickets_sent - stream_tickets,
        tickets_received: received,
        winning_tickets: winning,
        tickets_redeemed: redeemed.count,
        redeemed_wei: redeemed.value.to_string(),
        orchestrator_fees_wei_before: fees_before.to_string(),
        orchestrator_fees_wei_after: fees_after.to_string(),
    };
    let summary = Summary { ai, ..pushed.summary(segments.len(), service_uri, Some(payments)) };
    let check = check(&summary, winning, &redeemed);
    fs::write(args.out.join("summary.json"), serde_json::to_vec_pretty(&summary)?)?;
    print_summary(&summary, &args.out);
    Ok(check)
}

/// Every segment transcoded and every winner redeemed, or what was not.
fn check(summary: &Summary, winning: u64, redeemed: &Redeemed) -> Result<()> {
    summary.check()?;
    if redeemed.count < winning {
        bail!(
            "{} of {winning} winning tickets were not redeemed within {} s",
            winning - redeemed.count,
            REDEEM_DEADLINE.as_secs()
        );
    }
    Ok(())
}

/// The price, in wei per pixel, at which a 2-second segment of `profiles` costs about
/// [`SEGMENT_EVS`] tickets (the gateway's fee estimate, go-livepeer's).
fn price_per_pixel(profiles: &[lp_pipelines::Profile]) -> u64 {
    let renditions: Vec<(u32, u32, f64)> =
        profiles.iter().map(|p| (p.width, p.height, f64::from(p.fps) / f64::from(p.fps_den.max(1)))).collect();
    let pixels = lp_chain::pm::sender::fee_estimate(&renditions, 2000, Price { per_unit: 1, pixels_per_unit: 1 });
    let pixels = u64::try_from(pixels).unwrap_or(u64::MAX).max(1);
    (SEGMENT_EVS * TICKET_EV).div_ceil(pixels)
}

/// Wait until both nodes have read the chain's head and round (their `/status`).
async fn wait_for_chain(admins: &[(&'static str, SocketAddr)]) -> Result<()> {
    let client = crate::client::http_client(Duration::from_secs(5));
    let deadline = Instant::now() + READY_DEADLINE;
    for (role, admin) in admins {
        loop {
            let status: Option<serde_json::Value> = match client.get(format!("http://{admin}/status")).send().await {
                Ok(mut resp) => resp.json().await.ok(),
                Err(_) => None,
            };
            if status.is_some_and(|s| !s["chain"]["round"].is_null()) {
                break;
            }
            if Instant::now() > deadline {
                bail!("the {role} did not read the chain within {} s", READY_DEADLINE.as_secs());
            }
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// The ticket parameters the orchestrator offers the gateway, asked for as the gateway does
/// (a signed `GetOrchestrator`); retried until the orchestrator's chain view is complete.
async fn ticket_terms(uri: &str, gateway: &PrivateKeySigner) -> Result<TicketParams> {
    let transport = HttpTransport::new();
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        let (address, sig) = lp_actors::payment::sign_request(gateway);
        let req = lp_wire::OrchestratorRequest {
            address,
            sig,
            capabilities: Some(lp_wire::Capabilities::transcoding()),
            ignore_capacity_check: true,
        };
        let why = match transport.get_orchestrator(uri, req).await {
            Ok(info) => match info.ticket_params.as_ref() {
                Some(p) => return Ok(lp_actors::payment::params_from_wire(p, None)?),
                None => "no ticket parameters".to_string(),
            },
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            bail!("the orchestrator offered no ticket terms within {} s: {why}", READY_DEADLINE.as_secs());
        }
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The value of a counter in Prometheus text, summed over its labels (0 when absent). Both nodes
/// of this process share one recorder; each counter here is one role's.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with([' ', '{'])))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[derive(Debug, Default)]
struct Redeemed {
    count: u64,
    value: U256,
}

/// The TicketBroker's `WinningTicketRedeemed` events for `recipient` since `from_block`.
async fn redeemed(chain: &ChainClient, recipient: Address, from_block: u64) -> Result<Redeemed> {
    let filter = Filter::new()
        .address(chain.contracts().ticket_broker)
        .event_signature(WinningTicketRedeemed::SIGNATURE_HASH)
        .topic2(recipient.into_word())
        .from_block(from_block);
    let logs = chain.provider().get_logs(&filter).await.context("reading WinningTicketRedeemed events")?;
    let mut out = Redeemed::default();
    for log in logs {
        let event = log.log_decode::<WinningTicketRedeemed>().context("decoding WinningTicketRedeemed")?;
        out.count += 1;
        out.value += event.inner.data.faceValue;
    }
    Ok(out)
}

/// Wait, with progress, until `winning` tickets of `recipient` are redeemed on the chain, or
/// [`REDEEM_DEADLINE`]; answers what was.
async fn wait_for_redemptions(
    chain: &ChainClient,
    recipient: Address,
    from_block: u64,
    winning: u64,
) -> Result<Redeemed> {
    let started = Instant::now();
    let mut last = (u64::MAX, Instant::now());
    loop {
        let now = redeemed(chain, recipient, from_block).await?;
        if now.count >= winning || started.elapsed() > REDEEM_DEADLINE {
            println!("{} of {winning} winning tickets redeemed ({})", now.count, eth(now.value));
            return Ok(now);
        }
        if now.count != last.0 || last.1.elapsed() > Duration::from_secs(5) {
            println!(
                "  … {} of {winning} redeemed after {} s (the redeemer batches them on each new block)",
                now.count,
                started.elapsed().as_secs()
            );
            last = (now.count, Instant::now());
        }
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_summed_over_their_labels_and_other_names_are_ignored() {
        let text = "# TYPE livepeer_tickets_sent counter\nlivepeer_tickets_sent 12\n\
                    livepeer_tickets_sent_total 99\nlivepeer_winning_tickets_recv{a=\"1\"} 2\n\
                    livepeer_winning_tickets_recv{a=\"2\"} 3\n";
        assert_eq!(metric(text, "livepeer_tickets_sent"), 12);
        assert_eq!(metric(text, "livepeer_winning_tickets_recv"), 5);
        assert_eq!(metric(text, "livepeer_value_redeemed"), 0);
    }

    #[test]
    fn a_segment_of_the_ladder_costs_about_segment_evs_tickets() {
        let profiles = lp_pipelines::profiles_from_names(&[
            "P720p30fps16x9".to_string(),
            "P360p30fps16x9".to_string(),
            "P240p30fps16x9".to_string(),
        ])
        .unwrap();
        let price = Price { per_unit: price_per_pixel(&profiles), pixels_per_unit: 1 };
        let renditions: Vec<(u32, u32, f64)> = profiles.iter().map(|p| (p.width, p.height, f64::from(p.fps))).collect();
        let fee = lp_chain::pm::sender::fee_estimate(&renditions, 2000, price);
        let tickets = lp_chain::pm::sender::ticket_count(fee, 0, U256::from(TICKET_EV));
        assert!((SEGMENT_EVS as u32..=SEGMENT_EVS as u32 + 1).contains(&tickets), "{tickets} tickets");
    }
}
