//! Route selection expressions: parsing attacker-chosen expressions is config-only, but
//! evaluating them runs on every client message; both must never panic.
use portcullis_core::selection::SelectionExpression;

/// One input; panics (the finding) when a property fails.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // First line: the expression; the rest: the message body.
    let (expr, body) = text.split_once('\n').unwrap_or((text, "{}"));
    if let Ok(expr) = SelectionExpression::parse(expr) {
        let _ = expr.evaluate(body);
    }
    if let Ok(fixed) =
        SelectionExpression::parse("${request.body.action}-$request.body.data[0]['k']")
    {
        let _ = fixed.evaluate(text);
    }
}
