//! What `Channel` and `Image` objects share, written once: the crate handle each wraps until
//! `close()`, the file's path, and the Python methods over the file (`refresh`, `sync`,
//! `save`, `compact`, `verify`, `stats`, `close`, `closed`, `path`, `read_only`, the
//! context manager and pickling), generated for both classes by [`file_handle_methods`].

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyTuple};

use crate::errors::{IntoPyResult, closed, to_py_at};
use crate::settings::Threads;

/// Lock a mutex; a panic while it was held leaves plain data behind, still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The absolute form of a user path (pickles stay valid from another working directory).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// What the Python classes use of a crate handle (`AnyChannel`, `AnyImage`) beyond its own
/// class: the file-level operations and the thread count.
pub trait CrateHandle: Clone + Send + Sync + 'static {
    fn refresh(&self) -> ci::Result<bool>;
    fn sync(&self) -> ci::Result;
    fn save_as(&self, path: &Path) -> ci::Result;
    fn compact(&self) -> ci::Result<ci::Compaction>;
    fn verify(&self) -> ci::Result<ci::Verification>;
    fn stats(&self) -> ci::Result<ci::Stats>;
    fn is_writable(&self) -> bool;
    fn set_threads(&self, threads: usize) -> ci::Result;
}

/// [`CrateHandle`] by the inherent methods of the same names, which both handles have.
macro_rules! crate_handle_of {
    ($($t:ty),*) => {$(
        impl CrateHandle for $t {
            fn refresh(&self) -> ci::Result<bool> {
                <$t>::refresh(self)
            }
            fn sync(&self) -> ci::Result {
                <$t>::sync(self)
            }
            fn save_as(&self, path: &Path) -> ci::Result {
                <$t>::save_as(self, path)
            }
            fn compact(&self) -> ci::Result<ci::Compaction> {
                <$t>::compact(self)
            }
            fn verify(&self) -> ci::Result<ci::Verification> {
                <$t>::verify(self)
            }
            fn stats(&self) -> ci::Result<ci::Stats> {
                <$t>::stats(self)
            }
            fn is_writable(&self) -> bool {
                <$t>::is_writable(self)
            }
            fn set_threads(&self, threads: usize) -> ci::Result {
                <$t>::set_threads(self, threads)
            }
        }
    )*};
}
crate_handle_of!(ci::AnyChannel, ci::AnyImage);

/// The state of one Python handle object: the crate handle (`None` once closed) and what
/// the class keeps beside it (`extra`), under one lock.
pub struct Slot<R, X> {
    pub resource: Option<R>,
    pub extra: X,
}

/// A crate handle owned by a Python object, plus the file's absolute path (`None` for an
/// anonymous, temporary file).
pub struct Handle<R: CrateHandle, X> {
    slot: Mutex<Slot<R, X>>,
    path: Option<PathBuf>,
}

impl<R: CrateHandle, X> Handle<R, X> {
    pub fn new(resource: R, path: Option<PathBuf>, extra: X) -> Self {
        Handle {
            slot: Mutex::new(Slot {
                resource: Some(resource),
                extra,
            }),
            path,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Slot<R, X>> {
        lock(&self.slot)
    }

    /// A clone of the crate handle (cheap); RuntimeError once closed.
    pub fn get(&self, kind: &str) -> PyResult<R> {
        self.lock().resource.clone().ok_or_else(|| closed(kind))
    }

    /// Take the crate handle out (closing this object); `None` if already closed.
    pub fn take(&self) -> Option<R> {
        self.lock().resource.take()
    }

    pub fn is_closed(&self) -> bool {
        self.lock().resource.is_none()
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

impl<R: CrateHandle, X> Drop for Handle<R, X> {
    fn drop(&mut self) {
        // Dropping the last handle of a read-write file syncs it: do that without the GIL.
        if let Some(resource) = self.take() {
            Python::try_attach(|py| py.detach(move || drop(resource)));
        }
    }
}

/// A Python class wrapping a [`Handle`]: what the generated methods need to know.
pub trait PyHandle {
    type Resource: CrateHandle;
    type Extra;
    /// The class name, for messages.
    const KIND: &'static str;

    fn handle(&self) -> &Handle<Self::Resource, Self::Extra>;

    /// Close what depends on this object once it is closed (an image's Channel objects).
    fn close_dependents(&self, _py: Python<'_>) {}

    /// The arguments of `_unpickle` after `(path, read_only)`; errors when this handle
    /// cannot be reopened from its file.
    fn unpickle_args<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>>;
}

/// Run `f` without the GIL on a clone of the crate handle; crate errors become Python
/// exceptions.
pub fn run<H: PyHandle, T: Send>(
    h: &H,
    py: Python<'_>,
    f: impl FnOnce(&H::Resource) -> ci::Result<T> + Send,
) -> PyResult<T> {
    let resource = h.handle().get(H::KIND)?;
    py.detach(|| f(&resource)).py_err()
}

pub fn save<H: PyHandle>(h: &H, py: Python<'_>, path: &Path) -> PyResult<()> {
    let resource = h.handle().get(H::KIND)?;
    py.detach(|| resource.save_as(path))
        .map_err(|e| to_py_at(e, Some(path)))
}

pub fn close<H: PyHandle>(h: &H, py: Python<'_>) {
    if let Some(resource) = h.handle().take() {
        py.detach(move || drop(resource));
    }
    h.close_dependents(py);
}

/// Set the thread count of the handle this object holds (clones taken afterwards, for
/// calls and for an image's channels, inherit it).
pub fn set_threads<H: PyHandle>(h: &H, threads: Threads) -> PyResult<()> {
    let slot = h.handle().lock();
    let resource = slot.resource.as_ref().ok_or_else(|| closed(H::KIND))?;
    resource.set_threads(threads.0).py_err()
}

pub fn read_only<H: PyHandle>(h: &H) -> PyResult<bool> {
    Ok(!h.handle().get(H::KIND)?.is_writable())
}

/// `__reduce__`: `(type(self)._unpickle, (path, read_only, *unpickle_args))`.
pub fn reduce<'py, H>(slf: &Bound<'py, H>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)>
where
    H: PyHandle + pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync,
{
    let py = slf.py();
    let h = slf.get();
    let read_only = read_only(h)?;
    let path = h.handle().path().ok_or_else(|| {
        PyTypeError::new_err(format!(
            "cannot pickle an anonymous (in-memory) {kind}: it has no file. \
             save(path) it and pickle {kind}.open(path) instead",
            kind = H::KIND
        ))
    })?;
    let mut args = vec![
        path.into_pyobject(py)?.into_any(),
        PyBool::new(py, read_only).to_owned().into_any(),
    ];
    args.extend(h.unpickle_args(py)?);
    Ok((
        slf.as_any().get_type().getattr("_unpickle")?,
        PyTuple::new(py, args)?,
    ))
}

/// A new dict of `value`'s named fields, keyed by their names, after any leading
/// `"key": expression` entries; in the order written.
macro_rules! fields_dict {
    ($py:expr, $value:ident { $($key:literal: $computed:expr,)* $($field:ident),* $(,)? }) => {{
        let d = PyDict::new($py);
        $(d.set_item($key, $computed)?;)*
        $(d.set_item(stringify!($field), $value.$field)?;)*
        Ok(d)
    }};
}

pub fn stats_dict(py: Python<'_>, s: ci::Stats) -> PyResult<Bound<'_, PyDict>> {
    fields_dict!(
        py,
        s {
            generation,
            file_len,
            committed_end,
            live_bytes,
            dead_bytes,
            blob_chunks,
            fill_chunks,
            fill_bytes,
            in_memory,
        }
    )
}

pub fn verification_dict(py: Python<'_>, v: ci::Verification) -> PyResult<Bound<'_, PyDict>> {
    fields_dict!(py, v {
        "ok": v.is_ok(),
        generation, records, bytes_checked, problems,
    })
}

pub fn compaction_dict(py: Python<'_>, c: ci::Compaction) -> PyResult<Bound<'_, PyDict>> {
    fields_dict!(
        py,
        c {
            file_len_before,
            file_len_after,
            reclaimed
        }
    )
}

/// The Python methods over the file, for a `#[pyclass]` implementing [`PyHandle`] (a
/// second `#[pymethods]` block: the `multiple-pymethods` feature).
macro_rules! file_handle_methods {
    ($class:ty) => {
        #[pyo3::pymethods]
        impl $class {
            /// Move a read-only handle to the newest commit of its file; returns whether it
            /// changed (always False for a read-write handle, which has the newest commit).
            fn refresh(&self, py: Python<'_>) -> PyResult<bool> {
                $crate::handle::run(self, py, |r| $crate::handle::CrateHandle::refresh(r))
            }

            /// Make every commit durable (fsync). No-op for read-only handles.
            fn sync(&self, py: Python<'_>) -> PyResult<()> {
                $crate::handle::run(self, py, |r| $crate::handle::CrateHandle::sync(r))
            }

            /// Write the current commit, without dead space, to a new file at `path`
            /// (replacing any file there). This handle stays on its own file.
            #[pyo3(text_signature = "($self, path)")]
            fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
                $crate::handle::save(self, py, &path)
            }

            /// Rewrite the file without dead space; returns a dict of `file_len_before`,
            /// `file_len_after`, `reclaimed`.
            fn compact<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
                let c = $crate::handle::run(self, py, |r| $crate::handle::CrateHandle::compact(r))?;
                $crate::handle::compaction_dict(py, c)
            }

            /// Check every record of the file's current commit; returns a dict with `ok`,
            /// `problems` (list of str), `generation`, `records`, `bytes_checked`.
            fn verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
                let v = $crate::handle::run(self, py, |r| $crate::handle::CrateHandle::verify(r))?;
                $crate::handle::verification_dict(py, v)
            }

            /// Space accounting of the file (dict: `generation`, `file_len`,
            /// `committed_end`, `live_bytes`, `dead_bytes`, `blob_chunks`, `fill_chunks`,
            /// `fill_bytes`, and `in_memory`: whether an anonymous handle's bytes are in
            /// memory, see `set_anonymous_backing`).
            fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
                let s = $crate::handle::run(self, py, |r| $crate::handle::CrateHandle::stats(r))?;
                $crate::handle::stats_dict(py, s)
            }

            /// Release this handle (an image also closes the Channel objects obtained from
            /// it; with the last handle of a file, its writer lock goes). Using it afterwards
            /// raises RuntimeError. Idempotent.
            fn close(&self, py: Python<'_>) {
                $crate::handle::close(self, py)
            }

            /// Whether `close()` was called.
            #[getter]
            fn closed(&self) -> bool {
                $crate::handle::PyHandle::handle(self).is_closed()
            }

            /// The file's absolute path, or None for an anonymous (in-memory) handle.
            #[getter]
            fn path(&self) -> Option<String> {
                $crate::handle::PyHandle::handle(self)
                    .path()
                    .map(|p| p.display().to_string())
            }

            /// The thread count set by `update_nthreads` (by default the machine's
            /// available parallelism), as set: the count c-blosc2 gets for one chunk is
            /// capped at a few per available core.
            #[getter]
            fn nthreads(&self) -> PyResult<usize> {
                Ok($crate::handle::PyHandle::handle(self)
                    .get(Self::KIND)?
                    .threads())
            }

            /// Whether this handle cannot write (opened read-only).
            #[getter]
            fn read_only(&self) -> PyResult<bool> {
                $crate::handle::read_only(self)
            }

            fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
                slf
            }

            /// Close; never suppresses the exception (returns False).
            #[pyo3(signature = (*_args))]
            fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
                $crate::handle::close(self, py);
                false
            }

            fn __reduce__<'py>(
                slf: &Bound<'py, Self>,
            ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, pyo3::types::PyTuple>)> {
                $crate::handle::reduce(slf)
            }
        }
    };
}
pub(crate) use file_handle_methods;
