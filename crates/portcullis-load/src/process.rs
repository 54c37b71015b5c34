//! What the load generator reads and sets on processes: the open-files limit and a server's RSS.

use anyhow::{Context, Result};

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> Result<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE
        .get()
        .context("reading RLIMIT_NOFILE")?;
    if soft < hard {
        rlimit::Resource::NOFILE
            .set(hard, hard)
            .context("raising RLIMIT_NOFILE")?;
    }
    Ok(hard.max(soft))
}

/// Resident set size of process `pid` in bytes (`VmRSS` in `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    parse_vm_rss(&status).with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut fields = line.split_whitespace().skip(1);
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") | None => Some(value * 1024),
        Some(_) => None,
    }
}

/// CPU time (user + system, all threads) process `pid` has used so far, in seconds; `None` when
/// it cannot be read. Linux reports it in clock ticks of 1/100 s (`USER_HZ`).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / 100.0)
}

/// utime + stime of a `/proc/PID/stat` line (fields 14 and 15; the command name may hold
/// spaces, so fields are counted after its closing parenthesis).
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Number of open file descriptors of process `pid`.
pub fn open_files(pid: u32) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tx\nVmHWM:\t  900 kB\nVmRSS:\t   1234 kB\nThreads:\t2\n";
        assert_eq!(parse_vm_rss(status), Some(1234 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn parses_cpu_ticks() {
        let stat = "42 (tokio (x) y) S 1 42 42 0 -1 4194560 900 0 0 0 250 31 0 0 20 0 3 0 100";
        assert_eq!(parse_cpu_ticks(stat), Some(281));
        assert_eq!(parse_cpu_ticks("42 (x) S 1"), None);
        assert!(cpu_seconds(std::process::id()).is_some());
    }

    #[test]
    fn reads_own_rss() {
        assert!(rss_bytes(std::process::id()).expect("own status") > 0);
    }
}
