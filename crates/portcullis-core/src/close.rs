//! How a WebSocket connection ends: the table of close codes, reasons and metric labels of
//! `docs/life-of-a-connection.md` ("Limits and closes"), held once.
//!
//! Every way a connection can end is one [`Close`]. Each knows the code and reason the
//! `$disconnect` event reports (`disconnectStatusCode`, `disconnectReason`), the label of the
//! `ws_disconnects` metric, and whether the gateway sends that code in a close frame or only
//! reports it (the client went away, or never read).

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Close {
    /// The client closed with a code; the gateway echoes it and reports it as sent.
    Client { code: u16, reason: String },
    /// The client closed without a code (1005).
    ClientWithoutStatus,
    /// The TCP connection dropped without a close frame (1006).
    Abnormal,
    /// Writing a frame to the client failed (1006).
    WriteFailed,
    /// The gateway dropped the connection without a handshake: a `DELETE @connections` found
    /// its outbound queue full (1006).
    Killed,
    /// The client did not read a frame for 10 s: dropped, reported as 1008 `Slow reader`.
    SlowReader,
    /// A frame or message over the API's limits (1009).
    TooBig,
    /// A binary frame on an API with `binary_frames = "close"` (1003).
    BinaryFrame,
    /// The client broke the WebSocket protocol (1002).
    ProtocolError,
    /// No data frame either way for `idle_timeout` (1001).
    IdleTimeout,
    /// Open longer than `max_duration` (1001).
    MaxDuration,
    /// `DELETE /@connections/{id}` (1000).
    Deleted,
    /// The identity provider session the connection was admitted with was revoked (sign-out,
    /// revoked token, disabled user) (1008).
    Revoked,
    /// Graceful shutdown (1001).
    GoingAway,
    /// A configuration reload removed the connection's WebSocket API (1001).
    ApiRemoved,
    /// The node holding the connection died; a surviving node of the cluster reports it
    /// (1006, `node lost`).
    NodeLost,
}

impl Close {
    /// Every variant with a fixed code and reason (all but [`Close::Client`]).
    pub const FIXED: [Close; 15] = [
        Close::ClientWithoutStatus,
        Close::Abnormal,
        Close::WriteFailed,
        Close::Killed,
        Close::SlowReader,
        Close::TooBig,
        Close::BinaryFrame,
        Close::ProtocolError,
        Close::IdleTimeout,
        Close::MaxDuration,
        Close::Deleted,
        Close::Revoked,
        Close::GoingAway,
        Close::ApiRemoved,
        Close::NodeLost,
    ];

    /// The close code: sent in the close frame (when the gateway sends one) and reported as
    /// `disconnectStatusCode`.
    pub fn code(&self) -> u16 {
        match self {
            Close::Client { code, .. } => *code,
            Close::Deleted => 1000,
            Close::IdleTimeout | Close::MaxDuration | Close::GoingAway | Close::ApiRemoved => 1001,
            Close::ProtocolError => 1002,
            Close::BinaryFrame => 1003,
            Close::ClientWithoutStatus => 1005,
            Close::Abnormal | Close::WriteFailed | Close::Killed | Close::NodeLost => 1006,
            Close::SlowReader | Close::Revoked => 1008,
            Close::TooBig => 1009,
        }
    }

    /// The reason text: sent in the close frame and reported as `disconnectReason`.
    pub fn reason(&self) -> &str {
        match self {
            Close::Client { reason, .. } => reason,
            Close::ClientWithoutStatus => "Client-side close frame status not set",
            Close::Abnormal | Close::WriteFailed => "Connection closed abnormally",
            Close::Killed => "Connection closed by the gateway",
            Close::SlowReader => "Slow reader",
            Close::TooBig => "Message too big",
            Close::BinaryFrame => "Binary frames are not supported",
            Close::ProtocolError => "Protocol error",
            Close::IdleTimeout => "Idle timeout",
            Close::MaxDuration => "Maximum connection duration reached",
            Close::Deleted => "Connection deleted",
            Close::Revoked => "Token revoked",
            Close::GoingAway => "Going away",
            Close::ApiRemoved => "API removed",
            Close::NodeLost => "node lost",
        }
    }

    /// The `reason` label of the `ws_disconnects` metric (low cardinality: the client's own
    /// codes all count as `client`).
    pub fn label(&self) -> &'static str {
        match self {
            Close::Client { .. } | Close::ClientWithoutStatus => "client",
            Close::Abnormal => "abnormal",
            Close::WriteFailed => "error",
            Close::Killed => "killed",
            Close::SlowReader => "slow_reader",
            Close::TooBig => "too_big",
            Close::BinaryFrame => "binary_frame",
            Close::ProtocolError => "protocol_error",
            Close::IdleTimeout => "idle_timeout",
            Close::MaxDuration => "max_duration",
            Close::Deleted => "deleted",
            Close::Revoked => "revoked",
            Close::GoingAway => "shutdown",
            Close::ApiRemoved => "api_removed",
            Close::NodeLost => "node_lost",
        }
    }

    /// Whether the gateway itself starts the closing handshake with this code and reason.
    /// The others are only reported: the client closed (its frame is answered by the
    /// WebSocket library), or the connection is dropped without a handshake.
    pub fn sent_by_gateway(&self) -> bool {
        matches!(
            self,
            Close::TooBig
                | Close::BinaryFrame
                | Close::ProtocolError
                | Close::IdleTimeout
                | Close::MaxDuration
                | Close::Deleted
                | Close::Revoked
                | Close::GoingAway
                | Close::ApiRemoved
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
