//! The process's exit statuses (BSD `sysexits.h`), and which failure gets which.

use std::process::ExitCode;

use lp_actors::store::StoreError;
use lp_chain::error::ChainError;

/// An invalid configuration or setup (BSD `EX_USAGE`).
pub const EX_USAGE: u8 = 64;
/// An internal failure: an actor of the node failed for good (BSD `EX_SOFTWARE`).
pub const EX_SOFTWARE: u8 = 70;

/// An actor the node cannot run without kept panicking; the node stops.
#[derive(Debug, thiserror::Error)]
#[error("an actor failed for good, stopping the node: {0}")]
pub struct ActorFailed(pub String);

/// The exit status of a command that failed: 64, like an invalid config, when the operator's
/// setup is at fault (a keystore that does not decrypt, a data_dir made for another chain); 70
/// when an actor failed for good; else 1.
pub fn failure_status(e: &anyhow::Error) -> ExitCode {
    let setup = e.chain().any(|cause| {
        // The database's errors come through the store.
        let chain_error = cause
            .downcast_ref::<ChainError>()
            .or_else(|| cause.downcast_ref::<StoreError>().and_then(StoreError::chain_error));
        matches!(chain_error, Some(ChainError::Keystore(_) | ChainError::ChainIdMismatch { .. }))
    });
    if setup {
        ExitCode::from(EX_USAGE)
    } else if e.chain().any(|cause| cause.is::<ActorFailed>()) {
        ExitCode::from(EX_SOFTWARE)
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_gets_its_status() {
        let actor = anyhow::Error::from(ActorFailed("gateway: panicked 6 times".into())).context("running the node");
        assert_eq!(failure_status(&actor), ExitCode::from(EX_SOFTWARE));
        let mismatch = anyhow::Error::from(ChainError::ChainIdMismatch { stored: 1, actual: 2 });
        assert_eq!(failure_status(&mismatch.context("connecting")), ExitCode::from(EX_USAGE));
        assert_eq!(failure_status(&anyhow::anyhow!("the orchestrator refused this transcoder")), ExitCode::FAILURE);
    }
}
