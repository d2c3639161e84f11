//! Rust errors to Python exceptions.
//!
//! | `compressed_image::Error` | Python exception |
//! |---|---|
//! | `InvalidArgument` about the chunk size (below one scanline, above c-blosc2's limit) | `RuntimeError` (as the original) |
//! | other `InvalidArgument`, `DtypeMismatch`, `UnknownChannelName`, `Metadata` | `ValueError` |
//! | `IndexOutOfRange` | `IndexError` |
//! | `NotACompressedImage`, `UnsupportedVersion`, `Corrupted`, `ChecksumMismatch` | `CorruptedError` (a `ValueError`) |
//! | `Locked` | `LockedError` (a `RuntimeError`) |
//! | `ReadOnly` | `ReadOnlyError` (a `RuntimeError`) |
//! | `ChannelRemoved` | `ChannelRemovedError` (a `RuntimeError`) |
//! | `Poisoned`, `BatchInProgress`, `Codec`, anything newer | `RuntimeError` |
//! | `Io` | `OSError` (the subclass for its errno, e.g. `FileNotFoundError`) |

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

/// The Python exception for a crate error met while working on `path` (named in `OSError`s).
pub fn to_py_at(e: Error, path: Option<&Path>) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Io(io) => match io.raw_os_error() {
            // OSError(errno, strerror, filename) instantiates the errno's subclass
            // (FileNotFoundError, PermissionError, ...).
            Some(errno) => match path {
                Some(p) => PyOSError::new_err((errno, io.to_string(), p.display().to_string())),
                None => PyOSError::new_err((errno, io.to_string())),
            },
            None => PyErr::from(io),
        },
        Error::NotACompressedImage
        | Error::UnsupportedVersion { .. }
        | Error::Corrupted { .. }
        | Error::ChecksumMismatch { .. } => match path {
            Some(p) => CorruptedError::new_err(format!("{}: {msg}", p.display())),
            None => CorruptedError::new_err(msg),
        },
        // A chunk size that cannot hold one scanline (or too large a chunk): RuntimeError,
        // as the original's "Unable to align chunk size to scanlines"; likewise when an
        // image's channels disagree on their chunk size.
        Error::InvalidArgument {
            what: "chunk size" | "chunk count",
            ..
        } => PyRuntimeError::new_err(msg),
        Error::InvalidArgument { .. }
        | Error::DtypeMismatch { .. }
        | Error::UnknownChannelName(_)
        | Error::Metadata(_) => PyValueError::new_err(msg),
        Error::IndexOutOfRange { .. } => PyIndexError::new_err(msg),
        Error::Locked { .. } => LockedError::new_err(msg),
        Error::ReadOnly => ReadOnlyError::new_err(msg),
        Error::ChannelRemoved => ChannelRemovedError::new_err(msg),
        Error::Poisoned | Error::BatchInProgress | Error::Codec { .. } => {
            PyRuntimeError::new_err(msg)
        }
        // `Error` is non-exhaustive: variants added later surface as RuntimeError.
        _ => PyRuntimeError::new_err(msg),
    }
}

/// Extension trait: `.py()?` on crate results.
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
