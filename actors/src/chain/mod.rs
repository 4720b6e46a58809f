//! The chain side of the node: block and round watchers, round initializer, reward caller.

pub mod block_watcher;
pub mod orchestrator_registry;
pub mod reward_caller;
pub mod round_initializer;
pub mod round_watcher;

pub use block_watcher::{BlockWatcher, ChainEvent, PollNow, RpcCall, Subscribe, WatchError};
pub use orchestrator_registry::{GetPool, OrchestratorRegistry};
pub use reward_caller::RewardCaller;
pub use round_initializer::RoundInitializer;
pub use round_watcher::{GetRound, RoundChanged, RoundWatcher, SubscribeRounds};
