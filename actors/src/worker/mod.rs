//! The worker roles (a transcoder process, an AI worker process): the link to the orchestrator
//! and the local workers that run its jobs.

pub mod orchestrator_link;

pub use orchestrator_link::{Connection, Health, HealthStatus, LinkSettings, LocalPool, Refused, WorkerFrame, run};
