//! Who is at fault: the one vocabulary every error type of every crate maps to.
//!
//! Each edge (the gateway's listeners, the identity provider's HTTP faces, the CLI) asks an
//! error for its [`Fault`] once and lets that decide the HTTP status it falls back to, the log
//! level and the metric label. An error type says *what* went wrong; the fault says *whose*
//! problem it is, and so who has to act: the client (fix the request), the backend (the
//! integration or webhook the operator points at), the operator (configuration, environment,
//! a database that is down) or Portcullis itself (a bug or a library failure).

use std::fmt;

/// Who caused a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The client sent something invalid, not allowed or too large.
    Client,
    /// A backend (integration, authorizer webhook, delivery webhook) failed, was unreachable or
    /// answered badly.
    Backend,
    /// The configuration or the environment is wrong (store unreachable, bad key file).
    Operator,
    /// Something inside Portcullis went wrong (a bug, a failing library).
    Internal,
}

/// How loudly an edge logs a failure of a given [`Fault`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Expected in normal operation (bad requests from clients): debug only, never a flood of
    /// warnings an attacker can cause.
    Debug,
    /// Someone else's problem the operator should see (a backend down).
    Warn,
    /// The operator has to act, or Portcullis is wrong.
    Error,
}

impl Fault {
    /// Low-cardinality name for metric labels and structured logs.
    pub fn label(self) -> &'static str {
        match self {
            Fault::Client => "client",
            Fault::Backend => "backend",
            Fault::Operator => "operator",
            Fault::Internal => "internal",
        }
    }

    /// The HTTP status an edge answers with when the error carries no more precise one:
    /// 400 for the client, 502 for a backend, 500 otherwise.
    pub fn status(self) -> u16 {
        match self {
            Fault::Client => 400,
            Fault::Backend => 502,
            Fault::Operator | Fault::Internal => 500,
        }
    }

    /// How loudly to log it.
    pub fn log_level(self) -> LogLevel {
        match self {
            Fault::Client => LogLevel::Debug,
            Fault::Backend => LogLevel::Warn,
            Fault::Operator | Fault::Internal => LogLevel::Error,
        }
    }

    /// Whether the details of the error may be shown to the client. Only the client's own
    /// mistakes are explained to it; everything else answers with a generic message so
    /// nothing about the backend, the store or the keys leaks.
    pub fn tell_client(self) -> bool {
        self == Fault::Client
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// An error that knows who caused it. Every crate's error type implements this.
pub trait HasFault {
    fn fault(&self) -> Fault;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fault_has_its_own_status_level_and_label() {
        let table = [
            (Fault::Client, 400, LogLevel::Debug, "client", true),
            (Fault::Backend, 502, LogLevel::Warn, "backend", false),
            (Fault::Operator, 500, LogLevel::Error, "operator", false),
            (Fault::Internal, 500, LogLevel::Error, "internal", false),
        ];
        for (fault, status, level, label, tell) in table {
            assert_eq!(fault.status(), status, "{fault}");
            assert_eq!(fault.log_level(), level, "{fault}");
            assert_eq!(fault.label(), label);
            assert_eq!(fault.to_string(), label);
            assert_eq!(fault.tell_client(), tell, "{fault}");
        }
    }
}
