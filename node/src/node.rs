//! The node: assembles the roles a config asks for, binds their listeners, and runs until a
//! signal or a fatal role error, then drains within a bounded grace period.

use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use anyhow::{Context as _, Result};
use futures::StreamExt;
use futures::channel::mpsc;
use lp_actors::chain::{ChainSettings, SenderWatcher};
use lp_actors::gateway::SenderSettings;
use lp_actors::gateway::{GatewayConfig, GatewayHandle, InProcess, LocalFirst, OrchestratorTransport, StreamSettings};
use lp_actors::orchestrator::{Epoch, PaymentSettings};
use lp_actors::orchestrator::{Links, OrchestratorHandle, OrchestratorSettings, SessionCap};
use lp_actors::store::RecipientSecret;
use lp_actors::supervision::Policy;
use lp_actors::supervision::Watchdog;
use lp_chain::pm::{Price, Recipient, SenderLimits};
use lp_config::{Config, MaxSessions};
use lp_pipelines::Profile;
use serde::Serialize;
use tracing::{error, info, warn};

use crate::bench::Sizing;
use crate::client::HttpTransport;
use crate::http::{admin, gateway, orchestrator};
use crate::rtmp::{RtmpServer, RtmpSettings};
use crate::{ai_worker, tls, transcoder};

/// How long in-flight requests may take to finish at shutdown.
const SHUTDOWN_GRACE: u64 = 10;

/// Which roles this process runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles {
    pub gateway: bool,
    pub orchestrator: bool,
    pub transcoder: bool,
    pub ai_worker: bool,
}

impl Roles {
    /// Every role that has a section in the config.
    pub fn from_config(cfg: &Config) -> Roles {
        Roles {
            gateway: cfg.gateway.is_some(),
            orchestrator: cfg.orchestrator.is_some(),
            transcoder: cfg.transcoder.is_some(),
            ai_worker: cfg.ai_worker.is_some(),
        }
    }

    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.gateway {
            v.push("gateway");
        }
        if self.orchestrator {
            v.push("orchestrator");
        }
        if self.transcoder {
            v.push("transcoder");
        }
        if self.ai_worker {
            v.push("ai-worker");
        }
        v
    }
}

/// What the roles need beyond the config text, read and checked before any port is bound.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub profiles: Vec<Profile>,
    pub orchestrator_secret: Option<String>,
    pub transcoder_secret: Option<String>,
    pub ai_worker_secret: Option<String>,
    /// The orchestrator's session cap, `max_sessions = "auto"`'s local part read from the
    /// `livepeer bench` result.
    pub max_sessions: Option<SessionCap>,
}

/// Check what the config points at (profiles, secret files). Every problem is reported.
pub fn prepare(cfg: &Config, roles: Roles) -> Result<Prepared, Vec<PrepareError>> {
    let mut errors = Vec::new();
    let mut prepared = Prepared::default();
    if let (true, Some(g)) = (roles.gateway, &cfg.gateway) {
        let profiles = match &g.profiles_file {
            Some(path) => lp_pipelines::profiles_from_json_file(path).map_err(|e| ("gateway.profiles_file", e)),
            None => lp_pipelines::profiles_from_names(&g.profiles).map_err(|e| ("gateway.profiles", e)),
        };
        match profiles {
            Ok(p) => prepared.profiles = p,
            Err((key, e)) => errors.push(PrepareError::Profiles { key, source: e }),
        }
    }
    if let (true, Some(path)) = (roles.orchestrator, cfg.orchestrator.as_ref().and_then(|o| o.secret_file.as_ref())) {
        match transcoder::read_secret(path) {
            Ok(s) => prepared.orchestrator_secret = Some(s),
            Err(e) => errors.push(PrepareError::Secret { key: "orchestrator.secret_file", reason: format!("{e:#}") }),
        }
    }
    if let (true, Some(o)) = (roles.orchestrator, &cfg.orchestrator) {
        prepared.max_sessions = match o.max_sessions {
            MaxSessions::Fixed(n) => Some(SessionCap::fixed(n)),
            // Remote transcoders only: go-livepeer's `auto`, their sessions alone.
            MaxSessions::Auto if !o.transcode => Some(SessionCap::auto(0)),
            MaxSessions::Auto => match Sizing::local_sessions(&cfg.data_dir, o) {
                // go-livepeer refuses `auto` with a transcoder in the orchestrator's process too.
                Ok(_) if roles.transcoder => Err("\"auto\" with a [transcoder] in the same process would count this \
                                                  machine twice; run the transcoder as its own node, or set a number"
                    .to_string()),
                Ok(0) if o.secret_file.is_none() => Err(format!(
                    "\"auto\": `livepeer bench` found that this machine carries no stream of its ladder at a ratio \
                     of at most {} and there can be no remote transcoders (no secret_file): choose a faster \
                     x264_preset and run it again, or set a number",
                    crate::bench::RATIO_LIMIT
                )),
                Ok(local) => Ok(SessionCap::auto(local)),
                Err(reason) => Err(reason),
            }
            .map_err(|reason| errors.push(PrepareError::Sizing { reason }))
            .ok(),
        };
    }
    // A GPU decoder is opened now, before anything is bound or loaded.
    let mut decoders = Vec::new();
    if let (true, Some(o)) = (roles.orchestrator, &cfg.orchestrator)
        && o.transcode
    {
        decoders.push(("orchestrator.video_decoder", &o.video_decoder));
    }
    if let (true, Some(t)) = (roles.transcoder, &cfg.transcoder) {
        decoders.push(("transcoder.video_decoder", &t.video_decoder));
    }
    for (key, decoder) in decoders {
        if let Err(reason) = transcoder::decoder(decoder) {
            errors.push(PrepareError::Decoder { key, reason });
        }
    }
    if let (true, Some(t)) = (roles.transcoder, &cfg.transcoder) {
        match transcoder::read_secret(&t.secret_file) {
            Ok(s) => prepared.transcoder_secret = Some(s),
            Err(e) => errors.push(PrepareError::Secret { key: "transcoder.secret_file", reason: format!("{e:#}") }),
        }
    }
    if let (true, Some(w)) = (roles.ai_worker, &cfg.ai_worker) {
        match transcoder::read_secret(&w.secret_file) {
            Ok(s) => prepared.ai_worker_secret = Some(s),
            Err(e) => errors.push(PrepareError::Secret { key: "ai_worker.secret_file", reason: format!("{e:#}") }),
        }
    }
    if errors.is_empty() { Ok(prepared) } else { Err(errors) }
}

/// What is wrong with a file the config points at; each names its key.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("{key}: {source}")]
    Profiles { key: &'static str, source: lp_pipelines::ProfileError },
    #[error("{key}: {reason}")]
    Secret { key: &'static str, reason: String },
    #[error("orchestrator.max_sessions: {reason}")]
    Sizing { reason: String },
    #[error("{key}: {reason}")]
    Decoder { key: &'static str, reason: String },
}

/// The addresses the node listens on, also written to `<data_dir>/listen.json` once all are
/// bound (for supervisors and tests that start nodes on port 0).
#[derive(Debug, Clone, Serialize)]
pub struct ListenAddrs {
    pub gateway: Option<SocketAddr>,
    /// The gateway's RTMP ingest.
    pub rtmp: Option<SocketAddr>,
    pub orchestrator: Option<SocketAddr>,
    /// The URI the orchestrator advertises to gateways.
    pub orchestrator_uri: Option<String>,
    pub admin: SocketAddr,
}

/// A started node.
pub struct RunningNode {
    pub addrs: ListenAddrs,
    /// The gateway's RTMP ingest: stopped first, so its streams end while the gateway runs.
    rtmp: Option<RtmpServer>,
    servers: Vec<ServerHandle>,
    /// The orchestrator's server and its remote transcoder links: stopped after the servers
    /// above, since the gateway of this process may still be sending it segments.
    orchestrator: Option<(ServerHandle, Links)>,
    admin: ServerHandle,
    fatal: mpsc::UnboundedReceiver<anyhow::Error>,
}

fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr} ({what})"))
}

/// Start every role of `roles`. Must run inside an actix `System`.
pub async fn start(cfg: &Config, roles: Roles, prepared: Prepared) -> Result<RunningNode> {
    let metrics = crate::telemetry::metrics_handle();
    std::fs::create_dir_all(&cfg.data_dir).with_context(|| format!("creating data_dir {}", cfg.data_dir.display()))?;
    // On-chain: connect (and check the chain id against the database) before binding any port.
    let chain = match &cfg.eth {
        Some(eth) => {
            let (client, store) = crate::chain_cli::connect(cfg, eth).await?;
            Some((Arc::new(client), store, eth))
        }
        None => None,
    };
    let (fatal_tx, fatal) = mpsc::unbounded();
    // Every long-lived actor runs under it; one that keeps panicking stops the node.
    let watchdog = Watchdog::new();
    // On-chain: what the payments of either role read from the chain (the gateway's own funds).
    let senders = chain.as_ref().map(|(client, _, _)| {
        let mut watcher = SenderWatcher::new(client.clone());
        if let (true, Some(me)) = (roles.gateway, client.address()) {
            watcher = watcher.own(me);
        }
        if let (true, Some(me)) = (roles.orchestrator, client.address()) {
            watcher = watcher.recipient(me);
        }
        watchdog.start("sender_watcher", Policy::Permanent, watcher)
    });
    actix_web::rt::spawn({
        let (watchdog, fatal_tx) = (watchdog.clone(), fatal_tx.clone());
        async move {
            let why = watchdog.fatal().await;
            let _ = fatal_tx.unbounded_send(crate::exit::ActorFailed(why).into());
        }
    });
    let mut servers = Vec::new();
    let mut orchestrator_server = None;
    let mut addrs =
        ListenAddrs { gateway: None, rtmp: None, orchestrator: None, orchestrator_uri: None, admin: cfg.admin.addr };
    let mut rtmp = None;
    let mut admin_state = admin::AdminState {
        metrics,
        roles: roles.names(),
        watchdog: watchdog.clone(),
        gateway: None,
        orchestrator: None,
        chain: None,
        transcoder: None,
        ai_worker: None,
    };

    if let (true, Some(o)) = (roles.orchestrator, &cfg.orchestrator) {
        let listener = bind(o.service_addr, "orchestrator.service_addr")?;
        let local = listener.local_addr()?;
        let scheme = if o.tls { "https" } else { "http" };
        let uri = o.service_uri.clone().unwrap_or_else(|| format!("{scheme}://{local}"));
        let payments = match (&chain, &senders) {
            (Some((client, store, _)), Some(senders)) => {
                let secret = store.send(RecipientSecret).await.context("reading the ticket secret")?;
                let address = client.address().context("the orchestrator needs an account")?;
                Some(PaymentSettings {
                    recipient: Arc::new(Recipient::new(address, secret)),
                    ev: o.ticket_ev.as_u256(),
                    max_face_value: o.max_face_value.as_u256(),
                    redeem_gas: lp_chain::networks::network(cfg.network.as_str())?.redeem_gas,
                    store: store.clone(),
                    chain: senders.clone(),
                    epoch: Epoch::random(),
                })
            }
            _ => None,
        };
        let (capabilities, capability_prices) = crate::ai::offered(o, lp_wire::Capabilities::transcoding())?;
        let models = crate::ai::load(o).await?;
        let settings = OrchestratorSettings {
            payments,
            capability_prices,
            capabilities,
            service_uri: uri.clone(),
            max_sessions: prepared.max_sessions.clone().context("node::prepare reads max_sessions")?,
            session_idle_timeout: Duration::from_secs(o.session_idle_timeout_secs),
            // lp-config checks that both fit the wire's int64; a config built in code may not.
            price_per_unit: i64::try_from(o.price_per_unit.as_u256()).context("orchestrator.price_per_unit")?,
            pixels_per_unit: i64::try_from(o.pixels_per_unit).context("orchestrator.pixels_per_unit")?,
            auth_token_validity: lp_actors::orchestrator::auth::AUTH_TOKEN_VALIDITY,
        };
        if settings.max_sessions.is_auto() {
            info!(target: "lp::node", max_sessions = %settings.max_sessions.describe(), "max_sessions auto: this machine's measured streams plus the remote transcoders' capacity");
        }
        let orch = OrchestratorHandle::start(settings, &watchdog);
        if o.transcode {
            let opts =
                crate::transcoder::options(&o.x264_preset, &o.video_decoder).context("orchestrator.video_decoder")?;
            orch.add_local_workers(o.capacity, opts).await?;
        }
        if let Some((models, capacities)) = models {
            orch.add_inference_worker("local-ai", models, &capacities).await?;
        }
        let links = Links::default();
        let state = orchestrator::OrchestratorState {
            orchestrator: orch.clone(),
            secret: prepared.orchestrator_secret.clone().map(Arc::new),
            links: links.clone(),
        };
        let server = HttpServer::new(move || {
            App::new().app_data(web::Data::new(state.clone())).configure(orchestrator::configure)
        })
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_GRACE);
        let server = if o.tls {
            let host = o.service_addr.ip().to_string();
            server.listen_rustls_0_23(listener, tls::server_config(&cfg.data_dir, &[host])?)?
        } else {
            server.listen(listener)?
        }
        .run();
        orchestrator_server = Some((server.handle(), links));
        actix_web::rt::spawn(server);
        info!(target: "lp::node", addr = %local, uri = %uri, "orchestrator listening");
        addrs.orchestrator = Some(local);
        addrs.orchestrator_uri = Some(uri);
        admin_state.orchestrator = Some(orch);
    }

    if let (true, Some(g)) = (roles.gateway, &cfg.gateway) {
        let mut uris = g.orchestrators.clone();
        if uris.is_empty() {
            // All-in-one: a gateway without a list uses the orchestrator of its own process.
            uris.extend(addrs.orchestrator_uri.clone());
        }
        if uris.is_empty() && cfg.eth.is_none() {
            warn!(target: "lp::node", "the gateway has no orchestrators: every segment will be refused (503 NoOrchestrators); list them in gateway.orchestrators");
        }
        // The orchestrator of this process is reached in-process, the others over HTTP(S).
        let transport: Rc<dyn OrchestratorTransport> = match (&addrs.orchestrator_uri, &admin_state.orchestrator) {
            (Some(uri), Some(own)) => {
                let local = InProcess::default();
                local.add(uri, own.orchestrator().clone());
                Rc::new(LocalFirst { local, remote: HttpTransport::new() })
            }
            _ => Rc::new(HttpTransport::new()),
        };
        let payments = match (&chain, &senders) {
            (Some((client, _, _)), Some(senders)) => Some(SenderSettings {
                signer: Arc::new(client.signer().context("the gateway needs an account")?.clone()),
                limits: SenderLimits {
                    max_ticket_ev: g.max_ticket_ev.as_u256(),
                    max_total_ev: g.max_total_ev.as_u256(),
                    deposit_multiplier: g.deposit_multiplier,
                },
                chain: senders.clone(),
                watchdog: watchdog.clone(),
                sent: Default::default(),
            }),
            _ => None,
        };
        let stream = StreamSettings {
            payments,
            max_attempts: g.max_attempts,
            segment_queue: g.segment_queue,
            idle_timeout: Duration::from_secs(g.stream_idle_timeout_secs),
            hls_window: g.hls_window,
            hls_retention: Duration::from_secs(g.hls_retention_secs),
            recorder: match &g.record_dir {
                Some(dir) => Some(
                    lp_actors::gateway::Recorder::start(dir.clone())
                        .with_context(|| format!("gateway.record_dir {}", dir.display()))?,
                ),
                None => None,
            },
        };
        let config = GatewayConfig {
            profiles: prepared.profiles.clone(),
            stream,
            max_streams: g.max_streams as usize,
            orchestrators: uris,
            max_price: Price {
                // lp-config checks that the price fits an int64.
                per_unit: u64::try_from(g.max_price_per_unit.as_u256()).context("gateway.max_price_per_unit")?,
                pixels_per_unit: g.pixels_per_unit,
            },
            ai_max_prices: crate::ai::max_prices(g)?,
        };
        let gw = GatewayHandle::start(config, transport, &watchdog);
        let webhook = g.auth_webhook_url.clone().map(crate::webhook::AuthWebhook::new);
        let ingest = crate::ingest::Ingest::new(gw.clone(), webhook);
        let rtmp_listener = bind(g.rtmp_addr, "gateway.rtmp_addr")?;
        let state = gateway::GatewayState {
            ingest: ingest.clone(),
            max_segment_bytes: g.max_segment_bytes,
            body_timeout: Duration::from_secs(g.body_timeout_secs),
        };
        let listener = bind(g.http_addr, "gateway.http_addr")?;
        let local = listener.local_addr()?;
        let server =
            HttpServer::new(move || App::new().app_data(web::Data::new(state.clone())).configure(gateway::configure))
                .disable_signals()
                .shutdown_timeout(SHUTDOWN_GRACE)
                .listen(listener)?
                .run();
        servers.push(server.handle());
        actix_web::rt::spawn(server);
        info!(target: "lp::node", addr = %local, "gateway listening");
        addrs.gateway = Some(local);
        let rtmp_local = rtmp_listener.local_addr()?;
        let settings = RtmpSettings {
            segment_secs: g.segment_secs,
            max_connections: g.max_streams as usize,
            max_segment_bytes: g.max_segment_bytes,
        };
        rtmp = Some(RtmpServer::start(rtmp_listener, ingest, settings).context("gateway.rtmp_addr")?);
        info!(target: "lp::node", addr = %rtmp_local, "rtmp listening (rtmp://HOST:PORT/live/STREAM_KEY)");
        addrs.rtmp = Some(rtmp_local);
        admin_state.gateway = Some(gw);
    }

    if let (true, Some(t)) = (roles.transcoder, &cfg.transcoder) {
        let t = t.clone();
        let sessions = transcoder::measured_sessions(&cfg.data_dir, &t, cfg.orchestrator.is_some());
        let secret = prepared.transcoder_secret.clone().unwrap_or_default();
        let (fatal_tx, watchdog) = (fatal_tx.clone(), watchdog.clone());
        let health = lp_actors::worker::Health::new(&t.orchestrator);
        admin_state.transcoder = Some(health.clone());
        actix_web::rt::spawn(async move {
            if let Err(e) = transcoder::run(t, sessions, secret, health, &watchdog).await {
                let _ = fatal_tx.unbounded_send(e);
            }
        });
    }

    if let (true, Some(w)) = (roles.ai_worker, &cfg.ai_worker) {
        let w = w.clone();
        let secret = prepared.ai_worker_secret.clone().unwrap_or_default();
        let health = lp_actors::worker::Health::new(&w.orchestrator);
        admin_state.ai_worker = Some(health.clone());
        // The models load before the node counts as started: one that does not stops the start.
        let capabilities = crate::ai::worker_capabilities(&w)?;
        let models = crate::ai::load_worker(&w).await?;
        let (fatal_tx, watchdog) = (fatal_tx.clone(), watchdog.clone());
        actix_web::rt::spawn(async move {
            if let Err(e) = ai_worker::run(w, secret, capabilities, models, health, &watchdog).await {
                let _ = fatal_tx.unbounded_send(e);
            }
        });
    }

    if let Some((client, store, eth)) = chain {
        let discovers = cfg.gateway.as_ref().is_some_and(|g| g.orchestrators.is_empty());
        let gateway_pool = admin_state.gateway.as_ref().filter(|_| discovers).map(|g| g.orchestrator_pool().clone());
        let settings = ChainSettings {
            poll_interval: Duration::from_secs(eth.block_poll_interval_secs),
            initialize_round: eth.initialize_round.then(|| Duration::from_secs(eth.initialize_round_max_delay_secs)),
            reward: roles.orchestrator && eth.reward,
            redeem: roles.orchestrator,
        };
        let discovery = gateway_pool.map(|p| p.recipient());
        store.watched_by(&watchdog);
        let actors = lp_actors::chain::start(client.clone(), store, settings, discovery, &watchdog);
        if let Some(senders) = &senders {
            actors.watch_senders(senders);
            actors.redemptions_to(senders);
        }
        info!(target: "lp::node", account = ?client.address(), chain_id = client.chain_id(), "chain watchers started");
        admin_state.chain = Some(Arc::new(actors));
    }

    let listener = bind(cfg.admin.addr, "admin.addr")?;
    let local = listener.local_addr()?;
    let server =
        HttpServer::new(move || App::new().app_data(web::Data::new(admin_state.clone())).configure(admin::configure))
            .disable_signals()
            .workers(1)
            .shutdown_timeout(1)
            .listen(listener)?
            .run();
    let admin_server = server.handle();
    actix_web::rt::spawn(server);
    info!(target: "lp::node", addr = %local, "admin listening (/metrics /healthz /status)");
    addrs.admin = local;

    let listen_file = cfg.data_dir.join("listen.json");
    std::fs::write(&listen_file, serde_json::to_vec_pretty(&addrs)?)
        .with_context(|| format!("writing {}", listen_file.display()))?;
    drop(fatal_tx);
    Ok(RunningNode { addrs, rtmp, servers, orchestrator: orchestrator_server, admin: admin_server, fatal })
}

/// Run several nodes of this process (the demo's gateway and orchestrator, each with its own
/// config and account) until SIGINT/SIGTERM or a fatal error of any of them, then stop them one
/// after the other, in the order given (a gateway before the orchestrator it sends to).
pub async fn wait_all(mut nodes: Vec<RunningNode>) -> Result<()> {
    let mut term = actix_web::rt::signal::unix::signal(actix_web::rt::signal::unix::SignalKind::terminate())?;
    let outcome = {
        let mut fatal = futures::stream::select_all(nodes.iter_mut().map(|n| &mut n.fatal));
        tokio::select! {
            _ = actix_web::rt::signal::ctrl_c() => { info!(target: "lp::node", "interrupted; shutting down"); Ok(()) }
            _ = term.recv() => { info!(target: "lp::node", "terminated; shutting down"); Ok(()) }
            Some(e) = fatal.next() => { error!(target: "lp::node", "{e:#}"); Err(e) }
        }
    };
    for node in &nodes {
        node.stop().await;
    }
    outcome
}

impl RunningNode {
    /// Run until SIGINT/SIGTERM or a fatal role error, then stop within the grace period.
    pub async fn wait(self) -> Result<()> {
        wait_all(vec![self]).await
    }

    /// Stop within the grace period: RTMP publishers are disconnected, then the gateway drains
    /// (it may be sending segments to the orchestrator of this process); then the orchestrator stops accepting, finishes the
    /// segments in flight, closes its transcoder links with WebSocket close frames and stops as
    /// soon as its connections are done. The admin listener stops meanwhile.
    pub async fn stop(&self) {
        let deadline = Instant::now() + Duration::from_secs(SHUTDOWN_GRACE);
        let roles = async {
            if let Some(rtmp) = &self.rtmp {
                rtmp.stop().await;
            }
            futures::future::join_all(self.servers.iter().map(|s| s.stop(true))).await;
            if let Some((server, links)) = &self.orchestrator {
                server.pause().await;
                let drained = links.drain(deadline).await;
                info!(target: "lp::node", in_flight = drained.in_flight, transcoder_links = drained.links, complete = drained.complete, "orchestrator drained");
                // Past the deadline, what is left is cut off.
                server.stop(drained.complete).await;
            }
        };
        futures::future::join(roles, self.admin.stop(true)).await;
    }
}
