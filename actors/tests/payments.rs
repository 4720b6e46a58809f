//! Payments end to end on a real local chain (anvil) with our contracts: a gateway and an
//! orchestrator of this process (the wire messages through the in-process transport), real
//! transcoding, tickets signed by the gateway's account and checked by the orchestrator against
//! the TicketBroker's state.

mod common;

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use common::eventually;
use lp_actors::chain::{ChainActors, ChainSettings, ChainView, GetChainView, SenderWatcher};
use lp_actors::gateway::ticket_sender::{CreatePayment, NewTerms, PayUnits};
use lp_actors::gateway::{
    GatewayConfig, GatewayHandle, InProcess, InferAi, OrchestratorPool, PayError, SenderSettings, StreamSettings,
    TicketSender,
};
use lp_actors::handle::CallError;
use lp_actors::orchestrator::{Epoch, OrchestratorHandle, PaymentSettings};
use lp_actors::payment::{params_from_wire, params_to_wire, price_to_wire, sign_request};
use lp_actors::store::{RecipientSecret, Store, WinningTickets};
use lp_actors::supervision::{Policy, Watchdog};
use lp_chain::anvil::{Anvil, AnvilOptions, DEV_KEYS};
use lp_chain::client::{ChainClient, http_provider};
use lp_chain::db::TicketStatus;
use lp_chain::devnet::{DevnetParams, deploy};
use lp_chain::pm::recipient::MAX_SENDER_NONCES;
use lp_chain::pm::sender::{fee_estimate, sign_tickets, ticket_count};
use lp_chain::pm::{Price, Recipient, SenderLimits, TicketParams};
use lp_chain::tx::TxPolicy;
use lp_pipelines::ai::{ModelSet, ModelSpec, Runtime, RuntimeOptions};
use lp_wire::ai::Pipeline;
use lp_wire::{ErrorCode, OrchestratorInfo, OrchestratorRequest, Payment, SegData, TicketSenderParams};
use serde_bytes::ByteBuf;

const URI: &str = "https://orchestrator.test:8935";
const EV: u64 = 8_000_000_000;
const ETH: u128 = 1_000_000_000_000_000_000;

fn lpt(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18u64))
}

fn key(i: usize) -> PrivateKeySigner {
    DEV_KEYS[i].parse().unwrap()
}

async fn client(url: &str, controller: Address, i: usize) -> Arc<ChainClient> {
    Arc::new(ChainClient::connect(url, controller, Some(key(i)), TxPolicy::default()).await.unwrap())
}

/// What a test changes about the network.
struct Options {
    /// Wei per pixel.
    price: u64,
    /// The orchestrator's `max_face_value` (zero: none).
    max_face_value: U256,
    /// The gateway's `max_price_per_unit` (zero: no cap).
    max_price: u64,
    /// Register the orchestrator (active from the next round).
    register: bool,
    /// The orchestrator's `ticket_ev`.
    ev: U256,
    /// Run the redeemer.
    redeem: bool,
    /// Serve upscale model "x2" (a real ×2 model) at this price, wei per input pixel.
    ai_price: Option<i64>,
    /// Reach the chain as an Arbitrum endpoint answers it: blocks carry `l1BlockNumber`
    /// ([`l1_number`]).
    arbitrum: bool,
}

/// The L1 block number of block `number` through the Arbitrum-like endpoint: one L1 block per
/// two blocks (Arbitrum One makes about forty per L1 block), so below the chain's own numbers as
/// on Arbitrum One (an L2 number anywhere would show).
fn l1_number(number: u64) -> u64 {
    number / 2
}

/// What an Arbitrum endpoint adds to a block: `l1BlockNumber`.
fn arbitrum_block(result: &mut serde_json::Value) {
    let number = result.get("number").and_then(|n| n.as_str()).and_then(|n| u64::from_str_radix(&n[2..], 16).ok());
    if let (Some(number), Some(block)) = (number, result.as_object_mut()) {
        block.insert("l1BlockNumber".into(), format!("{:#x}", l1_number(number)).into());
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            price: 10_000,
            max_face_value: U256::ZERO,
            max_price: 0,
            register: true,
            ev: U256::from(EV),
            redeem: false,
            ai_price: None,
            arbitrum: false,
        }
    }
}

struct Net {
    _anvil: Anvil,
    _proxy: Option<lp_testkit::net::RewritingProxy>,
    _tmp: tempfile::TempDir,
    provider: DynProvider,
    url: String,
    controller: Address,
    watchdog: Watchdog,
    chain: ChainActors,
    orchestrator: OrchestratorHandle,
    o_senders: Addr<SenderWatcher>,
    transport: InProcess,
    store: Store,
}

impl Net {
    /// An orchestrator (dev account 1, registered and active) and a funded gateway account
    /// (dev account 2: 1 ETH deposit, 1 ETH reserve).
    async fn start(opts: &Options) -> Net {
        let anvil = Anvil::spawn(AnvilOptions::default()).unwrap();
        let proxy = opts.arbitrum.then(|| lp_testkit::net::RewritingProxy::start(anvil.port(), arbitrum_block));
        let url = proxy.as_ref().map_or_else(|| anvil.url(), |p| p.url());
        let params = DevnetParams { round_length: 100, ..Default::default() };
        let o_addr = key(1).address();
        let d = deploy(&url, DEV_KEYS[0], &params, &[(o_addr, lpt(1000))]).await.unwrap();
        let controller = d.contracts.controller;
        let provider = http_provider(&url).unwrap();
        let o_client = client(&url, controller, 1).await;
        if !o_client.current_round().await.unwrap().initialized {
            o_client.initialize_round().await.unwrap();
        }
        if opts.register {
            o_client.register(lpt(500), 0, 1_000_000, URI).await.unwrap();
        }
        // Active from the next round.
        let round = o_client.current_round().await.unwrap();
        let head = o_client.block_number().await.unwrap();
        provider.anvil_mine(Some(round.start_block + round.length - head), None).await.unwrap();
        o_client.initialize_round().await.unwrap();
        client(&url, controller, 2).await.fund(U256::from(ETH), U256::from(ETH)).await.unwrap();

        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open_in(tmp.path()).await.unwrap();
        let watchdog = Watchdog::new();
        let settings = ChainSettings {
            poll_interval: Duration::from_millis(100),
            initialize_round: None,
            reward: false,
            redeem: opts.redeem,
        };
        let chain = lp_actors::chain::start(o_client.clone(), store.clone(), settings, None, &watchdog);
        let o_watcher = SenderWatcher::new(o_client.clone()).recipient(o_addr);
        let o_senders = watchdog.start("sender_watcher", Policy::Permanent, o_watcher);
        chain.watch_senders(&o_senders);
        chain.redemptions_to(&o_senders);
        let secret = store.send(RecipientSecret).await.unwrap();
        let mut settings = lp_actors::orchestrator::OrchestratorSettings::offchain(URI, 10);
        settings.price_per_unit = opts.price as i64;
        settings.payments = Some(PaymentSettings {
            recipient: Arc::new(Recipient::new(o_addr, secret)),
            ev: opts.ev,
            max_face_value: opts.max_face_value,
            redeem_gas: lp_chain::networks::REDEEM_GAS_L1,
            store: store.clone(),
            chain: o_senders.clone(),
            epoch: Epoch::random(),
        });
        if let Some(price) = opts.ai_price {
            let cap = Pipeline::Upscale.capability();
            settings.capabilities.set(cap);
            let model = lp_wire::ModelConstraint { warm: true, capacity: 1, capacity_in_use: 0 };
            settings.capabilities.constraints.entry(cap).or_default().insert("x2".into(), model);
            let price = lp_wire::PriceInfo {
                price_per_unit: price,
                pixels_per_unit: 1,
                capability: cap,
                constraint: "x2".into(),
            };
            settings.capability_prices.push(price);
        }
        let orchestrator = OrchestratorHandle::start(settings, &watchdog);
        common::add_worker(orchestrator.transcoder_pool(), common::real(), 2).await;
        if opts.ai_price.is_some() {
            let rt = Runtime::start(&RuntimeOptions::default()).expect("ONNX Runtime from ORT_DYLIB_PATH (make setup)");
            let dir = std::path::PathBuf::from(std::env::var("LP_TEST_MODELS").expect("LP_TEST_MODELS"));
            let path = dir.join("upscale_x2_nearest.onnx");
            let spec = ModelSpec { pipeline: Pipeline::Upscale, model_id: "x2".into(), path, warm: true };
            let mut models = ModelSet::new(rt, vec![spec], 1 << 30);
            models.load_warm().unwrap();
            orchestrator.add_inference_worker("ai", models, &[1]).await.unwrap();
        }
        let transport = InProcess::default();
        transport.add(URI, orchestrator.orchestrator().clone());
        let net = Net {
            _anvil: anvil,
            _proxy: proxy,
            _tmp: tmp,
            provider,
            url,
            controller,
            watchdog,
            chain,
            orchestrator,
            o_senders,
            transport,
            store,
        };
        net.view(&net.o_senders).await;
        net
    }

    /// The chain view of `watcher`, once it has one.
    async fn view(&self, watcher: &Addr<SenderWatcher>) -> ChainView {
        eventually("a chain view", || async { watcher.send(GetChainView).await.unwrap() }).await
    }

    /// How dev account `i` pays, watching its own funds.
    async fn sender_settings(&self, i: usize) -> SenderSettings {
        let c = client(&self.url, self.controller, i).await;
        let senders = self.watchdog.start(
            "sender_watcher",
            Policy::Permanent,
            SenderWatcher::new(c.clone()).own(c.address().unwrap()),
        );
        self.chain.watch_senders(&senders);
        self.view(&senders).await;
        SenderSettings {
            signer: Arc::new(key(i)),
            limits: SenderLimits {
                max_ticket_ev: U256::from(ETH),
                max_total_ev: U256::from(ETH),
                deposit_multiplier: 1,
            },
            chain: senders,
            watchdog: self.watchdog.clone(),
            sent: Default::default(),
        }
    }

    /// A gateway paying from dev account `i`.
    async fn gateway(&self, i: usize, opts: &Options) -> GatewayHandle {
        let payments = self.sender_settings(i).await;
        self.gateway_paying(payments, opts)
    }

    /// A gateway paying as `payments` says.
    fn gateway_paying(&self, payments: SenderSettings, opts: &Options) -> GatewayHandle {
        self.gateway_through(payments, opts, Rc::new(self.transport.clone()))
    }

    /// A gateway paying as `payments` says, reaching the orchestrator through `transport`.
    fn gateway_through(
        &self,
        payments: SenderSettings,
        opts: &Options,
        transport: Rc<dyn lp_actors::gateway::OrchestratorTransport>,
    ) -> GatewayHandle {
        let stream = StreamSettings {
            max_attempts: 3,
            segment_queue: 4,
            idle_timeout: Duration::from_secs(60),
            hls_window: 6,
            hls_retention: std::time::Duration::from_secs(600),
            recorder: None,
            payments: Some(payments),
        };
        let config = GatewayConfig {
            profiles: vec![lp_pipelines::preset("P144p30fps16x9").unwrap()],
            stream,
            max_streams: 10,
            orchestrators: vec![URI.to_string()],
            max_price: Price { per_unit: opts.max_price, pixels_per_unit: 1 },
            ai_max_prices: Vec::new(),
        };
        GatewayHandle::start(config, transport, &self.watchdog)
    }

    /// Terms for dev account `i`, as a gateway asks for them.
    async fn terms(&self, i: usize) -> Result<OrchestratorInfo, CallError> {
        let (address, sig) = sign_request(&key(i));
        self.orchestrator.info(OrchestratorRequest { address, sig, ..Default::default() }).await
    }
}

/// A segment with `tickets` signed by dev account `signer` on `params` from nonce `first`.
fn paid_segment(
    info: &OrchestratorInfo,
    params: &TicketParams,
    signer: usize,
    first: u32,
    tickets: u32,
) -> (SegData, Payment) {
    let seg = common::seg_data(info.auth_token.clone(), &common::segment());
    let signed = sign_tickets(&key(signer), params, first, tickets).unwrap();
    let payment = Payment {
        ticket_params: Some(params_to_wire(params)),
        sender: ByteBuf::from(key(signer).address().to_vec()),
        expiration_params: None,
        ticket_sender_params: signed
            .into_iter()
            .map(|(sender_nonce, sig)| TicketSenderParams { sender_nonce, sig: ByteBuf::from(sig.to_vec()) })
            .collect(),
        expected_price: info.price_info.clone(),
    };
    (seg, payment)
}

fn params_of(info: &OrchestratorInfo) -> TicketParams {
    params_from_wire(info.ticket_params.as_ref().expect("ticket params"), None).unwrap()
}

/// Submit and answer the refusal's code and message (or `None` when the segment was taken).
async fn refusal(net: &Net, seg: SegData, payment: Payment) -> Option<(ErrorCode, String)> {
    match net.orchestrator.submit(seg, payment, common::segment()).await {
        Ok(_) => None,
        Err(CallError::Refused(f)) => Some((f.code, f.message)),
        Err(e) => panic!("{e}"),
    }
}

#[actix::test]
async fn segments_are_paid_and_the_orchestrator_credits_exactly_what_the_gateway_sent() {
    let opts = Options::default();
    let net = Net::start(&opts).await;
    let gateway = net.gateway(2, &opts).await;
    gateway.push("paid".into(), None, common::incoming(0, common::segment())).await.unwrap();
    // The first segment pays go-livepeer's fee estimate of its renditions (one second of 144p at
    // 30 fps, here 1.4 tickets' worth) in whole tickets.
    let fee = fee_estimate(&[(256, 144, 30.0)], 1000, Price { per_unit: opts.price, pixels_per_unit: 1 });
    let first = gateway.report().await.unwrap().payments.unwrap().tickets;
    assert_eq!(first, u64::from(ticket_count(fee, 0, U256::from(EV))), "fee {fee} wei");
    for seq in 1..4 {
        gateway.push("paid".into(), None, common::incoming(seq, common::segment())).await.unwrap();
    }
    let sent = gateway.report().await.unwrap().payments.expect("the gateway reports its payments");
    assert!(sent.tickets >= 4, "at least one ticket per segment: {sent:?}");
    let received = net.orchestrator.payments().await.unwrap();
    assert_eq!(received.len(), 1, "{received:?}");
    let r = &received[0];
    assert_eq!(r.sender, key(2).address());
    assert_eq!((r.tickets, r.ev_received), (sent.tickets, sent.ev_sent), "credited EV = sent EV");
    assert_eq!(r.sessions.len(), 1);
    let s = &r.sessions[0];
    assert_eq!(s.price_per_unit, opts.price, "the session's price is the orchestrator's");
    assert!(s.balance >= 0 && s.balance < i128::from(EV) * 2, "the balance covers what was done, no more: {s:?}");
}

/// The fee estimate counts a rendition's frames at its own frame rate, a fraction included
/// (30000/1001).
#[actix::test]
async fn the_first_payment_counts_frames_at_a_fractional_frame_rate() {
    let opts = Options::default();
    let net = Net::start(&opts).await;
    let gateway = net.gateway(2, &opts).await;
    let profile =
        lp_pipelines::Profile { fps: 30_000, fps_den: 1001, ..lp_pipelines::preset("P144p30fps16x9").unwrap() };
    let segment = common::incoming(0, common::segment());
    gateway.push("ntsc".into(), Some(Arc::new(vec![profile])), segment).await.unwrap();
    let fee = fee_estimate(&[(256, 144, 30_000.0 / 1001.0)], 1000, Price { per_unit: opts.price, pixels_per_unit: 1 });
    let first = gateway.report().await.unwrap().payments.unwrap().tickets;
    assert_eq!(first, u64::from(ticket_count(fee, 0, U256::from(EV))), "fee {fee} wei");
}

#[actix::test]
async fn two_streams_of_one_gateway_keep_their_own_balances() {
    let opts = Options::default();
    let net = Net::start(&opts).await;
    let gateway = net.gateway(2, &opts).await;
    let push = |stream: &'static str, seq| {
        let gateway = gateway.clone();
        async move { gateway.push(stream.into(), None, common::incoming(seq, common::segment())).await }
    };
    for seq in 0..3 {
        let (a, b) = futures::join!(push("a", seq), push("b", seq));
        a.unwrap();
        b.unwrap();
    }
    let received = net.orchestrator.payments().await.unwrap();
    let sessions = &received[0].sessions;
    assert_eq!(sessions.len(), 2, "one balance per stream's session: {sessions:?}");
    assert!(sessions.iter().all(|s| s.balance >= 0), "{sessions:?}");
    // A stream that ends: its orchestrator session ends, and its balance is forgotten.
    assert!(gateway.end("a".into(), "test").await);
    eventually("the ended stream's balance forgotten", || async {
        (net.orchestrator.payments().await.unwrap()[0].sessions.len() == 1).then_some(())
    })
    .await;
}

#[actix::test]
async fn each_bad_ticket_is_refused_with_its_own_error_and_no_credit() {
    let opts = Options::default();
    let net = Net::start(&opts).await;
    let info = net.terms(2).await.unwrap();
    let params = params_of(&info);
    assert_eq!(params.recipient, key(1).address());
    assert!(params.face_value > U256::from(EV) && params.ev() >= U256::from(EV));

    // A forged signature: signed by another account than the payment's sender.
    let (seg, mut payment) = paid_segment(&info, &params, 2, 1, 2);
    let (_, forged) = paid_segment(&info, &params, 3, 1, 2);
    payment.ticket_sender_params = forged.ticket_sender_params;
    let (code, msg) = refusal(&net, seg, payment).await.expect("refused");
    assert_eq!(code, ErrorCode::PaymentRefused);
    assert!(msg.contains("invalid ticket signature"), "{msg}");

    // A wrong recipient.
    let mut other = params.clone();
    other.recipient = Address::repeat_byte(0x44);
    let (seg, payment) = paid_segment(&info, &other, 2, 1, 1);
    let msg = refusal(&net, seg, payment).await.expect("refused").1;
    assert!(msg.contains("is not this orchestrator"), "{msg}");

    // A recipientRandHash this orchestrator did not issue.
    let mut other = params.clone();
    other.recipient_rand_hash = B256::repeat_byte(9);
    let (seg, payment) = paid_segment(&info, &other, 2, 1, 1);
    let msg = refusal(&net, seg, payment).await.expect("refused").1;
    assert!(msg.contains("invalid recipientRand"), "{msg}");

    // Another price than the orchestrator's, even a free one with no ticket at all.
    for (per_unit, tickets) in [(1, 1), (0, 0)] {
        let (seg, mut payment) = paid_segment(&info, &params, 2, 1, tickets);
        payment.expected_price = Some(price_to_wire(Price { per_unit, pixels_per_unit: 1 }));
        let msg = refusal(&net, seg, payment).await.expect("refused").1;
        assert!(msg.contains("the payment expects"), "{msg}");
    }

    let r = net.orchestrator.payments().await.unwrap().remove(0);
    assert_eq!(r.tickets, 0, "nothing was credited");
    assert!(r.sessions.is_empty(), "a refused payment opens no balance: {r:?}");

    // A valid payment is taken; the same nonces again are a replay.
    let (seg, payment) = paid_segment(&info, &params, 2, 1, 3);
    assert_eq!(refusal(&net, seg.clone(), payment.clone()).await, None);
    let msg = refusal(&net, seg, payment).await.expect("refused").1;
    assert!(msg.contains("already used"), "{msg}");
    assert_eq!(net.orchestrator.payments().await.unwrap()[0].tickets, 3, "only the first payment counts");

    // Parameters past their expiration block.
    net.provider.anvil_mine(Some(41), None).await.unwrap();
    let block = net.provider.get_block_number().await.unwrap();
    eventually("the orchestrator sees the new head", || async {
        (net.o_senders.send(GetChainView).await.unwrap()?.block >= block).then_some(())
    })
    .await;
    let (seg, payment) = paid_segment(&info, &params, 2, 10, 1);
    let msg = refusal(&net, seg, payment).await.expect("refused").1;
    assert!(msg.contains("TicketParams expired"), "{msg}");
    assert_eq!(net.orchestrator.payments().await.unwrap()[0].tickets, 3);
}

#[actix::test]
async fn an_unfunded_sender_gets_no_parameters_and_its_segments_are_refused() {
    let opts = Options::default();
    let net = Net::start(&opts).await;
    // Dev account 3 has no deposit or reserve.
    let err = net.terms(3).await.unwrap_err();
    assert!(err.to_string().contains("insufficient sender reserve"), "{err}");
    // Without a payment, a segment of a priced orchestrator is refused before any work.
    let info = net.terms(2).await.unwrap();
    let (seg, _) = paid_segment(&info, &params_of(&info), 2, 1, 1);
    let (code, msg) = refusal(&net, seg.clone(), Payment::default()).await.expect("refused");
    assert_eq!(code, ErrorCode::InsufficientBalance, "{msg}");
    // A payment without tickets leaves a new session's balance at 0: refused too.
    let (_, mut empty) = paid_segment(&info, &params_of(&info), 2, 1, 1);
    empty.ticket_sender_params.clear();
    let (code, msg) = refusal(&net, seg.clone(), empty.clone()).await.expect("refused");
    assert_eq!(code, ErrorCode::InsufficientBalance, "{msg}");
    assert!(msg.contains("insufficient balance"), "{msg}");
    // Once credited, the session's balance carries a segment that brings no ticket.
    let (_, paid) = paid_segment(&info, &params_of(&info), 2, 1, 3);
    assert_eq!(refusal(&net, seg.clone(), paid).await, None);
    assert_eq!(refusal(&net, seg, empty).await, None, "3 EV of credit cover a 1-second 144p segment");
}

#[actix::test]
async fn an_orchestrator_priced_above_the_gateways_cap_is_not_used() {
    let opts = Options { max_price: 5_000, ..Default::default() };
    let net = Net::start(&opts).await;
    let gateway = net.gateway(2, &opts).await;
    let err = gateway.push("capped".into(), None, common::incoming(0, common::segment())).await.unwrap_err();
    let CallError::Refused(f) = err else { panic!("{err}") };
    assert_eq!(f.code, ErrorCode::NoOrchestrators, "{f}");
    assert!(f.message.contains("above max_price_per_unit"), "{f}");
    let report = gateway.report().await.unwrap();
    assert_eq!(report.orchestrators.priced_out.len(), 1, "/status names it");
    assert_eq!(report.orchestrators.priced_out[0].price_per_unit, opts.price);
    assert!(net.orchestrator.payments().await.unwrap().iter().all(|r| r.tickets == 0), "nothing was paid");
}

#[actix::test]
async fn expired_parameters_are_refreshed_without_failing_a_segment() {
    let opts = Options::default();
    let net = Net::start(&opts).await;
    let gateway = net.gateway(2, &opts).await;
    gateway.push("s".into(), None, common::incoming(0, common::segment())).await.unwrap();
    // The parameters of the last answer expire 40 blocks after it.
    net.provider.anvil_mine(Some(41), None).await.unwrap();
    let block = net.provider.get_block_number().await.unwrap();
    eventually("the orchestrator sees the new head", || async {
        (net.o_senders.send(GetChainView).await.unwrap()?.block >= block).then_some(())
    })
    .await;
    let done = gateway.push("s".into(), None, common::incoming(1, common::segment())).await.unwrap();
    assert_eq!(done.attempts, 1, "paid on the first attempt, with refreshed parameters");
    let r = &net.orchestrator.payments().await.unwrap()[0];
    assert_eq!(r.sessions.len(), 1, "the same session: {r:?}");
    assert!(r.tickets >= 2);
}

/// The orchestrator refuses a payment the gateway thought good (its view of the chain is ahead:
/// the parameters expired there): the attempt is lost, and the stream starts the session over
/// with new terms and a new balance, paid in full, on the next attempt.
#[actix::test]
async fn a_refused_payment_starts_the_session_over_with_new_terms() {
    use lp_actors::chain::PollNow;
    let opts = Options::default();
    let net = Net::start(&opts).await;
    // The gateway's own chain actors, which see a new block only when told to poll.
    let c = client(&net.url, net.controller, 2).await;
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_in(tmp.path()).await.unwrap();
    let settings = ChainSettings {
        poll_interval: Duration::from_secs(3600),
        initialize_round: None,
        reward: false,
        redeem: false,
    };
    let chain = lp_actors::chain::start(c.clone(), store, settings, None, &net.watchdog);
    let senders =
        net.watchdog.start("sender_watcher", Policy::Permanent, SenderWatcher::new(c.clone()).own(key(2).address()));
    chain.watch_senders(&senders);
    chain.blocks.send(PollNow).await.unwrap().unwrap();
    let behind = net.view(&senders).await.block;
    let mut payments = net.sender_settings(2).await;
    payments.chain = senders.clone();
    let gateway = net.gateway_paying(payments, &opts);
    let first = gateway.push("s".into(), None, common::incoming(0, common::segment())).await.unwrap();
    assert_eq!(first.attempts, 1);

    net.provider.anvil_mine(Some(41), None).await.unwrap();
    let block = net.provider.get_block_number().await.unwrap();
    eventually("the orchestrator sees the new head", || async {
        (net.o_senders.send(GetChainView).await.unwrap()?.block >= block).then_some(())
    })
    .await;
    assert_eq!(net.view(&senders).await.block, behind, "the gateway still sees the old head");
    let done = gateway.push("s".into(), None, common::incoming(1, common::segment())).await.unwrap();
    assert_eq!(done.attempts, 2, "the refused attempt, then one with new terms");
    let r = &net.orchestrator.payments().await.unwrap()[0];
    assert_eq!(r.sessions.len(), 2, "a second session, with its own balance: {r:?}");
    assert!(r.sessions.iter().all(|s| s.balance >= 0), "each paid for what it was given: {r:?}");
    let sent = gateway.report().await.unwrap().payments.unwrap();
    assert!(sent.tickets > r.tickets, "the refused tickets were sent but not credited: {sent:?} {r:?}");
}

/// A segment the orchestrator refuses before it looks at the payment (its bytes arrived
/// corrupted: `HashMismatch`) leaves no credit the gateway believes in: the retry pays in full,
/// and the orchestrator's balance never goes below zero.
#[actix::test]
async fn a_refused_segments_payment_is_not_counted_as_credit() {
    let opts = Options::default();
    let net = Net::start(&opts).await;
    let transport = common::Loopback { inner: net.transport.clone(), ..Default::default() };
    let gateway = net.gateway_through(net.sender_settings(2).await, &opts, Rc::new(transport.clone()));
    for seq in 0..3 {
        transport.corrupt.set(u32::from(seq == 1));
        let done = gateway.push("c".into(), None, common::incoming(seq, common::segment())).await.unwrap();
        assert_eq!(done.attempts, 1 + u32::from(seq == 1), "segment {seq}");
        let r = &net.orchestrator.payments().await.unwrap()[0];
        assert!(r.sessions.iter().all(|s| s.balance >= 0), "after segment {seq}: {r:?}");
    }
}

#[actix::test]
async fn a_price_rise_above_twice_the_first_drops_the_session() {
    let opts = Options::default();
    let net = Net::start(&opts).await;
    let info = net.terms(2).await.unwrap();
    let sender = TicketSender::new(net.sender_settings(2).await, &info).expect("a priced session").start();
    // One second of 144p.
    let fee = CreatePayment { renditions: vec![(256, 144, 30.0)], duration_ms: 1000 };
    assert!(sender.send(fee.clone()).await.unwrap().is_ok());
    let mut doubled = info.clone();
    doubled.price_info = Some(price_to_wire(Price { per_unit: opts.price * 2, pixels_per_unit: 1 }));
    sender.send(NewTerms(doubled)).await.unwrap();
    assert!(sender.send(fee.clone()).await.unwrap().is_ok(), "twice the price is still taken");
    let mut tripled = info;
    tripled.price_info = Some(price_to_wire(Price { per_unit: opts.price * 2 + 1, pixels_per_unit: 1 }));
    sender.send(NewTerms(tripled)).await.unwrap();
    let err = sender.send(fee).await.unwrap().unwrap_err();
    assert!(matches!(err, PayError::PriceRose { .. }), "{err}");
}

/// A set of parameters takes at most `MAX_SENDER_NONCES` tickets at the orchestrator: the
/// gateway sends up to that many on one set, then asks for new terms rather than send tickets
/// the orchestrator would refuse; new parameters start again from nonce 1.
#[actix::test]
async fn a_sender_asks_for_new_terms_before_its_nonces_pass_the_receivers_cap() {
    let opts = Options::default();
    let net = Net::start(&opts).await;
    let info = net.terms(2).await.unwrap();
    let ev = params_of(&info).ev();
    let sender = TicketSender::new(net.sender_settings(2).await, &info).expect("a priced session").start();
    // Units (pixels at the session's price) worth `tickets` tickets.
    let worth = |tickets: usize| PayUnits((ev * U256::from(tickets) / U256::from(opts.price)).to());
    let (payment, _) = sender.send(worth(MAX_SENDER_NONCES)).await.unwrap().expect("the whole cap on one set");
    assert_eq!(payment.ticket_sender_params.len(), MAX_SENDER_NONCES);
    let err = sender.send(worth(1)).await.unwrap().unwrap_err();
    assert!(matches!(err, PayError::Refresh(_)), "{err}");
    sender.send(NewTerms(net.terms(2).await.unwrap())).await.unwrap();
    let (payment, _) = sender.send(worth(1)).await.unwrap().expect("paid on the new parameters");
    let nonces: Vec<u32> = payment.ticket_sender_params.iter().map(|t| t.sender_nonce).collect();
    assert_eq!(nonces, [1]);
}

/// A sender pays what its terms ask for its own work: nothing on free terms (no price, or
/// tickets worth nothing), and for an AI model that model's own price among the several listed
/// for its pipeline.
#[actix::test]
async fn a_sender_pays_its_own_models_price_and_nothing_on_free_terms() {
    let net = Net::start(&Options::default()).await;
    let info = net.terms(2).await.unwrap();
    let settings = net.sender_settings(2).await;
    let mut free = info.clone();
    free.price_info = Some(price_to_wire(Price::ZERO));
    assert!(TicketSender::new(settings.clone(), &free).is_none(), "a free price: nothing to pay");
    let mut worthless = info.clone();
    let mut params = params_of(&info);
    params.win_prob = U256::ZERO;
    worthless.ticket_params = Some(params_to_wire(&params));
    assert!(TicketSender::new(settings.clone(), &worthless).is_none(), "tickets that never win: nothing to pay");

    let cap = Pipeline::Upscale.capability();
    let price = |model: &str, price_per_unit| lp_wire::PriceInfo {
        price_per_unit,
        pixels_per_unit: 1,
        capability: cap,
        constraint: model.into(),
    };
    let mut ai = info;
    ai.capabilities_prices = vec![price("a", 1_000), price("b", 2_000)];
    let sender = TicketSender::for_model(settings, &ai, cap, "b").expect("a priced model").start();
    let (payment, _) = sender.send(PayUnits(1_000)).await.unwrap().unwrap();
    assert_eq!(payment.expected_price.map(|p| p.price_per_unit), Some(2_000), "model b's price, not a's");
}

/// The payment settings show in a log with their accounts, never with the keys behind them.
#[actix::test]
async fn payment_settings_show_their_accounts_never_their_keys() {
    let net = Net::start(&Options::default()).await;
    let gateway = format!("{:?}", net.sender_settings(2).await);
    assert!(gateway.contains(&format!("{:?}", key(2).address())), "{gateway}");
    assert!(!gateway.contains(DEV_KEYS[2].trim_start_matches("0x")), "{gateway}");
    let secret = net.store.send(RecipientSecret).await.unwrap();
    let orchestrator = format!(
        "{:?}",
        PaymentSettings {
            recipient: Arc::new(Recipient::new(key(1).address(), secret)),
            ev: U256::from(EV),
            max_face_value: U256::ZERO,
            redeem_gas: 1,
            store: net.store.clone(),
            chain: net.o_senders.clone(),
            epoch: Epoch::random(),
        }
    );
    assert!(orchestrator.contains(&format!("{:?}", key(1).address())), "{orchestrator}");
    assert!(!orchestrator.contains(&alloy::hex::encode(secret)), "{orchestrator}");
}

#[actix::test]
async fn the_ticket_secret_survives_a_restart_so_issued_parameters_stay_valid() {
    let opts = Options::default();
    let net = Net::start(&opts).await;
    let info = net.terms(2).await.unwrap();
    let params = params_of(&info);
    let path = net.store.path().to_path_buf();
    let before = net.store.send(RecipientSecret).await.unwrap();
    let reopened = Store::open(&path).await.unwrap();
    let after = reopened.send(RecipientSecret).await.unwrap();
    assert_eq!(before, after, "the secret is read back, not made again");
    let price = lp_actors::payment::price_from_wire(info.price_info.as_ref().unwrap()).unwrap();
    let (nonce, sig) = sign_tickets(&key(2), &params, 1, 1).unwrap().remove(0);
    let restarted = Recipient::new(key(1).address(), after);
    assert!(restarted.check(key(2).address(), &params, price, nonce, &sig).is_ok(), "valid after the restart");
    let fresh = Recipient::new(key(1).address(), rand::random());
    assert!(fresh.check(key(2).address(), &params, price, nonce, &sig).is_err(), "a new secret would refuse it");
}

/// The sender watchers follow TicketBroker events (no polling): an unlock stops the gateway from
/// paying at once, and the orchestrator refuses its tickets once the unlock ends by next round.
#[actix::test]
async fn an_unlocking_sender_is_seen_from_the_chains_events_on_both_sides() {
    let opts = Options::default();
    let net = Net::start(&opts).await;
    let gateway = net.gateway(2, &opts).await;
    gateway.push("s".into(), None, common::incoming(0, common::segment())).await.unwrap();
    let info = net.terms(2).await.unwrap();
    let g_client = client(&net.url, net.controller, 2).await;
    g_client.unlock().await.unwrap();

    let err = eventually("the gateway refuses to pay while unlocking", || async {
        match gateway.push("s".into(), None, common::incoming(1, common::segment())).await {
            Err(CallError::Refused(f)) => Some(f),
            Ok(_) => None,
            Err(e) => panic!("{e}"),
        }
    })
    .await;
    assert!(err.message.contains("unlocking"), "{err}");

    // The next round: the unlock ends by the round after it, so its tickets are worthless.
    let o_client = client(&net.url, net.controller, 1).await;
    let round = o_client.current_round().await.unwrap();
    let head = o_client.block_number().await.unwrap();
    net.provider.anvil_mine(Some(round.start_block + round.length - head), None).await.unwrap();
    o_client.initialize_round().await.unwrap();
    let refused = eventually("the orchestrator refuses the unlocking sender", || async {
        let (seg, payment) = paid_segment(&info, &params_of(&info), 2, 100, 1);
        refusal(&net, seg, payment).await.filter(|(_, m)| m.contains("unlock"))
    })
    .await;
    assert_eq!(refused.0, ErrorCode::PaymentRefused, "{refused:?}");
}

#[actix::test]
async fn an_orchestrator_that_is_not_active_takes_no_tickets() {
    let net = Net::start(&Options { register: false, ..Default::default() }).await;
    let err = eventually("the orchestrator knows it is inactive", || async {
        net.terms(2).await.err().filter(|e| e.to_string().contains("not active"))
    })
    .await;
    assert!(err.to_string().contains("could not be redeemed"), "{err}");
    // Tickets on parameters it would have issued (made here with its own secret) are refused.
    let info = net.orchestrator.info(OrchestratorRequest::default()).await.unwrap();
    let secret = net.store.send(RecipientSecret).await.unwrap();
    let view = net.view(&net.o_senders).await;
    let terms = lp_chain::pm::Terms {
        ev: U256::from(EV),
        gas_price: U256::from(view.gas_price),
        redeem_gas: lp_chain::networks::REDEEM_GAS_L1,
        max_float: U256::from(ETH),
        max_face_value: U256::ZERO,
        block: view.block,
        round: view.ticket_round,
        round_block_hash: view.round_block_hash,
    };
    let price = Price { per_unit: 10_000, pixels_per_unit: 1 };
    let mut priced = info.clone();
    priced.price_info = Some(price_to_wire(price));
    let params = Recipient::new(key(1).address(), secret).issue(key(2).address(), &terms, price, B256::ZERO).unwrap();
    let (seg, payment) = paid_segment(&priced, &params, 2, 1, 2);
    let msg = refusal(&net, seg, payment).await.expect("refused").1;
    assert!(msg.contains("not active"), "{msg}");
}

/// Winning tickets are in the database when their segment is answered, and redeemed on-chain
/// once their parameters expire: the orchestrator's fees rise by what the broker paid.
#[actix::test]
async fn winning_tickets_are_stored_at_once_and_redeemed_after_their_parameters_expire() {
    winners_stored_then_redeemed_after_expiry(false).await;
}

/// On Arbitrum contracts see the L1 block number as `block.number`, and go-livepeer's ticket
/// parameters expire 40 L1 blocks after they are issued: so do ours, from the head's
/// `l1BlockNumber` (counted in the chain's own blocks they would expire at once for a
/// go-livepeer gateway, and never be redeemed here).
#[actix::test]
async fn on_arbitrum_ticket_parameters_expire_by_l1_blocks() {
    winners_stored_then_redeemed_after_expiry(true).await;
}

async fn winners_stored_then_redeemed_after_expiry(arbitrum: bool) {
    // Tickets worth 0.0005 ETH, face value 0.001 ETH: half of them win, and each is worth more
    // than its redemption's gas.
    let ev = U256::from(500_000_000_000_000u64);
    let opts = Options {
        ev,
        max_face_value: ev * U256::from(2),
        price: 500_000_000,
        redeem: true,
        arbitrum,
        ..Default::default()
    };
    let net = Net::start(&opts).await;
    let o_client = client(&net.url, net.controller, 1).await;
    let fees_before = o_client.status(key(1).address()).await.unwrap().pending_fees;
    let head = net.provider.get_block_number().await.unwrap();
    let block = if arbitrum { l1_number(head) } else { head };
    eventually("the chain view at the head", || async {
        (net.o_senders.send(GetChainView).await.unwrap()?.block == block).then_some(())
    })
    .await;
    assert_eq!(params_of(&net.terms(2).await.unwrap()).expiration_block, block + 40);
    let gateway = net.gateway(2, &opts).await;
    // About 12 tickets at 1/2: all losing has a chance of 1 in 4000.
    for seq in 0..8 {
        gateway.push("s".into(), None, common::incoming(seq, common::segment())).await.unwrap();
    }
    let received = net.orchestrator.payments().await.unwrap().remove(0);
    assert!(received.winning_tickets >= 1, "{received:?}");
    let stored = net.store.send(WinningTickets(None)).await.unwrap();
    assert_eq!(stored.len() as u64, received.winning_tickets, "every winner is stored before its answer");
    assert!(stored.iter().all(|t| t.status == TicketStatus::Pending));

    // 41 blocks of the chain; through Arbitrum, 41 L1 blocks.
    net.provider.anvil_mine(Some(if arbitrum { 82 } else { 41 }), None).await.unwrap();
    let redeemed = eventually("every winner redeemed", || async {
        let rows = net.store.send(WinningTickets(Some(TicketStatus::Redeemed))).await.unwrap();
        (rows.len() == stored.len()).then_some(rows)
    })
    .await;
    let paid: U256 = redeemed.iter().map(|t| t.paid.expect("paid")).sum();
    assert_eq!(paid, opts.max_face_value * U256::from(redeemed.len()), "each paid its face value");
    let fees_after = o_client.status(key(1).address()).await.unwrap().pending_fees;
    assert_eq!(fees_after - fees_before, paid, "the orchestrator's fees rose by what was redeemed");
}

/// A replayed ticket, or one with a forged signature, in the middle of a payment stops its credit,
/// but the winners after it are still stored (they are redeemable on-chain).
#[actix::test]
async fn winners_after_a_refused_ticket_are_still_stored() {
    let ev = U256::from(500_000_000_000_000u64);
    let opts = Options { ev, max_face_value: ev * U256::from(2), price: 500_000_000, ..Default::default() };
    let net = Net::start(&opts).await;
    let recipient = Recipient::new(key(1).address(), net.store.send(RecipientSecret).await.unwrap());
    let mut stored = 0;
    for (spoiler, refusal_words) in [("replay", "already used"), ("forgery", "invalid ticket signature")] {
        let info = net.terms(2).await.unwrap();
        let params = params_of(&info);
        let (seg, mut payment) = paid_segment(&info, &params, 2, 1, 20);
        if spoiler == "replay" {
            let first = payment.ticket_sender_params[0].clone();
            payment.ticket_sender_params.insert(1, first);
        } else {
            let (_, forged) = paid_segment(&info, &params, 3, 2, 1);
            payment.ticket_sender_params[1] = forged.ticket_sender_params[0].clone();
        }
        let msg = refusal(&net, seg, payment.clone()).await.expect("refused").1;
        assert!(msg.contains(refusal_words), "{spoiler}: {msg}");
        let price = lp_actors::payment::price_from_wire(info.price_info.as_ref().unwrap()).unwrap();
        let mut winning: Vec<u32> = payment
            .ticket_sender_params
            .iter()
            .filter(|t| {
                recipient.check(key(2).address(), &params, price, t.sender_nonce, &t.sig).is_ok_and(|c| c.winning)
            })
            .map(|t| t.sender_nonce)
            .collect();
        winning.dedup();
        assert!(winning.len() >= 2, "{spoiler}: 20 tickets at 1 in 2 (fewer than 2 winners: 1 in 50 000)");
        stored += winning.len();
        assert_eq!(net.store.send(WinningTickets(None)).await.unwrap().len(), stored, "{spoiler}: every winner kept");
    }
    assert_eq!(net.orchestrator.payments().await.unwrap()[0].tickets, 2, "only the ticket before each spoiler counts");
}

/// Parameters an earlier process of this orchestrator issued check out (the secret is kept), but
/// its nonces are gone: their tickets are credited nothing, and their winners are kept.
#[actix::test]
async fn tickets_on_parameters_from_before_a_restart_are_not_credited_but_their_winners_kept() {
    let ev = U256::from(500_000_000_000_000u64);
    let opts = Options { ev, max_face_value: ev * U256::from(2), price: 500_000_000, ..Default::default() };
    let net = Net::start(&opts).await;
    let info = net.terms(2).await.unwrap();
    let mut before = params_of(&info);
    // The same parameters as an earlier process would have issued them: another seed prefix.
    let secret = net.store.send(RecipientSecret).await.unwrap();
    let recipient = Recipient::new(key(1).address(), secret);
    let price = lp_actors::payment::price_from_wire(info.price_info.as_ref().unwrap()).unwrap();
    before.seed = B256::repeat_byte(0xee);
    before.recipient_rand_hash = lp_chain::pm::recipient_rand_hash(recipient.rand(key(2).address(), &before, price));
    let (seg, payment) = paid_segment(&info, &before, 2, 1, 20);
    let msg = refusal(&net, seg, payment.clone()).await.expect("refused").1;
    assert!(msg.contains("before this orchestrator restarted"), "{msg}");
    let winners = payment
        .ticket_sender_params
        .iter()
        .filter(|t| recipient.check(key(2).address(), &before, price, t.sender_nonce, &t.sig).unwrap().winning)
        .count();
    assert!(winners >= 2, "20 tickets at 1 in 2 (fewer than 2 winners: 1 in 50 000): {winners}");
    assert_eq!(net.store.send(WinningTickets(None)).await.unwrap().len(), winners, "the winners are kept");
    assert_eq!(net.orchestrator.payments().await.unwrap()[0].tickets, 0, "nothing credited");
}

/// Each sender costs a receiver and chain reads, and anyone can make a key: past MAX_SENDERS,
/// a new one is refused (the ones already served go on).
#[actix::test]
async fn senders_beyond_the_cap_are_refused() {
    let net = Net::start(&Options::default()).await;
    for _ in 0..lp_actors::orchestrator::MAX_SENDERS {
        let (address, sig) = sign_request(&PrivateKeySigner::random());
        // Unfunded: no parameters, but a receiver each.
        let _ = net.orchestrator.info(OrchestratorRequest { address, sig, ..Default::default() }).await;
    }
    let (address, sig) = sign_request(&PrivateKeySigner::random());
    let err = net.orchestrator.info(OrchestratorRequest { address, sig, ..Default::default() }).await.unwrap_err();
    assert!(err.to_string().contains("at most 1024 ticket senders"), "{err}");
}

/// An upscale request for model "x2" of a `w`×`h` image, as a client's multipart form.
fn upscale_form(w: u32, h: u32) -> (String, bytes::Bytes) {
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(w, h, image::Rgb([5, 6, 7])).write_to(&mut png, image::ImageFormat::Png).unwrap();
    let (content_type, body) =
        lp_testkit::multipart::form(&[("model_id", "x2"), ("prompt", "p")], &[("image", &png.into_inner())]);
    (content_type, body.into())
}

/// AI requests for a priced model: the gateway pays up front with tickets, the orchestrator
/// credits them to the sender's balance for that model and debits the request's input pixels
/// × the model's price once it is done; an unpaid request is refused before any work.
#[actix::test]
async fn ai_requests_are_paid_up_front_and_their_units_debited() {
    // 40 × 30 pixels at 0.02 gwei each: 24 gwei, three tickets of 8 gwei.
    let price = 20_000_000;
    let opts = Options { ai_price: Some(price), ..Default::default() };
    let net = Net::start(&opts).await;
    let gateway = net.gateway(2, &opts).await;
    let (ct, body) = upscale_form(40, 30);
    for _ in 0..2 {
        let answer = gateway.infer(Pipeline::Upscale, ct.clone(), body.clone()).await;
        let lp_actors::ai::AiBody::Full(json) = answer.body else { panic!("a JSON answer") };
        assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&json));
    }
    let sent = gateway.report().await.unwrap().payments.expect("the gateway reports its payments");
    assert!(sent.tickets >= 6, "each request paid its 24 gwei up front: {sent:?}");
    let received = net.orchestrator.payments().await.unwrap();
    let r = received.iter().find(|r| r.sender == key(2).address()).expect("the gateway's account paid");
    assert_eq!((r.tickets, r.ev_received), (sent.tickets, sent.ev_sent), "credited EV = sent EV");
    let session = r.sessions.iter().find(|s| s.session == lp_actors::orchestrator::ai_session(Pipeline::Upscale, "x2"));
    let session = session.expect("a balance for the model");
    assert_eq!(session.session, "30_x2", "go-livepeer's manifest id: <capability>_<model_id>");
    assert_eq!(session.price_per_unit, price as u64, "the model's price, not transcoding's");
    let cost = 2 * 1200 * i128::from(price);
    let credited = i128::try_from(sent.ev_sent).unwrap();
    assert_eq!(session.balance, credited - cost, "credited less both requests' pixels × price");
    assert!(session.balance >= 0 && session.balance < i128::from(EV), "{session:?}");

    // Straight to the orchestrator without a payment: refused, and nothing was run or debited.
    let unpaid = lp_actors::ai::serve(
        net.orchestrator.orchestrator().clone(),
        Pipeline::Upscale,
        &ct,
        body.clone(),
        Payment::default(),
    )
    .await;
    let lp_actors::ai::AiBody::Full(json) = unpaid.body else { panic!("a JSON answer") };
    let text = String::from_utf8_lossy(&json);
    assert_eq!(unpaid.status, 402, "the gateway's payment, not the client's request: {text}");
    assert!(text.contains("no payment"), "{text}");

    // A payment that does not cover the request: credited, but the request is refused before
    // any work; the next payment tops the balance up and the request goes through.
    client(&net.url, net.controller, 3).await.fund(U256::from(ETH), U256::from(ETH)).await.unwrap();
    eventually("account 3's funds", || async {
        let sender = net.o_senders.send(lp_actors::chain::GetSender(key(3).address())).await.unwrap().ok()?;
        (!sender.info.deposit.is_zero()).then_some(())
    })
    .await;
    let mut wanted = lp_wire::Capabilities::default();
    wanted.set(lp_wire::capability::AUTH_TOKEN);
    wanted.set(Pipeline::Upscale.capability());
    wanted.constraints.entry(Pipeline::Upscale.capability()).or_default().insert("x2".into(), Default::default());
    let (address, sig) = sign_request(&key(3));
    let req = OrchestratorRequest { address, sig, capabilities: Some(wanted), ignore_capacity_check: true };
    let info = net.orchestrator.info(req).await.unwrap();
    assert_eq!(info.price_info.as_ref().map(|p| p.price_per_unit), Some(price), "the model's price is quoted");
    let params = params_of(&info);
    let pay = |first: u32, tickets: u32| Payment {
        ticket_params: Some(params_to_wire(&params)),
        sender: ByteBuf::from(key(3).address().to_vec()),
        expiration_params: None,
        ticket_sender_params: sign_tickets(&key(3), &params, first, tickets)
            .unwrap()
            .into_iter()
            .map(|(sender_nonce, sig)| TicketSenderParams { sender_nonce, sig: ByteBuf::from(sig.to_vec()) })
            .collect(),
        expected_price: info.price_info.clone(),
    };
    let orchestrator = net.orchestrator.orchestrator().clone();
    let short = lp_actors::ai::serve(orchestrator.clone(), Pipeline::Upscale, &ct, body.clone(), pay(1, 1)).await;
    let lp_actors::ai::AiBody::Full(json) = short.body else { panic!("a JSON answer") };
    let text = String::from_utf8_lossy(&json);
    assert_eq!(short.status, 402, "{text}");
    assert!(text.contains("does not cover the request"), "{text}");
    let topped = lp_actors::ai::serve(orchestrator, Pipeline::Upscale, &ct, body.clone(), pay(2, 3)).await;
    assert_eq!(topped.status, 200, "one ticket left from before and three more cover 24 gwei");

    // A gateway that cannot pay (no payment settings) gets the orchestrator's 402: that is the
    // gateway's payment, not the client's request, so the client is answered 503, not 402; and
    // the refused terms are forgotten, so the next request asks for new ones.
    let transport = common::Loopback { inner: net.transport.clone(), ..Default::default() };
    let unpaying = OrchestratorPool::new(vec![URI.into()], Rc::new(transport.clone())).signed_by(&key(2)).start();
    for asked in 1..=2 {
        let request = InferAi {
            pipeline: Pipeline::Upscale,
            model_id: "x2".into(),
            units: 1200,
            content_type: ct.clone(),
            body: body.clone(),
        };
        let answer = unpaying.send(request).await.unwrap();
        let lp_actors::ai::AiBody::Full(json) = answer.body else { panic!("a JSON answer") };
        let text = String::from_utf8_lossy(&json);
        assert_eq!(answer.status, 503, "{text}");
        assert!(text.contains("payment refused"), "{text}");
        assert_eq!(transport.asked.borrow().len(), asked, "the refused terms were used again");
    }
}

/// The payment actors, panicked (injected with `InjectPanic`: no ticket or chain answer makes
/// them panic), are restarted in place with their state: the ticket sender goes on from its next
/// nonce (the orchestrator would refuse a nonce used again as a replay), the ticket receiver
/// keeps its nonces (a replayed payment is still refused) and its credit, and both sender
/// watchers answer with their chain view again.
#[actix::test]
async fn payment_actors_restarted_after_a_panic_keep_their_state() {
    use lp_actors::orchestrator::orchestrator::GetReceivers;
    use lp_actors::supervision::InjectPanic;
    let opts = Options::default();
    let net = Net::start(&opts).await;
    let info = net.terms(2).await.unwrap();
    let settings = net.sender_settings(2).await;
    let g_senders = settings.chain.clone();
    let sender = net.watchdog.start("ticket_sender", Policy::Transient, TicketSender::new(settings, &info).unwrap());
    let fee = CreatePayment { renditions: vec![(256, 144, 30.0)], duration_ms: 1000 };
    let (seg, _) = paid_segment(&info, &params_of(&info), 2, 1, 1);
    let (first, _) = sender.send(fee.clone()).await.unwrap().unwrap();
    assert_eq!(refusal(&net, seg.clone(), first.clone()).await, None);
    let credited = net.orchestrator.payments().await.unwrap().remove(0);

    let receivers = net.orchestrator.orchestrator().send(GetReceivers).await.unwrap();
    sender.do_send(InjectPanic);
    receivers[0].do_send(InjectPanic);
    net.o_senders.do_send(InjectPanic);
    g_senders.do_send(InjectPanic);
    let restarts = |actor: &str| net.watchdog.report().iter().find(|p| p.actor == actor).map_or(0, |p| p.restarts);
    eventually("every payment actor restarted", || async {
        (restarts("ticket_sender") == 1 && restarts("ticket_receiver") == 1 && restarts("sender_watcher") == 2)
            .then_some(())
    })
    .await;

    let (second, _) = sender.send(fee).await.unwrap().unwrap();
    let next = first.ticket_sender_params.last().unwrap().sender_nonce + 1;
    assert_eq!(second.ticket_sender_params[0].sender_nonce, next, "the sender's nonces go on");
    let (mut seg1, mut seg2) = (seg.clone(), seg);
    (seg1.seq, seg2.seq) = (1, 2);
    assert_eq!(refusal(&net, seg1, second.clone()).await, None, "paid after the restarts");
    let (code, message) = refusal(&net, seg2, first).await.expect("a replay is refused");
    assert_eq!(code, ErrorCode::PaymentRefused);
    assert!(message.contains("already used"), "the receiver's nonces are kept: {message}");
    let now = net.orchestrator.payments().await.unwrap().remove(0);
    let tickets = credited.tickets + second.ticket_sender_params.len() as u64;
    assert_eq!(now.tickets, tickets, "the receiver's credit is kept: {now:?}");
}

/// A segment that names no sender, sent to a priced orchestrator, is refused
/// `InsufficientBalance` before any work; a free orchestrator on-chain asks for no tickets: its
/// terms carry no ticket parameters and the same segment is transcoded, with no sender tracked.
#[actix::test]
async fn a_free_orchestrator_asks_for_no_tickets_and_a_priced_one_refuses_an_unpaid_segment() {
    for price in [10_000, 0] {
        let net = Net::start(&Options { price, ..Default::default() }).await;
        let info = net.terms(2).await.unwrap();
        let seg = common::seg_data(info.auth_token.clone(), &common::segment());
        let answer = net.orchestrator.submit(seg, Payment::default(), common::segment()).await;
        if price > 0 {
            assert!(info.ticket_params.is_some());
            let Err(CallError::Refused(f)) = answer else { panic!("an unpaid segment was taken: {answer:?}") };
            assert_eq!(f.code, ErrorCode::InsufficientBalance, "{f}");
            assert!(f.message.contains("no payment"), "{f}");
        } else {
            assert!(info.ticket_params.is_none(), "a free orchestrator issued ticket parameters");
            let done = answer.expect("a free orchestrator takes an unpaid segment");
            assert!(matches!(done.result, lp_wire::TranscodeOutcome::Data(_)), "{:?}", done.result);
            assert!(net.orchestrator.payments().await.unwrap().is_empty(), "no sender is tracked");
        }
    }
}

/// The ticket sender's and a ticket receiver's mailboxes take their bounds and refuse the next
/// message.
#[actix::test]
async fn the_ticket_actors_mailboxes_hold_their_bounds() {
    use lp_actors::gateway::ticket_sender;
    use lp_actors::orchestrator::ticket_receiver::{self, GetReceiverStatus};
    use lp_actors::testing::assert_mailbox_bound;
    let net = Net::start(&Options::default()).await;
    let info = net.terms(2).await.unwrap();
    let sender = TicketSender::new(net.sender_settings(2).await, &info).expect("a ticket sender").start();
    sender.send(NewTerms(info.clone())).await.unwrap();
    assert_mailbox_bound(&sender, ticket_sender::MAILBOX, || NewTerms(info.clone()));

    let secret = net.store.send(RecipientSecret).await.unwrap();
    let payments = PaymentSettings {
        recipient: Arc::new(Recipient::new(key(1).address(), secret)),
        ev: U256::from(EV),
        max_face_value: U256::ZERO,
        redeem_gas: lp_chain::networks::REDEEM_GAS_L1,
        store: net.store.clone(),
        chain: net.o_senders.clone(),
        epoch: Epoch::random(),
    };
    let receiver = lp_actors::orchestrator::TicketReceiver::new(key(2).address(), payments).start();
    receiver.send(GetReceiverStatus).await.unwrap();
    assert_mailbox_bound(&receiver, ticket_receiver::MAILBOX, || GetReceiverStatus);
}
