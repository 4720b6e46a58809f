//! Amounts as people type and read them: [`parse_amount`] reads one (`"1.5"`, `"20 gwei"`),
//! strictly (no negative amounts, no fractions of a wei); [`format_amount`] writes one
//! (`"1.5 LPT"`). Amounts are wei (`U256`); LPT and ETH both have [`DECIMALS`] decimals.

use alloy::primitives::U256;

use crate::error::ChainError;

/// Decimals of LPT and ETH.
pub const DECIMALS: u8 = 18;

/// The contracts' two currencies, both with [`DECIMALS`] decimals.
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

    /// The decimals of `unit` (`""`: the token itself), if it is one of this token's.
    fn unit_decimals(self, unit: &str) -> Option<u8> {
        let unit = unit.to_ascii_lowercase();
        match (self, unit.as_str()) {
            (_, "") | (Token::Lpt, "lpt") => Some(DECIMALS),
            (_, "wei") => Some(0),
            // alloy's names: eth, ether, gwei, szabo, …; not its numeric form ("9").
            (Token::Eth, u) if u.bytes().all(|b| b.is_ascii_alphabetic()) => {
                u.parse::<alloy::primitives::utils::Unit>().ok().map(|u| u.get())
            }
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
    let decimals = token.unit_decimals(unit).ok_or_else(|| {
        ChainError::InvalidInput(format!(
            "{t:?} is not an amount: {unit:?} is not a unit of {}; use {}",
            token.symbol(),
            token.units()
        ))
    })?;
    parse_units(number, decimals)
}

/// Parse a plain decimal amount (`"1.5"`, `".5"`, `"42"`) into its smallest unit with `decimals`
/// decimals, strictly: digits and at most one decimal point, no sign, no more significant decimals
/// than `decimals` (less than the smallest unit is refused, not rounded), no overflow. The
/// arithmetic is alloy's [`parse_units`](alloy::primitives::utils::parse_units).
pub fn parse_units(s: &str, decimals: u8) -> Result<U256, ChainError> {
    let t = s.trim();
    let bad = |why: String| ChainError::InvalidInput(format!("{t:?} is not an amount: {why}"));
    if t.starts_with('-') {
        return Err(ChainError::InvalidInput(format!("{t:?} is negative; an amount is 0 or more")));
    }
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(bad("no digits".to_string()));
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad("use digits and at most one decimal point".to_string()));
    }
    // Zeros past the last decimal change nothing; any other digit there is a fraction of a wei.
    let significant = frac.trim_end_matches('0').len();
    if significant > usize::from(decimals) {
        return Err(ChainError::InvalidInput(if decimals == 0 {
            format!("{t:?} is a fraction of a wei; 1 wei is the smallest amount")
        } else {
            format!(
                "{t:?} has {significant} decimals, more than the {decimals} of its unit: it is not a whole number of \
                 wei (1 wei is the smallest amount)"
            )
        }));
    }
    let too_large = || bad("too large for 256 bits".to_string());
    let parsed = alloy::primitives::utils::parse_units(t, decimals).map_err(|_| too_large())?;
    match parsed {
        alloy::primitives::utils::ParseUnits::U256(v) => Ok(v),
        alloy::primitives::utils::ParseUnits::I256(_) => Err(too_large()),
    }
}

/// Format an amount in its smallest unit with `decimals` decimals, without trailing zeros
/// (`1500000000000000000` → `"1.5"`), with alloy's
/// [`format_units`](alloy::primitives::utils::format_units).
pub fn format_units(v: U256, decimals: u8) -> String {
    let full = alloy::primitives::utils::format_units(v, decimals).unwrap_or_else(|_| v.to_string());
    match full.split_once('.') {
        Some((int, frac)) if frac.bytes().all(|b| b == b'0') => int.to_string(),
        Some(_) => full.trim_end_matches('0').to_string(),
        None => full,
    }
}

/// `"1.5 LPT"`: an amount in wei as decimal units of `token`.
pub fn format_amount(v: U256, token: Token) -> String {
    format!("{} {}", format_units(v, DECIMALS), token.symbol())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_round_trip() {
        let e = |s: &str| parse_units(s, 18).unwrap();
        assert_eq!(e("1"), U256::from(10u128.pow(18)));
        assert_eq!(e("1.5"), U256::from(15u128 * 10u128.pow(17)));
        assert_eq!(e(".5"), U256::from(5u128 * 10u128.pow(17)));
        assert_eq!(e("0.000000000000000001"), U256::from(1));
        assert_eq!(e(" 2. "), U256::from(2u128 * 10u128.pow(18)));
        for bad in ["", ".", "-1", "1e18", "1.2.3", "0.0000000000000000001", "abc", "1,5", "+1"] {
            assert!(parse_units(bad, 18).is_err(), "{bad:?}");
        }
        assert!(parse_units(&"9".repeat(80), 18).is_err());
        assert_eq!(format_units(e("1.5"), 18), "1.5");
        assert_eq!(format_units(e("1000"), 18), "1000");
        assert_eq!(format_units(U256::from(1), 18), "0.000000000000000001");
        assert_eq!(format_units(U256::ZERO, 18), "0");
        assert_eq!(parse_units("12.34", 6).unwrap(), U256::from(12_340_000));
        assert_eq!(format_units(U256::from(5), 0), "5");
        assert_eq!(format_units(U256::MAX, 18).len(), 79, "every digit of the largest amount");
    }

    fn err(input: &str, token: Token) -> String {
        match parse_amount(input, token) {
            Err(ChainError::InvalidInput(m)) => m,
            other => panic!("{input:?}: {other:?}"),
        }
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
    }

    #[test]
    fn amounts_refused_with_a_reason() {
        for negative in ["-5", "-0.5", " -1 ETH", "-0"] {
            assert!(err(negative, Token::Eth).contains("negative"), "{negative:?}");
        }
        for sub_wei in ["0.0000000000000000001", "1.0000000000000000001", "0.1 wei", "1.5 wei"] {
            let m = err(sub_wei, Token::Eth);
            assert!(m.contains("wei") && (m.contains("decimals") || m.contains("fraction")), "{sub_wei:?}: {m}");
        }
        assert!(err("0.0000000001 gwei", Token::Eth).contains("10 decimals, more than the 9"));
        for unit in ["1 btc", "1e18", "1 LPT", "5 9"] {
            assert!(err(unit, Token::Eth).contains("is not a unit of ETH"), "{unit:?}");
        }
        assert!(err("1 ETH", Token::Lpt).contains("is not a unit of LPT"));
        assert!(err("1 gwei", Token::Lpt).contains("is not a unit of LPT"));
        for garbage in ["", "  ", ".", "abc", "+1", "1,5", "1_000", "1.2.3", ". ETH"] {
            let m = err(garbage, Token::Lpt);
            assert!(m.contains("is not an amount"), "{garbage:?}: {m}");
        }
    }
}
