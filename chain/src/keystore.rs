//! The node's Ethereum account: a JSON keystore directory (Web3 Secret Storage V3, scrypt), the
//! format geth and go-livepeer use, read and written through alloy-signer-local.
//!
//! Files are named like geth's (`UTC--<time>--<address>`) and carry geth's `address` field, so a
//! go-livepeer keystore directory can be used as is and ours can be used by geth tools. New key
//! files are mode 0600 in a directory created with mode 0700. The password comes from a file
//! (its trailing newline trimmed); neither the password nor the key is ever logged.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256};
use alloy::signers::local::{LocalSignerError, PrivateKeySigner};

use crate::error::ChainError;

/// One key file found in a keystore directory.
#[derive(Debug, Clone)]
pub struct KeyFile {
    /// The file.
    pub path: PathBuf,
    /// The account, from the file's `address` field when it has one.
    pub address: Option<Address>,
}

/// Load the account from `keystore_dir`, or create one there if the directory holds no key.
///
/// `keystore_dir` may also be a single key file. With several keys, `account` picks one (an
/// error lists the addresses when it is missing or not found). A new key is logged by its
/// address only.
pub fn load_or_create(
    keystore_dir: &Path,
    password_file: &Path,
    account: Option<Address>,
) -> Result<PrivateKeySigner, ChainError> {
    let password = read_password(password_file)?;
    if keystore_dir.is_file() {
        let key = KeyFile { path: keystore_dir.to_path_buf(), address: read_key_file_address(keystore_dir)? };
        let signer = decrypt(&key, &password)?;
        if let Some(want) = account
            && signer.address() != want
        {
            return Err(ChainError::Keystore(format!(
                "key file {} holds account {}, not the configured account {want}",
                keystore_dir.display(),
                signer.address()
            )));
        }
        return Ok(signer);
    }
    ensure_dir(keystore_dir)?;
    let keys = list(keystore_dir)?;
    if keys.is_empty() {
        if let Some(want) = account {
            return Err(ChainError::Keystore(format!(
                "account {want} is configured but the keystore {} holds no key",
                keystore_dir.display()
            )));
        }
        let signer = PrivateKeySigner::random();
        let path = write_key(keystore_dir, &signer.to_bytes(), &password)?;
        tracing::info!(
            target: "lp::chain",
            address = %signer.address(),
            path = %path.display(),
            "Created a new Ethereum account in the keystore; fund this address to use it on chain."
        );
        return Ok(signer);
    }
    match account {
        Some(want) => {
            if let Some(key) = keys.iter().find(|k| k.address == Some(want)) {
                return decrypt(key, &password);
            }
            // Files without an `address` field: decrypt to find out.
            for key in keys.iter().filter(|k| k.address.is_none()) {
                if let Ok(signer) = decrypt(key, &password)
                    && signer.address() == want
                {
                    return Ok(signer);
                }
            }
            Err(ChainError::Keystore(format!(
                "account {want} is not in the keystore {}; it holds: {}",
                keystore_dir.display(),
                describe(&keys)
            )))
        }
        None if keys.len() == 1 => decrypt(&keys[0], &password),
        None => Err(ChainError::Keystore(format!(
            "the keystore {} holds {} keys ({}); set the account to use (eth.account)",
            keystore_dir.display(),
            keys.len(),
            describe(&keys)
        ))),
    }
}

/// Put `private_key_hex` (32 bytes, with or without `0x`) into `keystore_dir`, encrypted with the
/// password from `password_file`. Importing a key that is already there changes nothing.
pub fn import(keystore_dir: &Path, password_file: &Path, private_key_hex: &str) -> Result<Address, ChainError> {
    let password = read_password(password_file)?;
    let hex_str = private_key_hex.trim();
    let hex_str = hex_str.strip_prefix("0x").unwrap_or(hex_str);
    let bytes = hex::decode(hex_str)
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| ChainError::InvalidInput("a private key is 32 bytes of hex (64 hex digits)".to_string()))?;
    let signer = PrivateKeySigner::from_slice(&bytes)
        .map_err(|_| ChainError::InvalidInput("not a valid secp256k1 private key".to_string()))?;
    let address = signer.address();
    ensure_dir(keystore_dir)?;
    if list(keystore_dir)?.iter().any(|k| k.address == Some(address)) {
        return Ok(address);
    }
    let path = write_key(keystore_dir, &signer.to_bytes(), &password)?;
    tracing::info!(target: "lp::chain", %address, path = %path.display(), "Imported an Ethereum account into the keystore.");
    Ok(address)
}

/// The key files of a keystore directory (files that parse as V3 keystore JSON), sorted by name.
pub fn list(keystore_dir: &Path) -> Result<Vec<KeyFile>, ChainError> {
    let entries = fs::read_dir(keystore_dir)
        .map_err(|e| ChainError::Keystore(format!("cannot read keystore directory {}: {e}", keystore_dir.display())))?;
    let mut keys = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ChainError::Keystore(format!("cannot read {}: {e}", keystore_dir.display())))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden || !path.is_file() {
            continue;
        }
        match read_key_file_address(&path) {
            Ok(address) => keys.push(KeyFile { path, address }),
            Err(_) => {
                tracing::debug!(target: "lp::chain", path = %path.display(), "Skipping a file that is not a keystore file.")
            }
        }
    }
    keys.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(keys)
}

/// The password in `password_file`, without its trailing newline.
pub fn read_password(password_file: &Path) -> Result<String, ChainError> {
    let raw = fs::read_to_string(password_file)
        .map_err(|e| ChainError::Keystore(format!("cannot read the password file {}: {e}", password_file.display())))?;
    let password = raw.strip_suffix('\n').map(|p| p.strip_suffix('\r').unwrap_or(p)).unwrap_or(&raw);
    if password.is_empty() {
        return Err(ChainError::Keystore(format!(
            "the password file {} is empty; put the keystore password in it",
            password_file.display()
        )));
    }
    Ok(password.to_string())
}

/// The key file's JSON with `"Crypto"` renamed `"crypto"`, when it is spelled that way.
fn lowercase_crypto(path: &Path) -> Result<Option<String>, ChainError> {
    let text = fs::read_to_string(path)
        .map_err(|e| ChainError::Keystore(format!("cannot read key file {}: {e}", path.display())))?;
    let Ok(serde_json::Value::Object(mut json)) = serde_json::from_str(&text) else { return Ok(None) };
    if json.contains_key("crypto") {
        return Ok(None);
    }
    let Some(crypto) = json.remove("Crypto") else { return Ok(None) };
    json.insert("crypto".into(), crypto);
    Ok(Some(serde_json::Value::Object(json).to_string()))
}

/// Parse a key file: it must be keystore JSON; its `address` field is optional.
fn read_key_file_address(path: &Path) -> Result<Option<Address>, ChainError> {
    let text = fs::read_to_string(path)
        .map_err(|e| ChainError::Keystore(format!("cannot read key file {}: {e}", path.display())))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|_| ChainError::Keystore(format!("{} is not a JSON keystore file", path.display())))?;
    if !(json.get("crypto").is_some_and(|c| c.is_object()) || json.get("Crypto").is_some_and(|c| c.is_object())) {
        return Err(ChainError::Keystore(format!("{} is not a JSON keystore file", path.display())));
    }
    Ok(json.get("address").and_then(|a| a.as_str()).and_then(|a| {
        let a = a.strip_prefix("0x").unwrap_or(a);
        format!("0x{a}").parse::<Address>().ok()
    }))
}

fn decrypt(key: &KeyFile, password: &str) -> Result<PrivateKeySigner, ChainError> {
    let decrypted = match lowercase_crypto(&key.path)? {
        // A key file written by ethers.js says "Crypto" (geth accepts either); the decoder
        // wants "crypto", so it reads a private copy that says so.
        Some(copy) => {
            // A private directory (0700), removed when dropped.
            let dir = tempfile::Builder::new()
                .prefix("lp-keystore")
                .tempdir()
                .map_err(|e| ChainError::Keystore(format!("a temporary directory for the key file: {e}")))?;
            let path = dir.path().join("key.json");
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .and_then(|mut f| f.write_all(copy.as_bytes()))
                .map_err(|e| ChainError::Keystore(format!("{}: {e}", path.display())))?;
            PrivateKeySigner::decrypt_keystore(&path, password)
        }
        None => PrivateKeySigner::decrypt_keystore(&key.path, password),
    };
    let signer = decrypted.map_err(|e| {
        let account = key.address.map(|a| format!(" (account {a})")).unwrap_or_default();
        if is_mac_mismatch(&e) {
            ChainError::Keystore(format!(
                "wrong password for key file {}{account}: the password file does not decrypt it",
                key.path.display()
            ))
        } else {
            ChainError::Keystore(format!("cannot decrypt key file {}{account}: {e}", key.path.display()))
        }
    })?;
    if let Some(addr) = key.address
        && addr != signer.address()
    {
        return Err(ChainError::Keystore(format!(
            "key file {} says it holds account {addr} but decrypts to {}",
            key.path.display(),
            signer.address()
        )));
    }
    Ok(signer)
}

fn is_mac_mismatch(e: &LocalSignerError) -> bool {
    matches!(e, LocalSignerError::EthKeystoreError(k) if k.to_string().to_ascii_lowercase().contains("mac mismatch"))
}

fn describe(keys: &[KeyFile]) -> String {
    keys.iter()
        .map(|k| match k.address {
            Some(a) => a.to_string(),
            None => format!("{} (no address field)", k.path.display()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Create the directory (mode 0700) if it does not exist.
fn ensure_dir(dir: &Path) -> Result<(), ChainError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ChainError::Keystore(format!("cannot create keystore directory {}: {e}", dir.display())))
}

/// Encrypt `secret` into a new geth-named file (mode 0600) in `dir`; returns its path.
fn write_key(dir: &Path, secret: &B256, password: &str) -> Result<PathBuf, ChainError> {
    let signer = PrivateKeySigner::from_bytes(secret)
        .map_err(|_| ChainError::InvalidInput("not a valid secp256k1 private key".to_string()))?;
    let address = signer.address();
    // eth-keystore writes with the process umask; write it to a hidden temporary name, add the
    // `address` field geth expects, and write the final file ourselves with mode 0600.
    let tmp_name = format!(".tmp-{}", hex::encode(rand::random::<[u8; 8]>()));
    let tmp = dir.join(&tmp_name);
    let result = (|| {
        let mut rng = rand08::thread_rng();
        PrivateKeySigner::encrypt_keystore(dir, &mut rng, secret.as_slice(), password, Some(&tmp_name))
            .map_err(|e| ChainError::Keystore(format!("cannot encrypt the key: {e}")))?;
        let text = fs::read_to_string(&tmp)
            .map_err(|e| ChainError::Keystore(format!("cannot read back {}: {e}", tmp.display())))?;
        let mut json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ChainError::Keystore(format!("unexpected keystore JSON from the encoder: {e}")))?;
        if let Some(obj) = json.as_object_mut() {
            obj.insert("address".to_string(), serde_json::Value::String(hex::encode(address)));
        }
        let path = dir.join(geth_file_name(address, SystemTime::now()));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| ChainError::Keystore(format!("cannot create key file {}: {e}", path.display())))?;
        file.write_all(json.to_string().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| ChainError::Keystore(format!("cannot write key file {}: {e}", path.display())))?;
        Ok(path)
    })();
    let _ = fs::remove_file(&tmp);
    result
}

/// geth's key file name: `UTC--2006-01-02T15-04-05.000000000Z--<address in lowercase hex>`.
fn geth_file_name(address: Address, now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "UTC--{y:04}-{mo:02}-{d:02}T{:02}-{:02}-{:02}.{:09}Z--{}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        since.subsec_nanos(),
        hex::encode(address)
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn geth_names() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        let name = geth_file_name(Address::repeat_byte(0xab), t);
        assert_eq!(name, format!("UTC--2023-11-14T22-13-20.000000005Z--{}", "ab".repeat(20)));
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }
}
