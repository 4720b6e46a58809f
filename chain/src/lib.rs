//! # lp-chain: the blockchain layer of livepeer-rs
//!
//! The Livepeer contracts through alloy: bindings from the real ABIs, address resolution through
//! `Controller.getContract`, accounts (JSON keystore), transactions (gas policy, nonces,
//! replacement of stuck transactions, revert reasons), the ticket primitives bit-exact with
//! `TicketBroker` ([`pm`]), and our own devnet contracts with the same ABIs. Knows nothing of
//! actors or media.

pub mod anvil;
pub mod bindings;
pub mod client;
pub mod contracts;
pub mod db;
pub mod devnet;
pub mod error;
pub mod keystore;
pub mod networks;
pub mod pm;
pub mod tx;
