//! HTTP surfaces (actix-web): thin handlers that translate requests into actor messages.

pub mod admin;
pub mod ai;
pub mod body;
pub mod gateway;
pub mod orchestrator;
pub mod player;
