//! [`Wei`], the type of the config's money keys, and its strict parsing.

use std::fmt;
use std::str::FromStr;

use alloy_primitives::U256;
use alloy_primitives::utils::{ParseUnits, Unit, parse_units};

/// An amount of ether, in wei: what every money key of the config holds (prices, ticket EV, gas
/// prices). Whether a key takes all of its 256 bits is that key's own rule (a price on the wire
/// is an int64), checked when the config is read.
///
/// Parsed ([`FromStr`]) strictly, from one of:
/// - a whole number of wei in decimal digits: `"8000000000"`, `"0"`;
/// - a decimal number and a unit, `wei`, `gwei` or `eth`, with or without spaces between:
///   `"8 gwei"`, `"0.001 eth"`, `"8gwei"`, `"1000 wei"`. Units are case-insensitive (`"8 Gwei"`,
///   `"1 ETH"`).
///
/// Refused, each with its own message: an empty string, spaces around the amount, signs, hex,
/// exponents (`"1e9"`), digit separators (`"1_000"`), a decimal point without a unit (`"1.5"`) or
/// without digits on both sides (`".5 eth"`), other units, more decimals than the unit has (zeros
/// too: `"0.5 wei"` and `"1.0000000000 gwei"` both are), more than 256 bits.
///
/// Displays, and serializes, as the decimal number of wei: `"8 gwei"` is written back as
/// `"8000000000"`, which parses to the same amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Wei(U256);

impl Wei {
    /// No wei.
    pub const ZERO: Wei = Wei(U256::ZERO);

    /// The amount as a `U256`.
    pub const fn as_u256(self) -> U256 {
        self.0
    }
}

impl From<u64> for Wei {
    fn from(wei: u64) -> Self {
        Wei(U256::from(wei))
    }
}

impl fmt::Display for Wei {
    /// The decimal number of wei, without a unit.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Why a string is not a [`Wei`] amount. Each message quotes the string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseWeiError {
    /// Not of the form `DIGITS` or `DIGITS[.DIGITS] UNIT`.
    #[error(
        "expected a whole number of wei (\"8000000000\") or a number with a unit, wei, gwei or eth \
         (\"8 gwei\", \"0.001 eth\"), found {0:?}"
    )]
    NotAnAmount(String),
    /// Starts with `-`.
    #[error("{0:?} is negative; an amount is 0 or more")]
    Negative(String),
    /// A unit other than wei, gwei and eth.
    #[error("{input:?}: unknown unit {unit:?}; use wei, gwei or eth")]
    UnknownUnit {
        /// The whole string.
        input: String,
        /// The unit it names.
        unit: String,
    },
    /// A decimal point without a unit: `"1.5"` could mean wei or ETH.
    #[error("{0:?} has decimals but no unit: write a whole number of wei, or add a unit (\"1.5 gwei\")")]
    DecimalsWithoutUnit(String),
    /// More decimals than the unit has: less than a wei, or surplus zeros.
    #[error("{input:?} is not a whole number of wei: an amount in {unit} has at most {max} decimals")]
    FractionOfAWei {
        /// The whole string.
        input: String,
        /// The unit, as `wei`, `gwei` or `eth`.
        unit: &'static str,
        /// The decimals the unit has.
        max: u8,
    },
    /// More than 256 bits of wei.
    #[error("{0:?} is too large: an amount is less than 2^256 wei")]
    TooLarge(String),
}

/// The units accepted, by name, with the decimals each has.
const UNITS: [(&str, Unit); 3] = [("wei", Unit::WEI), ("gwei", Unit::GWEI), ("eth", Unit::ETHER)];

impl FromStr for Wei {
    type Err = ParseWeiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let not_an_amount = || ParseWeiError::NotAnAmount(s.to_string());
        if s.starts_with('-') {
            return Err(ParseWeiError::Negative(s.to_string()));
        }
        let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
        let (number, rest) = s.split_at(split);
        let unit_name = rest.trim_start_matches([' ', '\t']);
        let (int, frac) = number.split_once('.').map_or((number, None), |(int, frac)| (int, Some(frac)));
        // Digits on both sides of at most one point (`number` holds only digits and points); a
        // unit, when there is one, of letters only, and no trailing space.
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        let unit_shape =
            unit_name.bytes().all(|b| b.is_ascii_alphabetic()) && (unit_name.is_empty() == rest.is_empty());
        if !digits(int) || frac.is_some_and(|frac| !digits(frac)) || !unit_shape {
            return Err(not_an_amount());
        }
        let (unit_label, unit) = if unit_name.is_empty() {
            if frac.is_some() {
                return Err(ParseWeiError::DecimalsWithoutUnit(s.to_string()));
            }
            UNITS[0]
        } else {
            *UNITS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(unit_name))
                .ok_or_else(|| ParseWeiError::UnknownUnit { input: s.to_string(), unit: unit_name.to_string() })?
        };
        if frac.map_or(0, str::len) > usize::from(unit.get()) {
            return Err(ParseWeiError::FractionOfAWei { input: s.to_string(), unit: unit_label, max: unit.get() });
        }
        // The arithmetic is alloy's; it fails only on overflow (and answers a signed number only
        // for a leading '-', refused above).
        match parse_units(number, unit.get()) {
            Ok(ParseUnits::U256(wei)) => Ok(Wei(wei)),
            Ok(ParseUnits::I256(_)) | Err(_) => Err(ParseWeiError::TooLarge(s.to_string())),
        }
    }
}

impl serde::Serialize for Wei {
    /// As the decimal string of wei: TOML integers stop at int64.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wei(s: &str) -> Result<Wei, ParseWeiError> {
        s.parse()
    }

    fn u(n: u128) -> Wei {
        Wei(U256::from(n))
    }

    #[test]
    fn whole_wei_and_amounts_with_units() {
        assert_eq!(wei("8000000000"), Ok(u(8_000_000_000)));
        assert_eq!(wei("0"), Ok(Wei::ZERO));
        assert_eq!(wei("000"), Ok(Wei::ZERO));
        assert_eq!(wei("8 gwei"), Ok(u(8_000_000_000)));
        assert_eq!(wei("8gwei"), Ok(u(8_000_000_000)));
        assert_eq!(wei("8  gwei"), Ok(u(8_000_000_000)));
        assert_eq!(wei("8 Gwei"), Ok(u(8_000_000_000)));
        assert_eq!(wei("0.001 eth"), Ok(u(1_000_000_000_000_000)));
        assert_eq!(wei("1 ETH"), Ok(u(1_000_000_000_000_000_000)));
        assert_eq!(wei("1.5 gwei"), Ok(u(1_500_000_000)));
        assert_eq!(wei("0.000000000000000001 eth"), Ok(u(1)));
        assert_eq!(wei("1000 wei"), Ok(u(1000)));
        assert_eq!(wei("1.000000000 gwei"), Ok(u(1_000_000_000)));
        let max = U256::MAX.to_string();
        assert_eq!(wei(&max), Ok(Wei(U256::MAX)));
    }

    #[test]
    fn display_and_serialization_are_decimal_wei() {
        let amount = wei("0.001 eth").unwrap();
        assert_eq!(amount.to_string(), "1000000000000000");
        assert_eq!(amount.as_u256(), U256::from(1_000_000_000_000_000u64));
        #[derive(serde::Serialize)]
        struct Holder {
            v: Wei,
        }
        assert_eq!(toml::to_string(&Holder { v: amount }).unwrap(), "v = \"1000000000000000\"\n");
    }

    #[test]
    fn malformed_amounts_are_refused() {
        for bad in ["", " ", " 1", "1 ", "8 gwei ", "+1", "0x10", "1e9", "1_000", "1,5", "1.", ".5 eth", "1..5 eth"] {
            assert_eq!(wei(bad), Err(ParseWeiError::NotAnAmount(bad.to_string())), "{bad:?}");
        }
        let message = wei(" ").unwrap_err().to_string();
        assert_eq!(
            message,
            "expected a whole number of wei (\"8000000000\") or a number with a unit, wei, gwei or eth \
             (\"8 gwei\", \"0.001 eth\"), found \" \""
        );
        for negative in ["-1", "-0", "-1 gwei"] {
            assert_eq!(wei(negative), Err(ParseWeiError::Negative(negative.to_string())));
        }
        assert_eq!(wei("-1").unwrap_err().to_string(), "\"-1\" is negative; an amount is 0 or more");
    }

    #[test]
    fn units_other_than_wei_gwei_eth_are_refused() {
        for (input, unit) in [("1 ether", "ether"), ("1 finney", "finney"), ("0xff", "xff"), ("9 lpt", "lpt")] {
            assert_eq!(
                wei(input),
                Err(ParseWeiError::UnknownUnit { input: input.to_string(), unit: unit.to_string() }),
                "{input}"
            );
        }
        assert_eq!(wei("1 lpt").unwrap_err().to_string(), "\"1 lpt\": unknown unit \"lpt\"; use wei, gwei or eth");
    }

    #[test]
    fn fractions_of_a_wei_and_surplus_decimals_are_refused() {
        assert_eq!(wei("1.5"), Err(ParseWeiError::DecimalsWithoutUnit("1.5".to_string())));
        assert_eq!(wei("1.0"), Err(ParseWeiError::DecimalsWithoutUnit("1.0".to_string())));
        let fraction = |input: &str, unit, max| ParseWeiError::FractionOfAWei { input: input.to_string(), unit, max };
        assert_eq!(wei("0.5 wei"), Err(fraction("0.5 wei", "wei", 0)));
        assert_eq!(wei("1.0 wei"), Err(fraction("1.0 wei", "wei", 0)));
        assert_eq!(wei("1.0000000001 gwei"), Err(fraction("1.0000000001 gwei", "gwei", 9)));
        assert_eq!(wei("1.0000000000 GWEI"), Err(fraction("1.0000000000 GWEI", "gwei", 9)));
        assert_eq!(wei("0.0000000000000000001 eth"), Err(fraction("0.0000000000000000001 eth", "eth", 18)));
        assert_eq!(
            wei("0.5 wei").unwrap_err().to_string(),
            "\"0.5 wei\" is not a whole number of wei: an amount in wei has at most 0 decimals"
        );
    }

    #[test]
    fn more_than_256_bits_is_refused() {
        let beyond = format!("{}0", U256::MAX);
        assert_eq!(wei(&beyond), Err(ParseWeiError::TooLarge(beyond.clone())));
        let eth = format!("{} eth", U256::MAX);
        assert_eq!(wei(&eth), Err(ParseWeiError::TooLarge(eth.clone())));
        assert_eq!(
            wei(&beyond).unwrap_err().to_string(),
            format!("{beyond:?} is too large: an amount is less than 2^256 wei")
        );
    }
}
