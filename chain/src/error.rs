//! [`ChainError`]: every failure of the chain layer, with the contract's own revert reason when a
//! call or transaction reverts, and RPC URLs redacted wherever they could leak into a message.

use alloy::sol_types::{Panic, Revert, SolError};
use alloy::transports::{RpcError, TransportErrorKind};

/// Errors of the chain layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The JSON-RPC endpoint failed or answered with an error that is not a revert. The text never
    /// holds the endpoint's credentials (see [`redact_urls`]).
    #[error("ethereum RPC error: {0}")]
    Rpc(String),
    /// A call or transaction reverted; `reason` is the contract's revert string (`Error(string)`),
    /// or a readable rendering of a panic code or custom error.
    #[error("reverted: {reason}")]
    Reverted {
        /// The contract's reason, e.g. "caller has already called reward for the current round".
        reason: String,
    },
    /// The gas price is above the configured maximum (`max_gas_price`); nothing was sent.
    #[error("gas price {price} wei is above the configured maximum of {max} wei; transaction not sent")]
    GasPriceTooHigh {
        /// The price the transaction would pay (wei per gas).
        price: u128,
        /// The configured maximum (wei per gas).
        max: u128,
    },
    /// A transaction was not mined in time, even after the allowed replacements.
    #[error("transaction timed out: {0}")]
    Timeout(String),
    /// The keystore could not be read, created or decrypted.
    #[error("keystore: {0}")]
    Keystore(String),
    /// The node's database belongs to another chain.
    #[error(
        "chain id mismatch: the database was created for chain id {stored} but the RPC endpoint is on chain id \
         {actual}; use another data_dir or the right eth.url"
    )]
    ChainIdMismatch {
        /// The chain id stored in the database.
        stored: u64,
        /// The chain id of the endpoint.
        actual: u64,
    },
    /// A network name that is not one of the known networks.
    #[error("unknown network {0:?}; expected one of: arbitrum-one-mainnet, mainnet, devnet, custom")]
    UnknownNetwork(String),
    /// A contract is not deployed at the expected address (or not registered in the Controller).
    #[error("contract {0} is not deployed (not registered in the Controller, or no code at its address)")]
    NotDeployed(String),
    /// The embedded database failed.
    #[error("database: {0}")]
    Db(String),
    /// An argument was rejected before anything was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A write was asked of a client that has no account (no signer was given).
    #[error("no Ethereum account is configured (eth.keystore); this action sends a transaction")]
    NoAccount,
}

impl ChainError {
    /// Classify an error of a contract call (`alloy::contract::Error`): a revert becomes
    /// [`ChainError::Reverted`] with the contract's reason, anything else [`ChainError::Rpc`].
    pub fn from_contract_error(err: alloy::contract::Error) -> ChainError {
        match err {
            alloy::contract::Error::TransportError(e) => ChainError::from_rpc(&e),
            alloy::contract::Error::ZeroData(name, _) => ChainError::Rpc(format!(
                "call to `{name}` returned no data; the address is probably not the expected contract"
            )),
            other => ChainError::Rpc(redact_urls(&other.to_string())),
        }
    }

    /// Classify a JSON-RPC error: a revert (from `eth_call` or `eth_estimateGas`) becomes
    /// [`ChainError::Reverted`], anything else [`ChainError::Rpc`] with URLs redacted.
    pub fn from_rpc(err: &RpcError<TransportErrorKind>) -> ChainError {
        match revert_reason_of(err) {
            Some(reason) => ChainError::Reverted { reason },
            None => ChainError::Rpc(redact_urls(&err.to_string())),
        }
    }

    /// True for [`ChainError::Reverted`].
    pub fn is_revert(&self) -> bool {
        matches!(self, ChainError::Reverted { .. })
    }
}

impl From<alloy::contract::Error> for ChainError {
    fn from(err: alloy::contract::Error) -> Self {
        ChainError::from_contract_error(err)
    }
}

impl From<RpcError<TransportErrorKind>> for ChainError {
    fn from(err: RpcError<TransportErrorKind>) -> Self {
        ChainError::from_rpc(&err)
    }
}

impl From<rusqlite::Error> for ChainError {
    fn from(err: rusqlite::Error) -> Self {
        ChainError::Db(err.to_string())
    }
}

/// The revert reason carried by a JSON-RPC error, if the error is a revert.
pub(crate) fn revert_reason_of(err: &RpcError<TransportErrorKind>) -> Option<String> {
    let payload = err.as_error_resp()?;
    if let Some(data) = payload.as_revert_data() {
        return Some(decode_revert(&data));
    }
    // Some nodes report a revert with the reason in the message and no data.
    let msg = payload.message.as_ref();
    let lower = msg.to_ascii_lowercase();
    let idx = lower.find("execution reverted").or_else(|| lower.find("reverted"))?;
    let tail = msg[idx..].split_once(':').map(|(_, t)| t.trim()).unwrap_or("");
    Some(if tail.is_empty() { "no reason given".to_string() } else { tail.to_string() })
}

/// A readable rendering of revert data: the string of `Error(string)`, the meaning of
/// `Panic(uint256)`, or the selector and data of a custom error.
pub fn decode_revert(data: &[u8]) -> String {
    if data.is_empty() {
        return "no reason given".to_string();
    }
    if let Ok(revert) = Revert::abi_decode(data) {
        return revert.reason;
    }
    if let Ok(panic) = Panic::abi_decode(data) {
        return match panic.kind() {
            Some(kind) => format!("panic: {kind} (code {:#x})", panic.code),
            None => format!("panic: code {:#x}", panic.code),
        };
    }
    if data.len() >= 4 {
        let (selector, args) = data.split_at(4);
        if args.is_empty() {
            return format!("custom error 0x{}", hex::encode(selector));
        }
        return format!("custom error 0x{} with data 0x{}", hex::encode(selector), hex::encode(args));
    }
    match std::str::from_utf8(data) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => s.to_string(),
        _ => format!("undecodable revert data 0x{}", hex::encode(data)),
    }
}

/// `scheme://host[:port]` of a URL, with credentials (userinfo), path, query and fragment replaced
/// by `<redacted>`: RPC providers put API keys in all of them.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<redacted>".to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (had_userinfo, host) = match authority.rsplit_once('@') {
        Some((_, host)) => (true, host),
        None => (false, authority),
    };
    let mut out = format!("{scheme}://");
    if had_userinfo {
        out.push_str("<redacted>@");
    }
    out.push_str(host);
    if !(tail.is_empty() || tail == "/") {
        out.push_str("/<redacted>");
    }
    out
}

/// Redact every URL found in a free text (error messages of HTTP clients quote the URL).
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        // Walk back over the scheme.
        let before = &rest[..pos];
        let scheme_start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.'))
            .map_or(0, |i| i + 1);
        out.push_str(&rest[..scheme_start]);
        let url_part = &rest[scheme_start..];
        let end = url_part
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '(' | '"' | '\'' | '<' | '>' | ',' | ']' | '['))
            .unwrap_or(url_part.len());
        // Do not cut a `<redacted>` marker we wrote ourselves (cannot happen: we only scan input).
        out.push_str(&redact_url(&url_part[..end]));
        rest = &url_part[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::U256;

    #[test]
    fn redacts_credentials_and_keys() {
        assert_eq!(
            redact_url("https://user:pw@rpc.example.com/v2/KEY?x=1"),
            "https://<redacted>@rpc.example.com/<redacted>"
        );
        assert_eq!(redact_url("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
        assert_eq!(redact_url("http://127.0.0.1:8545/"), "http://127.0.0.1:8545");
        assert_eq!(redact_url("https://host?apikey=SECRET"), "https://host/<redacted>");
        let msg = "error sending request for url (https://a:b@h.io/v3/SECRET): connection refused";
        let red = redact_urls(msg);
        assert!(!red.contains("SECRET") && !red.contains("a:b"), "{red}");
        assert_eq!(red, "error sending request for url (https://<redacted>@h.io/<redacted>): connection refused");
    }

    #[test]
    fn decodes_reverts() {
        let data = Revert::from("caller has already called reward for the current round").abi_encode();
        assert_eq!(decode_revert(&data), "caller has already called reward for the current round");
        let data = Panic { code: U256::from(0x11) }.abi_encode();
        assert!(decode_revert(&data).starts_with("panic: "), "{}", decode_revert(&data));
        assert_eq!(decode_revert(&[0xde, 0xad, 0xbe, 0xef]), "custom error 0xdeadbeef");
        assert_eq!(decode_revert(&[]), "no reason given");
    }
}
