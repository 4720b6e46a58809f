//! The ticket primitives against the vectors in `tests/vectors/` (copied from the project's
//! shared vectors: go-livepeer's test values, and a ticket the real TicketBroker redeemed on a
//! local chain). No chain needed: these are the bytes the broker hashes and recovers.

use std::path::Path;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::signers::local::PrivateKeySigner;
use lp_chain::pm::{self, SignatureError, Ticket};
use serde_json::Value;

fn vectors(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn field<T: std::str::FromStr>(v: &Value, k: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}")).parse().unwrap()
}

fn ticket(v: &Value) -> Ticket {
    Ticket {
        recipient: field(v, "recipient"),
        sender: field(v, "sender"),
        faceValue: field(v, "faceValue"),
        winProb: field(v, "winProb"),
        senderNonce: field(v, "senderNonce"),
        recipientRandHash: field(v, "recipientRandHash"),
        auxData: field(v, "auxData"),
    }
}

#[test]
fn ticket_hashes_and_aux_data_match_go_livepeer() {
    let pm_vectors = vectors("pm-vectors.json");
    let cases = pm_vectors["ticketHash"].as_array().unwrap();
    assert!(cases.len() >= 3);
    for v in cases {
        assert_eq!(pm::ticket_hash(&ticket(v)), field::<B256>(v, "expectedHash"), "{v}");
    }
    for v in pm_vectors["auxData"].as_array().unwrap() {
        let expected: Bytes = field(v, "expected");
        if expected.is_empty() {
            continue; // go-livepeer's "no auxData"; the broker always takes 64 bytes
        }
        assert_eq!(pm::aux_data(field(v, "creationRound"), field(v, "creationRoundBlockHash")), expected);
    }
}

#[test]
fn win_probabilities_match_go_livepeer() {
    let cases = vectors("pm-vectors.json")["winProb"]["cases"].as_array().unwrap().clone();
    for v in &cases {
        assert_eq!(pm::win_prob(field(v, "ev"), field(v, "faceValue")), field::<U256>(v, "winProb"), "{v}");
    }
    assert_eq!(pm::win_prob(U256::from(5), U256::ZERO), U256::ZERO);
    assert_eq!(pm::win_prob(U256::MAX, U256::from(1)), U256::MAX, "saturates at always-wins");
}

#[test]
fn the_ticket_the_real_broker_redeemed_checks_out() {
    let real = vectors("real-contract-ticket.json");
    let t = ticket(&real["ticket"]);
    let hash = pm::ticket_hash(&t);
    assert_eq!(hash, field::<B256>(&real, "ticketHash"));
    let rand: U256 = field(&real, "recipientRand");
    assert_eq!(pm::recipient_rand_hash(rand), t.recipientRandHash);
    let sig: Bytes = field(&real, "sig");
    assert_eq!(pm::recover(hash, &sig), Ok(field::<Address>(&real, "signerAddress")));
    assert_eq!(pm::win_check_value(&sig, rand), U256::from_be_bytes(field::<B256>(&real, "winCheckValue").0));
    assert!(pm::is_winning(&sig, rand, t.winProb));
    assert!(!pm::is_winning(&sig, rand, pm::win_check_value(&sig, rand)), "the check is strictly less than");
}

/// Signatures are checked as OpenZeppelin's ECDSA does in the broker: 65 bytes, v 27 or 28, low
/// s, and the signer is the one who signed this hash.
#[test]
fn signatures_are_checked_like_the_broker_checks_them() {
    let v = &vectors("pm-vectors.json")["signature"];
    let (msg, sig): (B256, Bytes) = (field(v, "message"), field(v, "sig"));
    assert_eq!(pm::recover(msg, &sig), Ok(field::<Address>(v, "address")));

    // Our own signatures round-trip (anvil's dev key #2 is the real vector's sender).
    let key: PrivateKeySigner = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a".parse().unwrap();
    let real = vectors("real-contract-ticket.json");
    let hash = pm::ticket_hash(&ticket(&real["ticket"]));
    let ours = pm::sign(&key, hash).unwrap();
    assert_eq!(
        ours.as_slice(),
        field::<Bytes>(&real, "sig").as_ref(),
        "RFC 6979: the same bytes as the redeemed ticket"
    );
    assert_eq!(pm::recover(hash, &ours), Ok(key.address()));

    // Refused: the wrong length (EIP-2098 compact is 64), another v, the high-s twin, another hash.
    assert_eq!(pm::recover(hash, &ours[..64]), Err(SignatureError::Length(64)));
    let mut v0 = ours;
    v0[64] -= 27;
    assert_eq!(pm::recover(hash, &v0), Err(SignatureError::V(v0[64])));
    let n = U256::from_str_radix("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16).unwrap();
    let s = U256::from_be_slice(&ours[32..64]);
    let mut high = ours;
    high[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
    high[64] = if ours[64] == 27 { 28 } else { 27 };
    assert_eq!(pm::recover(hash, &high), Err(SignatureError::HighS));
    // s = n / 2 exactly is the largest OpenZeppelin takes: not refused as high.
    let mut half = ours;
    half[32..64].copy_from_slice(&(n >> 1usize).to_be_bytes::<32>());
    assert_ne!(pm::recover(hash, &half), Err(SignatureError::HighS));
    assert_ne!(pm::recover(B256::repeat_byte(7), &ours), Ok(key.address()));
}

/// The creation round is the first word of `auxData`; a shorter one (not the broker's 64 bytes)
/// reads as round 0 rather than panicking.
#[test]
fn the_creation_round_is_read_from_the_first_word_of_aux_data() {
    let real = vectors("real-contract-ticket.json");
    let mut winner = pm::WinningTicket {
        ticket: ticket(&real["ticket"]),
        sig: field(&real, "sig"),
        recipient_rand: U256::ZERO,
        params_expiration_block: 0,
    };
    let round = U256::from_be_slice(&winner.ticket.auxData[..32]).to::<u64>();
    assert!(round > 0);
    assert_eq!(winner.creation_round(), round);
    winner.ticket.auxData = Bytes::copy_from_slice(&winner.ticket.auxData[..32]);
    assert_eq!(winner.creation_round(), round, "one word is enough");
    winner.ticket.auxData = Bytes::copy_from_slice(&winner.ticket.auxData[..31]);
    assert_eq!(winner.creation_round(), 0);
}
