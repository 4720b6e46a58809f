//! The fuzz runner: proptest strategies, run for a bounded number of cases under `cargo test`
//! (`PROPTEST_CASES` overrides) or, with `FUZZ_SECS` set (`make fuzz`), round after round of
//! fresh random cases until that many seconds have passed.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseResult, TestRunner};

/// Runs `test` on random values of `strategy`: `cases` of them, or for `FUZZ_SECS` divided by
/// `share` (the number of targets one test runs one after the other). A failure panics with
/// proptest's shrunk (minimal) input. Prints and answers how many cases ran.
pub fn run<S>(name: &str, cases: u32, share: u64, strategy: S, test: impl Fn(S::Value) -> TestCaseResult) -> u64
where
    S: Strategy,
    S::Value: Debug,
{
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    let secs = std::env::var("FUZZ_SECS").ok().and_then(|v| v.parse::<u64>().ok()).map(|s| (s / share.max(1)).max(1));
    let start = Instant::now();
    let mut total = 0u64;
    loop {
        let config = Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 4096,
            // Some targets run FFmpeg per case: bound the shrinking, not just count it.
            max_shrink_time: 120_000,
            ..Config::default()
        };
        if let Err(e) = TestRunner::new(config).run(&strategy, &test) {
            panic!("fuzz target {name} failed after about {total} cases: {e}");
        }
        total += u64::from(cases);
        if secs.is_none_or(|s| start.elapsed() >= Duration::from_secs(s)) {
            break;
        }
    }
    eprintln!("fuzz {name}: {total} cases in {:.1} s", start.elapsed().as_secs_f64());
    total
}
