//! Amounts in `livepeer chain` as an operator types them, on a devnet: a negative amount, a
//! fraction of a wei and a withdrawal of nothing are refused with a message and nothing is sent
//! (the account's nonce, read from the chain, does not move); a good amount goes through and
//! every amount of the JSON output comes formatted and in wei.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Devnet, chain_ok, livepeer_bin};
use serde_json::{Value, json};

fn chain(cfg: &Path, args: &[&str]) -> Output {
    Command::new(livepeer_bin()).args(["chain", "-c"]).arg(cfg).args(args).output().unwrap()
}

/// An account's transaction count, pending ones included, from the chain itself.
fn nonce(rpc: &str, address: &str) -> u64 {
    let body =
        json!({ "jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionCount", "params": [address, "pending"] });
    let answer: Value = common::http().post(rpc).json(&body).send().unwrap().json().unwrap();
    let hex = answer["result"].as_str().unwrap_or_else(|| panic!("{answer}"));
    u64::from_str_radix(hex.trim_start_matches("0x"), 16).unwrap()
}

/// `args` fails with a message holding every one of `words`, and sends nothing from `address`.
fn refused(cfg: &Path, rpc: &str, address: &str, args: &[&str], words: &[&str]) {
    let before = nonce(rpc, address);
    let out = chain(cfg, args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "chain {args:?} succeeded: {text}");
    for w in words {
        assert!(text.contains(w), "chain {args:?}: {w:?} missing from: {text}");
    }
    assert_eq!(nonce(rpc, address), before, "chain {args:?} sent a transaction: {text}");
}

#[test]
fn bad_amounts_and_empty_withdrawals_are_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let devnet_dir = dir.path().join("devnet");
    let port = lp_chain::anvil::free_port().unwrap().to_string();
    // Long rounds: the devnet's round stays initialized for the whole test.
    let out = Command::new(livepeer_bin())
        .args(["devnet", "--round-length", "500", "--port", &port, "--dir"])
        .arg(&devnet_dir)
        .output()
        .unwrap();
    let _guard = Devnet(devnet_dir.clone());
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let cfg = devnet_dir.join("gateway.toml");
    let config: toml::Table = toml::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    let rpc = config["eth"]["url"].as_str().unwrap().to_string();
    let status = chain_ok(&cfg, &["status"]);
    let me = status["address"].as_str().unwrap().to_string();

    // Negative amounts: they used to wrap around to 2^256 - 5.
    refused(&cfg, &rpc, &me, &["bond", "-5"], &["<AMOUNT>", "negative"]);
    refused(&cfg, &rpc, &me, &["fund", "--deposit", "-5"], &["--deposit", "negative"]);
    refused(&cfg, &rpc, &me, &["withdraw-fees", "--amount", "-0.5"], &["--amount", "negative"]);
    // Less than a wei: it used to round down to 0 and send the transaction anyway.
    refused(&cfg, &rpc, &me, &["fund", "--deposit", "0.0000000000000000001"], &["--deposit", "19 decimals", "wei"]);
    refused(&cfg, &rpc, &me, &["fund", "--reserve", "0.5 wei"], &["--reserve", "fraction of a wei"]);
    refused(&cfg, &rpc, &me, &["unbond", "1e18"], &["<AMOUNT>", "not a unit of LPT"]);
    // Zero where zero means nothing.
    refused(&cfg, &rpc, &me, &["fund"], &["nothing to fund"]);
    refused(&cfg, &rpc, &me, &["unbond", "0"], &["AMOUNT must be above 0"]);
    // Nothing to take out: refused with the reason, instead of a transaction that moves nothing.
    refused(&cfg, &rpc, &me, &["withdraw-fees"], &["no fees to withdraw", &me]);
    refused(&cfg, &rpc, &me, &["withdraw-fees", "--amount", "1"], &["no fees to withdraw"]);
    refused(&cfg, &rpc, &me, &["withdraw"], &["nothing to withdraw"]);
    refused(&cfg, &rpc, &me, &["unlock"], &["nothing to unlock"]);
    refused(&cfg, &rpc, &me, &["unbond", "1"], &["nothing to unbond"]);

    // A good amount, with units, goes through; the output has it formatted and in wei.
    let before = nonce(&rpc, &me);
    let funded = chain_ok(&cfg, &["fund", "--deposit", "0.5", "--reserve", "20 gwei"]);
    assert_eq!(nonce(&rpc, &me), before + 1);
    assert_eq!(funded["deposit_added"], "0.5 ETH", "{funded}");
    assert_eq!(funded["deposit_added_wei"], "500000000000000000", "{funded}");
    assert_eq!(funded["reserve_added"], "0.00000002 ETH", "{funded}");
    assert_eq!(funded["reserve_added_wei"], "20000000000", "{funded}");
    let status = chain_ok(&cfg, &["status"]);
    assert_eq!(status["tickets"]["deposit"], "0.5 ETH", "{status}");
    assert_eq!(status["tickets"]["deposit_wei"], "500000000000000000", "{status}");
    for (section, key) in [("orchestrator", "total_stake"), ("delegator", "pending_fees"), ("balances", "lpt")] {
        let wei = &status[section][format!("{key}_wei")];
        assert!(wei.as_str().is_some_and(|w| w.bytes().all(|b| b.is_ascii_digit())), "{section}.{key}_wei: {status}");
        assert!(status[section][key].as_str().is_some_and(|s| s.ends_with(" LPT") || s.ends_with(" ETH")), "{status}");
    }
    // People read the formatted amounts only.
    let readable = String::from_utf8_lossy(&chain(&cfg, &["status"]).stdout).to_string();
    assert!(readable.contains("0.5 ETH") && !readable.contains("wei"), "{readable}");
}
