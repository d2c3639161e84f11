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
//! | `InvalidStoredChunk` (a stored chunk that does not decode or does not fit its channel) | `ValueError` |
//! | `SnapshotUnavailable` (a pinned commit the file no longer holds) | `SnapshotUnavailableError` (a `RuntimeError`) |
//! | `ImageFile` | by its kind, in the second table |
//! | `Poisoned`, `BatchInProgress`, `Codec`, anything newer | `RuntimeError` |
//! | `File { path, source }` (a file that could not be opened, created or locked) | `OSError`: the subclass for the errno (e.g. `FileNotFoundError`, `PermissionError`, `IsADirectoryError`), `filename` = `path` |
//! | `Io` | `OSError`: the subclass for its errno, with the file name when the call names one |
//!
//! Importing an image file (`Image.read`, `Image.read_native`, `Image.dtype_from_file`,
//! `Image.dtypes_from_file`): compressed-image 1.0.1 raises `ValueError` for a file it
//! cannot open or seek and `IndexError` for an unknown channel, and so do these, with the
//! file's path in the message.
//!
//! | `Error::ImageFile { path, kind }` / the import's other errors | Python exception |
//! |---|---|
//! | `File` of the image file itself, not found | `ImageFileNotFoundError`: both a `FileNotFoundError` (errno, `filename` = `path`) and a `ValueError` (1.0.1's "File ... does not exist on disk") |
//! | `BadSubimage` (and a negative subimage) | `ValueError` "File '...' does not have a subimage 1, cannot seek to it" (as 1.0.1), with the file's subimage count |
//! | `NoSuchChannel`, `ChannelIndexOutOfRange` (and a negative index) | `IndexError` (as 1.0.1) |
//! | `UnknownFormat`, `UnsupportedCompression`, `Unsupported`, `DeepData`, `Subsampled`, `Decode` (a damaged or truncated file), `TooLarge`, kinds added later | `ValueError` (1.0.1 raises `ValueError` for every file OpenImageIO cannot open) |
//! | `Io` (reading the file failed) | `OSError`: the subclass for its errno, `filename` = `path` |
//! | the post-process callback's exception | itself, unchanged |
//! | anything else (the destination file: `File`, `Locked`, ...) | as in the table above |
//!
//! Exporting an image file (`Image.write`, `Image.preview`; not in 1.0.1) maps by the same
//! rules: the kinds `UnknownExtension`, `NoChannels`, `Unsupported` (five channels for a
//! PNG), `DuplicateChannel`, `TooLarge` and `Encode` are `ValueError`, `Io` an `OSError`
//! naming the file; the selection's `UnknownChannelName` is `ValueError` and
//! `IndexOutOfRange` `IndexError`, as `image["name"]` and `image[i]` raise; `File` (the
//! directory cannot take the temporary file, or it cannot be renamed into place) is an
//! `OSError`.

use std::path::Path;

use ci::{Error, ImageFileError};
use numpy::BorrowError;
use pyo3::exceptions::{
    PyFileNotFoundError, PyIndexError, PyOSError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

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

pyo3::create_exception!(
    compressed_image,
    SnapshotUnavailableError,
    PyRuntimeError,
    "The commit a snapshot id names is no longer in the file: it was compacted or replaced since."
);

/// `ImageFileNotFoundError`, made once: `create_exception!` takes a single base, and this
/// class has two, as the standard library's `io.UnsupportedOperation` (an `OSError` and a
/// `ValueError`) has.
static IMAGE_FILE_NOT_FOUND: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// The class `ImageFileNotFoundError(FileNotFoundError, ValueError)`: the image file to
/// import does not exist. A `FileNotFoundError` for new code, a `ValueError` for code
/// written against 1.0.1.
pub fn image_file_not_found_error(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    IMAGE_FILE_NOT_FOUND
        .get_or_try_init(py, || {
            let bases = PyTuple::new(
                py,
                [
                    py.get_type::<PyFileNotFoundError>(),
                    py.get_type::<PyValueError>(),
                ],
            )?;
            let namespace = PyDict::new(py);
            namespace.set_item("__module__", "compressed_image")?;
            namespace.set_item(
                "__doc__",
                "The image file to read does not exist: a FileNotFoundError, and a ValueError as compressed-image 1.0.1 raises.",
            )?;
            let class = py
                .get_type::<PyType>()
                .call1(("ImageFileNotFoundError", bases, namespace))?;
            Ok(class.cast_into::<PyType>()?.unbind())
        })
        .map(|class| class.bind(py))
}

/// The Python exception for a crate error met while importing the image file `source`
/// (see the second table above).
pub fn import_error(py: Python<'_>, e: Error, source: &Path) -> PyErr {
    match e {
        Error::File { path, source: io }
            if path == source && io.kind() == std::io::ErrorKind::NotFound =>
        {
            let errno = io.raw_os_error().unwrap_or(2);
            let class = match image_file_not_found_error(py) {
                Ok(class) => class.clone(),
                Err(e) => return e,
            };
            PyErr::from_type(
                class,
                (
                    errno,
                    "No such file or directory".to_string(),
                    path.display().to_string(),
                ),
            )
        }
        other => to_py(other),
    }
}

/// A subimage the file does not have: 1.0.1's ValueError message, plus the count when known.
pub fn bad_subimage(path: &Path, index: impl std::fmt::Display, count: Option<usize>) -> PyErr {
    let count = count.map_or_else(String::new, |n| format!(" (it has {n})"));
    PyValueError::new_err(format!(
        "File '{}' does not have a subimage {index}, cannot seek to it{count}",
        path.display()
    ))
}

/// The Python exception for why the image file `path` could not be imported or exported.
fn image_file_error(path: &Path, kind: ImageFileError) -> PyErr {
    let message = format!("{}: {kind}", path.display());
    match kind {
        ImageFileError::BadSubimage { index, count } => bad_subimage(path, index, Some(count)),
        ImageFileError::NoSuchChannel(_) | ImageFileError::ChannelIndexOutOfRange { .. } => {
            PyIndexError::new_err(message)
        }
        ImageFileError::Io(io) => os_error(io, Some(path)),
        // Unknown format, unsupported feature or compression, deep data, subsampled
        // channels, a damaged file, too large; an export's unknown extension, no channels,
        // duplicate names, encoder refusal; and kinds added later (non-exhaustive).
        _ => PyValueError::new_err(message),
    }
}

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
        | Error::ChannelDtypeMismatch { .. }
        | Error::InvalidStoredChunk { .. } => PyValueError::new_err(msg),
        Error::SnapshotUnavailable { .. } => match path {
            Some(p) => SnapshotUnavailableError::new_err(format!("{}: {msg}", p.display())),
            None => SnapshotUnavailableError::new_err(msg),
        },
        Error::IndexOutOfRange { .. } => PyIndexError::new_err(msg),
        Error::Locked { .. } => LockedError::new_err(msg),
        Error::ReadOnly => ReadOnlyError::new_err(msg),
        Error::ChannelRemoved => ChannelRemovedError::new_err(msg),
        Error::ImageFile { path, kind } => image_file_error(&path, kind),
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
