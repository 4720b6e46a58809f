//! The node's JSON keystore: refused with a wrong or empty password, dev keys imported, key
//! files written by ethers.js (the first start and what it logs: `keystore_logs.rs`).

mod common;

use alloy::primitives::{Address, address};
use common::{key_files, password_file};
use lp_chain::anvil::DEV_KEYS;
use lp_chain::error::ChainError;
use lp_chain::keystore;

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
