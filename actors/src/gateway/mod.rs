//! The gateway role: streams, their segments, orchestrator selection and HLS output.

#[allow(clippy::module_inception)]
pub mod gateway;
pub mod handle;
pub mod hls;
pub mod orchestrator_pool;
pub mod recorder;
pub mod stream_session;
pub mod ticket_sender;
pub mod transport;

pub use gateway::{End, Gateway, GatewayStatus, GetGatewayStatus, Push};
pub use handle::{AiPriceCaps, GatewayConfig, GatewayHandle, GatewayReport};
pub use hls::{HlsRegistry, RenditionListing, StreamListing};
pub use orchestrator_pool::{
    HasAlternatives, InferAi, ListOrchestrators, MAX_AI_TRIES, OrchestratorPool, OrchestratorSession,
    SelectOrchestrator, SetOrchestrators, Suspend,
};
pub use recorder::Recorder;
pub use stream_session::{IncomingSegment, SegmentDone, StreamSettings};
pub use ticket_sender::{PayError, SenderSettings, TicketSender};
pub use transport::{InProcess, LocalFirst, OrchestratorTransport, TransportError};
