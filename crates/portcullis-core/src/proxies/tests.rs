use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn blocks(list: &[&str]) -> Vec<Cidr> {
    list.iter().map(|b| b.parse().unwrap()).collect()
}

/// The client of a request from `peer` with these `X-Forwarded-For` headers.
fn client(peer: &str, headers: &[&str], trusted: &[Cidr]) -> IpAddr {
    client_ip(ip(peer), headers.iter().map(|h| h.as_bytes()), trusted)
}

#[test]
fn blocks_parse_and_contain() {
    let ten: Cidr = "10.0.0.0/8".parse().unwrap();
    assert!(ten.contains(ip("10.255.1.2")));
    assert!(
        ten.contains(ip("::ffff:10.1.2.3")),
        "a mapped address is IPv4"
    );
    assert!(!ten.contains(ip("11.0.0.1")));
    assert!(
        !ten.contains(ip("::a00:1")),
        "IPv6 is never in an IPv4 block"
    );
    let one: Cidr = "127.0.0.1".parse().unwrap();
    assert_eq!(one.to_string(), "127.0.0.1/32");
    assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
    let v6: Cidr = "2001:db8::/32".parse().unwrap();
    assert!(v6.contains(ip("2001:db8:ffff::1")));
    assert!(!v6.contains(ip("2001:db9::1")));
    let all: Cidr = "0.0.0.0/0".parse().unwrap();
    assert!(all.contains(ip("203.0.113.9")));
    let all6: Cidr = "::/0".parse().unwrap();
    assert!(all6.contains(ip("2001:db8::1")));
    assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
    assert_eq!(
        "::ffff:10.0.0.0/8".parse::<Cidr>(),
        Err(CidrError::Syntax),
        "a mapped block is written as IPv4"
    );
}

#[test]
fn bad_blocks_are_refused_with_a_reason() {
    for bad in [
        "",
        "10.0.0.0/",
        "/8",
        "10.0.0/8",
        "10.0.0.0/8/8",
        "10.0.0.0/+8",
        "10.0.0.0/-1",
        "10.0.0.0/ 8",
        " 10.0.0.0/8",
        "localhost",
        "010.0.0.0/8",
        "10.0.0.0/0008",
        "fe80::1%eth0",
    ] {
        assert_eq!(bad.parse::<Cidr>(), Err(CidrError::Syntax), "{bad:?}");
    }
    assert_eq!("10.0.0.0/33".parse::<Cidr>(), Err(CidrError::Prefix(33)));
    assert_eq!("::/129".parse::<Cidr>(), Err(CidrError::Prefix(129)));
    let error = "10.1.2.3/8".parse::<Cidr>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "10.1.2.3 has bits set beyond its /8; the block is \"10.0.0.0/8\""
    );
}

#[test]
fn an_untrusted_peer_is_the_client_whatever_it_says() {
    let trusted = blocks(&["10.0.0.0/8"]);
    assert_eq!(
        client("203.0.113.7", &["198.51.100.1"], &trusted),
        ip("203.0.113.7")
    );
    assert_eq!(
        client("203.0.113.7", &["10.0.0.1"], &trusted),
        ip("203.0.113.7")
    );
    // Without trusted proxies every header is ignored.
    assert_eq!(client("10.0.0.1", &["198.51.100.1"], &[]), ip("10.0.0.1"));
    assert_eq!(
        client("::ffff:203.0.113.7", &[], &trusted),
        ip("203.0.113.7")
    );
}

#[test]
fn behind_a_trusted_proxy_the_right_most_untrusted_entry_is_the_client() {
    let trusted = blocks(&["10.0.0.0/8", "127.0.0.1/32"]);
    assert_eq!(
        client("10.0.0.2", &["198.51.100.1"], &trusted),
        ip("198.51.100.1")
    );
    // The client's own entries (left of what the proxy appended) are ignored.
    assert_eq!(
        client("10.0.0.2", &["1.1.1.1, 2.2.2.2, 198.51.100.1"], &trusted),
        ip("198.51.100.1")
    );
    // Two proxies: the inner one's address is skipped.
    assert_eq!(
        client("127.0.0.1", &["198.51.100.1, 10.0.0.3"], &trusted),
        ip("198.51.100.1")
    );
    // Several headers are one list, in order.
    assert_eq!(
        client(
            "10.0.0.2",
            &["6.6.6.6", "198.51.100.1", "10.9.9.9"],
            &trusted
        ),
        ip("198.51.100.1")
    );
    // No header: the proxy itself.
    assert_eq!(client("10.0.0.2", &[], &trusted), ip("10.0.0.2"));
    // Only trusted addresses: the left-most of them.
    assert_eq!(
        client("10.0.0.2", &["10.1.1.1, 10.0.0.3"], &trusted),
        ip("10.1.1.1")
    );
    // A dual-stack socket's mapped peer is trusted like its IPv4 address.
    assert_eq!(
        client("::ffff:10.0.0.2", &["198.51.100.1"], &trusted),
        ip("198.51.100.1")
    );
}

#[test]
fn spellings_of_an_address() {
    let trusted = blocks(&["10.0.0.0/8"]);
    for (entry, want) in [
        ("  198.51.100.1  ", "198.51.100.1"),
        ("\t198.51.100.1", "198.51.100.1"),
        ("198.51.100.1:443", "198.51.100.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:8443", "2001:db8::1"),
        ("::ffff:198.51.100.1", "198.51.100.1"),
        ("[::ffff:198.51.100.1]:1", "198.51.100.1"),
    ] {
        assert_eq!(
            client("10.0.0.2", &[entry], &trusted),
            ip(want),
            "{entry:?}"
        );
    }
    // Empty entries and trailing commas are skipped.
    assert_eq!(
        client("10.0.0.2", &["198.51.100.1,, ,"], &trusted),
        ip("198.51.100.1")
    );
    assert_eq!(
        client("10.0.0.2", &["", "198.51.100.1", " "], &trusted),
        ip("198.51.100.1")
    );
}

#[test]
fn junk_stops_at_the_last_trusted_hop() {
    let trusted = blocks(&["10.0.0.0/8"]);
    for junk in [
        "unknown",
        "_hidden",
        "\"198.51.100.1\"",
        "198.51.100.1:",
        "198.51.100.1:65536",
        "198.51.100.1:443x",
        "198.51.100.1 198.51.100.2",
        "2001:db8::1:443x",
        "[2001:db8::1",
        "[2001:db8::1]x",
        "[198.51.100.1]",
        "fe80::1%eth0",
        "0x7f.0.0.1",
        "2130706433",
        "127.1",
        "010.0.0.1",
        "1.2.3.4.5",
        "for=198.51.100.1",
        "\u{ff11}98.51.100.1",
    ] {
        assert_eq!(
            client("10.0.0.2", &[junk], &trusted),
            ip("10.0.0.2"),
            "{junk:?}"
        );
        // Junk left of a real client address is never reached.
        let behind = format!("{junk}, 198.51.100.1");
        assert_eq!(
            client("10.0.0.2", &[&behind], &trusted),
            ip("198.51.100.1"),
            "{junk:?}"
        );
        // Junk between two trusted hops stops at the nearer one.
        let between = format!("198.51.100.1, {junk}, 10.0.0.7");
        assert_eq!(
            client("10.0.0.2", &[&between], &trusted),
            ip("10.0.0.7"),
            "{junk:?}"
        );
    }
    // Bytes that are not UTF-8.
    let raw: [&[u8]; 1] = [b"\xff\xfe"];
    assert_eq!(client_ip(ip("10.0.0.2"), raw, &trusted), ip("10.0.0.2"));
}

#[test]
fn a_long_chain_of_trusted_hops_is_cut() {
    let trusted = blocks(&["10.0.0.0/8"]);
    let mut chain = vec!["198.51.100.1".to_owned()];
    chain.extend((0..MAX_HOPS).map(|i| format!("10.0.0.{i}")));
    let header = chain.join(", ");
    assert_eq!(
        client("10.9.9.9", &[&header], &trusted),
        ip(&format!("10.0.0.{}", 0)),
        "the walk stops after {MAX_HOPS} entries"
    );
    // One fewer trusted hop: the client is found.
    let header = chain[..MAX_HOPS].join(", ");
    assert_eq!(client("10.9.9.9", &[&header], &trusted), ip("198.51.100.1"));
}
