//! # lp-testkit: what the test suites of livepeer-rs share
//!
//! Dev-only (no crate's `[dependencies]` names it). Real tools, no fakes: test media is made with
//! the `ffmpeg` CLI and checked with `ffprobe`, so a test's input and its verdict come from
//! software nobody here wrote.
//!
//! - [`media`]: segments made with ffmpeg, and what ffprobe sees in a file or in bytes;
//! - [`fuzz`]: the fuzz runner every fuzz target uses (bounded under `cargo test`, timed under
//!   `make fuzz`);
//! - [`multipart`]: a parser for the gateway's `multipart/mixed` answers and a builder of
//!   `multipart/form-data` request bodies (the AI API's);
//! - [`net`]: a TCP proxy a test can take down and bring back.

pub mod fuzz;
pub mod media;
pub mod multipart;
pub mod net;
