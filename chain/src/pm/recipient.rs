//! The recipient's side of a ticket (`reference/go-livepeer.md` §4.3, §4.6): `recipientRand`
//! derived with HMAC-SHA256 from a secret and the parameters' seed (so the recipient keeps no
//! state per parameters, and a secret kept across restarts keeps every issued parameter valid),
//! the checks of one ticket in go-livepeer's order, and replay protection.

use std::collections::{HashMap, HashSet};

use alloy::primitives::{Address, B256, U256};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::params::{PARAMS_EXPIRY_BLOCKS, ParamsError, Price, Terms, TicketParams, value_and_prob};
use super::{SignatureError, Ticket, is_winning, recipient_rand_hash, recover, ticket_hash};

/// Tickets one set of parameters takes (nonces per `recipientRand`). go-livepeer's 600 broke
/// large payments (go-livepeer #4028); a sender asks for new parameters before reaching this.
pub const MAX_SENDER_NONCES: usize = 10_000;

/// Why a ticket is refused. Each has its own `code` (the `error_code` metrics label).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("ticket recipient {got} is not this orchestrator ({expected})")]
    WrongRecipient { expected: Address, got: Address },
    #[error("ticket sender is the zero address")]
    ZeroSender,
    #[error("invalid recipientRand: the parameters were not issued by this orchestrator to this sender at this price")]
    InvalidRecipientRand,
    #[error("invalid ticket signature: {0}")]
    Signature(SignatureError),
    #[error("invalid ticket signature: signed by {signer}, not the sender {sender}")]
    WrongSigner { sender: Address, signer: Address },
    #[error("ticket nonce {0} was already used with these parameters (replay)")]
    Replayed(u32),
    #[error("too many tickets ({MAX_SENDER_NONCES}) on one set of parameters")]
    TooManyNonces,
    #[error("TicketParams expired: they were valid until block {expiration_block}, the chain is at {block}")]
    Expired { expiration_block: u64, block: u64 },
}

impl TicketError {
    /// A stable name for metrics labels and logs.
    pub fn code(&self) -> &'static str {
        match self {
            TicketError::WrongRecipient { .. } => "WrongRecipient",
            TicketError::ZeroSender => "ZeroSender",
            TicketError::InvalidRecipientRand => "InvalidRecipientRand",
            TicketError::Signature(_) | TicketError::WrongSigner { .. } => "InvalidSignature",
            TicketError::Replayed(_) => "Replayed",
            TicketError::TooManyNonces => "TooManyNonces",
            TicketError::Expired { .. } => "Expired",
        }
    }
}

/// A ticket that passed the checks.
#[derive(Clone)]
pub struct CheckedTicket {
    pub ticket: Ticket,
    pub sig: Vec<u8>,
    pub recipient_rand: U256,
    pub winning: bool,
}

/// This orchestrator as a ticket recipient: its address and its HMAC secret (kept as the keyed
/// HMAC state, so each ticket hashes only its own bytes).
#[derive(Clone)]
pub struct Recipient {
    address: Address,
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recipient").field("address", &self.address).finish_non_exhaustive()
    }
}

impl Recipient {
    pub fn new(address: Address, secret: [u8; 32]) -> Recipient {
        let mac = Hmac::<Sha256>::new_from_slice(&secret).expect("HMAC takes any key length");
        Recipient { address, mac }
    }

    pub fn address(&self) -> Address {
        self.address
    }

    /// Parameters for `sender` at `price`, valid for [`PARAMS_EXPIRY_BLOCKS`] blocks.
    pub fn issue(&self, sender: Address, terms: &Terms, price: Price, seed: B256) -> Result<TicketParams, ParamsError> {
        if terms.round_block_hash.is_zero() {
            return Err(ParamsError::NoRound);
        }
        let (face_value, win_prob) = value_and_prob(terms, price)?;
        let mut params = TicketParams {
            recipient: self.address,
            face_value,
            win_prob,
            recipient_rand_hash: B256::ZERO,
            seed,
            expiration_block: terms.block + PARAMS_EXPIRY_BLOCKS,
            creation_round: terms.round,
            creation_round_block_hash: terms.round_block_hash,
        };
        params.recipient_rand_hash = recipient_rand_hash(self.rand(sender, &params, price));
        Ok(params)
    }

    /// `recipientRand`: HMAC-SHA256(secret, seed ‖ sender ‖ faceValue ‖ winProb ‖
    /// expirationBlock ‖ price numerator ‖ price denominator ‖ auxData), big integers as minimal
    /// big-endian bytes (go-livepeer's `big.Int.Bytes()`).
    pub fn rand(&self, sender: Address, params: &TicketParams, price: Price) -> U256 {
        let mut mac = self.mac.clone();
        let (num, den) = price.reduced();
        mac.update(params.seed.as_slice());
        mac.update(sender.as_slice());
        for n in
            [params.face_value, params.win_prob, U256::from(params.expiration_block), U256::from(num), U256::from(den)]
        {
            let bytes = n.to_be_bytes::<32>();
            mac.update(&bytes[n.leading_zeros() / 8..]);
        }
        // auxData (`aux_data`), without building it.
        mac.update(&U256::from(params.creation_round).to_be_bytes::<32>());
        mac.update(params.creation_round_block_hash.as_slice());
        U256::from_be_slice(&mac.finalize().into_bytes())
    }

    /// Check one ticket in go-livepeer's order: recipient, sender, recipientRand, signature; then
    /// whether it wins. Replays and expiry are the caller's ([`NonceBook`], the chain head).
    pub fn check(
        &self,
        sender: Address,
        params: &TicketParams,
        price: Price,
        nonce: u32,
        sig: &[u8],
    ) -> Result<CheckedTicket, TicketError> {
        if params.recipient != self.address {
            return Err(TicketError::WrongRecipient { expected: self.address, got: params.recipient });
        }
        if sender == Address::ZERO {
            return Err(TicketError::ZeroSender);
        }
        let rand = self.rand(sender, params, price);
        if recipient_rand_hash(rand) != params.recipient_rand_hash {
            return Err(TicketError::InvalidRecipientRand);
        }
        let ticket = params.ticket(sender, nonce);
        let signer = recover(ticket_hash(&ticket), sig).map_err(TicketError::Signature)?;
        if signer != sender {
            return Err(TicketError::WrongSigner { sender, signer });
        }
        let winning = is_winning(sig, rand, params.win_prob);
        Ok(CheckedTicket { ticket, sig: sig.to_vec(), recipient_rand: rand, winning })
    }
}

/// The nonces seen per set of parameters, forgotten once the parameters expire: a ticket on
/// expired parameters is refused anyway, so memory stays bounded by the parameters alive.
#[derive(Debug, Default)]
pub struct NonceBook {
    seen: HashMap<B256, (u64, HashSet<u32>)>,
}

impl NonceBook {
    /// Record `nonce` for the parameters `rand_hash` (valid until `expiration_block`).
    pub fn record(&mut self, rand_hash: B256, expiration_block: u64, nonce: u32) -> Result<(), TicketError> {
        let (_, nonces) = self.seen.entry(rand_hash).or_insert_with(|| (expiration_block, HashSet::new()));
        if nonces.contains(&nonce) {
            return Err(TicketError::Replayed(nonce));
        }
        if nonces.len() >= MAX_SENDER_NONCES {
            return Err(TicketError::TooManyNonces);
        }
        nonces.insert(nonce);
        Ok(())
    }

    /// Forget parameters that expired before `block`.
    pub fn prune(&mut self, block: u64) {
        self.seen.retain(|_, (expiration, _)| *expiration >= block);
    }

    /// Sets of parameters remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes are metric label values (`livepeer_payment_recv_errors{error_code}`).
    #[test]
    fn each_refusal_has_its_stable_code() {
        let codes = [
            (TicketError::WrongRecipient { expected: Address::ZERO, got: Address::ZERO }, "WrongRecipient"),
            (TicketError::ZeroSender, "ZeroSender"),
            (TicketError::InvalidRecipientRand, "InvalidRecipientRand"),
            (TicketError::WrongSigner { sender: Address::ZERO, signer: Address::ZERO }, "InvalidSignature"),
            (TicketError::Replayed(1), "Replayed"),
            (TicketError::TooManyNonces, "TooManyNonces"),
            (TicketError::Expired { expiration_block: 1, block: 2 }, "Expired"),
        ];
        for (error, code) in codes {
            assert_eq!(error.code(), code, "{error}");
        }
    }

    #[test]
    fn a_recipient_shows_its_address_and_never_its_secret() {
        let secret = [0xab; 32];
        let shown = format!("{:?}", Recipient::new(Address::repeat_byte(0x11), secret));
        assert!(shown.contains("0x1111111111111111111111111111111111111111"), "{shown}");
        assert!(!shown.to_lowercase().contains("abab") && !shown.contains("171, 171"), "{shown}");
    }

    #[test]
    fn parameters_expire_forty_blocks_after_they_are_issued() {
        let terms = Terms {
            ev: U256::from(5),
            gas_price: U256::from(100),
            redeem_gas: 10_000,
            max_float: U256::MAX,
            max_face_value: U256::ZERO,
            block: 1234,
            round: 3,
            round_block_hash: B256::repeat_byte(1),
        };
        let recipient = Recipient::new(Address::repeat_byte(0x11), [7; 32]);
        let price = Price { per_unit: 1, pixels_per_unit: 1 };
        let params = recipient.issue(Address::repeat_byte(0x22), &terms, price, B256::repeat_byte(9)).unwrap();
        assert_eq!(params.expiration_block, 1234 + PARAMS_EXPIRY_BLOCKS);
        assert_eq!((params.creation_round, params.creation_round_block_hash), (3, B256::repeat_byte(1)));
    }

    #[test]
    fn nonces_are_refused_twice_capped_per_parameters_and_forgotten_once_expired() {
        let mut book = NonceBook::default();
        assert!(book.is_empty());
        let (a, b) = (B256::repeat_byte(1), B256::repeat_byte(2));
        book.record(a, 100, 1).unwrap();
        assert!(!book.is_empty());
        assert_eq!(book.record(a, 100, 1), Err(TicketError::Replayed(1)));
        book.record(b, 200, 1).unwrap();
        for n in 2..=MAX_SENDER_NONCES as u32 {
            book.record(a, 100, n).unwrap();
        }
        assert_eq!(book.record(a, 100, u32::MAX), Err(TicketError::TooManyNonces));
        book.prune(100);
        assert_eq!(book.len(), 2, "still valid at block 100");
        book.prune(101);
        assert_eq!(book.len(), 1, "the expired set is forgotten, the other kept");
        assert_eq!(book.record(b, 200, 1), Err(TicketError::Replayed(1)));
        book.prune(201);
        assert!(book.is_empty());
    }
}
