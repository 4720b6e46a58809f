//! Probabilistic micropayment tickets, bit-exact with the Livepeer `TicketBroker`
//! (`reference/contracts.md` §4; checked against `chain/tests/vectors/`, which hold a ticket the
//! real TicketBroker redeemed): the ticket hash, `auxData`, `recipientRandHash`, the EIP-191
//! signature the broker recovers (65 bytes, v 27/28, high s refused), the win check, and
//! go-livepeer's win probability for an expected value; [`params`], [`recipient`] and [`sender`]
//! build go-livepeer's payment rules on them.

use alloy::primitives::{Address, B256, Bytes, Signature, U256, keccak256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;

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
    let mut packed = Vec::with_capacity(20 + 20 + 4 * 32 + t.auxData.len());
    packed.extend_from_slice(t.recipient.as_slice());
    packed.extend_from_slice(t.sender.as_slice());
    for n in [t.faceValue, t.winProb, t.senderNonce] {
        packed.extend_from_slice(&n.to_be_bytes::<32>());
    }
    packed.extend_from_slice(t.recipientRandHash.as_slice());
    packed.extend_from_slice(&t.auxData);
    keccak256(packed)
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

/// The sender's signature of a ticket hash: EIP-191 personal_sign, 65 bytes with v 27/28.
pub fn sign(signer: &PrivateKeySigner, ticket_hash: B256) -> Result<[u8; SIGNATURE_LEN], SignatureError> {
    let sig = signer.sign_message_sync(ticket_hash.as_slice()).map_err(|e| SignatureError::Recover(e.to_string()))?;
    Ok(sig.as_bytes())
}

/// The address that signed `ticket_hash`, checked as the broker (OpenZeppelin ECDSA) checks it.
pub fn recover(ticket_hash: B256, sig: &[u8]) -> Result<Address, SignatureError> {
    let bytes: &[u8; SIGNATURE_LEN] = sig.try_into().map_err(|_| SignatureError::Length(sig.len()))?;
    let v = bytes[64];
    if v != 27 && v != 28 {
        return Err(SignatureError::V(v));
    }
    let signature = Signature::from_raw_array(bytes).map_err(|e| SignatureError::Recover(e.to_string()))?;
    if signature.normalize_s().is_some() {
        return Err(SignatureError::HighS);
    }
    let signer = signature
        .recover_address_from_msg(ticket_hash.as_slice())
        .map_err(|e| SignatureError::Recover(e.to_string()))?;
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
    let mut preimage = Vec::with_capacity(sig.len() + 32);
    preimage.extend_from_slice(sig);
    preimage.extend_from_slice(&recipient_rand.to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(preimage).0)
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
