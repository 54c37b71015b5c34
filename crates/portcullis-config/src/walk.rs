//! The schema walker: reads the raw tree table by table, converting values and collecting a
//! diagnostic for every problem instead of stopping at the first.
//!
//! A [`Tbl`] remembers which keys were asked for; [`Tbl::finish`] reports every other key as
//! unknown (with a "did you mean" hint). Getters return `None` both when a key is absent and
//! when its value was bad (the latter already reported), so callers fall back to defaults and
//! the compile fails at the end if anything was reported.

use std::str::FromStr;
use std::time::Duration;

use crate::Diagnostic;
use crate::duration;
use crate::env::{self, Substituted};
use crate::model::Secret;
use crate::raw::{Entry, Node, RawValue};

/// A value together with the byte offset it came from.
#[derive(Debug, Clone)]
pub(crate) struct Sp<T> {
    pub(crate) v: T,
    pub(crate) at: usize,
}

/// Where diagnostics go, plus what is needed to make them (file name, line index, env).
pub(crate) struct Ctx<'a> {
    file: &'a str,
    source: &'a str,
    line_starts: Vec<usize>,
    env: &'a dyn Fn(&str) -> Option<String>,
    diags: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        file: &'a str,
        source: &'a str,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let line_starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Ctx {
            file,
            source,
            line_starts,
            env,
            diags: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Records a problem at byte offset `at`.
    pub(crate) fn error(&mut self, at: usize, path: &str, message: impl Into<String>) {
        let (line, column) = self.locate(at);
        self.diags.push(Diagnostic {
            file: self.file.to_owned(),
            line,
            column,
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// Records something valid but risky at byte offset `at` (the file still compiles).
    pub(crate) fn warn(&mut self, at: usize, path: &str, message: impl Into<String>) {
        let (line, column) = self.locate(at);
        self.warnings.push(Diagnostic {
            file: self.file.to_owned(),
            line,
            column,
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// The warnings so far, in file order.
    pub(crate) fn take_warnings(&mut self) -> Vec<Diagnostic> {
        let mut warnings = std::mem::take(&mut self.warnings);
        warnings.sort_by_key(|d| (d.line, d.column));
        warnings
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.diags.is_empty()
    }

    /// All diagnostics in file order (stable for equal positions).
    pub(crate) fn into_diagnostics(mut self) -> Vec<Diagnostic> {
        self.diags.sort_by_key(|d| (d.line, d.column));
        self.diags
    }

    /// 1-based line and column (in characters) of byte offset `at`.
    fn locate(&self, at: usize) -> (usize, usize) {
        let at = at.min(self.source.len());
        let line = self
            .line_starts
            .partition_point(|&start| start <= at)
            .max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let column = self
            .source
            .get(start..at)
            .map_or(at - start, |s| s.chars().count())
            + 1;
        (line, column)
    }

    /// The string value of `node` after `${...}` substitution; `None` (reported) if `node`
    /// is not a string or a substitution failed. The flag says whether anything was
    /// substituted.
    fn string(&mut self, node: &Node, path: &str) -> Option<(String, bool)> {
        match &node.value {
            RawValue::String(raw) => match env::substitute(raw, self.env) {
                Ok(Substituted::Unchanged) => Some((raw.clone(), false)),
                Ok(Substituted::Replaced(value)) => Some((value, true)),
                Err(messages) => {
                    for message in messages {
                        self.error(node.at, path, message);
                    }
                    None
                }
            },
            other => {
                self.error(
                    node.at,
                    path,
                    format!("expected a string, found {}", other.type_name()),
                );
                None
            }
        }
    }

    fn integer(&mut self, node: &Node, path: &str) -> Option<i64> {
        match &node.value {
            RawValue::Integer(i) => Some(*i),
            // "${PORT}" and friends: a substituted string may stand for a number.
            RawValue::String(raw) if raw.contains("${") => {
                let (text, _) = self.string(node, path)?;
                match text.trim().parse() {
                    Ok(i) => Some(i),
                    Err(_) => {
                        self.error(node.at, path, format!("expected an integer, got {text:?}"));
                        None
                    }
                }
            }
            other => {
                self.error(
                    node.at,
                    path,
                    format!("expected an integer, found {}", other.type_name()),
                );
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            RawValue::Boolean(b) => Some(*b),
            RawValue::String(raw) if raw.contains("${") => {
                let (text, _) = self.string(node, path)?;
                match text.trim() {
                    "true" => Some(true),
                    "false" => Some(false),
                    _ => {
                        self.error(
                            node.at,
                            path,
                            format!("expected true or false, got {text:?}"),
                        );
                        None
                    }
                }
            }
            other => {
                self.error(
                    node.at,
                    path,
                    format!("expected a boolean, found {}", other.type_name()),
                );
                None
            }
        }
    }

    fn number(&mut self, node: &Node, path: &str) -> Option<f64> {
        match &node.value {
            RawValue::Float(f) => Some(*f),
            #[allow(clippy::cast_precision_loss)]
            RawValue::Integer(i) => Some(*i as f64),
            other => {
                self.error(
                    node.at,
                    path,
                    format!("expected a number, found {}", other.type_name()),
                );
                None
            }
        }
    }

    /// Views `node` as a table, reporting it if it is something else.
    pub(crate) fn table<'n>(&mut self, node: &'n Node, path: &str) -> Option<Tbl<'n>> {
        match &node.value {
            RawValue::Table(entries) => Some(Tbl::new(path, node.at, entries)),
            other => {
                self.error(
                    node.at,
                    path,
                    format!("expected a table, found {}", other.type_name()),
                );
                None
            }
        }
    }

    /// Each element of an array, reported if `node` is not an array.
    pub(crate) fn array<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Node]> {
        match &node.value {
            RawValue::Array(items) => Some(items),
            other => {
                self.error(
                    node.at,
                    path,
                    format!("expected an array, found {}", other.type_name()),
                );
                None
            }
        }
    }
}

/// Appends `key` to a dotted path, quoting it the way TOML would if it is not a bare key.
pub(crate) fn join(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// Path of the `index`-th element of the array at `path`.
pub(crate) fn index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// A table being read: tracks which keys the schema asked for.
pub(crate) struct Tbl<'n> {
    pub(crate) path: String,
    pub(crate) at: usize,
    entries: &'n [Entry],
    used: Vec<bool>,
    known: Vec<&'static str>,
}

impl<'n> Tbl<'n> {
    pub(crate) fn new(path: &str, at: usize, entries: &'n [Entry]) -> Self {
        Tbl {
            path: path.to_owned(),
            at,
            entries,
            used: vec![false; entries.len()],
            known: Vec::new(),
        }
    }

    /// Path of `key` inside this table.
    pub(crate) fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The raw node of `key`, marking it as known.
    pub(crate) fn node(&mut self, key: &'static str) -> Option<&'n Node> {
        if !self.known.contains(&key) {
            self.known.push(key);
        }
        let index = self.entries.iter().position(|e| e.key == key)?;
        if let Some(used) = self.used.get_mut(index) {
            *used = true;
        }
        self.entries.get(index).map(|e| &e.node)
    }

    /// Every entry, for tables whose keys are names chosen by the user (APIs, routes, ...).
    pub(crate) fn entries(&mut self) -> &'n [Entry] {
        self.used.iter_mut().for_each(|u| *u = true);
        self.entries
    }

    /// Where the value of `key` starts, else where this table starts.
    pub(crate) fn at_of(&self, key: &str) -> usize {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map_or(self.at, |e| e.node.at)
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.entries.iter().any(|e| e.key == key)
    }

    /// Reports a required key that is absent.
    pub(crate) fn missing(&self, ctx: &mut Ctx<'_>, key: &str) {
        ctx.error(self.at, &self.path_of(key), "missing required key");
    }

    /// Reports every key the schema did not ask for.
    pub(crate) fn finish(self, ctx: &mut Ctx<'_>) {
        for (entry, used) in self.entries.iter().zip(&self.used) {
            if *used {
                continue;
            }
            let message = match suggestion(&entry.key, &self.known) {
                Some(known) => format!("unknown key {:?}; did you mean {known:?}?", entry.key),
                None if self.known.is_empty() => format!("unknown key {:?}", entry.key),
                None => format!(
                    "unknown key {:?}; expected one of: {}",
                    entry.key,
                    self.known.join(", ")
                ),
            };
            ctx.error(entry.key_at, &self.path_of(&entry.key), message);
        }
    }

    // ---- typed getters ------------------------------------------------------------------

    pub(crate) fn string(&mut self, ctx: &mut Ctx<'_>, key: &'static str) -> Option<Sp<String>> {
        let node = self.node(key)?;
        let (v, _) = ctx.string(node, &self.path_of(key))?;
        Some(Sp { v, at: node.at })
    }

    pub(crate) fn req_string(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
    ) -> Option<Sp<String>> {
        if !self.contains(key) {
            self.node(key);
            self.missing(ctx, key);
            return None;
        }
        self.string(ctx, key)
    }

    /// A string that must not be empty.
    pub(crate) fn name(&mut self, ctx: &mut Ctx<'_>, key: &'static str) -> Option<Sp<String>> {
        let value = self.string(ctx, key)?;
        if value.v.is_empty() {
            ctx.error(value.at, &self.path_of(key), "must not be empty");
            return None;
        }
        Some(value)
    }

    pub(crate) fn req_name(&mut self, ctx: &mut Ctx<'_>, key: &'static str) -> Option<Sp<String>> {
        if !self.contains(key) {
            self.node(key);
            self.missing(ctx, key);
            return None;
        }
        self.name(ctx, key)
    }

    /// A non-empty secret. One taken from a `${VAR:-default}` fallback is accepted with a
    /// warning naming the key and the variable (never the value).
    pub(crate) fn secret(&mut self, ctx: &mut Ctx<'_>, key: &'static str) -> Option<Sp<Secret>> {
        let value = self.name(ctx, key)?;
        if let Some(RawValue::String(raw)) = self.node(key).map(|n| &n.value) {
            for variable in env::defaulted_variables(raw, ctx.env) {
                ctx.warn(
                    value.at,
                    &self.path_of(key),
                    format!(
                        "secret taken from the default written in the file because \
                         {variable} is unset or empty: set {variable} to a secret of your own"
                    ),
                );
            }
        }
        Some(Sp {
            v: Secret::new(value.v),
            at: value.at,
        })
    }

    /// A string parsed with `FromStr`; `what` completes "expected ...".
    pub(crate) fn parsed<T: FromStr>(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
        what: &str,
    ) -> Option<Sp<T>> {
        let value = self.string(ctx, key)?;
        match value.v.parse() {
            Ok(v) => Some(Sp { v, at: value.at }),
            Err(_) => {
                ctx.error(
                    value.at,
                    &self.path_of(key),
                    format!("expected {what}, got {:?}", value.v),
                );
                None
            }
        }
    }

    pub(crate) fn bool(&mut self, ctx: &mut Ctx<'_>, key: &'static str) -> Option<Sp<bool>> {
        let node = self.node(key)?;
        let v = ctx.boolean(node, &self.path_of(key))?;
        Some(Sp { v, at: node.at })
    }

    pub(crate) fn number(&mut self, ctx: &mut Ctx<'_>, key: &'static str) -> Option<Sp<f64>> {
        let node = self.node(key)?;
        let v = ctx.number(node, &self.path_of(key))?;
        Some(Sp { v, at: node.at })
    }

    /// An integer within `min..=max`.
    pub(crate) fn int(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
        min: i64,
        max: i64,
    ) -> Option<Sp<i64>> {
        let node = self.node(key)?;
        let path = self.path_of(key);
        let v = ctx.integer(node, &path)?;
        if v < min || v > max {
            let message = if max == i64::MAX {
                format!("must be at least {min}, got {v}")
            } else {
                format!("must be between {min} and {max}, got {v}")
            };
            ctx.error(node.at, &path, message);
            return None;
        }
        Some(Sp { v, at: node.at })
    }

    /// A size or count (`usize`) of at least `min`.
    pub(crate) fn size(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
        min: usize,
    ) -> Option<Sp<usize>> {
        let min_i = i64::try_from(min).unwrap_or(i64::MAX);
        let value = self.int(ctx, key, min_i, i64::MAX)?;
        match usize::try_from(value.v) {
            Ok(v) => Some(Sp { v, at: value.at }),
            Err(_) => {
                ctx.error(value.at, &self.path_of(key), "too large for this platform");
                None
            }
        }
    }

    pub(crate) fn duration(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
    ) -> Option<Sp<Duration>> {
        let node = self.node(key)?;
        let path = self.path_of(key);
        if let RawValue::Integer(_) | RawValue::Float(_) = node.value {
            ctx.error(
                node.at,
                &path,
                "expected a duration string with a unit (ms, s, m, h, d), e.g. \"30s\"",
            );
            return None;
        }
        let (text, _) = ctx.string(node, &path)?;
        match duration::parse(&text) {
            Ok(v) => Some(Sp { v, at: node.at }),
            Err(message) => {
                ctx.error(node.at, &path, message);
                None
            }
        }
    }

    /// A duration within `min..=max` (both inclusive).
    pub(crate) fn duration_in(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
        min: Duration,
        max: Duration,
    ) -> Option<Sp<Duration>> {
        let value = self.duration(ctx, key)?;
        if value.v < min || value.v > max {
            ctx.error(
                value.at,
                &self.path_of(key),
                format!(
                    "must be between {} and {}, got {}",
                    duration::format(min),
                    duration::format(max),
                    duration::format(value.v)
                ),
            );
            return None;
        }
        Some(value)
    }

    /// A list of non-empty strings.
    pub(crate) fn strings(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
    ) -> Option<Vec<Sp<String>>> {
        let node = self.node(key)?;
        let path = self.path_of(key);
        let items = ctx.array(node, &path)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let item_path = index(&path, i);
            match ctx.string(item, &item_path) {
                Some((v, _)) if v.is_empty() => {
                    ctx.error(item.at, &item_path, "must not be empty");
                    ok = false;
                }
                Some((v, _)) => out.push(Sp { v, at: item.at }),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Like [`Tbl::strings`] but without positions, empty when absent.
    pub(crate) fn string_list(&mut self, ctx: &mut Ctx<'_>, key: &'static str) -> Vec<String> {
        self.strings(ctx, key)
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.v)
            .collect()
    }

    /// A table of strings chosen by the user (`environment = { KEY = "value" }`), in file
    /// order; values that are not strings are reported and left out.
    pub(crate) fn string_map(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
    ) -> Vec<(Sp<String>, String)> {
        let Some(mut table) = self.table(ctx, key) else {
            return Vec::new();
        };
        let path = table.path.clone();
        let mut out = Vec::new();
        for entry in table.entries() {
            if let Some((v, _)) = ctx.string(&entry.node, &join(&path, &entry.key)) {
                let name = Sp {
                    v: entry.key.clone(),
                    at: entry.key_at,
                };
                out.push((name, v));
            }
        }
        out
    }

    /// A sub-table (`[a.b]` or `b = { ... }`).
    pub(crate) fn table(&mut self, ctx: &mut Ctx<'_>, key: &'static str) -> Option<Tbl<'n>> {
        let node = self.node(key)?;
        ctx.table(node, &self.path_of(key))
    }

    /// An array of tables (`[[a.b]]` or `b = [{ ... }]`), with each element's path.
    pub(crate) fn tables(&mut self, ctx: &mut Ctx<'_>, key: &'static str) -> Vec<Tbl<'n>> {
        let Some(node) = self.node(key) else {
            return Vec::new();
        };
        let path = self.path_of(key);
        let Some(items) = ctx.array(node, &path) else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| ctx.table(item, &index(&path, i)))
            .collect()
    }
}

/// The known key closest to `key`, if it is close enough to be a likely typo.
fn suggestion<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.min(k.len() / 3 + 1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            let delete = previous[j + 1] + 1;
            let insert = current[j] + 1;
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_quote_keys_that_are_not_bare() {
        assert_eq!(join("", "server"), "server");
        assert_eq!(
            join("http.api.routes", "GET /x"),
            "http.api.routes.\"GET /x\""
        );
        assert_eq!(join("a", "$connect"), "a.\"$connect\"");
        assert_eq!(join("a", "premium-content"), "a.premium-content");
    }

    #[test]
    fn suggests_close_keys_only() {
        assert_eq!(
            suggestion("integrashun", &["integration", "response"]),
            None
        );
        assert_eq!(
            suggestion("integratoin", &["integration", "response"]),
            Some("integration")
        );
        assert_eq!(
            suggestion("lisen", &["listen", "admin_listen"]),
            Some("listen")
        );
        assert_eq!(suggestion("zzz", &["listen"]), None);
    }
}
