//! The configuration compiler: one TOML file in, a validated [`Config`] out.
//!
//! Owns parsing (with `${VAR}` / `${VAR:-default}` substitution), the raw → typed compile
//! step and the diagnostics (file:line:column, key path, message; all problems at once).
//! It does no I/O beyond reading the file it is given and never touches the network.
//!
//! The pipeline: `toml_edit` parses the text (keeping spans) → `raw` flattens it into a
//! tree of positioned values → `compile` walks that tree with the schema in `walk`,
//! substituting variables (`env`), parsing durations (`duration`) and checking embedded
//! syntaxes (`syntax`) → [`Config`]. [`render_redacted`] goes the other way for
//! `portcullis check`.
//!
//! Substitution: only `${` starts one, so `$request.body.action` or `$connect` need no
//! escaping (and there is no escape for a literal `${`). `${VAR}` is replaced by the
//! variable's value; `${VAR:-default}` by the default when the variable is unset or empty.
//! Integer and boolean keys also accept a string that contains a substitution
//! (`max_connections = "${MAX_CONN:-1000}"`).

// Tests may unwrap: a panic there is a failing test, not a crash reachable from input.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod compile;
pub mod defaults;
mod duration;
mod env;
mod http_url;
pub mod model;
mod raw;
mod render;
mod syntax;
mod walk;

pub use http_url::HttpUrl;
pub use model::*;

use std::fmt;
use std::path::Path;

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based.
    pub column: usize,
    /// Dotted key path, e.g. `websocket.chat.routes.sendmessage.integration`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        // Syntax errors and unreadable files have no key path.
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Reads and compiles the file at `path`, substituting variables from the process environment.
pub fn load_file(path: &Path) -> Result<Config, Diagnostics> {
    let file_name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(source) => {
            let mut config = load_str(&source, &file_name, &|name| std::env::var(name).ok())?;
            // Relative static directories and key files belong to the file, not to the working
            // directory.
            let base = path.parent().unwrap_or_else(|| Path::new(""));
            for site in config.static_sites.values_mut() {
                if site.dir.is_relative() {
                    site.dir = base.join(&site.dir);
                }
            }
            for function in config.functions.values_mut() {
                if function.code.is_relative() {
                    function.code = base.join(&function.code);
                }
                // A handler runs inside `code` with LAMBDA_TASK_ROOT = `code`: a path relative
                // to Portcullis's working directory would be looked up again from inside itself.
                if let Ok(absolute) = std::path::absolute(&function.code) {
                    function.code = absolute;
                }
            }
            if let Some(KeyEncryptionKey::File(file)) = &mut config.store.key_encryption_key
                && file.is_relative()
            {
                *file = base.join(&*file);
            }
            let resolve = |file: &mut String| {
                if Path::new(file.as_str()).is_relative() {
                    *file = base.join(file.as_str()).to_string_lossy().into_owned();
                }
            };
            for tls in [&mut config.server.tls, &mut config.server.admin_tls]
                .into_iter()
                .flatten()
            {
                resolve(&mut tls.cert);
                resolve(&mut tls.key);
            }
            if let Some(ca_file) = &mut config.server.ca_file {
                resolve(ca_file);
            }
            let problems = check_secret_files(&mut config, base, &file_name);
            if !problems.is_empty() {
                return Err(Diagnostics(problems));
            }
            Ok(config)
        }
        Err(e) => Err(Diagnostics(vec![Diagnostic {
            file: file_name,
            line: 1,
            column: 1,
            path: String::new(),
            message: format!("cannot read configuration file: {e}"),
        }])),
    }
}

/// Resolves every `secret_file` of a `jwt` issuer against `base` and reads it, so that
/// `portcullis check` refuses a missing file or a secret shorter than
/// [`MIN_HMAC_SECRET_BYTES`] as it refuses a short `secret`.
fn check_secret_files(config: &mut Config, base: &Path, file_name: &str) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    for (name, authorizer) in config.authorizers.iter_mut() {
        let Authorizer::Jwt(jwt) = authorizer else {
            continue;
        };
        for (index, issuer) in jwt.issuers.iter_mut().enumerate() {
            let Some(HmacSecret::File(file)) = &mut issuer.secret else {
                continue;
            };
            if file.is_relative() {
                *file = base.join(&*file);
            }
            let message = match HmacSecret::File(file.clone()).load() {
                Err(e) => format!("cannot read {}: {e}", file.display()),
                Ok(secret) if secret.expose().len() < MIN_HMAC_SECRET_BYTES => format!(
                    "{} holds {} bytes; a shared secret must be at least \
                     {MIN_HMAC_SECRET_BYTES} bytes (generate one with `openssl rand -base64 32`)",
                    file.display(),
                    secret.expose().len()
                ),
                Ok(_) => continue,
            };
            problems.push(Diagnostic {
                file: file_name.to_owned(),
                line: 1,
                column: 1,
                path: format!("authorizers.{name}.issuers[{index}].secret_file"),
                message,
            });
        }
    }
    problems
}

/// Compiles `source` (named `file_name` in diagnostics), looking variables up with `env`.
pub fn load_str(
    source: &str,
    file_name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Diagnostics> {
    let mut ctx = walk::Ctx::new(file_name, source, env);
    let document = match toml_edit::Document::parse(source) {
        Ok(document) => document,
        Err(e) => {
            let at = e.span().map_or(0, |s| s.start);
            ctx.error(at, "", format!("invalid TOML: {}", e.message().trim_end()));
            return Err(Diagnostics(ctx.into_diagnostics()));
        }
    };
    let root = raw::from_root(document.as_table());
    match compile::compile(&root, &mut ctx) {
        Some(mut config) if !ctx.has_errors() => {
            config.warnings = ctx.take_warnings();
            Ok(config)
        }
        Some(_) | None => {
            let diagnostics = ctx.into_diagnostics();
            if diagnostics.is_empty() {
                // compile() only gives up after reporting; keep the contract if that changes.
                return Err(Diagnostics(vec![Diagnostic {
                    file: file_name.to_owned(),
                    line: 1,
                    column: 1,
                    path: String::new(),
                    message: "configuration could not be compiled".to_owned(),
                }]));
            }
            Err(Diagnostics(diagnostics))
        }
    }
}

/// Parses a duration as the file writes them (`"50ms"`, `"30s"`, `"10m"`, `"2h"`, `"30d"`), for
/// command-line flags that take the same form. The error is a complete sentence.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    duration::parse(text)
}

/// The effective configuration as TOML, with every secret shown as `"<redacted>"`.
pub fn render_redacted(config: &Config) -> String {
    render::render(config)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod shared_secret_tests;

#[cfg(test)]
mod limits_tests;

#[cfg(test)]
mod tls_tests;

#[cfg(test)]
mod pool_id_tests;

#[cfg(test)]
mod trigger_tests;
