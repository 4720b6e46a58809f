//! The first start of the node's keystore: the key is created (0600 in a 0700 directory, geth's
//! file name) and reloaded, and its address is logged while the key and the password are not.
//! In its own test binary because it captures the log with a thread-local subscriber, which
//! other tests creating keys (and logging) in parallel threads of the same process can race
//! (tracing caches a callsite's interest across threads).

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

use common::{key_files, password_file};
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
