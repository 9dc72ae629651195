//! Whose problem an error is. A connector error says whether the user must act (bad settings
//! or data), an external system failed (and whether trying again can help), or streamctl has
//! a bug: the CLI words its message by it, and retry loops retry only what is retryable.

use std::fmt;

/// Who must act on an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorDomain {
    /// The user's: a setting, a missing bucket or topic, wrong credentials, bad data.
    User,
    /// An external system's (a broker, S3, the network). `retryable` when trying again later
    /// can succeed (throttling, 5xx, timeouts, a broker restarting).
    External { retryable: bool },
    /// Ours: a bug in streamctl.
    Internal,
}

impl ErrorDomain {
    pub fn describe(self) -> &'static str {
        match self {
            ErrorDomain::User => "user",
            ErrorDomain::External { retryable: true } => "external (retryable)",
            ErrorDomain::External { retryable: false } => "external",
            ErrorDomain::Internal => "internal",
        }
    }
}

const OUTPUT_CLOSED: &str = "standard output was closed";

/// An error from a source, sink or checkpoint store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorError {
    pub domain: ErrorDomain,
    pub message: String,
}

impl ConnectorError {
    pub fn user(message: impl Into<String>) -> ConnectorError {
        ConnectorError {
            domain: ErrorDomain::User,
            message: message.into(),
        }
    }

    pub fn external(message: impl Into<String>, retryable: bool) -> ConnectorError {
        ConnectorError {
            domain: ErrorDomain::External { retryable },
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> ConnectorError {
        ConnectorError {
            domain: ErrorDomain::Internal,
            message: message.into(),
        }
    }

    /// Local I/O failures: the user's when it is about their paths (permissions, a missing
    /// directory, a full disk), otherwise the system's.
    pub fn io(what: &str, e: &std::io::Error) -> ConnectorError {
        use std::io::ErrorKind::*;
        // A connector's own error carried through `std::io::Write` (an upload failing inside
        // an encoder's write) keeps its domain.
        if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<ConnectorError>()) {
            return inner.clone().context(what);
        }
        let domain = match e.kind() {
            NotFound | PermissionDenied | AlreadyExists | ReadOnlyFilesystem | StorageFull
            | IsADirectory | NotADirectory | InvalidInput | InvalidData => ErrorDomain::User,
            Interrupted | TimedOut | WouldBlock => ErrorDomain::External { retryable: true },
            _ => ErrorDomain::External { retryable: false },
        };
        ConnectorError {
            domain,
            message: format!("{what}: {e}"),
        }
    }

    /// The reader of our standard output went away (`streamctl run … | head`): not a
    /// failure, the run ends quietly.
    pub fn output_closed() -> ConnectorError {
        ConnectorError::user(OUTPUT_CLOSED)
    }

    pub fn is_output_closed(&self) -> bool {
        self.message == OUTPUT_CLOSED
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self.domain, ErrorDomain::External { retryable: true })
    }

    /// The same error with `context` in front of its message.
    pub fn context(mut self, context: impl fmt::Display) -> ConnectorError {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for ConnectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectorError {}

impl From<String> for ConnectorError {
    /// Plain messages are the user's to act on unless a connector says otherwise.
    fn from(message: String) -> ConnectorError {
        ConnectorError::user(message)
    }
}
