//! The `livepeer` binary: only wiring; everything lives in the crates.

fn main() -> std::process::ExitCode {
    lp_node::cli::main()
}
