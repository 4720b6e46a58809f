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
    use alloy::primitives::{Address, B256};

    use super::*;

    fn u(n: u64) -> U256 {
        U256::from(n)
    }

    fn funds(deposit: u64, reserve: u64) -> SenderInfo {
        SenderInfo { deposit: u(deposit), reserve: u(reserve), ..SenderInfo::default() }
    }

    /// §4.5: the reserve is shared by the pool; a recipient's share is less what it claimed.
    #[test]
    fn the_reserve_is_shared_by_the_pool_less_what_this_recipient_claimed() {
        let info = SenderInfo { reserve_claimed_in_round: u(200), claimed_by_me: u(100), ..funds(0, 1000) };
        assert_eq!(info.reserve_alloc(3), u(300), "(1000 + 200) / 3 - 100");
        assert_eq!(info.reserve_alloc(0), U256::ZERO, "an empty pool");
        assert_eq!(SenderInfo { claimed_by_me: u(500), ..info.clone() }.reserve_alloc(3), U256::ZERO);
        assert_eq!(info.available_funds(3, u(50)), u(250), "share + deposit - pending");
        assert_eq!(SenderInfo { deposit: u(40), ..info }.available_funds(3, u(50)), u(290));
    }

    /// Pending redemptions come off the max float unless the deposit is at least three times
    /// them.
    #[test]
    fn max_float_is_the_share_less_pending_unless_the_deposit_covers_them_three_times() {
        let covered = funds(300, 900);
        assert_eq!(covered.max_float(3, U256::ZERO), u(300), "nothing pending");
        assert_eq!(covered.max_float(3, u(100)), u(300), "deposit = 3 × pending");
        assert_eq!(funds(299, 900).max_float(3, u(100)), u(200), "deposit < 3 × pending");
        assert_eq!(funds(0, 900).max_float(3, u(500)), U256::ZERO, "never below zero");
    }

    /// go-livepeer's `ValidateSender`: an unlock that ends by the next round.
    #[test]
    fn a_sender_is_unlocking_when_its_withdraw_round_comes_by_the_next_round() {
        let at = |withdraw_round| SenderInfo { withdraw_round, ..funds(1, 1) };
        assert!(!at(0).unlocking_by(10), "no unlock");
        assert!(at(11).unlocking_by(10), "withdrawable next round");
        assert!(at(5).unlocking_by(10), "withdrawable already");
        assert!(!at(12).unlocking_by(10), "two rounds away");
    }

    #[test]
    fn own_funds_are_checked_unlock_first() {
        assert_eq!(check_funds(&funds(1, 1)), Ok(()));
        assert_eq!(check_funds(&funds(0, 1)), Err(Unfunded::NoDeposit));
        assert_eq!(check_funds(&funds(1, 0)), Err(Unfunded::NoReserve));
        let unlocking = SenderInfo { withdraw_round: 7, ..funds(0, 0) };
        assert_eq!(check_funds(&unlocking), Err(Unfunded::Unlocking(7)));
    }

    /// go-livepeer's `validateTicketParams`, each check at its edge.
    #[test]
    fn a_recipients_parameters_are_checked_in_go_livepeers_order_at_each_edge() {
        let params = |face: u64, expiration_block| TicketParams {
            recipient: Address::repeat_byte(1),
            face_value: u(face),
            // One in four: EV = face / 4, rounded down.
            win_prob: U256::MAX / u(4),
            recipient_rand_hash: B256::ZERO,
            seed: B256::ZERO,
            expiration_block,
            creation_round: 1,
            creation_round_block_hash: B256::repeat_byte(2),
        };
        let limits = SenderLimits { max_ticket_ev: u(100), max_total_ev: u(1000), deposit_multiplier: 2 };
        let own = funds(1000, 1);
        let check = |p: &TicketParams, block, tickets| check_params(p, block, tickets, &limits, &own);
        // A face value of 400: EV 99, at most 10 tickets, at most the deposit / 2 = 500.
        let good = params(400, 100);
        assert_eq!(check(&good, 98, 10), Ok(()), "two blocks left, ten tickets");
        assert_eq!(check(&params(400, 0), 0, 1), Err(ParamsRejected::NoExpiration));
        assert_eq!(check(&good, 99, 1), Err(ParamsRejected::Expired { expiration_block: 100, block: 99 }));
        let free = TicketParams { win_prob: U256::ZERO, ..params(400, 0) };
        assert_eq!(check(&TicketParams { expiration_block: 100, ..free }, 98, 1), Ok(()), "free: nothing else");
        let one_ticket = TicketParams { win_prob: U256::MAX, ..params(50, 100) };
        let ev = one_ticket.ev();
        assert_eq!(check(&one_ticket, 98, 1), Err(ParamsRejected::FaceValueNotAboveEv { face_value: u(50), ev }));
        assert_eq!(check(&params(404, 100), 98, 1), Ok(()), "EV 100 = max_ticket_ev");
        assert_eq!(check(&params(408, 100), 98, 1), Err(ParamsRejected::TicketEvTooHigh { ev: u(101), max: u(100) }));
        let total = ParamsRejected::TotalEvTooHigh { tickets: 11, total: u(1089), max: u(1000) };
        assert_eq!(check(&good, 98, 11), Err(total));
        let exact = SenderLimits { max_total_ev: u(990), ..limits.clone() };
        assert_eq!(check_params(&good, 98, 10, &exact, &own), Ok(()), "10 × 99 = max_total_ev");
        let unlocking = SenderInfo { withdraw_round: 3, ..own.clone() };
        let err = check_params(&good, 98, 1, &limits, &unlocking);
        assert_eq!(err, Err(ParamsRejected::Unfunded(Unfunded::Unlocking(3))));
        assert_eq!(check_params(&good, 98, 1, &limits, &funds(800, 1)), Ok(()), "400 = 800 / 2");
        let err = check_params(&good, 98, 1, &limits, &funds(799, 1));
        assert_eq!(err, Err(ParamsRejected::FaceValueAboveDeposit { face_value: u(400), max: u(399) }));
    }

    #[test]
    fn the_fee_estimate_is_go_livepeers() {
        let price = Price { per_unit: 1, pixels_per_unit: 1 };
        // 100 × 10 px at ⌈29.97⌉ = 30 fps for ⌈1.5⌉ = 2 s, + 2 %.
        assert_eq!(fee_estimate(&[(100, 10, 29.97)], 1500, price), u(61_200));
        assert_eq!(fee_estimate(&[(100, 10, 0.0)], 1000, price), u(61_200), "pass-through counts as 60 fps");
        let two = fee_estimate(&[(100, 10, 30.0), (10, 10, 30.0)], 1000, Price { per_unit: 3, pixels_per_unit: 2 });
        assert_eq!(two, u(50_490), "33 000 px + 2 % = 33 660, at 3/2");
    }

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
