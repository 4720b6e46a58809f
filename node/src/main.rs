//! The `livepeer` binary: only wiring; everything lives in the crates.

/// jemalloc returns freed memory to the system (see node/Cargo.toml); glibc's malloc kept it.
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    lp_node::cli::main()
}
