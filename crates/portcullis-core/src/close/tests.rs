use super::*;

#[test]
fn every_close_has_its_code_reason_and_label() {
    let table: [(Close, u16, &str, &str, bool); 15] = [
        (
            Close::ClientWithoutStatus,
            1005,
            "Client-side close frame status not set",
            "client",
            false,
        ),
        (
            Close::Abnormal,
            1006,
            "Connection closed abnormally",
            "abnormal",
            false,
        ),
        (
            Close::WriteFailed,
            1006,
            "Connection closed abnormally",
            "error",
            false,
        ),
        (
            Close::Killed,
            1006,
            "Connection closed by the gateway",
            "killed",
            false,
        ),
        (Close::SlowReader, 1008, "Slow reader", "slow_reader", false),
        (Close::TooBig, 1009, "Message too big", "too_big", true),
        (
            Close::BinaryFrame,
            1003,
            "Binary frames are not supported",
            "binary_frame",
            true,
        ),
        (
            Close::ProtocolError,
            1002,
            "Protocol error",
            "protocol_error",
            true,
        ),
        (
            Close::IdleTimeout,
            1001,
            "Idle timeout",
            "idle_timeout",
            true,
        ),
        (
            Close::MaxDuration,
            1001,
            "Maximum connection duration reached",
            "max_duration",
            true,
        ),
        (Close::Deleted, 1000, "Connection deleted", "deleted", true),
        (Close::Revoked, 1008, "Token revoked", "revoked", true),
        (Close::GoingAway, 1001, "Going away", "shutdown", true),
        (Close::ApiRemoved, 1001, "API removed", "api_removed", true),
        (Close::NodeLost, 1006, "node lost", "node_lost", false),
    ];
    for (close, code, reason, label, sent) in &table {
        assert_eq!(close.code(), *code, "{close:?}");
        assert_eq!(close.reason(), *reason, "{close:?}");
        assert_eq!(close.label(), *label, "{close:?}");
        assert_eq!(close.sent_by_gateway(), *sent, "{close:?}");
    }
    // The table above covers every fixed variant.
    assert_eq!(
        table.iter().map(|t| t.0.clone()).collect::<Vec<_>>(),
        Close::FIXED.to_vec()
    );
}

#[test]
fn a_client_close_is_echoed_and_counted_as_client() {
    let close = Close::Client {
        code: 4001,
        reason: "bye".to_owned(),
    };
    assert_eq!(close.code(), 4001);
    assert_eq!(close.reason(), "bye");
    assert_eq!(close.label(), "client");
    assert!(!close.sent_by_gateway());
}

#[test]
fn a_revocation_is_not_a_slow_reader() {
    // Both report 1008; the reason and the label tell them apart.
    assert_eq!(Close::Revoked.code(), Close::SlowReader.code());
    assert_ne!(Close::Revoked.label(), Close::SlowReader.label());
    assert_ne!(Close::Revoked.reason(), Close::SlowReader.reason());
}

/// Rows of the "Limits and closes" table of `docs/life-of-a-connection.md`.
fn documented_rows() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/life-of-a-connection.md"
    );
    let doc = std::fs::read_to_string(path).unwrap();
    let section = doc
        .split("## 5. Limits and closes")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap()
        .to_owned();
    section
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---") && !l.starts_with("| event"))
        .map(str::to_owned)
        .collect()
}

/// The four-digit close codes a row mentions.
fn codes(row: &str) -> Vec<u16> {
    row.split(|c: char| !c.is_ascii_digit())
        .filter(|w| w.len() == 4)
        .filter_map(|w| w.parse().ok())
        .collect()
}

#[test]
fn the_documented_table_agrees() {
    let rows = documented_rows();
    assert!(rows.len() >= Close::FIXED.len(), "{rows:#?}");
    for close in Close::FIXED {
        assert!(
            rows.iter()
                .any(|r| codes(r).contains(&close.code()) && r.contains(close.reason())),
            "no row of docs/life-of-a-connection.md says {} {:?}",
            close.code(),
            close.reason()
        );
    }
    assert!(
        rows.iter()
            .any(|r| r.contains("client closes with a code") && r.contains("echoed"))
    );
    // And the document names no close the code does not know.
    for row in &rows {
        for code in codes(row) {
            assert!(
                Close::FIXED.iter().any(|c| c.code() == code),
                "{code} in {row:?}"
            );
        }
    }
}
