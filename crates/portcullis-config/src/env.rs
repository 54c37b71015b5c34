//! `${VAR}` / `${VAR:-default}` substitution in string values.
//!
//! Only the two characters `${` start a substitution; a lone `$` is kept as written (so
//! `$request.body.action` and `$connect` need no escaping). There is no escape for a literal
//! `${`. `${VAR}` takes the variable's value even when it is empty; `${VAR:-default}` takes the
//! default when the variable is unset or empty (as in the shell). Defaults are literal text:
//! they cannot contain `}` or further substitutions.

/// Outcome of substituting one string.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Substituted {
    /// The string contained no `${`.
    Unchanged,
    /// At least one substitution happened; this is the result.
    Replaced(String),
}

/// Substitutes every `${...}` in `input`, collecting one message per problem.
pub(crate) fn substitute(
    input: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Substituted, Vec<String>> {
    if !input.contains("${") {
        return Ok(Substituted::Unchanged);
    }
    let mut out = String::with_capacity(input.len());
    let mut errors = Vec::new();
    let mut rest = input;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            errors.push(format!(
                "unterminated \"${{\" in {input:?}: expected a closing \"}}\""
            ));
            rest = "";
            break;
        };
        let inner = &after[..end];
        rest = &after[end + 1..];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        if !is_variable_name(name) {
            // Not an environment variable: `${request.body.action}` in a route selection
            // expression is the expression's own syntax, kept as written.
            out.push_str("${");
            out.push_str(inner);
            out.push('}');
            continue;
        }
        match (env(name), default) {
            (Some(value), None) => out.push_str(&value),
            (Some(value), Some(_)) if !value.is_empty() => out.push_str(&value),
            (_, Some(default)) => out.push_str(default),
            (None, None) => errors.push(format!(
                "environment variable {name} is not set (write \"${{{name}:-default}}\" to give \
                 a default)"
            )),
        }
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(Substituted::Replaced(out))
    } else {
        Err(errors)
    }
}

/// The variables of `input` whose `${VAR:-default}` fell back to the default (unset or empty),
/// in order, each once. Secrets taken from such a default are known to anyone who has read
/// the file, so the gateway warns about them at start.
pub(crate) fn defaulted_variables(
    input: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = input;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let inner = &after[..end];
        rest = &after[end + 1..];
        if let Some((name, _)) = inner.split_once(":-")
            && is_variable_name(name)
            && env(name).is_none_or(|v| v.is_empty())
            && !out.iter().any(|n| n == name)
        {
            out.push(name.to_owned());
        }
    }
    out
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("example.com".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn sub(input: &str) -> Result<Substituted, Vec<String>> {
        substitute(input, &env)
    }

    fn replaced(s: &str) -> Result<Substituted, Vec<String>> {
        Ok(Substituted::Replaced(s.to_owned()))
    }

    #[test]
    fn plain_strings_and_lone_dollars_are_untouched() {
        assert_eq!(sub("$request.body.action"), Ok(Substituted::Unchanged));
        assert_eq!(sub("$connect"), Ok(Substituted::Unchanged));
        assert_eq!(sub("a $ b {c}"), Ok(Substituted::Unchanged));
    }

    #[test]
    fn substitutes_set_unset_and_empty_variables() {
        assert_eq!(sub("https://${HOST}/x"), replaced("https://example.com/x"));
        assert_eq!(sub("${HOST:-other}"), replaced("example.com"));
        assert_eq!(sub("${NOPE:-fallback}"), replaced("fallback"));
        assert_eq!(sub("${NOPE:-}"), replaced(""));
        assert_eq!(sub("${EMPTY}"), replaced(""));
        assert_eq!(sub("${EMPTY:-d}"), replaced("d"));
        assert_eq!(sub("${HOST}${HOST}"), replaced("example.comexample.com"));
        assert_eq!(sub("${NOPE:-a:-b}"), replaced("a:-b"));
    }

    #[test]
    fn reports_every_problem() {
        let errors = sub("${A} ${B} ${1X} ${").unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("environment variable A is not set"));
        assert!(errors[1].contains("environment variable B is not set"));
        assert!(errors[2].contains("unterminated"));
    }

    #[test]
    fn defaults_in_use_are_named() {
        let defaulted = |s: &str| defaulted_variables(s, &env);
        assert_eq!(defaulted("${NOPE:-fallback}"), ["NOPE"]);
        assert_eq!(defaulted("${EMPTY:-d}"), ["EMPTY"]);
        assert_eq!(
            defaulted("a${NOPE:-x}b${NOPE:-y}${OTHER:-}"),
            ["NOPE", "OTHER"]
        );
        assert!(defaulted("${HOST:-other}").is_empty());
        assert!(defaulted("${HOST}").is_empty());
        assert!(
            defaulted("${NOPE}").is_empty(),
            "no default: an error, not a fallback"
        );
        assert!(defaulted("plain text").is_empty());
        assert!(defaulted("${request.body:-x}").is_empty());
        assert!(defaulted("${NOPE:-x").is_empty());
    }

    #[test]
    fn selection_expression_braces_are_not_variables() {
        assert_eq!(
            sub("${request.body.service}/${request.body.action}"),
            replaced("${request.body.service}/${request.body.action}")
        );
        assert_eq!(sub("${1X}"), replaced("${1X}"));
    }
}
