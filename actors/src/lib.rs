//! # lp-actors: the supervised runtime of livepeer-rs
//!
//! Every session, segment flow and worker is an actix actor; FFmpeg work runs on dedicated
//! threads owned by [`orchestrator::LocalWorker`]s, never on an actor's thread or the async
//! executor. Every queue is bounded; a full one answers "busy" at once.
//!
//! ```text
//! Gateway ─┬─ StreamSession(stream) … ─┬─ TicketSender(orchestrator session) … (on-chain)
//!          │                           └─ OrchestratorTransport (HTTP, in lp-node)
//!          └─ OrchestratorPool (selection, suspension, price cap)
//! Orchestrator ─┬─ AuthSession(gateway session) …
//!               ├─ TicketReceiver(sender) … (on-chain: parameters, checks, balances)
//!               └─ TranscoderPool ─┬─ LocalWorker (local; owns a thread)
//!                                  └─ WorkerLink (one per remote worker process)
//! Transcoder process ── OrchestratorLink (worker::run) ── TranscoderPool ── LocalWorker …
//! Chain ─ BlockWatcher → RoundWatcher → RoundInitializer, RewardCaller, OrchestratorRegistry
//!                      → SenderWatcher (senders' funds, chain view) ← Redeemer (winning tickets)
//! Store (the database, on its own thread; every SQLite call of the node goes through it)
//! Watchdog (supervision: the roles' actors and the chain actors are restarted in place after a
//!          panic; workers restart their own threads, links are redialled by their workers)
//! ```
//!
//! The actors know nothing of HTTP: the gateway reaches orchestrators through the
//! [`gateway::OrchestratorTransport`] trait; the orchestrator↔worker link protocol runs over
//! [`orchestrator::LinkTransport`] on the orchestrator side and [`worker::Connection`] on the
//! worker side (lp-node adapts both to WebSockets). The messages both sides exchange are
//! lp-wire's.

pub mod ai;
pub mod chain;
pub mod gateway;
pub mod handle;
pub mod metrics;
pub mod orchestrator;
pub mod payment;
pub mod store;
pub mod supervision;
pub mod testing;
pub mod worker;
