//! What can go wrong, as one line for the user and an exit status.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use compressed_image::Error;

/// The outcome of a command, in increasing severity: a command over several files exits
/// with the most severe outcome of any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Everything worked (exit status 0).
    Success,
    /// The operation failed, or `verify` found damage (1).
    Failed,
    /// A file is not a readable .cimg file (2, as for a wrong command line).
    Unreadable,
    /// Interrupted by Ctrl-C or SIGTERM (130).
    Interrupted,
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> ExitCode {
        ExitCode::from(match status {
            Status::Success => 0,
            Status::Failed => 1,
            Status::Unreadable => 2,
            Status::Interrupted => 130,
        })
    }
}

/// An error worth one line: which file, what is wrong, and the exit status it leads to.
#[derive(Debug)]
pub struct Failure {
    /// The file the error is about, if any.
    pub path: Option<PathBuf>,
    /// What is wrong, for a person.
    pub message: String,
    /// The exit status.
    pub status: Status,
}

impl Failure {
    /// A failure of the operation on `path` (exit status 1).
    pub fn failed(path: &Path, message: impl Into<String>) -> Failure {
        Failure {
            path: Some(path.to_path_buf()),
            message: message.into(),
            status: Status::Failed,
        }
    }

    /// A library error met while working on `path` once it was open: cancellation is an
    /// interruption, anything else a failure of the operation.
    pub fn during(path: &Path, error: Error) -> Failure {
        match error {
            Error::Cancelled => Failure::interrupted(path),
            error => Failure::failed(path, error.to_string()),
        }
    }

    /// A library error met while opening `path`: the file is unreadable, unless another
    /// writer holds it or its lock file cannot be made (then the operation failed) or the
    /// error is an interruption.
    pub fn opening(path: &Path, error: Error) -> Failure {
        match error {
            Error::Locked { .. } => Failure::failed(
                path,
                "another program has the file open for writing; try again once it is done",
            ),
            // About another file (the writer lock's `<path>.lock`): the file itself may be
            // fine, the operation failed.
            Error::File {
                path: other,
                source,
            } if other != path => Failure::failed(path, format!("{}: {source}", other.display())),
            Error::File { source, .. } => Failure::unreadable(path, source.to_string()),
            Error::Cancelled => Failure::interrupted(path),
            error => Failure::unreadable(path, error.to_string()),
        }
    }

    /// A library error of an import from the image file `input` into `out`: the image file
    /// is unreadable (exit status 2) when the error is about it, the import failed
    /// otherwise.
    pub fn importing(input: &Path, out: &Path, error: Error) -> Failure {
        match error {
            Error::File { path, source } if path == input => {
                Failure::unreadable(input, source.to_string())
            }
            Error::ImageFile { path, kind } if path == input => {
                Failure::unreadable(input, kind.to_string())
            }
            error @ Error::InvalidArgument { .. } => Failure::usage(out, error.to_string()),
            error @ (Error::Locked { .. } | Error::Cancelled) => Failure::opening(out, error),
            error => Failure::failed(out, error.to_string()),
        }
    }

    /// A library error writing the image file `out`: as [`Failure::during`], without
    /// naming `out` twice.
    pub fn writing(out: &Path, error: Error) -> Failure {
        match error {
            Error::ImageFile { path, kind } if path == out => {
                Failure::failed(out, kind.to_string())
            }
            error => Failure::during(out, error),
        }
    }

    /// The command line asks for something impossible with `path` (exit status 2, as
    /// for any wrong command line).
    pub fn usage(path: &Path, message: impl Into<String>) -> Failure {
        Failure::unreadable(path, message)
    }

    /// `path` is not a readable .cimg file (exit status 2).
    pub fn unreadable(path: &Path, message: impl Into<String>) -> Failure {
        Failure {
            path: Some(path.to_path_buf()),
            message: message.into(),
            status: Status::Unreadable,
        }
    }

    /// The work on `path` was interrupted; it was left as it was.
    pub fn interrupted(path: &Path) -> Failure {
        Failure {
            path: Some(path.to_path_buf()),
            message: "interrupted; the file is unchanged".into(),
            status: Status::Interrupted,
        }
    }

    /// A failure not about one file (say, writing standard output).
    pub fn general(message: impl Into<String>, status: Status) -> Failure {
        Failure {
            path: None,
            message: message.into(),
            status,
        }
    }

    /// Print the failure as one line on stderr and return its status.
    pub fn report(&self) -> Status {
        eprintln!("cimg: {self}");
        self.status
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{}: {}", path.display(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A command's result: its status, or the failure that ended it.
pub type Outcome = Result<Status, Failure>;
