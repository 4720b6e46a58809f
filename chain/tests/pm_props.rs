//! Properties of the payment rules (`reference/go-livepeer.md` §4) on random inputs: the expected
//! value of go-livepeer's win probability is the asked-for EV within an exact rounding bound; the
//! tickets' observed win rate matches their win probability; every ticket `sign_tickets` makes
//! passes `Recipient::check`, and one changed input fails it with go-livepeer's error.

use alloy::primitives::{Address, B256, U256, U512};
use alloy::signers::local::PrivateKeySigner;
use lp_chain::pm::params::expected_value;
use lp_chain::pm::sender::sign_tickets;
use lp_chain::pm::{self, Price, Recipient, SignatureError, Terms, TicketError, TicketParams};
use proptest::prelude::*;
use proptest::test_runner::Config;

fn config(cases: u32) -> Config {
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// A face value of any bit length (1 to 256 bits) and an EV in [1, face value], of any size
/// relative to it.
fn face_and_ev() -> impl Strategy<Value = (U256, U256)> {
    (any::<[u64; 4]>(), 0usize..256, any::<[u64; 4]>(), 0usize..256).prop_map(|(f, f_shift, e, e_shift)| {
        let face = (U256::from_limbs(f) >> f_shift).max(U256::from(1));
        let ev = (U256::from_limbs(e) >> e_shift) % face + U256::from(1);
        (face, ev)
    })
}

proptest! {
    #![proptest_config(config(4096))]

    /// With M = 2^256 − 1, q = ⌈M / f⌉ and r = f·q − M (0 ≤ r < f), win_prob = min(ev·q, M) and
    /// f·ev·q = ev·M + ev·r, so expected_value(f, win_prob) = ⌊f·win_prob / M⌋ is exactly
    /// min(f, ev + ⌊ev·r / M⌋) (saturated, it is f, and saturation means ev + ev·r/M > f). As r < f:
    /// ev ≤ got ≤ min(f, ev + ⌊ev·(f − 1) / M⌋), which is ev itself for every f ≤ 2^128 wei.
    #[test]
    fn expected_value_of_win_prob_is_ev_within_the_rounding_bound((face, ev) in face_and_ev()) {
        let m = U512::from(U256::MAX);
        let got = expected_value(face, pm::win_prob(ev, face));
        let (face5, ev5, got5) = (U512::from(face), U512::from(ev), U512::from(got));

        let q = U512::from(U256::MAX.div_ceil(face));
        let r = face5 * q - m;
        prop_assert!(r < face5);
        let exact = face5.min(ev5 + ev5 * r / m);
        prop_assert_eq!(got5, exact, "ev {} face {}", ev, face);

        let bound = ev5 * (face5 - U512::from(1)) / m;
        prop_assert!(got >= ev && got5 - ev5 <= bound && got <= face, "ev {} face {}: {}", ev, face, got);
        if face <= U256::from(1) << 128 {
            prop_assert_eq!(got, ev);
        }
    }
}

const KEY: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

/// Terms whose face value is 800 wei (100 × a redemption of 8 gas at 1 wei), so the win
/// probability is `ev` / 800.
fn terms(ev: u64) -> Terms {
    Terms {
        ev: U256::from(ev),
        gas_price: U256::from(1),
        redeem_gas: 8,
        max_float: U256::MAX,
        max_face_value: U256::ZERO,
        block: 500,
        round: 9,
        round_block_hash: B256::repeat_byte(0x99),
    }
}

/// `n` tickets at win probability `ev` / 800: the number that win is within 4 standard
/// deviations of n·p (binomial).
fn assert_win_rate(ev: u64, n: u32, seed: u8) {
    let signer: PrivateKeySigner = KEY.parse().unwrap();
    let recipient = Recipient::new(Address::repeat_byte(0xaa), [seed; 32]);
    let price = Price { per_unit: 3, pixels_per_unit: 7 };
    let params = recipient.issue(signer.address(), &terms(ev), price, B256::repeat_byte(seed)).unwrap();
    assert_eq!(params.face_value, U256::from(800));
    let p = (params.win_prob >> 192usize).to::<u64>() as f64 / 2f64.powi(64);
    assert!((p - ev as f64 / 800.0).abs() < 1e-12, "win probability {p}");

    let tickets = sign_tickets(&signer, &params, 1, n).unwrap();
    let mut wins = 0u32;
    for (nonce, sig) in &tickets {
        let checked = recipient.check(signer.address(), &params, price, *nonce, sig).unwrap();
        assert_eq!(checked.winning, pm::is_winning(sig, checked.recipient_rand, params.win_prob));
        wins += u32::from(checked.winning);
    }
    let (mean, sd) = (f64::from(n) * p, (f64::from(n) * p * (1.0 - p)).sqrt());
    assert!(
        (f64::from(wins) - mean).abs() <= 4.0 * sd,
        "{wins} of {n} tickets won at p = {p}: expected {mean:.0} ± {:.0} (4 sd)",
        4.0 * sd
    );
}

#[test]
fn the_win_rate_matches_a_win_probability_of_one_in_8() {
    assert_win_rate(100, 4000, 1);
}

#[test]
fn the_win_rate_matches_a_win_probability_of_one_in_50() {
    assert_win_rate(16, 5000, 2);
}

fn flip(b: B256, bit: usize) -> B256 {
    let mut b = b;
    b.0[bit / 8] ^= 1 << (bit % 8);
    b
}

/// One recipient, sender and price: what `check` says of ticket `nonce`'s signature `sig` on
/// `params` (or on a change of them).
struct Case<'a> {
    recipient: &'a Recipient,
    sender: Address,
    price: Price,
}

impl Case<'_> {
    fn with(&self, params: &TicketParams, nonce: u32, sig: &[u8]) -> Result<(), TicketError> {
        self.recipient.check(self.sender, params, self.price, nonce, sig).map(drop)
    }
}

/// The signature recovers another signer than the sender.
fn wrong_signer(sender: Address, result: &Result<(), TicketError>) -> bool {
    matches!(result, Err(TicketError::WrongSigner { sender: s, signer }) if *s == sender && *signer != sender)
}

/// The signature check refused the ticket: a bad signature, or another signer than the sender.
fn refused_signature(sender: Address, result: &Result<(), TicketError>) -> bool {
    matches!(result, Err(TicketError::Signature(_))) || wrong_signer(sender, result)
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn signed_tickets_pass_the_check_and_any_change_fails_it(
        key in any::<[u8; 32]>().prop_filter_map("a valid key", |k| PrivateKeySigner::from_bytes(&B256::from(k)).ok()),
        secret in any::<[u8; 32]>(),
        seed in any::<[u8; 32]>(),
        (per_unit, pixels_per_unit) in (1u64..1_000_000, 1u64..1_000_000),
        ev in 1u64..800,
        first_nonce in 0u32..u32::MAX - 8,
        count in 1u32..4,
        nonce_delta in 1u32..u32::MAX,
        other_sender in any::<[u8; 20]>().prop_filter("another sender", |a| *a != [0; 20]),
        bit in 0usize..256,
        sig_bit in 0usize..512,
        bad_v in any::<u8>().prop_filter("not 27 or 28", |v| *v != 27 && *v != 28),
    ) {
        let sender = key.address();
        prop_assume!(Address::from(other_sender) != sender);
        let recipient = Recipient::new(Address::repeat_byte(0xaa), secret);
        let price = Price { per_unit, pixels_per_unit };
        let params = recipient.issue(sender, &terms(ev), price, B256::from(seed)).unwrap();
        let case = Case { recipient: &recipient, sender, price };

        let tickets = sign_tickets(&key, &params, first_nonce, count).unwrap();
        prop_assert_eq!(tickets.len(), count as usize);
        for (i, (nonce, sig)) in tickets.iter().enumerate() {
            prop_assert_eq!(*nonce, first_nonce + i as u32);
            let checked = recipient.check(sender, &params, price, *nonce, sig).unwrap();
            prop_assert_eq!((checked.ticket.sender, checked.ticket.senderNonce), (sender, U256::from(*nonce)));
            prop_assert_eq!(pm::ticket_hash(&checked.ticket), pm::ticket_hash(&params.ticket(sender, *nonce)));
            prop_assert_eq!(pm::recipient_rand_hash(checked.recipient_rand), params.recipient_rand_hash);
            prop_assert_eq!(pm::recover(pm::ticket_hash(&checked.ticket), sig), Ok(sender));
        }
        let (nonce, sig) = tickets[0];

        // The same price as another fraction is the same price.
        let same = Price { per_unit: per_unit * 3, pixels_per_unit: pixels_per_unit * 3 };
        prop_assert!(recipient.check(sender, &params, same, nonce, &sig).is_ok());

        // Another nonce: the signature is of another ticket hash, so another key recovers from it.
        let other_nonce = case.with(&params, nonce.wrapping_add(nonce_delta), &sig);
        prop_assert!(wrong_signer(sender, &other_nonce), "another nonce: {:?}", other_nonce);

        // What recipientRand binds: price, sender, seed, and every parameter.
        let rand_err = Err(TicketError::InvalidRecipientRand);
        let other_price = Price { per_unit: per_unit + 1, pixels_per_unit };
        prop_assert_eq!(recipient.check(sender, &params, other_price, nonce, &sig).map(drop), rand_err.clone());
        prop_assert_eq!(
            recipient.check(Address::from(other_sender), &params, price, nonce, &sig).map(drop),
            rand_err.clone()
        );
        prop_assert_eq!(recipient.check(Address::ZERO, &params, price, nonce, &sig).map(drop), Err(TicketError::ZeroSender));
        let changed: [(&str, TicketParams); 7] = [
            ("seed", TicketParams { seed: flip(params.seed, bit), ..params.clone() }),
            ("face value", TicketParams { face_value: params.face_value + U256::from(1), ..params.clone() }),
            ("win prob", TicketParams { win_prob: params.win_prob ^ (U256::from(1) << bit), ..params.clone() }),
            ("expiration", TicketParams { expiration_block: params.expiration_block + 1, ..params.clone() }),
            ("round", TicketParams { creation_round: params.creation_round + 1, ..params.clone() }),
            (
                "round block hash",
                TicketParams { creation_round_block_hash: flip(params.creation_round_block_hash, bit), ..params.clone() },
            ),
            ("rand hash", TicketParams { recipient_rand_hash: flip(params.recipient_rand_hash, bit), ..params.clone() }),
        ];
        for (what, changed) in &changed {
            prop_assert_eq!(case.with(changed, nonce, &sig), rand_err.clone(), "{}", what);
        }
        let elsewhere = TicketParams { recipient: Address::repeat_byte(0xbb), ..params.clone() };
        let elsewhere = case.with(&elsewhere, nonce, &sig);
        prop_assert!(matches!(elsewhere, Err(TicketError::WrongRecipient { .. })), "another recipient: {:?}", elsewhere);
        let other_secret = Recipient::new(recipient.address(), secret.map(|b| !b));
        prop_assert_eq!(other_secret.check(sender, &params, price, nonce, &sig).map(drop), rand_err);

        // A tampered signature: one bit of r or s, the other v, a v that is neither, the high-s
        // twin, the wrong length, another signer.
        let mut tampered = sig;
        tampered[sig_bit / 8] ^= 1 << (sig_bit % 8);
        let tampered = case.with(&params, nonce, &tampered);
        prop_assert!(refused_signature(sender, &tampered), "bit {} flipped: {:?}", sig_bit, tampered);
        let mut other_v = sig;
        other_v[64] = if sig[64] == 27 { 28 } else { 27 };
        let flipped_v = case.with(&params, nonce, &other_v);
        prop_assert!(wrong_signer(sender, &flipped_v), "the other v: {:?}", flipped_v);
        let mut v = sig;
        v[64] = bad_v;
        prop_assert_eq!(case.with(&params, nonce, &v), Err(TicketError::Signature(SignatureError::V(bad_v))));
        let n = U256::from_be_bytes(secp256k1::constants::CURVE_ORDER);
        let mut high = other_v;
        high[32..64].copy_from_slice(&(n - U256::from_be_slice(&sig[32..64])).to_be_bytes::<32>());
        prop_assert_eq!(case.with(&params, nonce, &high), Err(TicketError::Signature(SignatureError::HighS)));
        prop_assert_eq!(case.with(&params, nonce, &sig[..64]), Err(TicketError::Signature(SignatureError::Length(64))));
        let other_key = PrivateKeySigner::random();
        let forged = pm::sign(&other_key, pm::ticket_hash(&params.ticket(sender, nonce))).unwrap();
        prop_assert_eq!(
            case.with(&params, nonce, &forged),
            Err(TicketError::WrongSigner { sender, signer: other_key.address() })
        );
    }
}
