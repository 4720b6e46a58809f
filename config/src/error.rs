//! The errors of loading a config: every problem found, each naming its key.

use std::fmt;

/// One problem with the configuration.
///
/// `key` is the dotted path of the offending key (`gateway.http_addr`, `gateway.orchestrators[1]`),
/// the name of the environment variable for a bad override (`LIVEPEER_GATEWAY__HTP_ADDR`), or the
/// file name for a file that cannot be read or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// Where the problem is: a key path, an environment variable or a file.
    pub key: String,
    /// What is wrong, in one line.
    pub message: String,
}

impl ConfigError {
    /// An error about `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { key: key.into(), message: message.into() }
    }
}

/// Every problem found in a configuration, in a stable order. Never empty when returned as an
/// error by [`Config::from_toml_str`](crate::Config::from_toml_str) or
/// [`Config::load`](crate::Config::load).
///
/// Displays one error per line (`key: message`), without a trailing newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_error_per_line() {
        let errors = ConfigErrors(vec![
            ConfigError::new("gateway.http_addr", "invalid socket address \"nope\""),
            ConfigError::new("network", "expected a string, found integer 3"),
        ]);
        assert_eq!(
            errors.to_string(),
            "gateway.http_addr: invalid socket address \"nope\"\nnetwork: expected a string, found integer 3"
        );
    }
}
