//! Who a client is, as far as per-client limits go: its address, with an IPv6 address taken by
//! its /64 network (one subscriber is usually given a whole /64, so an attacker holding one
//! would otherwise have 2^64 keys) and an IPv4-mapped IPv6 address as its IPv4 address. Every
//! per-address limit (rate limits, pending sign-ins and codes, connections per address) counts
//! under this one key.

use std::net::{IpAddr, Ipv6Addr};

/// The key per-client limits count an address under.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(
            u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn client_keys() {
        for (address, key) in [
            ("192.0.2.7", "192.0.2.7"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"),
            ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::"),
            ("2001:db8:1:3::1", "2001:db8:1:3::"),
            ("::1", "::"),
        ] {
            let address: IpAddr = address.parse().unwrap();
            let key: IpAddr = key.parse().unwrap();
            assert_eq!(client_key(address), key, "{address}");
        }
    }
}
