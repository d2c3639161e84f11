//! Rust errors to Python exceptions, chosen by the error's type and kind, never by its
//! message text.
//!
//! | `compressed_image::Error` | Python exception |
//! |---|---|
//! | `InvalidArgument` whose `Argument` is about chunk geometry (chunk size below one scanline or above c-blosc2's limit, too many chunks) | `RuntimeError` (as the original's "Unable to align chunk size to scanlines") |
//! | `ChannelsDisagree` (an image's channels differ in chunk or block size) | `RuntimeError` "Validation Error: Channels in image do not all have the same chunk size" (as the original) |
//! | other `InvalidArgument`, `DtypeMismatch`, `ChannelDtypeMismatch` | `ValueError` |
//! | `UnknownChannelName` | `ValueError` "Unknown channelname 'Z' encountered" (as the original) |
//! | `IndexOutOfRange` | `IndexError` |
//! | `NotACompressedImage`, `UnsupportedVersion`, `Corrupted`, `ChecksumMismatch` | `CorruptedError` (a `ValueError`) |
//! | `Locked` | `LockedError` (a `RuntimeError`) |
//! | `ReadOnly` | `ReadOnlyError` (a `RuntimeError`) |
//! | `ChannelRemoved` | `ChannelRemovedError` (a `RuntimeError`) |
//! | `Poisoned`, `BatchInProgress`, `Codec`, anything newer | `RuntimeError` |
//! | `File { path, source }` (a file that could not be opened, created or locked) | `OSError`: the subclass for the errno (e.g. `FileNotFoundError`, `PermissionError`, `IsADirectoryError`), `filename` = `path` |
//! | `Io` | `OSError`: the subclass for its errno, with the file name when the call names one |

use std::path::Path;

use ci::Error;
use numpy::BorrowError;
use pyo3::exceptions::{PyIndexError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

pyo3::create_exception!(
    compressed_image,
    CorruptedError,
    PyValueError,
    "The file is not a compressed-image file, has an unsupported format version, or its bytes fail a check (checksum, bounds, structure)."
);
pyo3::create_exception!(
    compressed_image,
    LockedError,
    PyRuntimeError,
    "Another handle, in this or another process, has the file open for writing."
);
pyo3::create_exception!(
    compressed_image,
    ReadOnlyError,
    PyRuntimeError,
    "The handle was opened read-only and cannot write."
);
pyo3::create_exception!(
    compressed_image,
    ChannelRemovedError,
    PyRuntimeError,
    "The channel behind this handle was removed from its image."
);

/// The Python exception for a crate error.
pub fn to_py(e: Error) -> PyErr {
    to_py_at(e, None)
}

/// `OSError(errno, strerror[, filename])`, which Python turns into the errno's subclass
/// (FileNotFoundError, PermissionError, ...); an error without an errno stays `OSError`.
fn os_error(io: std::io::Error, path: Option<&Path>) -> PyErr {
    match (io.raw_os_error(), path) {
        (Some(errno), Some(p)) => {
            PyOSError::new_err((errno, io.to_string(), p.display().to_string()))
        }
        (Some(errno), None) => PyOSError::new_err((errno, io.to_string())),
        (None, _) => PyErr::from(io),
    }
}

/// The Python exception for a crate error met while working on `path` (named in
/// `OSError`s and `CorruptedError`s).
pub fn to_py_at(e: Error, path: Option<&Path>) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Io(io) => os_error(io, path),
        Error::File { path, source } => os_error(source, Some(&path)),
        Error::TempFile { dir, source } => os_error(source, Some(&dir)),
        Error::NotACompressedImage
        | Error::UnsupportedVersion { .. }
        | Error::Corrupted { .. }
        | Error::ChecksumMismatch { .. } => match path {
            Some(p) => CorruptedError::new_err(format!("{}: {msg}", p.display())),
            None => CorruptedError::new_err(msg),
        },
        Error::InvalidArgument { what, .. } if what.is_chunk_geometry() => {
            PyRuntimeError::new_err(msg)
        }
        Error::ChannelsDisagree { property } => PyRuntimeError::new_err(format!(
            "Validation Error: Channels in image do not all have the same {property}"
        )),
        Error::UnknownChannelName(name) => {
            PyValueError::new_err(format!("Unknown channelname '{name}' encountered"))
        }
        Error::InvalidArgument { .. }
        | Error::DtypeMismatch { .. }
        | Error::ChannelDtypeMismatch { .. } => PyValueError::new_err(msg),
        Error::IndexOutOfRange { .. } => PyIndexError::new_err(msg),
        Error::Locked { .. } => LockedError::new_err(msg),
        Error::ReadOnly => ReadOnlyError::new_err(msg),
        Error::ChannelRemoved => ChannelRemovedError::new_err(msg),
        // `Poisoned`, `BatchInProgress`, `Codec`, and variants added later (`Error` is
        // non-exhaustive).
        _ => PyRuntimeError::new_err(msg),
    }
}

/// Extension trait: `.py_err()?` on crate results.
pub trait IntoPyResult<T> {
    /// Map the error with [`to_py`].
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for ci::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// A numpy borrow that failed: the array is not writeable (ValueError, as the original),
/// or another call is using it right now (RuntimeError).
pub fn borrow_err(e: BorrowError) -> PyErr {
    match e {
        BorrowError::NotWriteable => PyValueError::new_err("array is not writeable"),
        other => PyRuntimeError::new_err(format!(
            "the array is in use by another call ({other}); pass a different array"
        )),
    }
}

/// The error for a handle used after `close()`.
pub fn closed(what: &str) -> PyErr {
    PyRuntimeError::new_err(format!("operation on a closed {what}"))
}
