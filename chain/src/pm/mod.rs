//! Probabilistic micropayment tickets, bit-exact with the Livepeer `TicketBroker`
//! (`reference/contracts.md` §4; checked against `chain/tests/vectors/`, which hold a ticket the
//! real TicketBroker redeemed): the ticket hash, `auxData`, `recipientRandHash`, the EIP-191
//! signature the broker recovers (65 bytes, v 27/28, high s refused), the win check, and
//! go-livepeer's win probability for an expected value; [`params`], [`recipient`] and [`sender`]
//! build go-livepeer's payment rules on them.

use alloy::primitives::{Address, B256, Bytes, Keccak256, U256, eip191_hash_message, keccak256};
use alloy::signers::local::PrivateKeySigner;
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::{Message, SECP256K1, SecretKey};

pub use crate::bindings::MTicketBrokerCore::Ticket;

pub mod params;
pub mod recipient;
pub mod sender;

pub use params::{Price, Terms, TicketParams};
pub use recipient::{CheckedTicket, NonceBook, Recipient, TicketError};
pub use sender::{SenderInfo, SenderLimits};

/// A winning ticket as the recipient keeps it until it is redeemed: what
/// `redeemWinningTicket(ticket, sig, recipientRand)` takes, and the block after which it may be
/// redeemed (its parameters' expiration: `recipientRand` is revealed only once they are dead).
#[derive(Clone)]
pub struct WinningTicket {
    pub ticket: Ticket,
    pub sig: Bytes,
    pub recipient_rand: U256,
    pub params_expiration_block: u64,
}

impl WinningTicket {
    /// The creation round committed to in `auxData`.
    pub fn creation_round(&self) -> u64 {
        let aux = &self.ticket.auxData;
        if aux.len() < 32 { 0 } else { U256::from_be_slice(&aux[..32]).saturating_to() }
    }
}

/// The only signature length the broker takes (r ‖ s ‖ v); a 64-byte EIP-2098 one is refused.
pub const SIGNATURE_LEN: usize = 65;

/// Why a ticket signature is refused, in the broker's order of checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("a ticket signature is {SIGNATURE_LEN} bytes, not {0}")]
    Length(usize),
    #[error("signature v must be 27 or 28, not {0}")]
    V(u8),
    #[error("signature s is in the upper half of the curve order (malleable)")]
    HighS,
    #[error("no signer can be recovered from the signature: {0}")]
    Recover(String),
}

/// `getTicketHash`: keccak256 of recipient ‖ sender ‖ faceValue ‖ winProb ‖ senderNonce ‖
/// recipientRandHash ‖ auxData, packed (20 + 20 + 4 × 32 bytes + auxData as it is).
pub fn ticket_hash(t: &Ticket) -> B256 {
    let mut hasher = Keccak256::new();
    hasher.update(t.recipient);
    hasher.update(t.sender);
    for n in [t.faceValue, t.winProb, t.senderNonce] {
        hasher.update(n.to_be_bytes::<32>());
    }
    hasher.update(t.recipientRandHash);
    hasher.update(&t.auxData);
    hasher.finalize()
}

/// A ticket's `auxData`: uint256 creationRound ‖ bytes32 creationRoundBlockHash (64 bytes, what
/// the broker requires). go-livepeer encodes round 0 with a zero hash as empty; the broker
/// refuses that, so we never send it.
pub fn aux_data(creation_round: u64, block_hash: B256) -> Bytes {
    [U256::from(creation_round).to_be_bytes::<32>().as_slice(), block_hash.as_slice()].concat().into()
}

/// `recipientRandHash = keccak256(uint256 recipientRand)`.
pub fn recipient_rand_hash(recipient_rand: U256) -> B256 {
    keccak256(recipient_rand.to_be_bytes::<32>())
}

/// The sender's signature of a ticket hash: EIP-191 personal_sign, 65 bytes with v 27/28
/// (libsecp256k1, RFC 6979 nonces, low s: the bytes alloy's k256 signer makes, several times
/// faster).
pub fn sign(signer: &PrivateKeySigner, ticket_hash: B256) -> Result<[u8; SIGNATURE_LEN], SignatureError> {
    let mut key = secret_key(signer)?;
    let sig = sign_with(&key, ticket_hash);
    key.non_secure_erase();
    Ok(sig)
}

/// `signer`'s key as libsecp256k1 takes it (a k256 key is always a valid one).
pub(crate) fn secret_key(signer: &PrivateKeySigner) -> Result<SecretKey, SignatureError> {
    SecretKey::from_byte_array(signer.to_bytes().0).map_err(|e| SignatureError::Recover(e.to_string()))
}

/// [`sign`] with the key already converted (one conversion for many tickets).
pub(crate) fn sign_with(key: &SecretKey, ticket_hash: B256) -> [u8; SIGNATURE_LEN] {
    let digest = Message::from_digest(eip191_hash_message(ticket_hash).0);
    let (id, rs) = SECP256K1.sign_ecdsa_recoverable(digest, key).serialize_compact();
    let mut sig = [0; SIGNATURE_LEN];
    sig[..64].copy_from_slice(&rs);
    // The y parity; ids 2 and 3 (r ≥ n, about 2^-128) keep it as alloy's signer does.
    sig[64] = 27 + (i32::from(id) & 1) as u8;
    sig
}

/// n / 2, the largest s OpenZeppelin's ECDSA takes (secp256k1's order n, halved).
const HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x5d, 0x57, 0x6e,
    0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// The address that signed `ticket_hash`, checked as the broker (OpenZeppelin ECDSA) checks it:
/// 65 bytes, v 27 or 28, s ≤ n / 2, then ecrecover (libsecp256k1) of the EIP-191 digest; an r of
/// 0 or ≥ n or without a curve point, or an s of 0, recovers nothing.
pub fn recover(ticket_hash: B256, sig: &[u8]) -> Result<Address, SignatureError> {
    let bytes: &[u8; SIGNATURE_LEN] = sig.try_into().map_err(|_| SignatureError::Length(sig.len()))?;
    let v = bytes[64];
    if v != 27 && v != 28 {
        return Err(SignatureError::V(v));
    }
    // Big-endian, so byte order is numeric order.
    if bytes[32..64] > HALF_ORDER[..] {
        return Err(SignatureError::HighS);
    }
    let id = if v == 28 { RecoveryId::One } else { RecoveryId::Zero };
    let signature =
        RecoverableSignature::from_compact(&bytes[..64], id).map_err(|e| SignatureError::Recover(e.to_string()))?;
    let digest = Message::from_digest(eip191_hash_message(ticket_hash).0);
    let key = SECP256K1.recover_ecdsa(digest, &signature).map_err(|e| SignatureError::Recover(e.to_string()))?;
    let signer = Address::from_raw_public_key(&key.serialize_uncompressed()[1..]);
    if signer == Address::ZERO {
        return Err(SignatureError::Recover("the zero address".into()));
    }
    Ok(signer)
}

/// `isWinningTicket`: uint256(keccak256(sig ‖ uint256 recipientRand)) < winProb.
pub fn is_winning(sig: &[u8], recipient_rand: U256, win_prob: U256) -> bool {
    win_check_value(sig, recipient_rand) < win_prob
}

/// The number the win check compares with `winProb`.
pub fn win_check_value(sig: &[u8], recipient_rand: U256) -> U256 {
    let mut hasher = Keccak256::new();
    hasher.update(sig);
    hasher.update(recipient_rand.to_be_bytes::<32>());
    U256::from_be_bytes(hasher.finalize().0)
}

/// go-livepeer's win probability for a ticket of `face_value` worth `ev` on average:
/// ev × ⌈(2^256 − 1) / faceValue⌉, saturating at "always wins". A face value of 0 is worth
/// nothing and never wins.
pub fn win_prob(ev: U256, face_value: U256) -> U256 {
    if face_value.is_zero() {
        return U256::ZERO;
    }
    U256::MAX.div_ceil(face_value).saturating_mul(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_order_is_half_the_curve_order() {
        let n = U256::from_be_bytes(secp256k1::constants::CURVE_ORDER);
        assert_eq!(U256::from_be_bytes(HALF_ORDER), n >> 1);
    }
}
