//! Trusted proxies and the client behind them.
//!
//! A connection's client is the socket's peer, unless that peer is one of the configured
//! trusted proxies (`server.trusted_proxies`, a list of [`Cidr`]s). Then the client is read
//! from `X-Forwarded-For`, from the right: every proxy appends the address it received the
//! request from, so the right-most entries were written by the proxies the gateway trusts and
//! the first entry, from the right, that is not itself a trusted proxy is the address the
//! nearest untrusted party connected from. Everything left of it was written by that party
//! and is ignored, so a client cannot choose its address by sending `X-Forwarded-For`.
//!
//! An entry that is not an address (junk, `unknown`, an obfuscated RFC 7239 name, a zone
//! index) stops the walk: the client is then the last trusted hop seen (never an address the
//! junk's author chose). Entries may carry a port (`192.0.2.1:443`, `[2001:db8::1]:443`) and
//! IPv6 addresses may be bracketed; spaces around entries are ignored, empty entries skipped.
//! Several `X-Forwarded-For` headers count as one list, in order. Only `X-Forwarded-For` is
//! read (not `Forwarded`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Entries of `X-Forwarded-For` looked at, from the right; a longer chain stops at the last
/// trusted hop seen, like junk.
pub const MAX_HOPS: usize = 32;

/// An address block: `10.0.0.0/8`, `2001:db8::/32`; a bare address is a block of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a block did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("expected an address or address block like \"10.0.0.0/8\" or \"2001:db8::/32\"")]
    Syntax,
    #[error("prefix length {0} is too long (at most 32 for IPv4, 128 for IPv6)")]
    Prefix(u32),
    #[error("{given} has bits set beyond its /{prefix}; the block is \"{network}/{prefix}\"")]
    HostBits {
        given: IpAddr,
        network: IpAddr,
        prefix: u8,
    },
}

impl Cidr {
    /// The block's first address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in the block. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a
    /// dual-stack socket reports) is taken as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = match s.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (s, None),
        };
        let given: IpAddr = address.parse().map_err(|_| CidrError::Syntax)?;
        // An IPv4 block is written as IPv4, not as mapped IPv6 addresses.
        if given.to_canonical() != given {
            return Err(CidrError::Syntax);
        }
        let max = if given.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u32>().map_err(|_| CidrError::Syntax)?
            }
            Some(_) => return Err(CidrError::Syntax),
        };
        if prefix > max {
            return Err(CidrError::Prefix(prefix));
        }
        let prefix = u8::try_from(prefix).map_err(|_| CidrError::Prefix(prefix))?;
        let network = match given {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask32(prefix))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask128(prefix))),
        };
        if network != given {
            return Err(CidrError::HostBits {
                given,
                network,
                prefix,
            });
        }
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Whether `ip` is in one of `trusted`.
pub fn is_trusted(ip: IpAddr, trusted: &[Cidr]) -> bool {
    trusted.iter().any(|block| block.contains(ip))
}

/// The client's address: `peer` (the socket's) unless it is in `trusted`; then the right-most
/// address of the `X-Forwarded-For` values (`forwarded_for`, in the order the headers came)
/// that is not itself in `trusted`; see the module documentation. IPv4-mapped IPv6 addresses
/// come back as IPv4.
pub fn client_ip<'a, I>(peer: IpAddr, forwarded_for: I, trusted: &[Cidr]) -> IpAddr
where
    I: IntoIterator<Item = &'a [u8]>,
    I::IntoIter: DoubleEndedIterator,
{
    let peer = peer.to_canonical();
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut last_trusted = peer;
    let entries = forwarded_for
        .into_iter()
        .rev()
        .flat_map(|value| value.rsplit(|b| *b == b','))
        .map(|entry| entry.trim_ascii())
        .filter(|entry| !entry.is_empty())
        .take(MAX_HOPS);
    for entry in entries {
        let Some(ip) = hop_address(entry) else {
            return last_trusted;
        };
        let ip = ip.to_canonical();
        if !is_trusted(ip, trusted) {
            return ip;
        }
        last_trusted = ip;
    }
    last_trusted
}

/// One `X-Forwarded-For` entry's address: `192.0.2.1`, `192.0.2.1:443`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:443`; `None` for anything else.
pub fn hop_address(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?;
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let ip: Ipv6Addr = inside.parse().ok()?;
        return match after.strip_prefix(':') {
            None if after.is_empty() => Some(IpAddr::V6(ip)),
            Some(port) if is_port(port) => Some(IpAddr::V6(ip)),
            _ => None,
        };
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    let (host, port) = text.split_once(':')?;
    let ip: Ipv4Addr = host.parse().ok()?;
    is_port(port).then_some(IpAddr::V4(ip))
}

fn is_port(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 5
        && text.bytes().all(|b| b.is_ascii_digit())
        && text.parse::<u16>().is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
