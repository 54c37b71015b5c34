//! IAM policy evaluation for authorizer results and `execute-api` permissions.
//!
//! Semantics (reference §4.5): a statement *matches* when its action part matches the requested
//! action (case-insensitively, wildcards allowed) and its resource part matches the request ARN
//! (case-sensitively; `*` is any run of characters including `/`, `?` exactly one character). Any
//! matching `Deny` is an explicit deny; otherwise any matching `Allow` allows; otherwise the
//! request is implicitly denied.
//!
//! * `NotAction` / `NotResource` are evaluated with their IAM meaning: the statement applies to
//!   every action / resource *not* listed.
//! * `Condition` blocks cannot be evaluated here (no request context), so they are handled
//!   conservatively: an `Allow` with a condition never matches, a `Deny` with a condition always
//!   applies (when its action and resource match).
//! * `Principal` / `NotPrincipal` are ignored (authorizer policies are identity policies).
//! * Malformed documents (missing `Statement`, `Effect` other than `Allow`/`Deny`, both or
//!   neither of `Action`/`NotAction`, non-string list members) are rejected by
//!   [`PolicyDocument::from_value`], which API Gateway reports as an authorizer configuration error.

use serde_json::Value;

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyDocument {
    pub statements: Vec<Statement>,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

/// A list of patterns, either positive (`Action`) or negated (`NotAction`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patterns {
    /// `Action` / `Resource`: matches when any pattern matches.
    Only(Vec<String>),
    /// `NotAction` / `NotResource`: matches when no pattern matches.
    Not(Vec<String>),
}

impl Patterns {
    fn matches(&self, text: &str, fold_case: bool) -> bool {
        match self {
            Patterns::Only(p) => p.iter().any(|p| matches(p, text, fold_case)),
            Patterns::Not(p) => !p.iter().any(|p| matches(p, text, fold_case)),
        }
    }
}

/// One policy statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub effect: Effect,
    pub actions: Patterns,
    pub resources: Patterns,
    /// The statement had a `Condition` block (see the module docs).
    pub has_condition: bool,
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

/// Why a policy document was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy document is not a JSON object")]
    NotAnObject,
    #[error("policy document has no Statement")]
    MissingStatement,
    #[error("policy statement {0} is not an object")]
    StatementNotObject(usize),
    #[error("policy statement {0} has an Effect other than \"Allow\" or \"Deny\"")]
    InvalidEffect(usize),
    #[error("policy statement {index} must have exactly one of {field} and Not{field}")]
    ActionOrResource { index: usize, field: &'static str },
    #[error("policy statement {index}: {field} must be a string or a list of strings")]
    InvalidList { index: usize, field: &'static str },
}

impl PolicyDocument {
    /// Parses a `policyDocument` value. `Statement` may be one object or a list of them.
    pub fn from_value(value: &Value) -> Result<PolicyDocument, PolicyError> {
        let obj = value.as_object().ok_or(PolicyError::NotAnObject)?;
        let statements = match obj.get("Statement") {
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, s)| Statement::from_value(s, i))
                .collect::<Result<Vec<_>, _>>()?,
            Some(s @ Value::Object(_)) => vec![Statement::from_value(s, 0)?],
            _ => return Err(PolicyError::MissingStatement),
        };
        Ok(PolicyDocument { statements })
    }
}

impl Statement {
    fn from_value(value: &Value, index: usize) -> Result<Statement, PolicyError> {
        let obj = value
            .as_object()
            .ok_or(PolicyError::StatementNotObject(index))?;
        let effect = match obj.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            _ => return Err(PolicyError::InvalidEffect(index)),
        };
        let patterns = |field: &'static str, not_field: &'static str| match (
            obj.get(field),
            obj.get(not_field),
        ) {
            (Some(v), None) => string_list(v)
                .map(Patterns::Only)
                .ok_or(PolicyError::InvalidList { index, field }),
            (None, Some(v)) => string_list(v)
                .map(Patterns::Not)
                .ok_or(PolicyError::InvalidList {
                    index,
                    field: not_field,
                }),
            _ => Err(PolicyError::ActionOrResource { index, field }),
        };
        Ok(Statement {
            effect,
            actions: patterns("Action", "NotAction")?,
            resources: patterns("Resource", "NotResource")?,
            has_condition: obj.get("Condition").is_some_and(|c| !c.is_null()),
        })
    }

    /// Whether this statement applies to the request.
    pub fn applies(&self, action: &str, resource_arn: &str) -> bool {
        if self.has_condition && self.effect == Effect::Allow {
            return false;
        }
        self.actions.matches(action, true) && self.resources.matches(resource_arn, false)
    }
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

/// Evaluates `policy` for `action` (e.g. `execute-api:Invoke`) on `resource_arn`.
pub fn evaluate(policy: &PolicyDocument, action: &str, resource_arn: &str) -> Decision {
    let mut allowed = false;
    for st in &policy.statements {
        if st.applies(action, resource_arn) {
            match st.effect {
                Effect::Deny => return Decision::ExplicitDeny,
                Effect::Allow => allowed = true,
            }
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

/// IAM wildcard match: `*` matches any run (including `/` and the empty run), `?` exactly one
/// character, everything else literally and case-sensitively. Linear-memory, O(n·m) worst case
/// (no exponential backtracking).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    matches(pattern, text, false)
}

fn matches(pattern: &str, text: &str, fold_case: bool) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let eq = |a: u8, b: u8| {
        if fold_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut pi, mut ti) = (0usize, 0usize);
    // Position after the last `*` in the pattern and the text position it is retried from.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                pi += 1;
                star = Some((pi, ti));
                continue;
            }
            Some(b'?') => {
                pi += 1;
                ti += utf8_len(t[ti]);
                continue;
            }
            Some(&c) if eq(c, t[ti]) => {
                pi += 1;
                ti += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, st)) => {
                // Let the last `*` swallow one more character and retry.
                let next = st + utf8_len(t[st]);
                star = Some((sp, next));
                pi = sp;
                ti = next;
            }
            None => return false,
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

/// Length of the UTF-8 sequence starting with `b` (1 for ASCII and for stray bytes).
fn utf8_len(b: u8) -> usize {
    match b {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// `arn:aws:execute-api:{region}:{account}:{api-id}/{stage}/{route-key}`.
pub fn websocket_arn(
    region: &str,
    account: &str,
    api_id: &str,
    stage: &str,
    route_key: &str,
) -> String {
    format!("arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{route_key}")
}

/// `arn:aws:execute-api:{region}:{account}:{api-id}/{stage}/{METHOD}/{path without leading /}`.
pub fn http_arn(
    region: &str,
    account: &str,
    api_id: &str,
    stage: &str,
    method: &str,
    path: &str,
) -> String {
    let path = path.strip_prefix('/').unwrap_or(path);
    format!("arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{method}/{path}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const INVOKE: &str = "execute-api:Invoke";

    #[test]
    fn wildcards() {
        let cases = [
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("*", "anything/at/all", true),
            ("a*", "a", true),
            ("a*", "ab/c", true),
            ("*c", "abc", true),
            ("*c", "abd", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a?c", "abbc", false),
            ("a?c", "aéc", true),
            ("?", "é", true),
            ("??", "é", false),
            ("a*b*c", "a-b-c", true),
            ("a*b*c", "a-c-b", false),
            (
                "*a*a*a*a*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            ("***", "x", true),
            ("a**", "a", true),
            ("ABC", "abc", false),
            ("prod/*", "prod/", true),
            ("prod/*/*", "prod/$connect", false),
            ("prod/*/*", "prod/GET/x", true),
            ("prod/*", "prod/GET/a/b", true),
            ("é*", "éx", true),
        ];
        for (p, t, want) in cases {
            assert_eq!(wildcard_match(p, t), want, "{p:?} vs {t:?}");
        }
    }

    #[test]
    fn no_exponential_backtracking() {
        let text = "a".repeat(10_000);
        let pattern = format!("{}b", "*a".repeat(200));
        assert!(!wildcard_match(&pattern, &text));
    }

    fn policy(v: Value) -> PolicyDocument {
        PolicyDocument::from_value(&v).unwrap()
    }

    fn allow(resource: Value) -> PolicyDocument {
        policy(
            json!({"Version": "2012-10-17", "Statement": [{"Action": INVOKE, "Effect": "Allow", "Resource": resource}]}),
        )
    }

    #[test]
    fn evaluation_table() {
        let ws = websocket_arn(
            "eu-west-1",
            "111122223333",
            "k3v9q2m7xa",
            "prod",
            "$connect",
        );
        let http = http_arn(
            "eu-west-1",
            "111122223333",
            "h4t8w2k9mz",
            "$default",
            "GET",
            "/orders/42",
        );
        assert_eq!(
            ws,
            "arn:aws:execute-api:eu-west-1:111122223333:k3v9q2m7xa/prod/$connect"
        );
        assert_eq!(
            http,
            "arn:aws:execute-api:eu-west-1:111122223333:h4t8w2k9mz/$default/GET/orders/42"
        );

        let a = "arn:aws:execute-api:eu-west-1:111122223333:k3v9q2m7xa";
        let cases: Vec<(PolicyDocument, &str, &str, Decision)> = vec![
            (
                allow(json!(format!("{a}/prod/*"))),
                INVOKE,
                &ws,
                Decision::Allow,
            ),
            (
                allow(json!(format!("{a}/prod/$connect"))),
                INVOKE,
                &ws,
                Decision::Allow,
            ),
            // The documented pitfall: two more segments needed.
            (
                allow(json!(format!("{a}/prod/*/*"))),
                INVOKE,
                &ws,
                Decision::ImplicitDeny,
            ),
            (
                allow(json!(format!("{a}/dev/*"))),
                INVOKE,
                &ws,
                Decision::ImplicitDeny,
            ),
            (
                allow(json!("arn:aws:execute-api:*:*:*")),
                INVOKE,
                &ws,
                Decision::Allow,
            ),
            (allow(json!("*")), INVOKE, &ws, Decision::Allow),
            (
                allow(json!(format!("{a}/prod/$CONNECT"))),
                INVOKE,
                &ws,
                Decision::ImplicitDeny,
            ),
            (
                allow(json!(format!("{a}/pro?/$connect"))),
                INVOKE,
                &ws,
                Decision::Allow,
            ),
            (
                allow(json!([format!("{a}/dev/*"), format!("{a}/prod/*")])),
                INVOKE,
                &ws,
                Decision::Allow,
            ),
            (allow(json!([])), INVOKE, &ws, Decision::ImplicitDeny),
            (
                allow(json!(
                    "arn:aws:execute-api:eu-west-1:111122223333:h4t8w2k9mz/*/GET/orders/*"
                )),
                INVOKE,
                &http,
                Decision::Allow,
            ),
            (
                allow(json!(
                    "arn:aws:execute-api:eu-west-1:111122223333:h4t8w2k9mz/*/POST/*"
                )),
                INVOKE,
                &http,
                Decision::ImplicitDeny,
            ),
            // Action matching.
            (
                policy(
                    json!({"Statement": {"Action": "execute-api:*", "Effect": "Allow", "Resource": "*"}}),
                ),
                INVOKE,
                &ws,
                Decision::Allow,
            ),
            (
                policy(json!({"Statement": {"Action": "*", "Effect": "Allow", "Resource": "*"}})),
                INVOKE,
                &ws,
                Decision::Allow,
            ),
            (
                policy(
                    json!({"Statement": {"Action": "EXECUTE-API:invoke", "Effect": "Allow", "Resource": "*"}}),
                ),
                INVOKE,
                &ws,
                Decision::Allow,
            ),
            (
                policy(
                    json!({"Statement": {"Action": "execute-api:InvalidateCache", "Effect": "Allow", "Resource": "*"}}),
                ),
                INVOKE,
                &ws,
                Decision::ImplicitDeny,
            ),
            (
                policy(
                    json!({"Statement": {"Action": ["s3:GetObject", "execute-api:Invoke"], "Effect": "Allow", "Resource": "*"}}),
                ),
                INVOKE,
                &ws,
                Decision::Allow,
            ),
            (
                policy(
                    json!({"Statement": {"Action": "execute-api:ManageConnections", "Effect": "Allow", "Resource": "*"}}),
                ),
                "execute-api:ManageConnections",
                &ws,
                Decision::Allow,
            ),
            // Deny wins.
            (
                policy(json!({"Statement": [
                    {"Action": INVOKE, "Effect": "Allow", "Resource": "*"},
                    {"Action": INVOKE, "Effect": "Deny", "Resource": format!("{a}/prod/$connect")}
                ]})),
                INVOKE,
                &ws,
                Decision::ExplicitDeny,
            ),
            (
                policy(json!({"Statement": [
                    {"Action": INVOKE, "Effect": "Deny", "Resource": format!("{a}/prod/secret")},
                    {"Action": INVOKE, "Effect": "Allow", "Resource": "*"}
                ]})),
                INVOKE,
                &ws,
                Decision::Allow,
            ),
            (
                policy(
                    json!({"Statement": [{"Action": INVOKE, "Effect": "Deny", "Resource": "*"}]}),
                ),
                INVOKE,
                &ws,
                Decision::ExplicitDeny,
            ),
            (
                policy(json!({"Statement": []})),
                INVOKE,
                &ws,
                Decision::ImplicitDeny,
            ),
            // NotAction / NotResource.
            (
                policy(
                    json!({"Statement": {"NotAction": "s3:*", "Effect": "Allow", "Resource": "*"}}),
                ),
                INVOKE,
                &ws,
                Decision::Allow,
            ),
            (
                policy(
                    json!({"Statement": {"NotAction": "execute-api:*", "Effect": "Allow", "Resource": "*"}}),
                ),
                INVOKE,
                &ws,
                Decision::ImplicitDeny,
            ),
            (
                policy(json!({"Statement": [
                    {"Action": INVOKE, "Effect": "Allow", "Resource": "*"},
                    {"Action": INVOKE, "Effect": "Deny", "NotResource": format!("{a}/prod/*")}
                ]})),
                INVOKE,
                &ws,
                Decision::Allow,
            ),
            (
                policy(json!({"Statement": [
                    {"Action": INVOKE, "Effect": "Allow", "Resource": "*"},
                    {"Action": INVOKE, "Effect": "Deny", "NotResource": format!("{a}/dev/*")}
                ]})),
                INVOKE,
                &ws,
                Decision::ExplicitDeny,
            ),
            // Conditions: conservative.
            (
                policy(
                    json!({"Statement": {"Action": INVOKE, "Effect": "Allow", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}}),
                ),
                INVOKE,
                &ws,
                Decision::ImplicitDeny,
            ),
            (
                policy(json!({"Statement": [
                    {"Action": INVOKE, "Effect": "Allow", "Resource": "*"},
                    {"Action": INVOKE, "Effect": "Deny", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}
                ]})),
                INVOKE,
                &ws,
                Decision::ExplicitDeny,
            ),
        ];
        for (i, (doc, action, arn, want)) in cases.iter().enumerate() {
            assert_eq!(evaluate(doc, action, arn), *want, "case {i}: {doc:?}");
        }
    }

    #[test]
    fn parse_errors() {
        let cases = [
            json!("x"),
            json!({}),
            json!({"Statement": "x"}),
            json!({"Statement": [1]}),
            json!({"Statement": {"Effect": "allow", "Action": "*", "Resource": "*"}}),
            json!({"Statement": {"Action": "*", "Resource": "*"}}),
            json!({"Statement": {"Effect": "Allow", "Resource": "*"}}),
            json!({"Statement": {"Effect": "Allow", "Action": "*"}}),
            json!({"Statement": {"Effect": "Allow", "Action": "*", "NotAction": "*", "Resource": "*"}}),
            json!({"Statement": {"Effect": "Allow", "Action": 1, "Resource": "*"}}),
            json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": ["*", 2]}}),
        ];
        for c in cases {
            assert!(PolicyDocument::from_value(&c).is_err(), "{c}");
        }
        assert_eq!(
            PolicyDocument::from_value(
                &json!({"Statement": {"Effect": "Allow", "Action": "*", "NotResource": 5}})
            ),
            Err(PolicyError::InvalidList {
                index: 0,
                field: "NotResource"
            })
        );
    }
}
