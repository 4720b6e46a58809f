//! The chain side of the node: block and round watchers, round initializer, reward caller,
//! orchestrator registry, the orchestrator's ticket redeemer; [`start`] wires them under the
//! node's watchdog.

pub mod block_watcher;
pub mod orchestrator_registry;
pub mod redeemer;
pub mod reward_caller;
pub mod round_initializer;
pub mod round_watcher;
pub mod sender_watcher;

pub use block_watcher::{BlockWatcher, ChainEvent, PollNow, RpcCall, Subscribe, WatchError};
pub use orchestrator_registry::{GetPool, OrchestratorRegistry};
pub use redeemer::{GetPending, PendingChanged, RedeemGas, Redeemer, SetGasListener, SetPendingListener};
pub use reward_caller::RewardCaller;
pub use round_initializer::RoundInitializer;
pub use round_watcher::{GetRound, RoundChanged, RoundWatcher, SubscribeRounds};
pub use sender_watcher::{ChainView, GetChainView, GetSender, SenderView, SenderWatcher, chain_view};

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use alloy::primitives::{Address, B256};
use alloy::sol_types::SolEvent;
use lp_chain::client::ChainClient;

use crate::gateway::orchestrator_pool::SetOrchestrators;
use crate::store::Store;
use crate::supervision::{Policy, Watchdog};

/// What the chain actors are asked to do.
pub struct ChainSettings {
    /// How often the chain head, its logs and the gas price are polled.
    pub poll_interval: Duration,
    /// Initialize each new round after a random delay of at most this; `None`: leave it to others.
    pub initialize_round: Option<Duration>,
    /// Call `reward` once per round (an orchestrator).
    pub reward: bool,
    /// Redeem the winning tickets queued in the database (an orchestrator).
    pub redeem: bool,
}

/// The started chain actors, for `/status`.
pub struct ChainActors {
    pub address: Option<Address>,
    pub blocks: Addr<BlockWatcher>,
    pub rounds: Addr<RoundWatcher>,
    pub registry: Option<Addr<OrchestratorRegistry>>,
    /// The ticket redeemer, when asked for; give it a listener for the face value in flight
    /// with [`SetPendingListener`].
    pub redeemer: Option<Addr<Redeemer>>,
}

impl ChainActors {
    /// Keep `senders` current: every block and log, every round.
    pub fn watch_senders(&self, senders: &Addr<SenderWatcher>) {
        self.blocks.do_send(Subscribe(senders.clone().recipient()));
        self.rounds.do_send(SubscribeRounds(senders.clone().recipient()));
    }

    /// Tell `senders` of this node's redemptions: the face value in flight per sender (for max
    /// float) and the gas a redemption costs (for face values).
    pub fn redemptions_to(&self, senders: &Addr<SenderWatcher>) {
        if let Some(redeemer) = &self.redeemer {
            redeemer.do_send(SetPendingListener(senders.clone().recipient()));
            redeemer.do_send(SetGasListener(senders.clone().recipient()));
        }
    }
}

/// Start the chain actors under `watchdog`: the block and round watchers always; the round
/// initializer, reward caller and ticket redeemer when asked; the orchestrator registry when
/// `discovery` (a gateway's orchestrator pool) is given.
pub fn start(
    client: Arc<ChainClient>,
    store: Store,
    settings: ChainSettings,
    discovery: Option<Recipient<SetOrchestrators>>,
    watchdog: &Watchdog,
) -> ChainActors {
    let c = client.contracts();
    let watched = vec![c.bonding_manager, c.rounds_manager, c.ticket_broker, c.service_registry];
    let watcher =
        BlockWatcher::new(client.provider().clone(), store.clone(), watched, topics(), settings.poll_interval)
            .endpoint(client.endpoint());
    let watcher = watchdog.start("block_watcher", Policy::Permanent, watcher);
    let rounds = watchdog.start("round_watcher", Policy::Permanent, RoundWatcher::new(client.clone()));
    watcher.do_send(Subscribe(rounds.clone().recipient()));
    if let Some(max_delay) = settings.initialize_round {
        let initializer = RoundInitializer::new(client.clone(), max_delay);
        let initializer = watchdog.start("round_initializer", Policy::Permanent, initializer);
        rounds.do_send(SubscribeRounds(initializer.recipient()));
    }
    if settings.reward {
        let caller = watchdog.start("reward_caller", Policy::Permanent, RewardCaller::new(client.clone()));
        rounds.do_send(SubscribeRounds(caller.recipient()));
    }
    let redeemer = settings.redeem.then(|| {
        let redeemer = watchdog.start("redeemer", Policy::Permanent, Redeemer::new(client.clone(), store.clone()));
        watcher.do_send(Subscribe(redeemer.clone().recipient()));
        redeemer
    });
    let registry = discovery.map(|pool| {
        let registry = OrchestratorRegistry::new(client.clone(), store, pool);
        let registry = watchdog.start("orchestrator_registry", Policy::Permanent, registry);
        rounds.do_send(SubscribeRounds(registry.clone().recipient()));
        registry
    });
    ChainActors { address: client.address(), blocks: watcher, rounds, registry, redeemer }
}

/// The events the node follows (go-livepeer's `eth/watchers/topics.go`).
pub fn topics() -> Vec<B256> {
    use lp_chain::bindings::{BondingManager as B, RoundsManager as R, ServiceRegistry as S, TicketBroker as T};
    vec![
        R::NewRound::SIGNATURE_HASH,
        B::Unbond::SIGNATURE_HASH,
        B::Rebond::SIGNATURE_HASH,
        B::WithdrawStake::SIGNATURE_HASH,
        B::TranscoderActivated::SIGNATURE_HASH,
        B::TranscoderDeactivated::SIGNATURE_HASH,
        T::DepositFunded::SIGNATURE_HASH,
        T::ReserveFunded::SIGNATURE_HASH,
        T::Withdrawal::SIGNATURE_HASH,
        T::WinningTicketTransfer::SIGNATURE_HASH,
        T::Unlock::SIGNATURE_HASH,
        T::UnlockCancelled::SIGNATURE_HASH,
        T::ReserveClaimed::SIGNATURE_HASH,
        S::ServiceURIUpdate::SIGNATURE_HASH,
    ]
}
