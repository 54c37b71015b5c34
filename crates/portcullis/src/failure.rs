//! How the one-shot commands (`push`, `users`, `pools`, …) fail: an invalid configuration file
//! prints its diagnostics as `check` does and exits 2; anything else prints one line prefixed
//! with the command's name (`push: …`) and exits 1.

use std::path::Path;
use std::process::ExitCode;

/// Why a command failed: the exit status and what goes to stderr.
#[derive(Debug)]
pub enum Failure {
    /// Invalid configuration file: its diagnostics, exit 2.
    Config(String),
    /// Anything else: one line, exit 1.
    Error(String),
}

impl Failure {
    /// Prints the failure for `command` (`users confirm`, `push`) and returns the exit status.
    pub fn report(self, command: &str) -> ExitCode {
        match self {
            Failure::Config(message) => {
                eprintln!("{message}");
                ExitCode::from(2)
            }
            Failure::Error(message) => {
                eprintln!("{command}: {message}");
                ExitCode::FAILURE
            }
        }
    }
}

/// Loads and validates the configuration file, or fails with its diagnostics.
pub fn load_config(path: &Path) -> Result<portcullis_config::Config, Failure> {
    portcullis_config::load_file(path).map_err(|diagnostics| {
        Failure::Config(format!(
            "{diagnostics}\n{}: {} error(s)",
            path.display(),
            diagnostics.0.len()
        ))
    })
}
