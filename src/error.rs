//! The crate's error type, for what is not a finding about the file: I/O,
//! the store, configuration.

use std::fmt;

/// An error of the library itself (not a problem found in a file: those are
/// [`crate::Issue`]s in the report).
///
/// One pointer wide; the kind says what went wrong.
///
/// ```
/// let e = user_import::helpers::read_limited(&[0u8; 20][..], 5).unwrap_err();
/// assert!(e.is_limit());
/// assert_eq!(e.kind(), user_import::ErrorKind::Limit);
/// fn assert_good<E: std::error::Error + Send + Sync + 'static>() {}
/// assert_good::<user_import::Error>();
/// ```
#[derive(Debug)]
pub struct Error(Box<Inner>);

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// What kind of [`Error`] happened.
///
/// ```
/// assert_ne!(user_import::ErrorKind::Io, user_import::ErrorKind::Store);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading the input or writing output failed.
    Io,
    /// The input is larger than a configured limit.
    Limit,
    /// The store returned an error.
    Store,
    /// The options or profile are not usable.
    Config,
    /// The planner was driven wrongly (an answer that does not fit its request).
    Plan,
    /// The progress callback cancelled the import while planning.
    Cancelled,
}

impl Error {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error(Box::new(Inner {
            kind,
            message: message.into(),
            source: None,
        }))
    }

    pub(crate) fn io(e: std::io::Error) -> Error {
        let mut err = Error::new(ErrorKind::Io, format!("I/O error: {e}"));
        err.0.source = Some(Box::new(e));
        err
    }

    pub(crate) fn csv(e: csv::Error) -> Error {
        let mut err = Error::new(ErrorKind::Io, format!("writing CSV failed: {e}"));
        err.0.source = Some(Box::new(e));
        err
    }

    pub(crate) fn limit(message: String) -> Error {
        Error::new(ErrorKind::Limit, message)
    }

    pub(crate) fn config(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Config, message)
    }

    pub(crate) fn plan(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Plan, message)
    }

    pub(crate) fn cancelled() -> Error {
        Error::new(ErrorKind::Cancelled, "the import was cancelled")
    }

    pub(crate) fn store<E: std::error::Error + Send + Sync + 'static>(e: E) -> Error {
        let mut err = Error::new(ErrorKind::Store, format!("the user store failed: {e}"));
        err.0.source = Some(Box::new(e));
        err
    }

    /// What kind of error this is.
    ///
    /// ```
    /// let e = user_import::helpers::read_limited(&[0u8; 2][..], 1).unwrap_err();
    /// assert_eq!(e.kind(), user_import::ErrorKind::Limit);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// `true` when a limit was exceeded.
    ///
    /// ```
    /// assert!(user_import::helpers::read_limited(&[0u8; 2][..], 1).unwrap_err().is_limit());
    /// ```
    pub fn is_limit(&self) -> bool {
        self.0.kind == ErrorKind::Limit
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_ref()
            .map(|e| &**e as &(dyn std::error::Error + 'static))
    }
}
