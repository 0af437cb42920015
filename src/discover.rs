//! What makes the command line discoverable beyond `--help`, generated from its own definition
//! so it cannot drift: shell completions (`loader completions SHELL`) and the manual pages
//! (`loader man`, or `loader man --dir DIR` for one page per subcommand).

use std::io::{self, Write};
use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;

/// Writes the completion script of `shell` to stdout.
pub(crate) fn completions(shell: clap_complete::Shell) -> io::Result<()> {
    let mut out = io::stdout().lock();
    clap_complete::generate(shell, &mut Cli::command(), "loader", &mut out);
    out.flush()
}

/// Writes the manual pages: every page (`loader.1`, `loader-copy.1`, …) into `dir`, or without a
/// directory `loader.1` to stdout.
pub(crate) fn man(dir: Option<&Path>) -> io::Result<()> {
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(Cli::command(), dir)
        }
        None => {
            let mut out = io::stdout().lock();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            out.flush()
        }
    }
}
