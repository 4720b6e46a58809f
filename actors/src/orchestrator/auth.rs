//! Auth tokens: HMAC-SHA256 over session id and expiry with a per-process secret, as
//! go-livepeer's `core/orchestrator.go AuthToken`. A token proves the gateway got its session
//! from this orchestrator and that it has not expired.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use rand::RngCore;
use serde_bytes::ByteBuf;
use sha2::Sha256;

use lp_wire::AuthToken;

/// go-livepeer's `authTokenValidPeriod`.
pub const AUTH_TOKEN_VALIDITY: Duration = Duration::from_secs(30 * 60);

/// Issues and checks auth tokens.
pub struct AuthTokens {
    secret: [u8; 32],
    validity: Duration,
}

impl AuthTokens {
    /// Tokens valid for [`AUTH_TOKEN_VALIDITY`], under a fresh random secret.
    pub fn new() -> Self {
        Self::with_validity(AUTH_TOKEN_VALIDITY)
    }

    /// Tokens valid for `validity` (shorter than go-livepeer's only in tests, to see them expire).
    pub fn with_validity(validity: Duration) -> Self {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        AuthTokens { secret, validity }
    }

    fn mac(&self, session_id: &str, expiration: i64) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key size");
        mac.update(session_id.as_bytes());
        mac.update(&expiration.to_be_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// A token for a fresh random session id.
    pub fn issue(&self) -> AuthToken {
        let mut id = [0u8; 16];
        rand::rng().fill_bytes(&mut id);
        let session_id = hex::encode(id);
        let expiration = (now() + self.validity).as_secs() as i64;
        AuthToken { token: ByteBuf::from(self.mac(&session_id, expiration)), session_id, expiration }
    }

    /// Check a token; the error says why it is refused.
    pub fn verify(&self, token: &AuthToken) -> Result<(), TokenError> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key size");
        mac.update(token.session_id.as_bytes());
        mac.update(&token.expiration.to_be_bytes());
        mac.verify_slice(&token.token).map_err(|_| TokenError::Invalid)?;
        if token.expiration < now().as_secs() as i64 {
            return Err(TokenError::Expired);
        }
        Ok(())
    }
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not one this orchestrator issued (forged, altered, or from before a restart).
    #[error("invalid auth token")]
    Invalid,
    /// Issued here, but past its expiration: the gateway should ask for fresh terms.
    #[error("expired auth token")]
    Expired,
}

impl Default for AuthTokens {
    fn default() -> Self {
        Self::new()
    }
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_forgeries_do_not() {
        let tokens = AuthTokens::new();
        let t = tokens.issue();
        assert_eq!(tokens.verify(&t), Ok(()));

        let mut other_session = t.clone();
        other_session.session_id = "0".repeat(32);
        assert_eq!(tokens.verify(&other_session), Err(TokenError::Invalid));

        let mut extended = t.clone();
        extended.expiration += 3600;
        assert_eq!(tokens.verify(&extended), Err(TokenError::Invalid));

        // A token from another orchestrator (another secret) is refused.
        assert!(AuthTokens::new().verify(&t).is_err());
    }

    /// The clock read independently of `now()`, so that a broken `now()` shows.
    fn unix_secs() -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
    }

    #[test]
    fn tokens_are_valid_for_thirty_minutes_through_their_last_second() {
        let before = unix_secs();
        let t = AuthTokens::new().issue();
        assert!((before + 1800..=unix_secs() + 1800).contains(&t.expiration), "{}", t.expiration - before);

        // As go-livepeer: a token expiring this second is still valid (retried if the second
        // turns between the token and its check).
        let tokens = AuthTokens::new();
        loop {
            let expiration = unix_secs();
            let t =
                AuthToken { token: ByteBuf::from(tokens.mac("abc", expiration)), session_id: "abc".into(), expiration };
            let verified = tokens.verify(&t);
            if unix_secs() == expiration {
                assert_eq!(verified, Ok(()));
                break;
            }
        }
    }

    #[test]
    fn expired_tokens_are_refused() {
        let tokens = AuthTokens::new();
        let expiration = now().as_secs() as i64 - 1;
        let t = AuthToken { token: ByteBuf::from(tokens.mac("abc", expiration)), session_id: "abc".into(), expiration };
        assert_eq!(tokens.verify(&t), Err(TokenError::Expired));
    }
}
