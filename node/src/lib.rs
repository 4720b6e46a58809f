//! # lp-node: the `livepeer` binary's roles, HTTP surfaces and CLI
//!
//! Assembles the gateway, orchestrator and transcoder roles from `lp-actors`, serves their HTTP
//! surfaces with actix-web, speaks the MessagePack wire protocol to other nodes over HTTP(S) and
//! WebSocket, and runs the demo.

pub mod ai;
pub mod ai_worker;
pub mod bench;
pub mod chain_cli;
pub mod cli;
pub mod client;
pub mod demo;
pub mod devnet;
pub mod exit;
pub mod http;
pub mod ingest;
pub mod node;
pub mod remote_transcoder;
pub mod rtmp;
pub mod telemetry;
pub mod tls;
pub mod transcoder;
pub mod webhook;
