//! Ticket bench, one thread (per core): ticket creation + signing (`sign_tickets`; and
//! `params.ticket` + `pm::sign` one ticket at a time) and the recipient's validation
//! (`Recipient::check`: HMAC recipientRand, its hash, the ticket hash, EIP-191, ecrecover with the
//! broker's checks, the win check) beside raw libsecp256k1 (the C library, through the
//! `secp256k1` crate) signing and recovering the same 32-byte EIP-191 digests, in one run.
//!
//! Run with `cargo bench -p lp-chain --bench tickets`. Environment:
//! * `TICKETS_N` (default 2000): tickets made (and their digests signed raw) for the run;
//! * `TICKETS_CHUNK` (default 50): operations timed together;
//! * `TICKETS_CHUNKS` (default 300): chunks of each measurement. The measurements take turns
//!   chunk by chunk (create+sign both ways, raw sign, validation, raw recover, alloy's recover;
//!   each chunk timed after an untimed one of the same), so machine noise hits them alike, and a
//!   chunk (a few milliseconds) is short enough that many run undisturbed on a busy machine:
//!   each rate is that of its fastest chunk (the median chunk's is printed beside it), and the
//!   ratios are of the fastest chunks.
//!
//! Prints one line per measurement (and alloy's own k256 recovery, for comparison), the ratios
//! validation / raw recover (target ≥ 0.9) and create+sign / raw sign, and one JSON line
//! (prefixed `{"bench":"tickets"`). Asserts that every ticket validates, that `pm::sign` makes
//! libsecp256k1's bytes and that the raw recoveries give the sender's key.

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

/// A measurement: its JSON key, its label, and what it runs on `chunk` tickets from an index on.
type Op<'a> = (&'static str, &'static str, Box<dyn Fn(usize) + 'a>);

/// The rates (per second) of the fastest and of the median chunk.
fn best_and_median(mut per_op: Vec<f64>) -> (f64, f64) {
    per_op.sort_by(f64::total_cmp);
    (1.0 / per_op[0], 1.0 / per_op[per_op.len() / 2])
}

fn main() {
    let n = env_usize("TICKETS_N", 2000);
    let chunk = env_usize("TICKETS_CHUNK", 50).min(n);
    let chunks = env_usize("TICKETS_CHUNKS", 300);

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

    // Each runs `chunk` operations from ticket `at` on.
    let ops: [Op<'_>; 6] = [
        (
            "create_sign",
            "create + sign  sign_tickets",
            Box::new(|at| {
                black_box(sign_tickets(&signer, black_box(&params), at as u32 + 1, chunk as u32).unwrap());
            }),
        ),
        (
            "create_sign_one_by_one",
            "create + sign  params.ticket + pm::sign, one by one",
            Box::new(|at| {
                for nonce in at..at + chunk {
                    let ticket = params.ticket(sender, black_box(nonce as u32 + 1));
                    black_box(pm::sign(&signer, pm::ticket_hash(&ticket)).unwrap());
                }
            }),
        ),
        (
            "raw_sign",
            "raw sign       libsecp256k1, the same digests",
            Box::new(|at| {
                for digest in &digests[at..at + chunk] {
                    black_box(SECP256K1.sign_ecdsa_recoverable(black_box(*digest), &secret));
                }
            }),
        ),
        (
            "validation",
            "validation     Recipient::check",
            Box::new(|at| {
                for (nonce, sig) in &tickets[at..at + chunk] {
                    black_box(recipient.check(sender, black_box(&params), price, *nonce, sig).unwrap());
                }
            }),
        ),
        (
            "raw_recover",
            "raw recover    libsecp256k1, the same digests",
            Box::new(|at| {
                for (digest, sig) in digests[at..at + chunk].iter().zip(&raw_sigs[at..]) {
                    let key = SECP256K1.recover_ecdsa(black_box(*digest), sig).unwrap();
                    assert!(key == public);
                }
            }),
        ),
        (
            "alloy_k256_recover",
            "(alloy k256    Signature::recover_address_from_prehash)",
            Box::new(|at| {
                for (digest, sig) in digests[at..at + chunk].iter().zip(&alloy_sigs[at..]) {
                    black_box(sig.recover_address_from_prehash(&B256::from(*digest.as_ref())).unwrap());
                }
            }),
        ),
    ];
    let mut per_op: Vec<Vec<f64>> = vec![Vec::with_capacity(chunks); ops.len()];
    for round in 0..=chunks {
        let at = (round * chunk) % (n - chunk + 1);
        for ((_, _, op), times) in ops.iter().zip(&mut per_op) {
            // Once untimed: the first chunk after another measurement runs with caches full of
            // that one's code and tables (a few percent slower, whichever comes first).
            op(at);
            let start = Instant::now();
            op(at);
            if round > 0 {
                times.push(start.elapsed().as_secs_f64() / chunk as f64);
            }
        }
    }
    let rates: Vec<(f64, f64)> = per_op.into_iter().map(best_and_median).collect();
    let rate = |name: &str| rates[ops.iter().position(|(key, _, _)| *key == name).unwrap()];
    let (validation, recover, create, sign) =
        (rate("validation"), rate("raw_recover"), rate("create_sign"), rate("raw_sign"));

    println!(
        "tickets, one thread, {chunks} chunks of {chunk} operations each, {winners} winners in {n} tickets \
         (fastest chunk, median chunk):"
    );
    for ((_, label, _), (best, median)) in ops.iter().zip(&rates) {
        println!("  {label:<56} {best:>8.0} /s  {median:>8.0} /s");
    }
    println!(
        "  validation / raw recover = {:.3} (target >= 0.9; median chunks {:.3})",
        validation.0 / recover.0,
        validation.1 / recover.1
    );
    println!("  create+sign / raw sign   = {:.3} (median chunks {:.3})", create.0 / sign.0, create.1 / sign.1);
    let per_second: serde_json::Map<String, serde_json::Value> = ops
        .iter()
        .zip(&rates)
        .map(|((key, _, _), (best, median))| (key.to_string(), serde_json::json!({"best": best, "median": median})))
        .collect();
    let json = serde_json::json!({
        "bench": "tickets",
        "tickets": n,
        "chunk": chunk,
        "chunks": chunks,
        "per_second": per_second,
        "validation_over_raw_recover": validation.0 / recover.0,
        "create_sign_over_raw_sign": create.0 / sign.0,
        "median_chunk_ratios": {
            "validation_over_raw_recover": validation.1 / recover.1,
            "create_sign_over_raw_sign": create.1 / sign.1,
        },
    });
    println!("{json}");
}
