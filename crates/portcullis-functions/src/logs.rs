//! A child's stdout and stderr, line by line, into `tracing`, tagged with the function and
//! the request being served (as CloudWatch shows a handler's prints).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::endpoint::Shared;

/// Longest line logged as one; a longer one is cut into pieces of this size.
const MAX_LINE: usize = 16 * 1024;

pub(crate) async fn forward(
    mut stream: impl AsyncRead + Unpin,
    function: String,
    shared: Arc<Shared>,
) {
    let mut pending: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        for line in split_lines(&mut pending, MAX_LINE) {
            emit(&function, &shared, &line);
        }
    }
    if !pending.is_empty() {
        emit(&function, &shared, &pending);
    }
}

fn emit(function: &str, shared: &Shared, line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    let request_id = shared.current_request().unwrap_or_default();
    tracing::info!(function, request_id, "{}", text.trim_end_matches('\r'));
}

/// Takes the complete lines (without `\n`) out of `pending`, and pieces of `max` bytes of a
/// line longer than that; what is left is an incomplete line shorter than `max`.
pub(crate) fn split_lines(pending: &mut Vec<u8>, max: usize) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut start = 0;
    loop {
        let rest = &pending[start..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) if i <= max => {
                lines.push(rest[..i].to_vec());
                start += i + 1;
            }
            _ if rest.len() >= max => {
                lines.push(rest[..max].to_vec());
                start += max;
            }
            _ => break,
        }
    }
    pending.drain(..start);
    lines
}

#[cfg(test)]
mod tests {
    use super::split_lines;

    #[test]
    fn lines_are_split_and_bounded() {
        let mut p = b"one\ntwo\nthr".to_vec();
        assert_eq!(
            split_lines(&mut p, 8),
            vec![b"one".to_vec(), b"two".to_vec()]
        );
        assert_eq!(p, b"thr");
        let mut p = b"0123456789ab\nx".to_vec();
        assert_eq!(
            split_lines(&mut p, 5),
            vec![b"01234".to_vec(), b"56789".to_vec(), b"ab".to_vec()]
        );
        assert_eq!(p, b"x");
    }
}
