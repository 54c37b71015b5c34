//! The abuse limits: `connect_rate_per_ip`, `trusted_proxies`, `message_rate`.

use crate::{load_str, render_redacted};

const SERVER: &str = "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:9090\"\n";

fn errors(source: &str) -> Vec<String> {
    match load_str(source, "test.toml", &|_| None) {
        Ok(config) => panic!("expected errors, got {config:#?}"),
        Err(diagnostics) => diagnostics.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn defaults() {
    let source = format!("{SERVER}[websocket.chat]\n");
    let config = load_str(&source, "test.toml", &|_| None).unwrap();
    assert_eq!(config.server.connect_rate_per_ip, 50);
    assert!(config.server.trusted_proxies.is_empty());
    assert_eq!(config.websocket["chat"].message_rate, 100);
}

#[test]
fn values_are_read_and_rendered_back() {
    let source = format!(
        "{SERVER}connect_rate_per_ip = 0\n\
         trusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\", \"2001:db8::/32\", \"10.0.0.0/8\"]\n\
         [websocket.chat]\nmessage_rate = 7\n"
    );
    let config = load_str(&source, "test.toml", &|_| None).unwrap();
    assert_eq!(config.server.connect_rate_per_ip, 0);
    let blocks: Vec<String> = config
        .server
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(blocks, ["10.0.0.0/8", "127.0.0.1/32", "2001:db8::/32"]);
    assert_eq!(config.websocket["chat"].message_rate, 7);
    let rendered = render_redacted(&config);
    for line in [
        "connect_rate_per_ip = 0",
        "trusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1/32\", \"2001:db8::/32\"]",
        "message_rate = 7",
    ] {
        assert!(
            rendered.lines().any(|l| l == line),
            "missing {line:?} in:\n{rendered}"
        );
    }
    let reloaded = load_str(&rendered, "rendered.toml", &|_| None).unwrap();
    assert_eq!(render_redacted(&reloaded), rendered);
}

#[test]
fn bad_blocks_and_rates_are_errors() {
    let source = format!(
        "{SERVER}connect_rate_per_ip = -1\n\
         trusted_proxies = [\"10.0.0.0/33\", \"10.1.2.3/8\", \"proxy.internal\", \"\"]\n\
         [websocket.chat]\nmessage_rate = 1.5\n\
         [websocket.other]\nmessage_rate = 1000001\n"
    );
    assert_eq!(
        errors(&source),
        [
            "test.toml:4:23: server.connect_rate_per_ip: must be between 0 and 1000000, got -1",
            "test.toml:5:67: server.trusted_proxies[3]: must not be empty",
            "test.toml:7:16: websocket.chat.message_rate: expected an integer, found a float",
            "test.toml:9:16: websocket.other.message_rate: must be between 0 and 1000000, got 1000001",
        ]
    );
    let source = format!(
        "{SERVER}trusted_proxies = [\"10.0.0.0/33\", \"10.1.2.3/8\", \"proxy.internal\"]\n"
    );
    assert_eq!(
        errors(&source),
        [
            "test.toml:4:20: server.trusted_proxies[0]: \"10.0.0.0/33\": prefix length 33 is too long (at most 32 for IPv4, 128 for IPv6)",
            "test.toml:4:35: server.trusted_proxies[1]: \"10.1.2.3/8\": 10.1.2.3 has bits set beyond its /8; the block is \"10.0.0.0/8\"",
            "test.toml:4:49: server.trusted_proxies[2]: \"proxy.internal\": expected an address or address block like \"10.0.0.0/8\" or \"2001:db8::/32\"",
        ]
    );
}
