//! `livepeer chain tickets --json`: the orchestrator's winning tickets, read from the node's
//! database with neither the node nor the RPC endpoint running.

mod common;

use std::process::Command;

use alloy::primitives::{Address, B256, Bytes, U256};
use common::livepeer_bin;
use lp_chain::db::{Db, TicketOutcome};
use lp_chain::pm::{Ticket, WinningTicket, aux_data, recipient_rand_hash, ticket_hash};
use serde_json::Value;

fn ticket(nonce: u64) -> WinningTicket {
    WinningTicket {
        ticket: Ticket {
            recipient: Address::repeat_byte(1),
            sender: Address::repeat_byte(2),
            faceValue: U256::from(25u64) * U256::from(10u64).pow(U256::from(16u64)),
            winProb: U256::MAX,
            senderNonce: U256::from(nonce),
            recipientRandHash: recipient_rand_hash(U256::from(9)),
            auxData: aux_data(3, B256::repeat_byte(4)),
        },
        sig: Bytes::from(vec![7; 65]),
        recipient_rand: U256::from(9),
        params_expiration_block: 50,
    }
}

#[test]
fn chain_tickets_lists_the_database_without_a_node_or_an_rpc_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let password = dir.path().join("password");
    std::fs::write(&password, "secret").unwrap();
    let config = dir.path().join("node.toml");
    // Nothing listens on the RPC URL.
    std::fs::write(
        &config,
        format!(
            "network = \"custom\"\ndata_dir = {data:?}\n[eth]\nurl = \"http://127.0.0.1:1\"\n\
             controller = \"0x0000000000000000000000000000000000000001\"\npassword_file = {password:?}\n\
             [orchestrator]\nservice_addr = \"127.0.0.1:0\"\n"
        ),
    )
    .unwrap();
    let tx = B256::repeat_byte(0xbb);
    {
        let db = Db::open_in(&data).unwrap();
        db.queue_winning_ticket(&ticket(1)).unwrap();
        db.queue_winning_ticket(&ticket(2)).unwrap();
        let done = TicketOutcome::Redeemed {
            tx: Some(tx),
            gas_used: Some(140_000),
            paid: Some(ticket(1).ticket.faceValue),
            note: None,
        };
        db.record_ticket_outcome(ticket_hash(&ticket(1).ticket), &done).unwrap();
        let retry = TicketOutcome::Retry {
            error: "reverted: sender deposit and reserve are zero".into(),
            next_attempt_block: 60,
        };
        db.record_ticket_outcome(ticket_hash(&ticket(2).ticket), &retry).unwrap();
    }

    let out =
        Command::new(livepeer_bin()).args(["chain", "--json", "-c"]).arg(&config).arg("tickets").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!((v["pending"].as_u64(), v["redeemed"].as_u64(), v["failed"].as_u64()), (Some(1), Some(1), Some(0)));
    let tickets = v["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 2);
    let (pending, redeemed) = (&tickets[0], &tickets[1]);
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["sender_nonce"], "2");
    assert_eq!(pending["attempts"], 1);
    assert_eq!(pending["next_attempt_block"], 60);
    assert_eq!(pending["last_error"], "reverted: sender deposit and reserve are zero");
    assert_eq!(pending["face_value"], "0.25 ETH");
    assert_eq!(pending["sender"], Address::repeat_byte(2).to_string());
    assert_eq!(redeemed["status"], "redeemed");
    assert_eq!(redeemed["tx_hash"], tx.to_string());
    assert_eq!(redeemed["gas_used"], 140_000);
    assert_eq!(redeemed["paid_wei"], "250000000000000000");

    // The readable form names them too.
    let out = Command::new(livepeer_bin()).args(["chain", "-c"]).arg(&config).arg("tickets").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("redeemed") && text.contains("0.25 ETH"), "{text}");
}
