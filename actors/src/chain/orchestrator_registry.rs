//! `OrchestratorRegistry`: the on-chain orchestrators, for gateways.
//!
//! - **Owns** the last list of pool members read from the BondingManager (address, stake,
//!   service URI, active) and the database's orchestrator cache (through the [`Store`]).
//! - **On each** [`RoundChanged`] it re-reads the pool, stores every member in the database (one
//!   [`UpsertOrchestrators`] message: one transaction), and hands the service URIs of the active
//!   ones to the gateway's orchestrator pool ([`SetOrchestrators`]). A failure to store is
//!   logged; the list is handed on all the same.
//! - **Mailbox**: bounded at [`MAILBOX`]; reads never overlap.
//! - **Restart policy**: a failed read keeps the last list (logged) and is retried after
//!   [`RETRY_AFTER`]; the pool is also re-read every [`REFRESH_EVERY`] within a round, so a
//!   gateway never waits a whole round for a list. Supervised, permanent (see
//!   `crate::supervision`): after a panic it is restarted in place and reads the pool again.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use lp_chain::client::{ChainClient, PoolMember};
use lp_chain::db::OrchestratorRow;
use tracing::{info, warn};

use super::round_watcher::RoundChanged;
use crate::gateway::orchestrator_pool::SetOrchestrators;
use crate::store::{Store, UpsertOrchestrators};

pub const MAILBOX: usize = 32;
pub const RETRY_AFTER: Duration = Duration::from_secs(5);
pub const REFRESH_EVERY: Duration = Duration::from_secs(60);

/// The pool members last read, for `/status`.
#[derive(Message)]
#[rtype(result = "Vec<PoolMember>")]
pub struct GetPool;

pub struct OrchestratorRegistry {
    client: Arc<ChainClient>,
    store: Store,
    target: Recipient<SetOrchestrators>,
    members: Vec<PoolMember>,
    reading: bool,
    /// The last round seen, for the periodic re-reads.
    round: Option<lp_chain::client::RoundInfo>,
    refresh: Duration,
}

impl OrchestratorRegistry {
    pub fn new(client: Arc<ChainClient>, store: Store, target: Recipient<SetOrchestrators>) -> Self {
        OrchestratorRegistry {
            client,
            store,
            target,
            members: Vec::new(),
            reading: false,
            round: None,
            refresh: REFRESH_EVERY,
        }
    }

    /// Re-read the pool every `refresh` within a round instead of [`REFRESH_EVERY`].
    pub fn refresh_every(mut self, refresh: Duration) -> Self {
        self.refresh = refresh;
        self
    }
}

impl Actor for OrchestratorRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        ctx.run_interval(self.refresh, |act, ctx| {
            if let Some(round) = act.round.clone() {
                ctx.notify(RoundChanged(round));
            }
        });
    }
}

impl Supervised for OrchestratorRegistry {
    /// The read in flight was dropped with its future.
    fn restarting(&mut self, _: &mut Self::Context) {
        self.reading = false;
    }
}

crate::supervision::inject_panic!(OrchestratorRegistry);

impl Handler<RoundChanged> for OrchestratorRegistry {
    type Result = ();

    fn handle(&mut self, RoundChanged(round): RoundChanged, ctx: &mut Self::Context) {
        self.round = Some(round.clone());
        if self.reading {
            return;
        }
        self.reading = true;
        let client = self.client.clone();
        let store = self.store.clone();
        let active_round = round.round;
        let read = async move {
            let members = client.pool().await?;
            let rows = members
                .iter()
                .map(|m| OrchestratorRow {
                    address: m.address,
                    service_uri: m.service_uri.clone(),
                    activation_round: if m.active { active_round } else { 0 },
                    deactivation_round: 0,
                    stake: m.stake,
                })
                .collect();
            let stored = store.send(UpsertOrchestrators(rows)).await;
            Ok::<_, lp_chain::error::ChainError>((members, stored))
        };
        ctx.spawn(read.into_actor(self).map(move |result, act, ctx| {
            act.reading = false;
            let members = match result {
                Ok((members, stored)) => {
                    match stored {
                        Ok(refused) => {
                            for (address, e) in refused {
                                warn!(target: "lp::chain", "storing orchestrator {address}: {e}");
                            }
                        }
                        Err(e) => warn!(target: "lp::chain", "storing the orchestrator pool: {e}"),
                    }
                    members
                }
                Err(e) => {
                    warn!(target: "lp::chain", "reading the orchestrator pool failed (retrying in {RETRY_AFTER:?}): {e}");
                    ctx.notify_later(RoundChanged(round), RETRY_AFTER);
                    return;
                }
            };
            let uris: Vec<String> =
                members.iter().filter(|m| m.active && !m.service_uri.is_empty()).map(|m| m.service_uri.clone()).collect();
            info!(target: "lp::chain", round = round.round, active = uris.len(), pool = members.len(), "orchestrator pool");
            act.target.do_send(SetOrchestrators(uris));
            act.members = members;
        }));
    }
}

impl Handler<GetPool> for OrchestratorRegistry {
    type Result = MessageResult<GetPool>;

    fn handle(&mut self, _: GetPool, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.members.clone())
    }
}
