//! Ticket parameters as a recipient issues them (`reference/go-livepeer.md` §4.4): the face value
//! from the redemption cost against the expected value, the win probability, the expiration
//! block, and the round the tickets commit to.

use alloy::primitives::{Address, B256, U256, U512};
use serde::{Deserialize, Serialize};

use super::{Ticket, aux_data, win_prob};

/// go-livepeer's `txCostMultiplier`: a face value is worth this many redemption transactions.
pub const TX_COST_MULTIPLIER: u64 = 100;
/// Blocks a set of parameters stays valid (go-livepeer's `paramsExpirationBlock` offset).
pub const PARAMS_EXPIRY_BLOCKS: u64 = 40;
/// go-livepeer's `avgGasPrice` (3 gwei): a face value below the redemption cost is refused only
/// while gas costs more than this (a short spike below it does not stop streams).
pub const AVG_GAS_PRICE: u64 = 3_000_000_000;

/// A price: `per_unit` wei for every `pixels_per_unit` pixels (reduced as a fraction when it is
/// bound into `recipientRand`, as go-livepeer's `big.Rat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Price {
    pub per_unit: u64,
    pub pixels_per_unit: u64,
}

impl Price {
    pub const ZERO: Price = Price { per_unit: 0, pixels_per_unit: 1 };

    pub fn is_zero(&self) -> bool {
        self.per_unit == 0
    }

    /// What `pixels` cost, in wei, rounded up (a fraction of a wei is still owed).
    pub fn cost(&self, pixels: u64) -> U256 {
        let den = U256::from(self.pixels_per_unit.max(1));
        (U256::from(pixels) * U256::from(self.per_unit)).div_ceil(den)
    }

    /// The fraction in lowest terms, (numerator, denominator).
    pub fn reduced(&self) -> (u64, u64) {
        let den = self.pixels_per_unit.max(1);
        let g = gcd(self.per_unit, den).max(1);
        (self.per_unit / g, den / g)
    }

    /// Whether `self` is above `other` (as fractions; `other` zero means no cap).
    pub fn above(&self, cap: &Price) -> bool {
        if cap.is_zero() {
            return false;
        }
        u128::from(self.per_unit) * u128::from(cap.pixels_per_unit.max(1))
            > u128::from(cap.per_unit) * u128::from(self.pixels_per_unit.max(1))
    }

    /// Whether `self` is more than twice `base` (go-livepeer drops a session whose price rose so).
    pub fn more_than_double(&self, base: &Price) -> bool {
        u128::from(self.per_unit) * u128::from(base.pixels_per_unit.max(1))
            > 2 * u128::from(base.per_unit) * u128::from(self.pixels_per_unit.max(1))
    }
}

impl std::fmt::Display for Price {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} wei per {} pixels", self.per_unit, self.pixels_per_unit)
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// What a recipient wants tickets to look like, decoded from the wire's `TicketParams`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketParams {
    pub recipient: Address,
    pub face_value: U256,
    pub win_prob: U256,
    pub recipient_rand_hash: B256,
    /// The recipient's random seed; with its secret it re-derives `recipientRand`.
    pub seed: B256,
    /// The last block at which tickets on these parameters are taken.
    pub expiration_block: u64,
    /// The round (and its block hash) the tickets commit to through `auxData`.
    pub creation_round: u64,
    pub creation_round_block_hash: B256,
}

impl TicketParams {
    /// The expected value of one ticket: faceValue × winProb / (2^256 − 1), rounded down.
    pub fn ev(&self) -> U256 {
        expected_value(self.face_value, self.win_prob)
    }

    pub fn aux_data(&self) -> alloy::primitives::Bytes {
        aux_data(self.creation_round, self.creation_round_block_hash)
    }

    /// The ticket `sender` makes on these parameters with `nonce`.
    pub fn ticket(&self, sender: Address, nonce: u32) -> Ticket {
        Ticket {
            recipient: self.recipient,
            sender,
            faceValue: self.face_value,
            winProb: self.win_prob,
            senderNonce: U256::from(nonce),
            recipientRandHash: self.recipient_rand_hash,
            auxData: self.aux_data(),
        }
    }

    /// Offchain and free: no tickets are sent for these parameters.
    pub fn is_free(&self) -> bool {
        self.face_value.is_zero() || self.win_prob.is_zero()
    }
}

/// faceValue × winProb / (2^256 − 1), rounded down.
pub fn expected_value(face_value: U256, win_prob: U256) -> U256 {
    let product = U512::from(face_value) * U512::from(win_prob);
    U256::from(product / U512::from(U256::MAX))
}

/// What the recipient's parameters depend on at the moment it issues them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// The expected value of one ticket (`ticket_ev`).
    pub ev: U256,
    /// The current gas price (wei), floored by the network's minimum.
    pub gas_price: U256,
    /// Gas one redemption costs (measured, or the network's estimate).
    pub redeem_gas: u64,
    /// The most this sender can pay us now (§4.5).
    pub max_float: U256,
    /// The operator's cap on the face value (`max_face_value`); zero: none.
    pub max_face_value: U256,
    /// The last block seen.
    pub block: u64,
    /// The last initialized round and its block hash.
    pub round: u64,
    pub round_block_hash: B256,
}

/// Why no parameters can be issued to a sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// The face value the sender can back is below what one ticket must be worth.
    #[error(
        "insufficient sender reserve: the largest face value it backs ({face_value} wei) is below the ticket EV ({ev} wei) or the redemption cost ({tx_cost} wei)"
    )]
    InsufficientReserve { face_value: U256, ev: U256, tx_cost: U256 },
    /// No round has a block hash yet (no initialized round).
    #[error("no initialized round to create tickets in")]
    NoRound,
}

/// go-livepeer's face value (§4.4): 100 redemption costs, or 100 × EV when that is more; capped by
/// the sender's max float and the operator's `max_face_value`; refused below EV, and below the
/// redemption cost while gas is above [`AVG_GAS_PRICE`].
pub fn face_value(terms: &Terms) -> Result<U256, ParamsError> {
    let tx_cost = terms.gas_price.saturating_mul(U256::from(terms.redeem_gas));
    let mut face = tx_cost.saturating_mul(U256::from(TX_COST_MULTIPLIER));
    if face < terms.ev {
        face = terms.ev.saturating_mul(U256::from(TX_COST_MULTIPLIER));
    }
    face = face.min(terms.max_float);
    if !terms.max_face_value.is_zero() {
        face = face.min(terms.max_face_value);
    }
    if face < terms.ev || (face < tx_cost && terms.gas_price > U256::from(AVG_GAS_PRICE)) {
        return Err(ParamsError::InsufficientReserve { face_value: face, ev: terms.ev, tx_cost });
    }
    Ok(face)
}

/// The face value and win probability for `terms`: zero for a free price.
pub fn value_and_prob(terms: &Terms, price: Price) -> Result<(U256, U256), ParamsError> {
    if price.is_zero() {
        return Ok((U256::ZERO, U256::ZERO));
    }
    let face = face_value(terms)?;
    Ok((face, win_prob(terms.ev, face)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(gas_price: u64, max_float: U256) -> Terms {
        Terms {
            ev: U256::from(5),
            gas_price: U256::from(gas_price),
            redeem_gas: 10_000,
            max_float,
            max_face_value: U256::ZERO,
            block: 100,
            round: 3,
            round_block_hash: B256::repeat_byte(1),
        }
    }

    /// go-livepeer's `TestTicketParams` (EV 5, redeem gas 10000, multiplier 100).
    #[test]
    fn face_values_and_win_probabilities_match_go_livepeer() {
        let price = Price { per_unit: 1, pixels_per_unit: 1 };
        let cases = [
            (100, U256::MAX, "100000000", "5789604461865809771178549250434395392663499233282028201972879200395660"),
            (777, U256::MAX, "777000000", "745122839364969082519761808292714979750772102095499125093034646125570"),
            (
                100,
                U256::from(10_001),
                "10001",
                "57890255593098787833002192285115442382396752657554526567072084795477017120",
            ),
        ];
        for (gas, max_float, face, prob) in cases {
            let (f, p) = value_and_prob(&terms(gas, max_float), price).unwrap();
            assert_eq!((f.to_string().as_str(), p.to_string().as_str()), (face, prob), "gas {gas}");
        }
    }

    #[test]
    fn a_face_value_below_ev_or_an_unbacked_redemption_is_refused() {
        let price = Price { per_unit: 1, pixels_per_unit: 1 };
        assert!(matches!(
            value_and_prob(&terms(100, U256::from(4)), price),
            Err(ParamsError::InsufficientReserve { .. })
        ));
        // Below the redemption cost (1e14) while gas (10 gwei) is above 3 gwei.
        let backed = U256::from(50_000_000_000_000u64);
        assert!(value_and_prob(&terms(10_000_000_000, backed), price).is_err());
        // The same at 2 gwei (cost 2e13): taken.
        assert_eq!(
            value_and_prob(&terms(2_000_000_000, U256::from(1_000_000)), price).unwrap().0,
            U256::from(1_000_000)
        );
    }

    #[test]
    fn a_free_price_asks_for_no_tickets() {
        assert_eq!(value_and_prob(&terms(100, U256::ZERO), Price::ZERO), Ok((U256::ZERO, U256::ZERO)));
    }

    #[test]
    fn prices_compare_as_fractions_and_costs_round_up() {
        let p = Price { per_unit: 3, pixels_per_unit: 2 };
        assert_eq!(p.cost(3), U256::from(5));
        assert_eq!(Price { per_unit: 6, pixels_per_unit: 4 }.reduced(), (3, 2));
        assert!(p.above(&Price { per_unit: 1, pixels_per_unit: 1 }));
        assert!(!p.above(&Price { per_unit: 3, pixels_per_unit: 2 }));
        assert!(!p.above(&Price::ZERO), "zero cap: none");
        assert!(Price { per_unit: 7, pixels_per_unit: 2 }.more_than_double(&p));
        assert!(!Price { per_unit: 6, pixels_per_unit: 2 }.more_than_double(&p));
    }

    #[test]
    fn prices_above_a_cap_are_told_apart_as_fractions() {
        let cap = Price { per_unit: 2, pixels_per_unit: 3 };
        assert!(Price { per_unit: 4, pixels_per_unit: 5 }.above(&cap), "4/5 > 2/3");
        assert!(!Price { per_unit: 3, pixels_per_unit: 5 }.above(&cap), "3/5 < 2/3");
        assert!(Price { per_unit: 1, pixels_per_unit: 2 }.above(&Price { per_unit: 1, pixels_per_unit: 3 }));
        assert_eq!(Price { per_unit: 1200, pixels_per_unit: 7 }.to_string(), "1200 wei per 7 pixels");
    }

    /// The face value at its edges: exactly 100 redemption costs when that equals EV; 100 × EV
    /// when redemption costs nothing; exactly EV when that is all the sender backs.
    #[test]
    fn face_values_at_their_edges() {
        let exact = Terms { ev: U256::from(100), gas_price: U256::from(1), redeem_gas: 1, ..terms(0, U256::MAX) };
        assert_eq!(face_value(&exact), Ok(U256::from(100)));
        assert_eq!(face_value(&terms(0, U256::MAX)), Ok(U256::from(500)));
        assert_eq!(face_value(&terms(0, U256::from(5))), Ok(U256::from(5)));
        // Backed for exactly one redemption (1e14 at 10 gwei): taken.
        let one_redemption = U256::from(100_000_000_000_000u64);
        assert_eq!(face_value(&terms(10_000_000_000, one_redemption)), Ok(one_redemption));
        // Below one redemption at exactly the average gas price: taken.
        let below = U256::from(10_000_000_000_000u64);
        assert_eq!(face_value(&terms(AVG_GAS_PRICE, below)), Ok(below));
    }

    #[test]
    fn parameters_give_their_ev_aux_data_and_whether_they_are_free() {
        let p = TicketParams {
            recipient: Address::ZERO,
            face_value: U256::from(1000),
            win_prob: U256::MAX / U256::from(4),
            recipient_rand_hash: B256::ZERO,
            seed: B256::ZERO,
            expiration_block: 0,
            creation_round: 9,
            creation_round_block_hash: B256::repeat_byte(3),
        };
        assert_eq!(p.ev(), U256::from(249), "1000 × a quarter, rounded down");
        let aux = p.aux_data();
        assert_eq!(&aux[..32], &U256::from(9).to_be_bytes::<32>(), "the round");
        assert_eq!(&aux[32..], B256::repeat_byte(3).as_slice(), "its block hash");
        assert!(!p.is_free());
        assert!(TicketParams { face_value: U256::ZERO, ..p.clone() }.is_free());
        assert!(TicketParams { win_prob: U256::ZERO, ..p }.is_free());
    }

    #[test]
    fn expected_value_inverts_win_prob_within_rounding() {
        for (ev, face) in [(5u64, 100_000_000u64), (8_000_000_000, 1_000_000_000_000_000), (1, 1)] {
            let (ev, face) = (U256::from(ev), U256::from(face));
            let got = expected_value(face, win_prob(ev, face));
            assert!(got >= ev && got <= ev + U256::from(1), "ev {ev} face {face}: {got}");
        }
    }
}
