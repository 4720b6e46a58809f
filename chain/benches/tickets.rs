//! Ticket bench, one thread (per core): ticket creation + signing (`sign_tickets`) and the
//! recipient's validation (`Recipient::check`: HMAC recipientRand, its hash, the ticket hash,
//! EIP-191, ecrecover with the broker's checks, the win check) beside raw libsecp256k1 (the C
//! library, through the `secp256k1` crate) signing and recovering the same 32-byte EIP-191
//! digests, in one run.
//!
//! Run with `cargo bench -p lp-chain --bench tickets`. Environment:
//! * `TICKETS_N` (default 4000): tickets per round;
//! * `TICKETS_ROUNDS` (default 7): timed rounds, after one warm-up; each round runs the four
//!   measurements one after the other (create+sign, raw sign, validation, raw recover) so machine
//!   noise hits them alike. Medians are reported.
//!
//! Prints one line per measurement, the ratios validation / raw recover (target ≥ 0.9) and
//! create+sign / raw sign, and one JSON line (prefixed `{"bench":"tickets"`). Asserts that every
//! ticket validates and that the raw recoveries give the sender's key.

use std::hint::black_box;
use std::time::Instant;

use alloy::primitives::{Address, B256, Signature, U256, eip191_hash_message};
use alloy::signers::local::PrivateKeySigner;
use lp_chain::pm::{self, Price, Recipient, Terms, sender::sign_tickets};
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::{Message, PublicKey, SECP256K1, SecretKey};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// Operations per second of `n` calls of `f`.
fn rate(n: usize, mut f: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let n = env_usize("TICKETS_N", 4000);
    let rounds = env_usize("TICKETS_ROUNDS", 7);

    // Anvil's dev key #2 (the real vector's sender), a recipient, realistic terms: EV 1e12 wei,
    // 1 gwei gas, 1.2M gas a redemption (face value 1.2e17, win probability ~1/120000).
    let signer: PrivateKeySigner =
        "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a".parse().unwrap();
    let sender = signer.address();
    let recipient = Recipient::new(Address::repeat_byte(0x11), [7; 32]);
    let terms = Terms {
        ev: U256::from(1_000_000_000_000u64),
        gas_price: U256::from(1_000_000_000u64),
        redeem_gas: 1_200_000,
        max_float: U256::MAX,
        max_face_value: U256::ZERO,
        block: 1000,
        round: 42,
        round_block_hash: B256::repeat_byte(0x42),
    };
    let price = Price { per_unit: 1200, pixels_per_unit: 1 };
    let params = recipient.issue(sender, &terms, price, B256::repeat_byte(0x5e)).unwrap();
    let count = u32::try_from(n).expect("TICKETS_N fits a u32");

    // The tickets, and the digests libsecp256k1 signs for them (EIP-191 of the ticket hash).
    let tickets = sign_tickets(&signer, &params, 1, count).unwrap();
    let digests: Vec<Message> = tickets
        .iter()
        .map(|&(nonce, _)| {
            let hash = pm::ticket_hash(&params.ticket(sender, nonce));
            Message::from_digest(eip191_hash_message(hash).0)
        })
        .collect();
    let secret = SecretKey::from_byte_array(signer.to_bytes().0).unwrap();
    let public = PublicKey::from_secret_key(SECP256K1, &secret);
    let raw_sigs: Vec<RecoverableSignature> =
        digests.iter().map(|&m| SECP256K1.sign_ecdsa_recoverable(m, &secret)).collect();
    // The same signatures as alloy's as r ‖ s ‖ v (RFC 6979 both), for alloy's k256 recovery.
    let alloy_sigs: Vec<Signature> = tickets.iter().map(|(_, sig)| Signature::from_raw_array(sig).unwrap()).collect();
    for (i, raw) in raw_sigs.iter().enumerate() {
        let (id, rs) = raw.serialize_compact();
        assert_eq!(&rs[..], &tickets[i].1[..64], "libsecp256k1 and pm::sign agree (RFC 6979)");
        assert_eq!(tickets[i].1[64], 27 + u8::from(id == RecoveryId::One));
    }
    let mut winners = 0;
    for (nonce, sig) in &tickets {
        winners += usize::from(recipient.check(sender, &params, price, *nonce, sig).expect("valid ticket").winning);
    }

    let mut create_sign = Vec::new();
    let mut raw_sign = Vec::new();
    let mut validate = Vec::new();
    let mut raw_recover = Vec::new();
    let mut alloy_recover = Vec::new();
    for round in 0..=rounds {
        let a = {
            let start = Instant::now();
            black_box(sign_tickets(&signer, black_box(&params), 1, count).unwrap());
            n as f64 / start.elapsed().as_secs_f64()
        };
        let c = rate(n, |i| {
            black_box(SECP256K1.sign_ecdsa_recoverable(black_box(digests[i]), &secret));
        });
        let b = rate(n, |i| {
            let (nonce, sig) = &tickets[i];
            black_box(recipient.check(sender, black_box(&params), price, *nonce, sig).unwrap());
        });
        let d = rate(n, |i| {
            let key = SECP256K1.recover_ecdsa(black_box(digests[i]), &raw_sigs[i]).unwrap();
            assert!(key == public);
        });
        let e = rate(n, |i| {
            black_box(alloy_sigs[i].recover_address_from_prehash(&B256::from(*digests[i].as_ref())).unwrap());
        });
        if round > 0 {
            create_sign.push(a);
            raw_sign.push(c);
            validate.push(b);
            raw_recover.push(d);
            alloy_recover.push(e);
        }
    }
    let (a, c, b, d, e) =
        (median(create_sign), median(raw_sign), median(validate), median(raw_recover), median(alloy_recover));

    println!("tickets, one thread, {n} tickets x {rounds} rounds (medians), {winners} winners:");
    println!("  create + sign   (sign_tickets)               {a:>9.0} /s");
    println!("  raw sign        (libsecp256k1, same digests) {c:>9.0} /s");
    println!("  validation      (Recipient::check)           {b:>9.0} /s");
    println!("  raw recover     (libsecp256k1, same digests) {d:>9.0} /s");
    println!("  alloy recover   (recover_address_from_prehash, k256) {e:>9.0} /s");
    println!("  validation / raw recover = {:.3} (target >= 0.9)", b / d);
    println!("  create+sign / raw sign   = {:.3}", a / c);
    let json = serde_json::json!({
        "bench": "tickets",
        "tickets": n,
        "rounds": rounds,
        "per_second": {
            "create_sign": a,
            "raw_sign": c,
            "validation": b,
            "raw_recover": d,
            "alloy_k256_recover": e,
        },
        "validation_over_raw_recover": b / d,
        "create_sign_over_raw_sign": a / c,
    });
    println!("{json}");
}
