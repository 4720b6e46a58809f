//! Amounts as people type and read them: [`parse_amount`] reads one (`"1.5"`, `"20 gwei"`),
//! strictly (no negative amounts, no fractions of a wei); [`format_amount`] writes one
//! (`"1.5 LPT"`). Amounts are wei (`U256`); LPT and ETH both have 18 decimals.
//!
//! The units and the arithmetic are alloy's ([`Unit`], [`ParseUnits::parse_units`],
//! [`format_ether`]). alloy reads more than an amount may be: a sign, `_` between digits, `""`
//! and `"."` as zero, and it drops the decimals its unit has no room for. Those are refused here
//! before alloy sees the number; this file holds nothing else of its own.

use alloy::primitives::U256;
use alloy::primitives::utils::{ParseUnits, Unit, format_ether};

use crate::error::ChainError;

/// The contracts' two currencies, both with 18 decimals (alloy's [`Unit::ETHER`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// Ether: deposits, reserves, fees.
    Eth,
    /// Livepeer Token: stake.
    Lpt,
}

impl Token {
    /// `"ETH"` or `"LPT"`.
    pub fn symbol(self) -> &'static str {
        match self {
            Token::Eth => "ETH",
            Token::Lpt => "LPT",
        }
    }

    /// The units an amount of this token may be written in, for messages.
    pub fn units(self) -> &'static str {
        match self {
            Token::Eth => "ETH (the default), gwei or wei",
            Token::Lpt => "LPT (the default) or wei",
        }
    }

    /// `unit` (`""`: the token itself), if it is one of this token's.
    fn unit(self, unit: &str) -> Option<Unit> {
        let unit = unit.to_ascii_lowercase();
        match (self, unit.as_str()) {
            (_, "") | (Token::Lpt, "lpt") => Some(Unit::ETHER),
            (_, "wei") => Some(Unit::WEI),
            // alloy's names: eth, ether, gwei, szabo, …; not its numeric form ("9").
            (Token::Eth, u) if u.bytes().all(|b| b.is_ascii_alphabetic()) => u.parse::<Unit>().ok(),
            _ => None,
        }
    }
}

/// Parse an amount as a person types it: a decimal number, optionally followed by a unit
/// (`"1.5"`, `"1.5 ETH"`, `"20gwei"`, `"1000 wei"`; without a unit, whole ETH or LPT). Refused,
/// each with its own reason: an empty string, a negative amount, signs, exponents and separators,
/// an unknown unit, a fraction of a wei (more decimals than the unit has) and more than fits in
/// 256 bits. Zero is accepted; callers refuse it where it makes no sense.
pub fn parse_amount(input: &str, token: Token) -> Result<U256, ChainError> {
    let t = input.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = (&t[..split], t[split..].trim());
    if t.starts_with('-') {
        return Err(ChainError::InvalidInput(format!("{t:?} is negative; an amount is 0 or more")));
    }
    if number.is_empty() {
        return Err(ChainError::InvalidInput(format!(
            "{t:?} is not an amount: write a decimal number such as 1.5, optionally followed by a unit ({})",
            token.units()
        )));
    }
    let unit = token.unit(unit).ok_or_else(|| {
        ChainError::InvalidInput(format!(
            "{t:?} is not an amount: {unit:?} is not a unit of {}; use {}",
            token.symbol(),
            token.units()
        ))
    })?;
    parse_decimal(number, unit)
}

/// `number` (ASCII digits and dots only, as [`parse_amount`] splits it off) in `unit`, as an
/// amount of wei: at most one decimal point, at least one digit, no more significant decimals
/// than `unit` has (less than a wei is refused, not rounded), no overflow.
fn parse_decimal(number: &str, unit: Unit) -> Result<U256, ChainError> {
    let bad = |why: &str| ChainError::InvalidInput(format!("{number:?} is not an amount: {why}"));
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(bad("no digits"));
    }
    if frac.contains('.') {
        return Err(bad("use digits and at most one decimal point"));
    }
    // Zeros past the last decimal change nothing; any other digit there is a fraction of a wei.
    let significant = frac.trim_end_matches('0').len();
    let decimals = unit.get();
    if significant > usize::from(decimals) {
        return Err(ChainError::InvalidInput(if decimals == 0 {
            format!("{number:?} is a fraction of a wei; 1 wei is the smallest amount")
        } else {
            format!(
                "{number:?} has {significant} decimals, more than the {decimals} of its unit: it is not a whole number \
                 of wei (1 wei is the smallest amount)"
            )
        }));
    }
    match ParseUnits::parse_units(number, unit) {
        Ok(ParseUnits::U256(wei)) => Ok(wei),
        // Unsigned by construction: no sign reaches alloy.
        Ok(ParseUnits::I256(_)) | Err(_) => Err(bad("too large for 256 bits")),
    }
}

/// `"1.5 LPT"`: an amount in wei as decimal units of `token`, without trailing zeros.
pub fn format_amount(wei: U256, token: Token) -> String {
    // alloy writes every one of the 18 decimals, after a point it always writes.
    let full = format_ether(wei);
    let trimmed = full.trim_end_matches('0');
    format!("{} {}", trimmed.strip_suffix('.').unwrap_or(trimmed), token.symbol())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str, token: Token) -> String {
        match parse_amount(input, token) {
            Err(ChainError::InvalidInput(m)) => m,
            other => panic!("{input:?}: {other:?}"),
        }
    }

    #[test]
    fn amounts_round_trip() {
        let lpt = |s: &str| parse_amount(s, Token::Lpt).unwrap();
        assert_eq!(lpt("1"), U256::from(10u128.pow(18)));
        assert_eq!(lpt("1.5"), U256::from(15u128 * 10u128.pow(17)));
        assert_eq!(lpt(".5"), U256::from(5u128 * 10u128.pow(17)));
        assert_eq!(lpt(" 2. "), U256::from(2u128 * 10u128.pow(18)));
        for s in ["1.5", "1000", "0.000000000000000001", "0", "123456789.987654321"] {
            assert_eq!(format_amount(lpt(s), Token::Lpt), format!("{s} LPT"), "{s:?}");
        }
        assert_eq!(format_amount(lpt("20.50"), Token::Eth), "20.5 ETH");
        let max = format_amount(U256::MAX, Token::Lpt);
        assert_eq!(max.len(), 79 + " LPT".len(), "every digit of the largest amount: {max}");
        assert_eq!(parse_amount(&max, Token::Lpt).unwrap(), U256::MAX);
    }

    #[test]
    fn amounts_with_units() {
        let wei = |n: u128| U256::from(n);
        let eth = |s: &str| parse_amount(s, Token::Eth).unwrap();
        let lpt = |s: &str| parse_amount(s, Token::Lpt).unwrap();
        assert_eq!(eth("1.5"), wei(15 * 10u128.pow(17)));
        assert_eq!(eth("1.5 ETH"), eth("1.5"));
        assert_eq!(eth(" 1.5eth "), eth("1.5"));
        assert_eq!(eth("2 ether"), eth("2"));
        assert_eq!(eth("20 gwei"), wei(20_000_000_000));
        assert_eq!(eth("0.5gwei"), wei(500_000_000));
        assert_eq!(eth("12.34 mwei"), wei(12_340_000));
        assert_eq!(eth("1000 wei"), wei(1000));
        assert_eq!(eth("0.000000000000000001"), wei(1));
        assert_eq!(eth("1.0000000000000000000"), eth("1"), "zeros past the 18th decimal change nothing");
        assert_eq!(eth("0"), U256::ZERO, "zero is the caller's to refuse");
        assert_eq!(lpt("100 LPT"), lpt("100"));
        assert_eq!(lpt("7 wei"), wei(7));
        // The largest amount there is, and one more.
        assert_eq!(eth(&format!("{} wei", U256::MAX)), U256::MAX);
        assert!(err(&format!("{}0 wei", U256::MAX), Token::Eth).contains("too large"));
        assert!(err(&"9".repeat(78), Token::Eth).contains("too large"));
        assert!(err(&"9".repeat(80), Token::Lpt).contains("too large"));
    }

    #[test]
    fn amounts_refused_with_a_reason() {
        for negative in ["-5", "-0.5", " -1 ETH", "-0", "-"] {
            assert!(err(negative, Token::Eth).contains("negative"), "{negative:?}");
        }
        for sub_wei in ["0.0000000000000000001", "1.0000000000000000001", "0.1 wei", "1.5 wei"] {
            let m = err(sub_wei, Token::Eth);
            assert!(m.contains("wei") && (m.contains("decimals") || m.contains("fraction")), "{sub_wei:?}: {m}");
        }
        assert!(err("0.0000000001 gwei", Token::Eth).contains("10 decimals, more than the 9"));
        for unit in ["1 btc", "1e18", "1 LPT", "5 9", "0x10", "1 wei wei"] {
            assert!(err(unit, Token::Eth).contains("is not a unit of ETH"), "{unit:?}");
        }
        assert!(err("1 ETH", Token::Lpt).contains("is not a unit of LPT"));
        assert!(err("1 gwei", Token::Lpt).contains("is not a unit of LPT"));
        // What alloy alone would read (as 0, 1000, 1 or by dropping a decimal) is refused here.
        for garbage in ["", "  ", ".", "..", "abc", "+1", "1,5", "1_000", "1.2.3", ". ETH", "1..5"] {
            let m = err(garbage, Token::Lpt);
            assert!(m.contains("is not an amount"), "{garbage:?}: {m}");
        }
    }
}
