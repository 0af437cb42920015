//! [`Failure`]: why an operation against a server failed, and what to do about it — retry it
//! ([`Failure::Transient`], [`Failure::RetryAfter`]) or stop with one line naming the cause and the
//! fix ([`Failure::Permanent`]). Sinks, setup, the ingest stages and the retry policy all speak it;
//! each classifies its own errors (SQLSTATE, HTTP status, server code) into it.

/// Why an operation failed, and whether retrying can help.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum Failure {
    /// Worth retrying: the connection failed, the server is restarting or overloaded.
    #[error("{message}")]
    Transient {
        /// A short stable name for the report's `retries`/`errors` tables.
        kind: &'static str,
        message: String,
    },
    /// Retrying will not help: one line naming the cause and the fix.
    #[error("{message}")]
    Permanent { kind: &'static str, message: String },
    /// Worth retrying, but not before the server's `Retry-After`.
    #[error("{message}")]
    RetryAfter {
        kind: &'static str,
        message: String,
        after: std::time::Duration,
    },
}

/// The kind of a connection the server's host refused: nothing listens on that port.
pub(crate) const REFUSED: &str = "refused";

/// The kind of a host name that does not resolve.
pub(crate) const UNRESOLVED: &str = "dns";

/// The kind of a failure that is the command line's to fix (a password the server asks for and
/// nobody gave): the load ends as a usage error, exit 2, without a summary.
pub(crate) const USAGE: &str = "usage";

impl Failure {
    /// This failure, made final when it is a refused connection or a host name that does not
    /// resolve: for a target that has never answered, that is most likely a wrong host or port,
    /// and retrying only delays saying so.
    pub(crate) fn final_if_unreachable(self) -> Failure {
        match self {
            Failure::Transient { kind, message } if kind == REFUSED || kind == UNRESOLVED => {
                Failure::Permanent { kind, message }
            }
            other => other,
        }
    }

    /// A connection to `host_and_port` refused. Transient, for a server that restarts mid-load;
    /// the setup's first connection stops at once unless `--wait-for-target` is given.
    pub(crate) fn refused(host_and_port: &str) -> Failure {
        Failure::Transient {
            kind: REFUSED,
            message: format!(
                "nothing listens on {host_and_port} (connection refused): check the target's host \
                  and port, or give --wait-for-target TIME for a server that is still starting"
            ),
        }
    }

    /// The short name of this error's kind.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Failure::Transient { kind, .. }
            | Failure::Permanent { kind, .. }
            | Failure::RetryAfter { kind, .. } => kind,
        }
    }
}
