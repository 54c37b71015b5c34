//! Local source addresses for outgoing connections.
//!
//! Each benchmark run binds its client sockets to a fresh range of loopback addresses
//! (127.0.x.y): a run from the same source address right after another finds tens of thousands
//! of sockets in TIME_WAIT and connects ten times slower (TARGETS.md, method trap).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The loopback addresses connections are spread over, round robin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceIps(Vec<Ipv4Addr>);

/// Most addresses one range may name; more is a typo.
const MAX_ADDRESSES: u32 = 65_536;

impl SourceIps {
    /// Parses `127.0.1.1-127.0.1.50`, a single address, or a comma-separated list of either.
    /// Every address must be in 127.0.0.0/8.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut ips = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (first, last) = match part.split_once('-') {
                Some((a, b)) => (parse_loopback(a)?, parse_loopback(b)?),
                None => {
                    let ip = parse_loopback(part)?;
                    (ip, ip)
                }
            };
            let (first, last) = (u32::from(first), u32::from(last));
            if last < first {
                return Err(format!("range {part:?} runs backwards"));
            }
            if last - first >= MAX_ADDRESSES || ips.len() as u32 + (last - first) >= MAX_ADDRESSES {
                return Err(format!("range {part:?} names too many addresses"));
            }
            ips.extend((first..=last).map(Ipv4Addr::from));
        }
        if ips.is_empty() {
            return Err("no source address given".into());
        }
        Ok(SourceIps(ips))
    }

    /// The address for the `i`-th connection.
    pub fn pick(&self, i: usize) -> Ipv4Addr {
        self.0[i % self.0.len()]
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_loopback(s: &str) -> Result<Ipv4Addr, String> {
    let ip: Ipv4Addr = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not an IPv4 address"))?;
    if !ip.is_loopback() {
        return Err(format!("{ip} is not a loopback address (127.0.0.0/8 only)"));
    }
    Ok(ip)
}

/// Refuses any target that is not on this machine's loopback.
pub fn require_loopback(addr: SocketAddr) -> Result<SocketAddr, String> {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => Ok(addr),
        IpAddr::V6(ip) if ip.is_loopback() => Ok(addr),
        other => Err(format!(
            "{other} is not a loopback address; benchmarks target loopback only"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let ips = SourceIps::parse("127.0.1.1-127.0.1.50").expect("valid range");
        assert_eq!(ips.len(), 50);
        assert_eq!(ips.pick(0), Ipv4Addr::new(127, 0, 1, 1));
        assert_eq!(ips.pick(49), Ipv4Addr::new(127, 0, 1, 50));
        assert_eq!(ips.pick(50), Ipv4Addr::new(127, 0, 1, 1));
        let ips = SourceIps::parse("127.0.0.1, 127.0.2.254-127.0.3.1").expect("valid list");
        assert_eq!(ips.len(), 5);
        assert_eq!(ips.pick(2), Ipv4Addr::new(127, 0, 2, 255));
    }

    #[test]
    fn refuses_non_loopback_and_nonsense() {
        assert!(SourceIps::parse("10.0.0.1").is_err());
        assert!(SourceIps::parse("127.0.0.9-127.0.0.1").is_err());
        assert!(SourceIps::parse("127.0.0.1-127.255.255.255").is_err());
        assert!(SourceIps::parse("").is_err());
        assert!(require_loopback("192.168.1.1:80".parse().expect("addr")).is_err());
        assert!(require_loopback("[::1]:80".parse().expect("addr")).is_ok());
    }
}
