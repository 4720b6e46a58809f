//! Keystore helpers shared by the keystore test binaries.

use std::path::{Path, PathBuf};

/// A password file under `dir` holding `content`.
pub fn password_file(dir: &Path, content: &str) -> PathBuf {
    let p = dir.join("password.txt");
    std::fs::write(&p, content).unwrap();
    p
}

/// The files in a keystore directory.
pub fn key_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect()
}
