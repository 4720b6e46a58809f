//! What the gateway's ticket senders and the orchestrator's ticket receivers share: the wire
//! form of ticket parameters, prices and payments (lp-wire's `lp_rpc` messages) to and from
//! lp-chain's types, and the payment metrics (go-livepeer's names; amounts of ETH in gwei, its
//! unit, which also keeps a u64 counter from overflowing before 18 billion ETH; what is below a
//! gwei is carried to the next amount, [`GweiCounter`]).

use alloy::primitives::{Address, B256, U256};
use lp_chain::pm::{Price, TicketParams};
use lp_wire::{PriceInfo, TicketExpirationParams};
use metrics::{counter, describe_counter, describe_gauge, gauge};
use serde_bytes::ByteBuf;

pub const TICKET_VALUE_SENT: &str = "livepeer_ticket_value_sent";
pub const TICKETS_SENT: &str = "livepeer_tickets_sent";
pub const PAYMENT_CREATE_ERRORS: &str = "livepeer_payment_create_errors";
pub const TICKET_VALUE_RECV: &str = "livepeer_ticket_value_recv";
pub const TICKETS_RECV: &str = "livepeer_tickets_recv";
pub const PAYMENT_RECV_ERRORS: &str = "livepeer_payment_recv_errors";
pub const WINNING_TICKETS_RECV: &str = "livepeer_winning_tickets_recv";
pub const SUGGESTED_GAS_PRICE: &str = "livepeer_suggested_gas_price";
pub const MAX_FLOAT: &str = "livepeer_max_float";

pub(crate) fn describe() {
    describe_counter!(TICKET_VALUE_SENT, "Expected value of the tickets sent, gwei");
    describe_counter!(TICKETS_SENT, "Tickets sent");
    describe_counter!(PAYMENT_CREATE_ERRORS, "Payments that could not be made (by reason)");
    describe_counter!(TICKET_VALUE_RECV, "Expected value of the valid tickets received, gwei");
    describe_counter!(TICKETS_RECV, "Valid tickets received");
    describe_counter!(PAYMENT_RECV_ERRORS, "Tickets or payments refused (by error_code)");
    describe_counter!(WINNING_TICKETS_RECV, "Winning tickets received (each written to the database first)");
    describe_gauge!(SUGGESTED_GAS_PRICE, "The gas price ticket parameters are computed with, gwei");
    describe_gauge!(MAX_FLOAT, "The largest face value a sender backs for this orchestrator, gwei");
    for name in [TICKET_VALUE_SENT, TICKETS_SENT, TICKET_VALUE_RECV, TICKETS_RECV, WINNING_TICKETS_RECV] {
        counter!(name).increment(0);
    }
    for reason in crate::gateway::ticket_sender::PayError::REASONS {
        counter!(PAYMENT_CREATE_ERRORS, "reason" => reason).increment(0);
    }
    for code in crate::orchestrator::ticket_receiver::PaymentRefused::CODES {
        counter!(PAYMENT_RECV_ERRORS, "error_code" => code).increment(0);
    }
}

/// A counter of amounts in gwei that carries what is below a gwei to the next amount: tickets
/// worth less than a gwei each still add up (rounded down one by one they would count nothing).
pub(crate) struct GweiCounter {
    name: &'static str,
    /// Wei counted but not yet a whole gwei.
    rest: parking_lot::Mutex<U256>,
}

impl GweiCounter {
    pub(crate) const fn new(name: &'static str) -> GweiCounter {
        GweiCounter { name, rest: parking_lot::Mutex::new(U256::ZERO) }
    }

    pub(crate) fn add(&self, wei: U256) {
        let gwei = U256::from(1_000_000_000u64);
        let whole = {
            let mut rest = self.rest.lock();
            let total = rest.saturating_add(wei);
            *rest = total % gwei;
            total / gwei
        };
        counter!(self.name).increment(whole.saturating_to());
    }
}

static VALUE_SENT: GweiCounter = GweiCounter::new(TICKET_VALUE_SENT);
static VALUE_RECV: GweiCounter = GweiCounter::new(TICKET_VALUE_RECV);

pub(crate) fn tickets_sent(count: u32, ev: U256) {
    counter!(TICKETS_SENT).increment(u64::from(count));
    VALUE_SENT.add(ev.saturating_mul(U256::from(count)));
}

pub(crate) fn payment_create_error(reason: &'static str) {
    debug_assert!(crate::gateway::ticket_sender::PayError::REASONS.contains(&reason), "undeclared {reason}");
    counter!(PAYMENT_CREATE_ERRORS, "reason" => reason).increment(1);
}

pub(crate) fn tickets_received(count: usize, ev: U256, winning: usize) {
    counter!(TICKETS_RECV).increment(count as u64);
    VALUE_RECV.add(ev.saturating_mul(U256::from(count)));
    counter!(WINNING_TICKETS_RECV).increment(winning as u64);
}

pub(crate) fn payment_recv_error(code: &'static str) {
    debug_assert!(crate::orchestrator::ticket_receiver::PaymentRefused::CODES.contains(&code), "undeclared {code}");
    counter!(PAYMENT_RECV_ERRORS, "error_code" => code).increment(1);
}

pub(crate) fn suggested_gas_price(wei: u128) {
    gauge!(SUGGESTED_GAS_PRICE).set(wei as f64 / 1e9);
}

pub(crate) fn max_float(sender: Address, value: U256) {
    gauge!(MAX_FLOAT, "sender" => sender.to_string()).set(f64::from(value) / 1e9);
}

/// A wire field that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed payment: {0}")]
pub struct Malformed(pub String);

fn big(v: U256) -> ByteBuf {
    ByteBuf::from(v.to_be_bytes_trimmed_vec())
}

fn u256(field: &str, bytes: &[u8]) -> Result<U256, Malformed> {
    if bytes.len() > 32 {
        return Err(Malformed(format!("{field} is {} bytes, more than 32", bytes.len())));
    }
    Ok(U256::from_be_slice(bytes))
}

fn b256(field: &str, bytes: &[u8]) -> Result<B256, Malformed> {
    B256::try_from(bytes).map_err(|_| Malformed(format!("{field} is {} bytes, not 32", bytes.len())))
}

/// A 20-byte address.
pub fn address(field: &str, bytes: &[u8]) -> Result<Address, Malformed> {
    Address::try_from(bytes).map_err(|_| Malformed(format!("{field} is {} bytes, not 20", bytes.len())))
}

/// What a gateway signs to ask for terms (go-livepeer's `OrchestratorRequest.sig`): keccak256
/// of its checksummed hex address, signed as a ticket is (EIP-191).
fn request_digest(address: Address) -> B256 {
    alloy::primitives::keccak256(address.to_checksum(None).as_bytes())
}

/// A gateway's `OrchestratorRequest` address and signature.
pub fn sign_request(signer: &alloy::signers::local::PrivateKeySigner) -> (ByteBuf, ByteBuf) {
    let sig = lp_chain::pm::sign(signer, request_digest(signer.address())).map(|s| s.to_vec()).unwrap_or_default();
    (ByteBuf::from(signer.address().to_vec()), ByteBuf::from(sig))
}

/// The gateway that signed an `OrchestratorRequest`.
pub fn verify_request(address_bytes: &[u8], sig: &[u8]) -> Result<Address, Malformed> {
    let claimed = address("address", address_bytes)?;
    match lp_chain::pm::recover(request_digest(claimed), sig) {
        Ok(signer) if signer == claimed => Ok(claimed),
        Ok(signer) => Err(Malformed(format!("the request is signed by {signer}, not {claimed}"))),
        Err(e) => Err(Malformed(format!("the request signature: {e}"))),
    }
}

pub fn params_to_wire(p: &TicketParams) -> lp_wire::TicketParams {
    lp_wire::TicketParams {
        recipient: ByteBuf::from(p.recipient.to_vec()),
        face_value: big(p.face_value),
        win_prob: big(p.win_prob),
        recipient_rand_hash: ByteBuf::from(p.recipient_rand_hash.to_vec()),
        seed: ByteBuf::from(p.seed.to_vec()),
        expiration_block: big(U256::from(p.expiration_block)),
        expiration_params: Some(TicketExpirationParams {
            creation_round: p.creation_round as i64,
            creation_round_block_hash: ByteBuf::from(p.creation_round_block_hash.to_vec()),
        }),
    }
}

/// Ticket parameters from the wire; `expiration` is the payment's (go-livepeer sends them beside
/// the parameters) when the parameters carry none.
pub fn params_from_wire(
    w: &lp_wire::TicketParams,
    expiration: Option<&TicketExpirationParams>,
) -> Result<TicketParams, Malformed> {
    let exp = w.expiration_params.as_ref().or(expiration).ok_or_else(|| Malformed("no expiration params".into()))?;
    let expiration_block = u256("expiration_block", &w.expiration_block)?;
    Ok(TicketParams {
        recipient: address("recipient", &w.recipient)?,
        face_value: u256("face_value", &w.face_value)?,
        win_prob: u256("win_prob", &w.win_prob)?,
        recipient_rand_hash: b256("recipient_rand_hash", &w.recipient_rand_hash)?,
        seed: b256("seed", &w.seed)?,
        expiration_block: expiration_block
            .try_into()
            .map_err(|_| Malformed(format!("expiration_block {expiration_block} is too large")))?,
        creation_round: u64::try_from(exp.creation_round)
            .map_err(|_| Malformed(format!("creation_round {} is negative", exp.creation_round)))?,
        creation_round_block_hash: b256("creation_round_block_hash", &exp.creation_round_block_hash)?,
    })
}

pub fn price_to_wire(p: Price) -> PriceInfo {
    PriceInfo {
        price_per_unit: i64::try_from(p.per_unit).unwrap_or(i64::MAX),
        pixels_per_unit: i64::try_from(p.pixels_per_unit).unwrap_or(i64::MAX),
        ..Default::default()
    }
}

pub fn price_from_wire(p: &PriceInfo) -> Result<Price, Malformed> {
    let per_unit = u64::try_from(p.price_per_unit).map_err(|_| Malformed("negative price_per_unit".into()))?;
    let pixels_per_unit = u64::try_from(p.pixels_per_unit)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Malformed(format!("pixels_per_unit {} is not positive", p.pixels_per_unit)))?;
    Ok(Price { per_unit, pixels_per_unit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_below_a_gwei_adds_up_instead_of_counting_nothing() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let value = GweiCounter::new("test_value_gwei");
        let milli_gwei = U256::from(1_000_000u64);
        metrics::with_local_recorder(&recorder, || (0..2500).for_each(|_| value.add(milli_gwei)));
        assert!(handle.render().contains("test_value_gwei 2\n"), "{}", handle.render());
        metrics::with_local_recorder(&recorder, || {
            (0..500).for_each(|_| value.add(milli_gwei));
            value.add(U256::from(7_000_000_000u64));
        });
        assert!(handle.render().contains("test_value_gwei 10\n"), "{}", handle.render());
    }

    #[test]
    fn ticket_params_survive_the_wire_and_bad_fields_are_named() {
        let p = TicketParams {
            recipient: Address::repeat_byte(7),
            face_value: U256::from(1_000_000_000_000u64),
            win_prob: U256::MAX / U256::from(3),
            recipient_rand_hash: B256::repeat_byte(1),
            seed: B256::repeat_byte(2),
            expiration_block: 1234,
            creation_round: 9,
            creation_round_block_hash: B256::repeat_byte(3),
        };
        let w = params_to_wire(&p);
        assert_eq!(w.face_value.as_slice(), &[0xe8, 0xd4, 0xa5, 0x10, 0x00], "minimal big-endian");
        assert_eq!(params_from_wire(&w, None), Ok(p));
        let mut bad = w.clone();
        bad.seed = ByteBuf::from(vec![1, 2]);
        assert_eq!(params_from_wire(&bad, None).unwrap_err().0, "seed is 2 bytes, not 32");
        let mut bad = w;
        bad.face_value = ByteBuf::from(vec![1; 33]);
        assert!(params_from_wire(&bad, None).unwrap_err().0.contains("face_value"));
    }

    #[test]
    fn a_request_signature_names_its_signer_and_a_forged_one_is_refused() {
        let signer = alloy::signers::local::PrivateKeySigner::random();
        let (address, sig) = sign_request(&signer);
        assert_eq!(verify_request(&address, &sig), Ok(signer.address()));
        let other = alloy::signers::local::PrivateKeySigner::random();
        let err = verify_request(other.address().as_slice(), &sig).unwrap_err();
        assert!(err.0.contains("not"), "{err}");
    }

    #[test]
    fn prices_survive_the_wire_and_zero_pixels_is_refused() {
        let p = Price { per_unit: 1200, pixels_per_unit: 7 };
        assert_eq!(price_from_wire(&price_to_wire(p)), Ok(p));
        assert!(price_from_wire(&PriceInfo { price_per_unit: 1, pixels_per_unit: 0, ..Default::default() }).is_err());
        assert!(price_from_wire(&PriceInfo { price_per_unit: -1, pixels_per_unit: 1, ..Default::default() }).is_err());
    }
}
