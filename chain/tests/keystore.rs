//! The node's JSON keystore: created on first start, reloaded, refused with a wrong or empty
//! password, dev keys imported.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use alloy::primitives::{Address, address};
use lp_chain::anvil::DEV_KEYS;
use lp_chain::error::ChainError;
use lp_chain::keystore;

/// A tracing writer that keeps everything logged, to check what was (and was not) logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn password_file(dir: &Path, content: &str) -> std::path::PathBuf {
    let p = dir.join("password.txt");
    std::fs::write(&p, content).unwrap();
    p
}

fn key_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect()
}

#[test]
fn creates_a_key_on_first_start_then_reloads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let ks = tmp.path().join("data/keystore");
    let pw = password_file(tmp.path(), "correct horse battery staple\n");

    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    let signer = tracing::subscriber::with_default(subscriber, || keystore::load_or_create(&ks, &pw, None)).unwrap();

    // One file, 0600, in a 0700 directory.
    let files = key_files(&ks);
    assert_eq!(files.len(), 1, "{files:?}");
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode {mode:o}");
    let dir_mode = std::fs::metadata(&ks).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700, "keystore dir mode {dir_mode:o}");
    // geth's name and address field.
    let name = files[0].file_name().unwrap().to_string_lossy().to_string();
    let addr_hex = hex::encode(signer.address());
    assert!(name.starts_with("UTC--") && name.ends_with(&addr_hex), "{name}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert_eq!(json["address"], addr_hex);
    assert_eq!(json["version"], 3);
    assert_eq!(json["crypto"]["kdf"], "scrypt");

    // The address is logged; the key and the password are not.
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains(&signer.address().to_string()), "address not logged: {logged}");
    assert!(!logged.contains(&hex::encode(signer.to_bytes())), "private key logged");
    assert!(!logged.contains("correct horse"), "password logged");

    // Reload: same account, no new file.
    let again = keystore::load_or_create(&ks, &pw, None).unwrap();
    assert_eq!(again.address(), signer.address());
    let again = keystore::load_or_create(&ks, &pw, Some(signer.address())).unwrap();
    assert_eq!(again.address(), signer.address());
    assert_eq!(key_files(&ks).len(), 1);

    // The keystore path may also be the key file itself.
    let direct = keystore::load_or_create(&files[0], &pw, None).unwrap();
    assert_eq!(direct.address(), signer.address());
}

#[test]
fn wrong_password_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let ks = tmp.path().join("keystore");
    let pw = password_file(tmp.path(), "right");
    keystore::load_or_create(&ks, &pw, None).unwrap();

    let wrong = tmp.path().join("wrong.txt");
    std::fs::write(&wrong, "wrong\n").unwrap();
    let err = keystore::load_or_create(&ks, &wrong, None).unwrap_err();
    assert!(matches!(err, ChainError::Keystore(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("wrong password"), "{msg}");
    assert!(!msg.contains("wrong\n"), "{msg}");
    // Nothing new was created.
    assert_eq!(key_files(&ks).len(), 1);
}

#[test]
fn empty_or_missing_password_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let ks = tmp.path().join("keystore");
    for content in ["", "\n", "\r\n"] {
        let pw = password_file(tmp.path(), content);
        let err = keystore::load_or_create(&ks, &pw, None).unwrap_err();
        assert!(err.to_string().contains("is empty"), "{content:?}: {err}");
    }
    let err = keystore::load_or_create(&ks, &tmp.path().join("nope.txt"), None).unwrap_err();
    assert!(err.to_string().contains("cannot read the password file"), "{err}");
    // No key was created without a password.
    assert!(!ks.exists() || key_files(&ks).is_empty());
}

#[test]
fn import_dev_key_and_choose_among_several() {
    let tmp = tempfile::tempdir().unwrap();
    let ks = tmp.path().join("keystore");
    let pw = password_file(tmp.path(), "pw\n");

    let first = keystore::import(&ks, &pw, DEV_KEYS[0]).unwrap();
    assert_eq!(first, address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266"));
    // Importing again is a no-op.
    assert_eq!(keystore::import(&ks, &pw, DEV_KEYS[0]).unwrap(), first);
    assert_eq!(key_files(&ks).len(), 1);
    let loaded = keystore::load_or_create(&ks, &pw, None).unwrap();
    assert_eq!(loaded.address(), first);

    let second = keystore::import(&ks, &pw, DEV_KEYS[1].trim_start_matches("0x")).unwrap();
    assert_eq!(second, address!("70997970C51812dc3A010C7d01b50e0d17dc79C8"));

    // Two keys and no account: the error lists both.
    let err = keystore::load_or_create(&ks, &pw, None).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&first.to_string()) && msg.contains(&second.to_string()), "{msg}");
    // With the account: that one.
    assert_eq!(keystore::load_or_create(&ks, &pw, Some(second)).unwrap().address(), second);
    // An account that is not there.
    let other = Address::repeat_byte(7);
    let err = keystore::load_or_create(&ks, &pw, Some(other)).unwrap_err();
    assert!(err.to_string().contains("not in the keystore"), "{err}");

    // Bad keys are refused without writing anything.
    for bad in ["", "0x1234", "zz", &"00".repeat(32)] {
        assert!(matches!(keystore::import(&ks, &pw, bad), Err(ChainError::InvalidInput(_))), "{bad:?}");
    }
    assert_eq!(key_files(&ks).len(), 2);
}

/// ethers.js writes `"Crypto"` (geth accepts either spelling); such a key file decrypts to the
/// same account, and a wrong password is still refused.
#[test]
fn a_key_file_written_by_ethers_decrypts() {
    let tmp = tempfile::tempdir().unwrap();
    let ks = tmp.path().join("keystore");
    let pw = password_file(tmp.path(), "ethers-style");
    let signer = keystore::load_or_create(&ks, &pw, None).unwrap();
    let file = key_files(&ks).remove(0);
    let mut json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let crypto = json.remove("crypto").unwrap();
    json.insert("Crypto".into(), crypto);
    std::fs::write(&file, serde_json::Value::Object(json).to_string()).unwrap();

    assert_eq!(keystore::load_or_create(&ks, &pw, None).unwrap().address(), signer.address());
    let wrong = tmp.path().join("wrong.txt");
    std::fs::write(&wrong, "nope").unwrap();
    let err = keystore::load_or_create(&ks, &wrong, None).unwrap_err();
    assert!(err.to_string().contains("wrong password"), "{err}");
    assert_eq!(key_files(&ks).len(), 1, "no key was added");
}
