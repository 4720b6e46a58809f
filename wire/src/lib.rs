//! # lp-wire: what livepeer-rs nodes say to each other
//!
//! A leaf crate (it depends on no crate of ours), so that the wire format changes only when this
//! crate does: a rename in the compute or actor layers cannot change what goes over the network.
//!
//! - [`messages`]: gateway ↔ orchestrator messages, field for field go-livepeer's
//!   `net/lp_rpc.proto` (SPEC §3), and the stable [`ErrorCode`]s;
//! - [`profile`]: the video profile and container as they travel ([`VideoProfile`], [`Container`]);
//! - [`capability`]: go-livepeer's capability bits and the matching rule;
//! - [`worker`]: the orchestrator ↔ worker frames (registration, transcode and inference jobs);
//! - [`headers`]: HTTP header names and content types;
//! - [`limits`]: every protocol limit and timeout, defined once;
//! - [`ai`]: the AI gateway API (pipelines, their requests as parsed from HTTP bodies, responses
//!   and errors in the spec's JSON, and what a request costs), over [`multipart`]'s
//!   `multipart/form-data` parser;
//! - [`codec`]: the [`Codec`] trait and its MessagePack implementation (a protobuf codec for
//!   go-livepeer interoperability can sit beside it).

pub mod ai;
pub mod capability;
pub mod codec;
pub mod headers;
pub mod limits;
pub mod messages;
pub mod multipart;
pub mod profile;
pub mod worker;

pub use capability::{Capabilities, ModelConstraint};
pub use codec::{Codec, DecodeError, MsgPack, decode, encode};
pub use limits::{MAX_DEPTH, MAX_PATIENCE, segment_timeout};
pub use messages::*;
pub use profile::{Container, H264Profile, VideoProfile};
pub use worker::{OrchestratorMessage, TranscoderMessage, Work, WorkOutcome};
