//! `Channel`: one image channel of compressed scanline chunks.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ci::{AnyChannel, Channel, Dtype, Settings};
use numpy::ndarray::Array2;
use numpy::{
    PyArray1, PyArray2, PyArrayDescr, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyIndexError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::codec::PyCodec;
use crate::convert::{
    Elem, Level, Size, array_dtype, as_ndarray, dispatch, fill_value, np_dtype, parse_dtype,
};
use crate::errors::{ChannelRemovedError, IntoPyResult, borrow_err, closed, to_py_at};

/// Lock a mutex; a panic while it was held leaves plain data behind, still usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where a channel handle came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A standalone channel (its own file, or anonymous).
    Standalone,
    /// Handed out by an image; `position` is its index there, `None` once removed.
    Image { position: Option<usize> },
}

/// The mutable part of a `Channel` object.
pub(crate) struct ChannelState {
    /// `None` once closed.
    pub any: Option<AnyChannel>,
    pub dtype: Dtype,
    /// Absolute path of the file; `None` for an anonymous channel.
    pub path: Option<PathBuf>,
    pub origin: Origin,
}

/// An image channel: a `width × height` array stored as independently compressed chunks of
/// whole scanlines.
///
/// Anonymous channels (the constructor, `zeros`, `full`, `*_like`) live in an unlinked
/// temporary file; `create`, `create_full` and `open` work on a named file that other
/// processes can open too.
#[pyclass(module = "compressed_image", name = "Channel", frozen, weakref)]
pub struct PyChannel {
    pub(crate) state: Arc<Mutex<ChannelState>>,
}

impl Drop for PyChannel {
    fn drop(&mut self) {
        // Dropping the last handle of a read-write file syncs it: do that without the GIL.
        let any = lock(&self.state).any.take();
        if let Some(any) = any {
            Python::try_attach(|py| py.detach(move || drop(any)));
        }
    }
}

/// The settings of the four trailing keyword arguments.
pub(crate) fn settings(
    codec: PyCodec,
    level: u8,
    block_size: usize,
    chunk_size: usize,
) -> Settings {
    Settings::default()
        .codec(codec.to_ci())
        .level(level)
        .block_size(block_size)
        .chunk_size(chunk_size)
}

/// The absolute form of a user path (pickles stay valid from another working directory).
pub(crate) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Check that `arr` is `width × height` elements: 1-D of length `w·h` or 2-D `(h, w)`.
pub(crate) fn check_shape(arr: &Bound<'_, PyUntypedArray>, w: usize, h: usize) -> PyResult<()> {
    let shape = arr.shape();
    match *shape {
        [n] => {
            let expected = w.checked_mul(h).ok_or_else(|| {
                PyValueError::new_err(format!("width x height overflows: {w} x {h}"))
            })?;
            if n != expected {
                return Err(PyValueError::new_err(format!(
                    "Invalid array size received, expected {expected} (width x height = {w} x {h}) but instead got {n}"
                )));
            }
        }
        [rows, cols] => {
            if rows != h {
                return Err(PyValueError::new_err(format!(
                    "Invalid 1st dimension size encountered, expected {h} (height) but instead got {rows}"
                )));
            }
            if cols != w {
                return Err(PyValueError::new_err(format!(
                    "Invalid 2nd dimension size encountered, expected {w} (width) but instead got {cols}"
                )));
            }
        }
        _ => {
            return Err(PyValueError::new_err(format!(
                "Invalid number of dimensions received, expected one of {{ 1, 2 }} but instead got {}",
                shape.len()
            )));
        }
    }
    Ok(())
}

/// `arr` itself if it is C-contiguous and aligned, else numpy's C-contiguous, aligned copy
/// of it (cast to `dtype` if given, with numpy's unsafe casting).
pub(crate) fn contiguous<'py>(
    arr: &Bound<'py, PyAny>,
    dtype: Option<&Bound<'py, PyArrayDescr>>,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    if dtype.is_none()
        && let Ok(a) = arr.cast::<PyUntypedArray>()
        && a.is_c_contiguous()
        && a.is_aligned()
    {
        return Ok(a.clone());
    }
    let py = arr.py();
    let required = py.import("numpy")?.call_method1(
        "require",
        (arr, dtype.map(|d| d.clone().into_any()), ["C", "A"]),
    )?;
    Ok(required.cast_into::<PyUntypedArray>()?)
}

/// Run `f` on the elements of `arr` (whose dtype is `T`) in row-major order: borrowed when
/// the array is C-contiguous and aligned, else from numpy's contiguous copy (strided,
/// Fortran-ordered, reversed and misaligned views are all read correctly).
///
/// The borrow is a rust-numpy read-only borrow held for the whole call, so `f` may release
/// the GIL: the array object stays alive and other Rust code cannot borrow it mutably.
/// Python code in another thread writing to the same array meanwhile is the same data race
/// numpy's own GIL-free loops allow; it can give torn values in the result, never an
/// out-of-bounds access (the slice length is fixed for the borrow).
pub(crate) fn with_slice<T: Elem, R>(
    arr: &Bound<'_, PyUntypedArray>,
    f: impl FnOnce(&[T]) -> R,
) -> PyResult<R> {
    let arr = contiguous(arr.as_any(), None)?;
    let typed = arr.cast::<PyArrayDyn<T>>()?;
    let ro = typed.try_readonly().map_err(borrow_err)?;
    let slice = ro
        .as_slice()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(f(slice))
}

fn create_eager<T: Elem>(
    py: Python<'_>,
    path: Option<&Path>,
    arr: &Bound<'_, PyUntypedArray>,
    w: usize,
    h: usize,
    s: Settings,
) -> PyResult<AnyChannel> {
    with_slice::<T, _>(arr, |data| {
        py.detach(|| match path {
            None => Channel::<T>::new(data, w, h, s),
            Some(p) => Channel::<T>::create(p, data, w, h, s),
        })
    })?
    .map(Channel::into_any)
    .map_err(|e| to_py_at(e, path))
}

fn create_lazy<T: Elem>(
    py: Python<'_>,
    path: Option<&Path>,
    fill: Option<&Bound<'_, PyAny>>,
    w: usize,
    h: usize,
    s: Settings,
) -> PyResult<AnyChannel> {
    let value: T = match fill {
        Some(f) => fill_value(f)?,
        None => T::zeroed(),
    };
    py.detach(|| match path {
        None => Channel::<T>::full(w, h, value, s),
        Some(p) => Channel::<T>::create_full(p, w, h, value, s),
    })
    .map(Channel::into_any)
    .map_err(|e| to_py_at(e, path))
}

fn create_like<T: Elem>(
    py: Python<'_>,
    other: AnyChannel,
    fill: Option<&Bound<'_, PyAny>>,
) -> PyResult<AnyChannel> {
    let value: T = match fill {
        Some(f) => fill_value(f)?,
        None => T::zeroed(),
    };
    let other = Channel::<T>::try_from_any(other).py_err()?;
    py.detach(|| Channel::full_like(&other, value))
        .map(Channel::into_any)
        .py_err()
}

fn get_chunk_new<T: Elem>(py: Python<'_>, any: AnyChannel, index: usize) -> PyResult<Py<PyAny>> {
    let ch = Channel::<T>::try_from_any(any).py_err()?;
    let v = py.detach(|| ch.get_chunk_vec(index)).py_err()?;
    Ok(PyArray1::from_vec(py, v).into_any().unbind())
}

fn get_chunk_into<T: Elem>(
    py: Python<'_>,
    any: AnyChannel,
    index: usize,
    arr: &Bound<'_, PyUntypedArray>,
) -> PyResult<()> {
    let n = any.chunk_elems_at(index).py_err()?;
    if arr.ndim() != 1 {
        return Err(PyValueError::new_err("Array must be 1-dimensional."));
    }
    let typed = arr.cast::<PyArray1<T>>()?;
    let mut rw = typed.try_readwrite().map_err(borrow_err)?;
    if !typed.is_c_contiguous() || !typed.is_aligned() {
        return Err(PyValueError::new_err(
            "array must be C-contiguous and aligned: a strided, reversed or misaligned view \
             cannot be filled in place (pass e.g. np.empty(channel.chunk_elems(i), dtype))",
        ));
    }
    if typed.len() != n {
        return Err(PyValueError::new_err(format!(
            "Invalid array size received, expected {n} (chunk_elems({index})) but instead got {}",
            typed.len()
        )));
    }
    let out = rw
        .as_slice_mut()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    // The slice comes from a checked rust-numpy read-write borrow, held (with the array
    // alive) until this function returns; see `with_slice` for the GIL argument.
    py.detach(|| any.get_chunk_bytes(index, bytemuck::cast_slice_mut(out)))
        .py_err()
}

fn set_chunk_from<T: Elem>(
    py: Python<'_>,
    any: AnyChannel,
    index: usize,
    arr: &Bound<'_, PyUntypedArray>,
) -> PyResult<()> {
    if arr.ndim() != 1 {
        return Err(PyValueError::new_err("set_chunk requires a 1D numpy array"));
    }
    with_slice::<T, _>(arr, |data| {
        py.detach(|| any.set_chunk_bytes(index, bytemuck::cast_slice(data)))
    })?
    .py_err()
}

fn decompressed<T: Elem>(py: Python<'_>, any: AnyChannel) -> PyResult<Py<PyAny>> {
    let ch = Channel::<T>::try_from_any(any).py_err()?;
    let g = ch.geometry().py_err()?;
    let v = py.detach(|| ch.get_decompressed()).py_err()?;
    let a = Array2::from_shape_vec((g.height(), g.width()), v)
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    Ok(PyArray2::from_owned_array(py, a).into_any().unbind())
}

/// `dtype` of a data array must be exactly the channel's.
pub(crate) fn check_array_dtype(
    arr: &Bound<'_, PyUntypedArray>,
    expected: Dtype,
    what: &str,
) -> PyResult<()> {
    let found = array_dtype(arr)?;
    if found != expected {
        return Err(PyValueError::new_err(format!(
            "{what} requires a numpy array of dtype {expected}, instead got {found}"
        )));
    }
    Ok(())
}

pub(crate) fn stats_dict(py: Python<'_>, s: ci::Stats) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("generation", s.generation)?;
    d.set_item("file_len", s.file_len)?;
    d.set_item("committed_end", s.committed_end)?;
    d.set_item("live_bytes", s.live_bytes)?;
    d.set_item("dead_bytes", s.dead_bytes)?;
    d.set_item("blob_chunks", s.blob_chunks)?;
    d.set_item("fill_chunks", s.fill_chunks)?;
    d.set_item("fill_bytes", s.fill_bytes)?;
    Ok(d)
}

pub(crate) fn verification_dict(
    py: Python<'_>,
    v: ci::Verification,
) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("ok", v.is_ok())?;
    d.set_item("generation", v.generation)?;
    d.set_item("records", v.records)?;
    d.set_item("bytes_checked", v.bytes_checked)?;
    d.set_item("problems", v.problems)?;
    Ok(d)
}

pub(crate) fn compaction_dict(py: Python<'_>, c: ci::Compaction) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("file_len_before", c.file_len_before)?;
    d.set_item("file_len_after", c.file_len_after)?;
    d.set_item("reclaimed", c.reclaimed)?;
    Ok(d)
}

/// Thread count checks shared by `Channel.update_nthreads` and `Image.update_nthreads`.
pub(crate) fn check_nthreads(n: usize) -> PyResult<usize> {
    if n == 0 {
        return Err(PyValueError::new_err(
            "Number of threads must be at least 1, got 0",
        ));
    }
    if n > 32767 {
        return Err(PyIndexError::new_err(format!(
            "Number of threads may not exceed 32767, got {n}"
        )));
    }
    Ok(n)
}

impl PyChannel {
    pub(crate) fn new_state(
        any: AnyChannel,
        path: Option<PathBuf>,
        origin: Origin,
    ) -> PyResult<Arc<Mutex<ChannelState>>> {
        let dtype = any.dtype().py_err()?;
        Ok(Arc::new(Mutex::new(ChannelState {
            any: Some(any),
            dtype,
            path,
            origin,
        })))
    }

    fn standalone(any: AnyChannel, path: Option<PathBuf>) -> PyResult<PyChannel> {
        Ok(PyChannel {
            state: PyChannel::new_state(any, path, Origin::Standalone)?,
        })
    }

    /// A clone of the handle (cheap) and the element type; RuntimeError once closed.
    pub(crate) fn handle(&self) -> PyResult<(AnyChannel, Dtype)> {
        let st = lock(&self.state);
        match &st.any {
            Some(any) => Ok((any.clone(), st.dtype)),
            None => Err(closed("Channel")),
        }
    }

    fn any(&self) -> PyResult<AnyChannel> {
        Ok(self.handle()?.0)
    }
}

#[pymethods]
impl PyChannel {
    /// Compress `data` (1-D of `width * height` elements or 2-D `(height, width)`; any
    /// strides) into a new anonymous channel of the array's dtype.
    #[new]
    #[pyo3(
        signature = (data, width, height, compression_codec = PyCodec::lz4, compression_level = Level(9), block_size = Size(32768), chunk_size = Size(4194304)),
        text_signature = "(data, width, height, compression_codec=..., compression_level=9, block_size=32768, chunk_size=4194304)"
    )]
    fn py_new(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        width: Size,
        height: Size,
        compression_codec: PyCodec,
        compression_level: Level,
        block_size: Size,
        chunk_size: Size,
    ) -> PyResult<PyChannel> {
        let arr = as_ndarray(data, "data")?;
        let dtype = array_dtype(&arr)?;
        check_shape(&arr, width.0, height.0)?;
        let s = settings(
            compression_codec,
            compression_level.0,
            block_size.0,
            chunk_size.0,
        );
        let any = dispatch!(dtype, T => create_eager::<T>(py, None, &arr, width.0, height.0, s))?;
        PyChannel::standalone(any, None)
    }

    /// A lazy channel of zeros: nothing is compressed until a chunk is set.
    #[staticmethod]
    #[pyo3(
        signature = (dtype, width, height, compression_codec = PyCodec::lz4, compression_level = Level(9), block_size = Size(32768), chunk_size = Size(4194304)),
        text_signature = "(dtype, width, height, compression_codec=..., compression_level=9, block_size=32768, chunk_size=4194304)"
    )]
    fn zeros(
        py: Python<'_>,
        dtype: &Bound<'_, PyAny>,
        width: Size,
        height: Size,
        compression_codec: PyCodec,
        compression_level: Level,
        block_size: Size,
        chunk_size: Size,
    ) -> PyResult<PyChannel> {
        let dtype = parse_dtype(dtype)?;
        let s = settings(
            compression_codec,
            compression_level.0,
            block_size.0,
            chunk_size.0,
        );
        let any = dispatch!(dtype, T => create_lazy::<T>(py, None, None, width.0, height.0, s))?;
        PyChannel::standalone(any, None)
    }

    /// A lazy channel whose every element is `fill_value` (exactly representable in `dtype`,
    /// else RuntimeError).
    #[staticmethod]
    #[pyo3(
        signature = (dtype, fill_value, width, height, compression_codec = PyCodec::lz4, compression_level = Level(9), block_size = Size(32768), chunk_size = Size(4194304)),
        text_signature = "(dtype, fill_value, width, height, compression_codec=..., compression_level=9, block_size=32768, chunk_size=4194304)"
    )]
    fn full(
        py: Python<'_>,
        dtype: &Bound<'_, PyAny>,
        fill_value: &Bound<'_, PyAny>,
        width: Size,
        height: Size,
        compression_codec: PyCodec,
        compression_level: Level,
        block_size: Size,
        chunk_size: Size,
    ) -> PyResult<PyChannel> {
        let dtype = parse_dtype(dtype)?;
        let s = settings(
            compression_codec,
            compression_level.0,
            block_size.0,
            chunk_size.0,
        );
        let any = dispatch!(dtype, T => create_lazy::<T>(py, None, Some(fill_value), width.0, height.0, s))?;
        PyChannel::standalone(any, None)
    }

    /// A lazy channel of zeros with `other`'s dtype, size, codec, level, block and chunk size.
    #[staticmethod]
    #[pyo3(text_signature = "(other)")]
    fn zeros_like(py: Python<'_>, other: PyRef<'_, PyChannel>) -> PyResult<PyChannel> {
        let (any, dtype) = other.handle()?;
        let any = dispatch!(dtype, T => create_like::<T>(py, any, None))?;
        PyChannel::standalone(any, None)
    }

    /// A lazy channel of `fill_value` with `other`'s dtype, size and settings.
    #[staticmethod]
    #[pyo3(text_signature = "(other, fill_value)")]
    fn full_like(
        py: Python<'_>,
        other: PyRef<'_, PyChannel>,
        fill_value: &Bound<'_, PyAny>,
    ) -> PyResult<PyChannel> {
        let (any, dtype) = other.handle()?;
        let any = dispatch!(dtype, T => create_like::<T>(py, any, Some(fill_value)))?;
        PyChannel::standalone(any, None)
    }

    // ---- files ----------------------------------------------------------------------

    /// Compress `data` into a new channel file at `path` (replacing any file there once
    /// complete), opened read-write.
    #[staticmethod]
    #[pyo3(
        signature = (path, data, width, height, compression_codec = PyCodec::lz4, compression_level = Level(9), block_size = Size(32768), chunk_size = Size(4194304)),
        text_signature = "(path, data, width, height, compression_codec=..., compression_level=9, block_size=32768, chunk_size=4194304)"
    )]
    fn create(
        py: Python<'_>,
        path: PathBuf,
        data: &Bound<'_, PyAny>,
        width: Size,
        height: Size,
        compression_codec: PyCodec,
        compression_level: Level,
        block_size: Size,
        chunk_size: Size,
    ) -> PyResult<PyChannel> {
        let path = absolute(&path);
        let arr = as_ndarray(data, "data")?;
        let dtype = array_dtype(&arr)?;
        check_shape(&arr, width.0, height.0)?;
        let s = settings(
            compression_codec,
            compression_level.0,
            block_size.0,
            chunk_size.0,
        );
        let any =
            dispatch!(dtype, T => create_eager::<T>(py, Some(&path), &arr, width.0, height.0, s))?;
        PyChannel::standalone(any, Some(path))
    }

    /// A lazy channel file at `path` whose every element is `fill_value`; instant for any
    /// size. Opened read-write.
    #[staticmethod]
    #[pyo3(
        signature = (path, dtype, fill_value, width, height, compression_codec = PyCodec::lz4, compression_level = Level(9), block_size = Size(32768), chunk_size = Size(4194304)),
        text_signature = "(path, dtype, fill_value, width, height, compression_codec=..., compression_level=9, block_size=32768, chunk_size=4194304)"
    )]
    fn create_full(
        py: Python<'_>,
        path: PathBuf,
        dtype: &Bound<'_, PyAny>,
        fill_value: &Bound<'_, PyAny>,
        width: Size,
        height: Size,
        compression_codec: PyCodec,
        compression_level: Level,
        block_size: Size,
        chunk_size: Size,
    ) -> PyResult<PyChannel> {
        let path = absolute(&path);
        let dtype = parse_dtype(dtype)?;
        let s = settings(
            compression_codec,
            compression_level.0,
            block_size.0,
            chunk_size.0,
        );
        let any = dispatch!(dtype, T => create_lazy::<T>(py, Some(&path), Some(fill_value), width.0, height.0, s))?;
        PyChannel::standalone(any, Some(path))
    }

    /// Open a channel file: read-write (one writer per file, in any process: a second one
    /// gets `LockedError`) or read-only (any number, beside the writer).
    #[staticmethod]
    #[pyo3(signature = (path, read_only = false), text_signature = "(path, read_only=False)")]
    fn open(py: Python<'_>, path: PathBuf, read_only: bool) -> PyResult<PyChannel> {
        let path = absolute(&path);
        let any = py
            .detach(|| {
                if read_only {
                    AnyChannel::open_read_only(&path)
                } else {
                    AnyChannel::open(&path)
                }
            })
            .map_err(|e| to_py_at(e, Some(&path)))?;
        PyChannel::standalone(any, Some(path))
    }

    /// Unpickling: reopen by path (and position, for a channel of an image file).
    #[staticmethod]
    #[pyo3(signature = (path, read_only, position = None))]
    fn _unpickle(
        py: Python<'_>,
        path: PathBuf,
        read_only: bool,
        position: Option<usize>,
    ) -> PyResult<PyChannel> {
        match position {
            None => PyChannel::open(py, path, read_only),
            Some(pos) => {
                let (image, _) = crate::image::open_image(py, &path, read_only, None)?;
                let any = image.channel_any(pos)?;
                Ok(PyChannel {
                    state: PyChannel::new_state(
                        any,
                        Some(path),
                        Origin::Image {
                            position: Some(pos),
                        },
                    )?,
                })
            }
        }
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let (path, read_only, position) = {
            let st = lock(&slf.get().state);
            let any = st.any.as_ref().ok_or_else(|| closed("Channel"))?;
            let path = st.path.clone().ok_or_else(|| {
                PyTypeError::new_err(
                    "cannot pickle an anonymous (in-memory) Channel: it has no file. \
                     save(path) it and pickle Channel.open(path) instead",
                )
            })?;
            let position = match st.origin {
                Origin::Standalone => None,
                Origin::Image { position: Some(p) } => Some(p),
                Origin::Image { position: None } => {
                    return Err(ChannelRemovedError::new_err(
                        "cannot pickle a channel that was removed from its image",
                    ));
                }
            };
            (path, !any.is_writable(), position)
        };
        let f = slf.get_type().getattr("_unpickle")?;
        let args = PyTuple::new(
            py,
            [
                path.into_pyobject(py)?.into_any(),
                pyo3::types::PyBool::new(py, read_only)
                    .to_owned()
                    .into_any(),
                position.into_pyobject(py)?.into_any(),
            ],
        )?;
        Ok((f, args))
    }

    /// Move a read-only handle to the newest commit of its file; returns whether it changed
    /// (always False for a read-write handle, which has the newest commit).
    fn refresh(&self, py: Python<'_>) -> PyResult<bool> {
        let any = self.any()?;
        py.detach(|| any.refresh()).py_err()
    }

    /// Make every commit durable (fsync). No-op for read-only handles.
    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        let any = self.any()?;
        py.detach(|| any.sync()).py_err()
    }

    /// Write this channel (the current commit, without dead space) to a new channel file at
    /// `path`. The handle stays on its own file.
    #[pyo3(text_signature = "($self, path)")]
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let any = self.any()?;
        py.detach(|| any.save_as(&path))
            .map_err(|e| to_py_at(e, Some(&path)))
    }

    /// Rewrite the file without dead space; returns a dict of `file_len_before`,
    /// `file_len_after`, `reclaimed`.
    fn compact<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let any = self.any()?;
        let c = py.detach(|| any.compact()).py_err()?;
        compaction_dict(py, c)
    }

    /// Check every record of the file's current commit; returns a dict with `ok`,
    /// `problems` (list of str), `generation`, `records`, `bytes_checked`.
    fn verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let any = self.any()?;
        let v = py.detach(|| any.verify()).py_err()?;
        verification_dict(py, v)
    }

    /// Space accounting of the file (dict: `generation`, `file_len`, `committed_end`,
    /// `live_bytes`, `dead_bytes`, `blob_chunks`, `fill_chunks`, `fill_bytes`).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let any = self.any()?;
        let s = py.detach(|| any.stats()).py_err()?;
        stats_dict(py, s)
    }

    /// Release this handle (and, with the last handle of a file, its writer lock). Using
    /// the handle afterwards raises RuntimeError. Idempotent.
    fn close(&self, py: Python<'_>) {
        let any = lock(&self.state).any.take();
        if let Some(any) = any {
            py.detach(move || drop(any));
        }
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        lock(&self.state).any.is_none()
    }

    /// The file's absolute path, or None for an anonymous channel.
    #[getter]
    fn path(&self) -> Option<String> {
        lock(&self.state)
            .path
            .as_ref()
            .map(|p| p.display().to_string())
    }

    /// Whether this handle cannot write (opened read-only).
    #[getter]
    fn read_only(&self) -> PyResult<bool> {
        Ok(!self.any()?.is_writable())
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    // ---- the original API -------------------------------------------------------------

    /// Decompress chunk `chunk_index`: into a new 1-D array (returned), or into `array`
    /// (1-D, the channel's dtype, exactly `chunk_elems(chunk_index)` long, writeable,
    /// C-contiguous; returns None).
    #[pyo3(signature = (chunk_index, array = None), text_signature = "($self, chunk_index, array=None)")]
    fn get_chunk(
        &self,
        py: Python<'_>,
        chunk_index: Size,
        array: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<Py<PyAny>>> {
        let (any, dtype) = self.handle()?;
        match array {
            None => dispatch!(dtype, T => get_chunk_new::<T>(py, any, chunk_index.0)).map(Some),
            Some(obj) => {
                let arr = as_ndarray(obj, "array")?;
                check_array_dtype(&arr, dtype, "get_chunk")?;
                dispatch!(dtype, T => get_chunk_into::<T>(py, any, chunk_index.0, &arr))?;
                Ok(None)
            }
        }
    }

    /// Compress `array` (1-D, the channel's dtype, exactly `chunk_elems(chunk_index)` long;
    /// any strides) into chunk `chunk_index` and commit. Nothing changes on any error.
    #[pyo3(text_signature = "($self, chunk_index, array)")]
    fn set_chunk(
        &self,
        py: Python<'_>,
        chunk_index: Size,
        array: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (any, dtype) = self.handle()?;
        let arr = as_ndarray(array, "array")?;
        check_array_dtype(&arr, dtype, "set_chunk")?;
        dispatch!(dtype, T => set_chunk_from::<T>(py, any, chunk_index.0, &arr))
    }

    /// The whole channel as a new 2-D array `(height, width)`.
    fn get_decompressed(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let (any, dtype) = self.handle()?;
        dispatch!(dtype, T => decompressed::<T>(py, any))
    }

    /// Number of chunks.
    fn num_chunks(&self) -> PyResult<usize> {
        self.any()?.num_chunks().py_err()
    }

    /// Nominal chunk size in bytes (every chunk but possibly the last), or the size of
    /// chunk `chunk_index` in bytes.
    #[pyo3(signature = (chunk_index = None), text_signature = "($self, chunk_index=None)")]
    fn chunk_size(&self, chunk_index: Option<Size>) -> PyResult<usize> {
        let any = self.any()?;
        match chunk_index {
            None => any.chunk_size(),
            Some(i) => any.chunk_size_at(i.0),
        }
        .py_err()
    }

    /// Nominal chunk size in elements, or the elements of chunk `chunk_index`.
    #[pyo3(signature = (chunk_index = None), text_signature = "($self, chunk_index=None)")]
    fn chunk_elems(&self, chunk_index: Option<Size>) -> PyResult<usize> {
        let any = self.any()?;
        match chunk_index {
            None => any.chunk_elems(),
            Some(i) => any.chunk_elems_at(i.0),
        }
        .py_err()
    }

    /// The effective c-blosc2 block size in bytes (the requested one capped to the chunk
    /// and rounded down to whole elements; 0 = chosen by c-blosc2).
    fn block_size(&self) -> PyResult<usize> {
        self.any()?.block_size().py_err()
    }

    /// Stored bytes: compressed chunks plus one element per lazy chunk.
    fn compressed_bytes(&self) -> PyResult<usize> {
        self.any()?.compressed_bytes().py_err()
    }

    /// Number of elements (`width * height`), as the original counts it.
    fn uncompressed_size(&self) -> PyResult<usize> {
        self.any()?.uncompressed_size().py_err()
    }

    /// The codec.
    fn compression(&self) -> PyResult<PyCodec> {
        PyCodec::from_ci(self.any()?.codec().py_err()?)
    }

    /// The compression level (0–9).
    fn compression_level(&self) -> PyResult<u8> {
        self.any()?.level().py_err()
    }

    /// Whether chunk `chunk_index` is a lazy fill value rather than compressed data.
    #[pyo3(text_signature = "($self, chunk_index)")]
    fn is_lazy(&self, chunk_index: Size) -> PyResult<bool> {
        self.any()?.is_lazy(chunk_index.0).py_err()
    }

    /// Set the number of threads used inside one chunk and across chunks (1–32767).
    /// `block_size` is accepted for compatibility and ignored: unlike the original, the
    /// block size never changes after construction.
    #[pyo3(
        signature = (nthreads, block_size = Size(32768)),
        text_signature = "($self, nthreads, block_size=32768)"
    )]
    fn update_nthreads(&self, nthreads: Size, block_size: Size) -> PyResult<()> {
        let _ = block_size;
        let n = check_nthreads(nthreads.0)?;
        let mut st = lock(&self.state);
        let any = st.any.as_mut().ok_or_else(|| closed("Channel"))?;
        any.set_threads(n).py_err()
    }

    /// The numpy dtype of the elements.
    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, numpy::PyArrayDescr>> {
        let (_, dtype) = self.handle()?;
        np_dtype(py, dtype)
    }

    /// `(height, width)`.
    #[getter]
    fn shape(&self) -> PyResult<(usize, usize)> {
        let g = self.any()?.geometry().py_err()?;
        Ok((g.height(), g.width()))
    }

    /// Width in elements.
    #[getter]
    fn width(&self) -> PyResult<usize> {
        self.any()?.width().py_err()
    }

    /// Height in scanlines.
    #[getter]
    fn height(&self) -> PyResult<usize> {
        self.any()?.height().py_err()
    }

    fn __repr__(&self) -> String {
        let st = lock(&self.state);
        let Some(any) = &st.any else {
            return "<compressed_image.Channel (closed)>".to_string();
        };
        let Ok(g) = any.geometry() else {
            return "<compressed_image.Channel (removed from its image)>".to_string();
        };
        let codec = any
            .codec()
            .map_or_else(|_| "?".to_string(), |c| c.to_string());
        let level = any.level().unwrap_or(0);
        let place = match &st.path {
            None => "anonymous".to_string(),
            Some(p) => format!(
                "path={:?}{}{}",
                p.display().to_string(),
                match st.origin {
                    Origin::Image { position: Some(i) } => format!(" image channel {i}"),
                    _ => String::new(),
                },
                if any.is_writable() { "" } else { " read-only" }
            ),
        };
        format!(
            "<compressed_image.Channel dtype={} shape=({}, {}) chunks={} codec={codec} level={level} {place}>",
            st.dtype,
            g.height(),
            g.width(),
            g.num_chunks(),
        )
    }
}
