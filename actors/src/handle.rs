//! What a call through a role's handle ([`crate::gateway::GatewayHandle`],
//! [`crate::orchestrator::OrchestratorHandle`]) can fail with: the role's own refusal, or the
//! role not answering at all. Callers (the HTTP surfaces) never see actix's `MailboxError`.

use lp_wire::TranscodeFailure;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The role answered with a refusal or a failure.
    #[error("{0}")]
    Refused(TranscodeFailure),
    /// The role stopped (the node is shutting down) or dropped the call in a restart.
    #[error("the {0} stopped before answering")]
    Stopped(&'static str),
}
