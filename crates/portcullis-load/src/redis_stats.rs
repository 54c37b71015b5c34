//! Redis's own counters, read before and after a measured window so that a cluster benchmark
//! (P8) can say what each operation cost Redis: commands, `PUBLISH`es, bytes in and out, and
//! Redis's CPU time.
//!
//! Speaks just enough RESP for one `INFO all` on a fresh loopback connection (the `INFO` that
//! reads the "after" counters is itself counted once, and the answer of the one that read the
//! "before" counters is in the bytes out; [`Counters::since`] takes both off).
//! [`parse`] is pure; [`read`] does the I/O.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::source::require_loopback;

/// Largest `INFO` answer read.
const MAX_INFO_BYTES: usize = 1 << 20;
/// How long reading the counters may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Cumulative counters of one Redis server at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// `total_commands_processed`.
    pub commands: u64,
    /// `calls` of `cmdstat_publish`.
    pub publishes: u64,
    /// `total_net_input_bytes`.
    pub net_in_bytes: u64,
    /// `total_net_output_bytes` (pub/sub messages to subscribers included).
    pub net_out_bytes: u64,
    /// `used_cpu_user` + `used_cpu_sys`: the server process's CPU time, in µs.
    pub cpu_us: u64,
    /// Bytes of the `INFO` answer these were read from (Redis counts them out afterwards).
    pub answer_bytes: u64,
}

/// The one request sent.
const INFO_REQUEST: &[u8] = b"*2\r\n$4\r\nINFO\r\n$3\r\nall\r\n";

impl Counters {
    /// What happened between `before` and `self`, without the `INFO`s that read them.
    pub fn since(&self, before: &Counters) -> Counters {
        Counters {
            commands: self
                .commands
                .saturating_sub(before.commands)
                .saturating_sub(1),
            publishes: self.publishes.saturating_sub(before.publishes),
            net_in_bytes: (self.net_in_bytes.saturating_sub(before.net_in_bytes))
                .saturating_sub(INFO_REQUEST.len() as u64),
            net_out_bytes: (self.net_out_bytes.saturating_sub(before.net_out_bytes))
                .saturating_sub(before.answer_bytes),
            cpu_us: self.cpu_us.saturating_sub(before.cpu_us),
            answer_bytes: 0,
        }
    }

    /// The counters of a window `seconds` long, for a result's JSON line.
    pub fn to_json(self, seconds: f64) -> Value {
        json!({
            "seconds": seconds,
            "commands": self.commands,
            "publishes": self.publishes,
            "net_in_bytes": self.net_in_bytes,
            "net_out_bytes": self.net_out_bytes,
            "cpu_us": self.cpu_us,
        })
    }
}

/// The counters in an `INFO` answer; `None` when `total_commands_processed` is missing (not an
/// `INFO` answer). A server that never ran `PUBLISH` has no `cmdstat_publish` line: 0.
pub fn parse(info: &str) -> Option<Counters> {
    let mut counters = Counters::default();
    let mut seen = false;
    for line in info.lines().map(str::trim_end) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        match name {
            "total_commands_processed" => {
                counters.commands = value.parse().ok()?;
                seen = true;
            }
            "total_net_input_bytes" => counters.net_in_bytes = value.parse().ok()?,
            "total_net_output_bytes" => counters.net_out_bytes = value.parse().ok()?,
            "used_cpu_user" | "used_cpu_sys" => {
                let seconds: f64 = value.parse().ok()?;
                counters.cpu_us += (seconds * 1e6).round() as u64;
            }
            "cmdstat_publish" => {
                counters.publishes = value
                    .split(',')
                    .find_map(|field| field.strip_prefix("calls="))
                    .and_then(|n| n.parse().ok())?;
            }
            _ => {}
        }
    }
    seen.then_some(counters)
}

/// `INFO all` of the Redis server at `addr` (loopback, no password: the benchmark's own
/// throwaway server).
pub async fn read(addr: SocketAddr) -> Result<Counters> {
    let addr = require_loopback(addr).map_err(|e| anyhow!(e))?;
    let (text, answer_bytes) = tokio::time::timeout(TIMEOUT, info(addr))
        .await
        .map_err(|_| anyhow!("INFO from Redis at {addr} took longer than {TIMEOUT:?}"))??;
    let counters =
        parse(&text).ok_or_else(|| anyhow!("Redis at {addr} answered INFO without counters"))?;
    Ok(Counters {
        answer_bytes,
        ..counters
    })
}

/// The text of an `INFO all` answer and the bytes the answer took on the wire.
async fn info(addr: SocketAddr) -> Result<(String, u64)> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to Redis at {addr}"))?;
    stream.write_all(INFO_REQUEST).await?;
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    reader.read_line(&mut head).await?;
    let Some(len) = head.trim_end().strip_prefix('$') else {
        bail!("Redis at {addr} answered INFO with {:?}", head.trim_end());
    };
    let len: usize = len
        .parse()
        .with_context(|| format!("Redis at {addr}: bad length {len:?}"))?;
    if len > MAX_INFO_BYTES {
        bail!("Redis at {addr} answered INFO with {len} bytes");
    }
    let mut body = vec![0; len + 2];
    reader.read_exact(&mut body).await?;
    body.truncate(len);
    let wire = (head.len() + len + 2) as u64;
    Ok((String::from_utf8_lossy(&body).into_owned(), wire))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Stats\r\ntotal_connections_received:12\r\n\
        total_commands_processed:1500\r\ninstantaneous_ops_per_sec:3\r\n\
        total_net_input_bytes:90000\r\ntotal_net_output_bytes:120000\r\n\
        # CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:0.250000\r\n\
        used_cpu_sys_children:9.000000\r\n# Commandstats\r\ncmdstat_ping:calls=4,usec=2,usec_per_call=0.50,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_publish:calls=700,usec=900,usec_per_call=1.29,rejected_calls=0,failed_calls=0\r\n";

    #[test]
    fn counters_are_read_from_info() {
        assert_eq!(
            parse(INFO),
            Some(Counters {
                commands: 1500,
                publishes: 700,
                net_in_bytes: 90_000,
                net_out_bytes: 120_000,
                cpu_us: 1_750_000,
                answer_bytes: 0,
            })
        );
        let no_publish = INFO.replace("cmdstat_publish", "cmdstat_other");
        assert_eq!(parse(&no_publish).map(|c| c.publishes), Some(0));
        assert_eq!(parse("-ERR unknown command\r\n"), None);
    }

    #[test]
    fn a_window_leaves_out_the_info_that_read_it() {
        let before = Counters {
            commands: 100,
            publishes: 10,
            net_in_bytes: 1000,
            net_out_bytes: 2000,
            cpu_us: 10,
            answer_bytes: 500,
        };
        let after = Counters {
            commands: 161,
            publishes: 40,
            net_in_bytes: 4000 + INFO_REQUEST.len() as u64,
            net_out_bytes: 9500,
            cpu_us: 25,
            answer_bytes: 600,
        };
        assert_eq!(
            after.since(&before),
            Counters {
                commands: 60,
                publishes: 30,
                net_in_bytes: 3000,
                net_out_bytes: 7000,
                cpu_us: 15,
                answer_bytes: 0,
            }
        );
        assert_eq!(before.since(&after).commands, 0);
    }
}
