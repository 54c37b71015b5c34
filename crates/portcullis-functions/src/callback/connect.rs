//! The callback proxy's pure rules: reading a `CONNECT host:port` request head, and deciding
//! whether its target is the gateway itself (TLS terminated here, bytes handed to the admin
//! listener) or another host (a plain tunnel).

use std::net::IpAddr;

/// Largest request head a client may send before its blank line.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// Longest host name (DNS: 253 characters).
const MAX_HOST: usize = 253;

/// Headers read from one head; more is a malformed request.
const MAX_HEADERS: usize = 32;

/// Where a `CONNECT` asks to go. `host` is lower case, without the brackets of an IPv6
/// literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// The outcome of reading the bytes received so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Head {
    /// The blank line has not arrived yet.
    Partial,
    /// A whole head of `len` bytes; what follows belongs to the tunnel.
    Complete { target: Target, len: usize },
}

/// Why a head is refused, each with the status the proxy answers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Not a `CONNECT` request: this proxy forwards nothing else.
    NotConnect,
    /// Unparseable, or a target that is not `host:port`.
    Malformed,
    /// No blank line within [`MAX_HEAD`] bytes.
    TooLarge,
}

impl Refused {
    /// The whole response, status line to blank line.
    pub(crate) fn response(&self) -> &'static [u8] {
        match self {
            Refused::NotConnect => {
                b"HTTP/1.1 405 Method Not Allowed\r\nAllow: CONNECT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            }
            Refused::Malformed => {
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            }
            Refused::TooLarge => {
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            }
        }
    }
}

/// Reads a `CONNECT` request head from the start of `buf`.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Head, Refused> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let status = request.parse(buf).map_err(|_| {
        if buf.len() >= MAX_HEAD {
            Refused::TooLarge
        } else {
            Refused::Malformed
        }
    })?;
    match status {
        httparse::Status::Partial => {
            if buf.len() >= MAX_HEAD {
                Err(Refused::TooLarge)
            } else {
                Ok(Head::Partial)
            }
        }
        httparse::Status::Complete(len) => {
            if len > MAX_HEAD {
                return Err(Refused::TooLarge);
            }
            if request.method != Some("CONNECT") {
                return Err(Refused::NotConnect);
            }
            let target = parse_authority(request.path.unwrap_or("")).ok_or(Refused::Malformed)?;
            Ok(Head::Complete { target, len })
        }
    }
}

/// `host:port` or `[v6]:port`, the only request target `CONNECT` takes.
fn parse_authority(authority: &str) -> Option<Target> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, port) = rest.split_once("]:")?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        (v6, port)
    } else {
        let (host, port) = authority.rsplit_once(':')?;
        let valid = !host.is_empty()
            && host.len() <= MAX_HOST
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !valid {
            return None;
        }
        (host, port)
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    Some(Target {
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// The address handlers are told to call back: the host and port of `server.domain_name`
/// (`requestContext.domainName` in events). No port means 443, as in an `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Gateway {
    host: String,
    port: u16,
}

impl Gateway {
    pub(crate) fn from_domain_name(domain_name: &str) -> Gateway {
        let with_port = parse_authority(domain_name);
        match with_port {
            Some(Target { host, port }) => Gateway { host, port },
            None => Gateway {
                host: domain_name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_ascii_lowercase(),
                port: 443,
            },
        }
    }
}

/// What the proxy does with a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// The gateway's own address: TLS ends here and the requests go to the admin listener.
    Gateway,
    /// Anywhere else: bytes pass through untouched.
    Tunnel,
}

/// A target is the gateway when it names the gateway's port and either the gateway's host,
/// `localhost` or a loopback address (the names a handler may build from `domainName`, or use
/// in its place when run locally). Other ports of the same host are other services.
pub(crate) fn route(target: &Target, gateway: &Gateway) -> Route {
    if target.port != gateway.port {
        return Route::Tunnel;
    }
    let loopback = target.host == "localhost"
        || target
            .host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if target.host == gateway.host || loopback {
        Route::Gateway
    } else {
        Route::Tunnel
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn target(host: &str, port: u16) -> Target {
        Target {
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn a_connect_head_gives_its_target_and_length() {
        let head = b"CONNECT Example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
        let mut bytes = head.to_vec();
        bytes.extend_from_slice(b"\x16\x03\x01");
        assert_eq!(
            parse_head(&bytes),
            Ok(Head::Complete {
                target: target("example.com", 443),
                len: head.len()
            })
        );
    }

    #[test]
    fn ipv6_targets_lose_their_brackets() {
        assert_eq!(
            parse_head(b"CONNECT [::1]:8080 HTTP/1.1\r\n\r\n"),
            Ok(Head::Complete {
                target: target("::1", 8080),
                len: 31
            })
        );
    }

    #[test]
    fn a_head_without_its_blank_line_is_partial_until_the_limit() {
        assert_eq!(
            parse_head(b"CONNECT a:1 HTTP/1.1\r\nHost: a"),
            Ok(Head::Partial)
        );
        let mut long = b"CONNECT a:1 HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD, b'a');
        assert_eq!(parse_head(&long), Err(Refused::TooLarge));
    }

    #[test]
    fn only_connect_with_host_and_port_is_accepted() {
        let refused = |head: &[u8]| parse_head(head).err();
        assert_eq!(
            refused(b"GET http://a/ HTTP/1.1\r\n\r\n"),
            Some(Refused::NotConnect)
        );
        for bad in [
            &b"CONNECT example.com HTTP/1.1\r\n\r\n"[..],
            b"CONNECT example.com: HTTP/1.1\r\n\r\n",
            b"CONNECT example.com:0 HTTP/1.1\r\n\r\n",
            b"CONNECT example.com:70000 HTTP/1.1\r\n\r\n",
            b"CONNECT :443 HTTP/1.1\r\n\r\n",
            b"CONNECT ex/ample.com:443 HTTP/1.1\r\n\r\n",
            b"CONNECT [zz]:443 HTTP/1.1\r\n\r\n",
            b"CONNECT [::1]443 HTTP/1.1\r\n\r\n",
            b"CONNECT a:+1 HTTP/1.1\r\n\r\n",
            b"\x00\x01garbage\r\n\r\n",
        ] {
            assert_eq!(refused(bad), Some(Refused::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn the_gateway_is_its_domain_name_with_the_https_port_by_default() {
        assert_eq!(
            Gateway::from_domain_name("localhost:8080"),
            Gateway {
                host: "localhost".into(),
                port: 8080
            }
        );
        assert_eq!(
            Gateway::from_domain_name("API.example.com"),
            Gateway {
                host: "api.example.com".into(),
                port: 443
            }
        );
        assert_eq!(
            Gateway::from_domain_name("[::1]:9000"),
            Gateway {
                host: "::1".into(),
                port: 9000
            }
        );
    }

    #[test]
    fn the_gateway_port_on_its_host_or_loopback_is_intercepted_the_rest_tunnelled() {
        let local = Gateway::from_domain_name("127.0.0.1:8080");
        let public = Gateway::from_domain_name("api.example.com");
        let cases = [
            (&local, target("127.0.0.1", 8080), Route::Gateway),
            (&local, target("localhost", 8080), Route::Gateway),
            (&local, target("::1", 8080), Route::Gateway),
            (&local, target("127.0.0.2", 8080), Route::Gateway),
            (&local, target("127.0.0.1", 8081), Route::Tunnel),
            (&local, target("example.com", 8080), Route::Tunnel),
            (&local, target("10.0.0.1", 8080), Route::Tunnel),
            (&public, target("api.example.com", 443), Route::Gateway),
            (&public, target("localhost", 443), Route::Gateway),
            (&public, target("api.example.com", 8443), Route::Tunnel),
            (
                &public,
                target("dynamodb.eu-west-1.amazonaws.com", 443),
                Route::Tunnel,
            ),
        ];
        for (gateway, target, want) in cases {
            assert_eq!(route(&target, gateway), want, "{target:?} via {gateway:?}");
        }
    }
}
