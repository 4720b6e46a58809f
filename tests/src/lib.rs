//! End-to-end tests of livepeer-rs: see `tests/`. They start real `livepeer` processes.
