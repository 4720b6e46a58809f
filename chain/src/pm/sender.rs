//! The sender's side of a ticket (`reference/go-livepeer.md` §4.5, §4.7): its funds as the
//! TicketBroker holds them, the max float a recipient may rely on, the checks of a recipient's
//! parameters, how many tickets pay for a segment, and the tickets themselves.

use alloy::primitives::U256;
use alloy::signers::local::PrivateKeySigner;
use serde::Serialize;

use super::params::{Price, TicketParams};
use super::{SIGNATURE_LEN, SignatureError, secret_key, sign_with, ticket_hash};

/// go-livepeer's `minDepositPendingRatio`: with a deposit this many times the pending
/// redemptions, they are not subtracted from the max float.
pub const MIN_DEPOSIT_PENDING_RATIO: u64 = 3;
/// Parameters closer than this many blocks to their expiry are refreshed, not used.
pub const EXPIRY_MARGIN_BLOCKS: u64 = 1;

/// A sender's funds in the TicketBroker, as one recipient sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SenderInfo {
    pub deposit: U256,
    /// The round from which the sender may withdraw; 0: no unlock in progress.
    pub withdraw_round: u64,
    pub reserve: U256,
    /// Reserve claimed by all recipients in the current round.
    pub reserve_claimed_in_round: U256,
    /// Reserve this recipient claimed in the current round.
    pub claimed_by_me: U256,
}

impl SenderInfo {
    /// This recipient's share of the reserve: (remaining + claimed this round) / pool size, less
    /// what it already claimed. Zero with an empty pool.
    pub fn reserve_alloc(&self, pool_size: u64) -> U256 {
        if pool_size == 0 {
            return U256::ZERO;
        }
        ((self.reserve + self.reserve_claimed_in_round) / U256::from(pool_size)).saturating_sub(self.claimed_by_me)
    }

    /// The largest face value this recipient can rely on, with `pending` face value of its
    /// redemptions in flight (§4.5).
    pub fn max_float(&self, pool_size: u64, pending: U256) -> U256 {
        let alloc = self.reserve_alloc(pool_size);
        if pending.is_zero() || self.deposit / pending >= U256::from(MIN_DEPOSIT_PENDING_RATIO) {
            return alloc;
        }
        alloc.saturating_sub(pending)
    }

    /// What a redemption can take: the reserve share plus the deposit, less what is pending.
    pub fn available_funds(&self, pool_size: u64, pending: U256) -> U256 {
        (self.reserve_alloc(pool_size) + self.deposit).saturating_sub(pending)
    }

    /// go-livepeer's `ValidateSender`: an unlock that ends by the next round makes its tickets
    /// worthless.
    pub fn unlocking_by(&self, last_initialized_round: u64) -> bool {
        self.withdraw_round != 0 && self.withdraw_round <= last_initialized_round + 1
    }
}

/// The sender's limits on what it pays (`[gateway]` config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderLimits {
    /// The most one ticket may be worth (`max_ticket_ev`).
    pub max_ticket_ev: U256,
    /// The most the tickets of one payment may be worth together (`max_total_ev`).
    pub max_total_ev: U256,
    /// A face value may be at most deposit / this (`deposit_multiplier`).
    pub deposit_multiplier: u64,
}

/// Why a sender does not use a recipient's parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsRejected {
    #[error("the ticket parameters have no expiration block")]
    NoExpiration,
    /// Refresh them (go-livepeer fails the segment; we ask for new ones).
    #[error("TicketParams expired: valid until block {expiration_block}, the chain is at {block}")]
    Expired { expiration_block: u64, block: u64 },
    #[error("face value {face_value} wei is not above the ticket EV {ev} wei")]
    FaceValueNotAboveEv { face_value: U256, ev: U256 },
    #[error("ticket EV {ev} wei is above max_ticket_ev {max} wei")]
    TicketEvTooHigh { ev: U256, max: U256 },
    #[error("{tickets} tickets worth {total} wei are above max_total_ev {max} wei")]
    TotalEvTooHigh { tickets: u32, total: U256, max: U256 },
    #[error("face value {face_value} wei is above the deposit / deposit_multiplier ({max} wei)")]
    FaceValueAboveDeposit { face_value: U256, max: U256 },
    #[error("{0}")]
    Unfunded(Unfunded),
}

/// Why the sender itself cannot pay: what the operator must do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unfunded {
    #[error("the gateway's TicketBroker deposit is 0: fund it (`livepeer chain fund`)")]
    NoDeposit,
    #[error("the gateway's TicketBroker reserve is 0: fund it (`livepeer chain fund`)")]
    NoReserve,
    #[error("the gateway's deposit and reserve are unlocking (withdraw round {0}): cancel the unlock to pay")]
    Unlocking(u64),
}

/// The sender's own state: funded, not unlocking.
pub fn check_funds(own: &SenderInfo) -> Result<(), Unfunded> {
    if own.withdraw_round != 0 {
        return Err(Unfunded::Unlocking(own.withdraw_round));
    }
    if own.reserve.is_zero() {
        return Err(Unfunded::NoReserve);
    }
    if own.deposit.is_zero() {
        return Err(Unfunded::NoDeposit);
    }
    Ok(())
}

/// go-livepeer's `validateTicketParams` for `tickets` tickets at `block`, in its order.
pub fn check_params(
    params: &TicketParams,
    block: u64,
    tickets: u32,
    limits: &SenderLimits,
    own: &SenderInfo,
) -> Result<(), ParamsRejected> {
    if params.expiration_block == 0 {
        return Err(ParamsRejected::NoExpiration);
    }
    if params.expiration_block <= block + EXPIRY_MARGIN_BLOCKS {
        return Err(ParamsRejected::Expired { expiration_block: params.expiration_block, block });
    }
    let ev = params.ev();
    if ev.is_zero() {
        return Ok(());
    }
    if params.face_value <= ev {
        return Err(ParamsRejected::FaceValueNotAboveEv { face_value: params.face_value, ev });
    }
    if ev > limits.max_ticket_ev {
        return Err(ParamsRejected::TicketEvTooHigh { ev, max: limits.max_ticket_ev });
    }
    check_funds(own).map_err(ParamsRejected::Unfunded)?;
    let total = ev.saturating_mul(U256::from(tickets));
    if total > limits.max_total_ev {
        return Err(ParamsRejected::TotalEvTooHigh { tickets, total, max: limits.max_total_ev });
    }
    let max_face = own.deposit / U256::from(limits.deposit_multiplier.max(1));
    if params.face_value > max_face {
        return Err(ParamsRejected::FaceValueAboveDeposit { face_value: params.face_value, max: max_face });
    }
    Ok(())
}

/// How many tickets pay for work costing `fee` given `credit` already paid (go-livepeer's
/// `StageUpdate`): enough to bring the credit to max(fee, EV), a debt (negative credit) included;
/// none when it is there already.
pub fn ticket_count(fee: U256, credit: i128, ev: U256) -> u32 {
    if ev.is_zero() {
        return 0;
    }
    let min_credit = fee.max(ev);
    let magnitude = U256::from(credit.unsigned_abs());
    let missing = if credit >= 0 { min_credit.saturating_sub(magnitude) } else { min_credit.saturating_add(magnitude) };
    u32::try_from(missing.div_ceil(ev)).unwrap_or(u32::MAX)
}

/// The fee estimate of a segment (go-livepeer's `estimateFee`): Σ width × height × ⌈fps⌉ over
/// the renditions, × ⌈seconds⌉, × 1.02, at `price`. An fps of 0 (pass-through) counts as 60.
pub fn fee_estimate(renditions: &[(u32, u32, f64)], duration_ms: u64, price: Price) -> U256 {
    let seconds = duration_ms.div_ceil(1000);
    let pixels: u64 = renditions
        .iter()
        .map(|&(w, h, fps)| {
            let fps = if fps <= 0.0 { 60 } else { fps.ceil() as u64 };
            u64::from(w) * u64::from(h) * fps * seconds
        })
        .sum();
    // × 1.02, rounded up.
    price.cost((pixels * 102).div_ceil(100))
}

/// Sign `count` tickets on `params` with nonces `first_nonce`, `first_nonce + 1`, ….
pub fn sign_tickets(
    signer: &PrivateKeySigner,
    params: &TicketParams,
    first_nonce: u32,
    count: u32,
) -> Result<Vec<(u32, [u8; SIGNATURE_LEN])>, SignatureError> {
    let mut key = secret_key(signer)?;
    let sender = signer.address();
    let tickets = (0..count)
        .map(|i| {
            let nonce = first_nonce + i;
            (nonce, sign_with(&key, ticket_hash(&params.ticket(sender, nonce))))
        })
        .collect();
    key.non_secure_erase();
    Ok(tickets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_cover_the_fee_or_one_ev_less_the_credit_and_repay_a_debt() {
        let (ev, u) = (U256::from(10), U256::from);
        assert_eq!(ticket_count(u(25), 0, ev), 3, "the fee, rounded up to whole tickets");
        assert_eq!(ticket_count(u(3), 0, ev), 1, "at least one ticket's EV");
        assert_eq!(ticket_count(u(25), 20, ev), 1, "less the credit");
        assert_eq!(ticket_count(u(25), 30, ev), 0, "none when the credit covers it");
        assert_eq!(ticket_count(u(25), -15, ev), 4, "a debt is paid back");
        assert_eq!(ticket_count(u(25), 0, U256::ZERO), 0, "free parameters ask for none");
    }
}
