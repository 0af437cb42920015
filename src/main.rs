//! The `loader` binary: a thin shell that hands the command line to [`loader::run`] and turns its
//! outcome into the process exit code.

fn main() -> std::process::ExitCode {
    loader::run(std::env::args_os())
}
